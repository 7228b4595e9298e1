"""`PrivacyStore`: the suppression list and the audit table, on one backend.

Like `GraphStore`, public methods are `@final`, validate and wrap errors; each backend implements a
few private primitives. A backend takes the backend's `Database` (SQLite connections or Neo4j
driver), the same object as the graph store's, so its writes join the caller's transaction when
one is open (Forget). It touches only its own tables: erasure in the graph and the conversations
goes through their stores' public methods.

The suppression list never holds a plaintext identifier: an entry is the SHA-256 of a server-side
pepper and the normalised key (`suppression_hash`). The pepper comes from
`$IDENTITY_SUPPRESSION_PEPPER`; without it a fixed development pepper is used (and logged once),
which is fine for tests and demos and wrong for production: set the variable, keep it secret and
never change it, or earlier entries stop matching.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, final

import pyarrow as pa

from identity_graph.errors import IdentityGraphError, InvalidArgument, StoreError
from identity_graph.store.tables import TS

log = logging.getLogger(__name__)

PEPPER_ENV = "IDENTITY_SUPPRESSION_PEPPER"
DEV_PEPPER = "identity-graph-dev-pepper-do-not-use-in-production"
AUDIT_ACTIONS = ("erasure", "export", "handoff_redemption")
EVENT_ACTIONS = ("merge", "split")
MAX_AUDIT_PAGE = 1000

AUDIT = pa.schema([
    ("id", pa.string()),
    ("action", pa.string()),
    ("actor", pa.string()),
    ("at", TS),
    ("subject", pa.string()),
    ("detail", pa.string()),
])
"""The audit table as Arrow (the `identity-batch export` format)."""

_warned = False


def pepper_from_env(env: Mapping[str, str] | None = None) -> str:
    """The suppression pepper: `$IDENTITY_SUPPRESSION_PEPPER`, else the development default."""
    global _warned
    value = (os.environ if env is None else env).get(PEPPER_ENV, "")
    if value:
        return value
    if not _warned:
        _warned = True
        log.warning("%s is not set: suppression hashes use the development pepper", PEPPER_ENV)
    return DEV_PEPPER


def suppression_hash(key: str, pepper: str) -> str:
    """The hex SHA-256 of the pepper and a normalised key (or a customer id); never reversible
    without the pepper."""
    return hashlib.sha256(pepper.encode() + b"\x1f" + key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit entry. `subject` is a peppered hash; `detail` never holds personal data."""

    id: str
    action: str
    actor: str
    at: datetime
    subject: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)

    def detail_json(self) -> str:
        return json.dumps(dict(self.detail), sort_keys=True)


class PrivacyStore(ABC):
    """Suppression hashes and audit records."""

    name: str = "abstract"

    def __init__(self, pepper: str | None = None) -> None:
        self.pepper = pepper or pepper_from_env()
        self._cache_lock = threading.Lock()
        self._cache: set[str] = set()
        self._cache_count = -1  # the list's size when `_cache` was read: it only grows

    # ---- primitives each backend implements -------------------------------------------------

    @abstractmethod
    def _suppress(self, hashes: Sequence[str], at: datetime) -> int:
        """Adds hashes (existing ones stay as they are); returns how many were new."""

    @abstractmethod
    def _all_suppressed(self) -> list[str]: ...

    @abstractmethod
    def _suppressed_count(self) -> int:
        """How many hashes the list holds (a count the database keeps: cheap). Hashes are only
        ever added, so an unchanged count means an unchanged list."""

    @abstractmethod
    def _append_audit(self, record: AuditRecord) -> None: ...

    @abstractmethod
    def _audit(self, start: datetime | None, end: datetime | None, actions: Sequence[str],
               after: tuple[datetime, str] | None, limit: int) -> list[AuditRecord]:
        """Records with start <= at < end, ordered by (at, id), after the `(at, id)` cursor."""

    @abstractmethod
    def _export_audit(self) -> pa.Table: ...

    # ---- public API -------------------------------------------------------------------------

    @contextmanager
    def _wrapped(self, what: str) -> Iterator[None]:
        try:
            yield
        except IdentityGraphError:
            raise
        except Exception as e:
            log.exception("%s privacy store: %s failed", self.name, what)
            raise StoreError(f"{self.name} privacy store: {what} failed: {type(e).__name__}") from e

    @final
    def hash(self, key: str) -> str:
        return suppression_hash(key, self.pepper)

    @final
    def suppress(self, keys: Iterable[str], at: datetime) -> int:
        """Puts the hashes of `keys` on the suppression list; returns how many were new."""
        hashes = sorted({self.hash(k) for k in keys})
        if not hashes:
            return 0
        with self._wrapped("suppress"):
            added = self._suppress(hashes, at)
        with self._cache_lock:
            self._cache.update(hashes)
        return added

    @final
    def is_suppressed(self, key: str) -> bool:
        """Whether `key` (normalised) was erased, as of now, whichever server erased it: a hash
        in the in-memory copy is suppressed for good; any other answer is checked against the
        list's size in the database (one small read) and the copy re-read when it grew."""
        wanted = self.hash(key)
        if wanted in self._cache:
            return True
        with self._wrapped("is_suppressed"):
            count = self._suppressed_count()
            if count == self._cache_count:
                return False
            fresh = set(self._all_suppressed())
        with self._cache_lock:
            self._cache |= fresh
            self._cache_count = count
        return wanted in self._cache

    @final
    def append_audit(self, record: AuditRecord) -> None:
        with self._wrapped("append_audit"):
            self._append_audit(record)

    @final
    def audit(self, start: datetime | None = None, end: datetime | None = None,
              actions: Sequence[str] = (), after: tuple[datetime, str] | None = None,
              limit: int = 100) -> list[AuditRecord]:
        if not 0 < limit <= MAX_AUDIT_PAGE + 1:
            raise InvalidArgument("page_size", f"must be between 1 and {MAX_AUDIT_PAGE}")
        with self._wrapped("audit"):
            return self._audit(start, end, list(actions), after, limit)

    @final
    def export_audit(self) -> pa.Table:
        """The whole audit table, ordered by (at, id), in the `AUDIT` schema."""
        with self._wrapped("export_audit"):
            return self._export_audit().select(AUDIT.names).cast(AUDIT)


def audit_table(records: Sequence[AuditRecord]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"id": r.id, "action": r.action, "actor": r.actor, "at": r.at, "subject": r.subject,
          "detail": r.detail_json()} for r in records],
        schema=AUDIT,
    )
