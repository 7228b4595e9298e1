"""`PrivacyStore`: the suppression list, the audit table and the erasure primitives, on one backend.

Like `GraphStore`, public methods are `@final`, validate and wrap errors; each backend implements a
few private primitives. A backend takes the backend's `Database` (SQLite
connections or Neo4j driver), the same object as the graph store's, so erasure reaches the graph's
own tables, inside the caller's transaction when one is open (Forget).

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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, final

import pyarrow as pa

from identity_graph.errors import IdentityGraphError, InvalidArgument, StoreError
from identity_graph.model import Event
from identity_graph.store.tables import TS

log = logging.getLogger(__name__)

PEPPER_ENV = "IDENTITY_SUPPRESSION_PEPPER"
DEV_PEPPER = "identity-graph-dev-pepper-do-not-use-in-production"
ERASED_PAYLOAD: Mapping[str, Any] = {"erased": True}
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


def mention(value: str) -> str:
    """How `value` appears inside an event payload (JSON text written with `json.dumps`)."""
    return json.dumps(value)


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
    """Suppression hashes, audit records, and the erasure steps the graph and conversation stores
    do not offer (event payloads, outbox messages, turns typed through an erased identifier, empty
    customers and their aliases)."""

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
    def _audit_events(self, types: Sequence[str], start: datetime | None, end: datetime | None,
                      after: tuple[datetime, int] | None, limit: int) -> list[Event]:
        """Graph events of `types` with start <= at < end, ordered by (at, seq), after the cursor."""

    @abstractmethod
    def _events_mentioning(self, needles: Sequence[str], customer_ids: Sequence[str]) -> list[Event]:
        """Events whose payload contains one of `needles` (as JSON text) or whose customer id is
        one of `customer_ids`, by seq."""

    @abstractmethod
    def _erase_events(self, needles: Sequence[str], customer_ids: Sequence[str],
                      rewrite: Callable[[str], str]) -> int:
        """Replaces the payload of each event `_events_mentioning` finds by `rewrite(payload)`,
        and blanks its customer id where it is one of `customer_ids`, in one transaction; seq,
        type and time stay."""

    @abstractmethod
    def _delete_outbox(self, recipients: Sequence[str]) -> int: ...

    @abstractmethod
    def _redact_turns(self, identifiers: Sequence[str]) -> int:
        """Turns typed through `identifiers` (in conversations anchored elsewhere): text and
        identifier are blanked; the turn's place in its conversation stays."""

    @abstractmethod
    def _delete_customers(self, customer_ids: Sequence[str]) -> tuple[int, int]:
        """Deletes customer records and every alias from or to them; returns (customers, aliases)."""

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
    def audit_events(self, types: Sequence[str], start: datetime | None = None,
                     end: datetime | None = None, after: tuple[datetime, int] | None = None,
                     limit: int = 100) -> list[Event]:
        if not types:
            return []
        with self._wrapped("audit_events"):
            return self._audit_events(list(types), start, end, after, limit)

    @final
    def events_mentioning(self, values: Iterable[str], customer_ids: Iterable[str] = ()) -> list[Event]:
        """Events that name any of `values` (identifier keys, customer ids) in their payload, or
        belong to one of `customer_ids`."""
        needles = sorted({mention(v) for v in values if v})
        ids = sorted({c for c in customer_ids if c})
        if not needles and not ids:
            return []
        with self._wrapped("events_mentioning"):
            return self._events_mentioning(needles, ids)

    @final
    def erase_event_payloads(self, values: Iterable[str], customer_ids: Iterable[str] = ()) -> int:
        """Rewrites the payloads of the events `events_mentioning` finds to `{"erased": true}`
        (plus the event's `actor`, a calling service, when it names none of the erased values),
        keeping seq, type and time; returns how many."""
        raw = sorted({v for v in values if v} | {c for c in customer_ids if c})
        needles = sorted({mention(v) for v in values if v})
        ids = sorted({c for c in customer_ids if c})
        if not needles and not ids:
            return 0
        secrets = [v.lower() for v in raw] + [v.partition(":")[2].lower() for v in raw if ":" in v]

        def rewrite(payload: str) -> str:
            try:
                old = json.loads(payload)
            except ValueError:
                old = None
            out: dict[str, Any] = dict(ERASED_PAYLOAD)
            actor = old.get("actor") if isinstance(old, dict) else None
            if isinstance(actor, str) and actor and not any(s and s in actor.lower() for s in secrets):
                out["actor"] = actor
            return json.dumps(out, sort_keys=True)

        with self._wrapped("erase_event_payloads"):
            return self._erase_events(needles, ids, rewrite)

    @final
    def delete_outbox(self, recipients: Iterable[str]) -> int:
        values = sorted({r for r in recipients if r})
        if not values:
            return 0
        with self._wrapped("delete_outbox"):
            return self._delete_outbox(values)

    @final
    def redact_turns(self, identifiers: Iterable[str]) -> int:
        keys = sorted(set(identifiers))
        if not keys:
            return 0
        with self._wrapped("redact_turns"):
            return self._redact_turns(keys)

    @final
    def delete_customers(self, customer_ids: Iterable[str]) -> tuple[int, int]:
        ids = sorted({c for c in customer_ids if c})
        if not ids:
            return 0, 0
        with self._wrapped("delete_customers"):
            return self._delete_customers(ids)

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
