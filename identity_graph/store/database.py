"""`Database`: one object per backend that owns the connection (or driver), the write tracker and
the transaction, shared by the graph store and by the stores of the layers above that live in it
(`session.store`, `privacy.store`, which pick their backend by the database's class).

The stores never reach into each other: each takes the database and uses only what is public
here. A transaction opened with `transaction()` is joined by every store call made from the same
thread until it ends, so a multi-store operation (Forget) commits or rolls back as one.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa

from identity_graph.writelock import WriteTracker

T = TypeVar("T")

log = logging.getLogger(__name__)

TRANSACTION_RETRY_S = 30.0
"""How long `run_transaction` re-runs a transaction that failed transiently (deadlocks under
many writers on one region included) before it lets the error through."""

if TYPE_CHECKING:
    from identity_graph.store.base import GraphStore


@dataclass(frozen=True)
class Snapshot:
    """The graph's tables (schemas of `tables.TABLES`) as of one moment, and the last event seq
    they include."""

    tables: dict[str, pa.Table]
    last_seq: int


@dataclass(frozen=True)
class SnapshotScope:
    """What a snapshot reader needs: the columns of some tables, and of the event log only some
    types. The nightly relink reads a few columns of each table and three event types; the whole
    event log grows with every night and would be read again each time."""

    columns: dict[str, tuple[str, ...]]
    """table -> its columns to read; tables not named are not read"""
    event_types: frozenset[str] | None = None
    """with `events` in `columns`: only events of these types"""

    def narrow(self, tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
        """Whole tables cut down to this scope (for a backend that reads them whole)."""
        out = {}
        for name, cols in self.columns.items():
            t = tables[name]
            if name == "events" and self.event_types is not None:
                t = t.filter(pa.compute.is_in(t["type"], pa.array(sorted(self.event_types), pa.string())))
            out[name] = t.select(list(cols))
        return out


class Database(ABC):
    """A backend's database; see the module docstring."""

    name: str = "abstract"
    bulk_batch: int = 10_000
    """Identifiers per change set for a standalone bulk apply (each transaction has a fixed cost)."""
    apply_workers: int = 1
    """Change sets a standalone bulk apply keeps in flight at once."""
    inline_reads: bool = False
    """Whether a read takes microseconds and never waits for a lock, so that a server may run a
    read-only call on its event loop instead of handing it to a worker thread (the hand-off
    costs more than such a read)."""

    def __init__(self) -> None:
        self.writes = WriteTracker()
        """Counts the writes through this object, so that multi-statement reads can tell whether
        one overlapped them (`identity_graph.writelock`)."""
        self._hooks = threading.local()

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Any]:
        """A write transaction, committed when the block ends without an exception and rolled
        back otherwise. Nested use on one thread joins the outer transaction."""

    @abstractmethod
    def in_transaction(self) -> bool:
        """Whether the calling thread is inside `transaction()` (its reads see one transaction)."""

    def atomically(self, work: Callable[[], T]) -> T:
        """`work()` (store calls of any store on this database) as one `transaction()`. A backend
        whose transactions can fail transiently (a deadlock) runs it again from the start, so
        `work` must only read and write through the stores."""
        return self.run_transaction(work)

    @abstractmethod
    def lock_region(self, names: Sequence[str]) -> None:
        """Takes, inside this thread's `transaction()`, the write locks named `names` (see
        `identity_graph.regionlock`); they are held until the transaction ends. Another process
        (or thread) locking one of them waits until then, so a write that re-reads its region
        after locking it settles from the region as it is, whichever server it runs in."""

    @abstractmethod
    def is_transient(self, error: BaseException) -> bool:
        """Whether a transaction that failed with `error` may simply be run again (a deadlock, a
        lock timeout, a lost connection before the commit)."""

    def retry_window(self, error: BaseException) -> float:
        """How long after its first attempt a transaction that failed with `error` may still be
        run again (0: not at all)."""
        return TRANSACTION_RETRY_S if self.is_transient(error) else 0.0

    def run_transaction(self, work: Callable[[], T]) -> T:
        """`work()` inside one `transaction()`, run again (with a growing, jittered pause) while it
        fails transiently, within `retry_window`. `work` must read everything it writes
        from inside the transaction, so that running it again is safe. Inside an open
        transaction it just joins it (the outer one retries)."""
        if self.joined():
            return work()
        started = time.monotonic()
        for attempt in range(1_000_000):
            self._hooks.pending = []
            try:
                with self.transaction():
                    out = work()
                hooks, self._hooks.pending = self._hooks.pending, None
                for hook in hooks:
                    hook()
                return out
            except Exception as e:
                self._hooks.pending = None
                if time.monotonic() - started >= self.retry_window(e):
                    raise
                log.info("%s: re-running a transaction after %s", self.name, type(e).__name__)
                time.sleep(random.uniform(0, min(0.5, 0.005 * 2 ** min(attempt, 10))))
        raise AssertionError("unreachable")

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Runs `hook` once this thread's `run_transaction` commits (dropped if it rolls back),
        or now outside one: a listener told of events before their commit would read nothing."""
        pending = getattr(self._hooks, "pending", None)
        if pending is None:
            hook()
        else:
            pending.append(hook)

    def joined(self) -> bool:
        """Whether this thread is inside a `transaction()` already."""
        return self.in_transaction()

    @abstractmethod
    def snapshot(self, scope: SnapshotScope | None = None) -> AbstractContextManager[Snapshot]:
        """Every graph table (or what `scope` names) as of one moment (a read transaction where
        the backend has one), without blocking writers. Whole tables come ordered by their key;
        scoped ones in no order."""

    @abstractmethod
    def last_seq(self) -> int:
        """The sequence number of the last event written (0 for none)."""

    @abstractmethod
    def checkpoint(self) -> None:
        """Makes what was deleted leave the files on disk (logs included), as far as the backend
        can: called after an erasure."""

    @abstractmethod
    def graph_store(self) -> GraphStore: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

