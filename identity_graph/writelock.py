"""Consistent multi-statement reads beside writes: `WriteTracker`, `WriteLock`, `read_consistently`.

A customer is read in several statements (its identifier, members, links, attributes). Neither
backend gives those statements one snapshot: SQLite runs each read as its own read transaction
(on the reading thread's connection), and Neo4j reads are read committed, down to single
properties. So a read that overlapped a merge, a split or a relink batch could return half of each
state (measured: every run of `test_get_customer_never_sees_half_a_split_or_merge` saw it on both
backends, then DuckDB and Neo4j).

Each database counts its writes (`Database.writes`, shared by its stores; a seqlock): a read
during which no write started or ended is consistent; otherwise it runs again, and after a few
tries under the engine's `WriteLock`, which every engine write, relink batch and erasure of this
process holds. Writers never wait for readers. Writes by other processes (other replicas, a
relink CLI) are outside this guarantee: they are serialised with this process's writes by region
locks in the database (`identity_graph.regionlock`), but a multi-statement read here can overlap
one of them (README, "Several servers on one database").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TypeVar

T = TypeVar("T")

OPTIMISTIC_TRIES = 3
"""Reads tried without a lock before one runs under the `WriteLock`."""

BUSY_WAIT_S = 0.001


class WriteTracker:
    """Counts a store's writes: the generation grows when a write starts and when it ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = 0
        self._in_flight = 0
        self.retries = 0  # reads that had to run again (for tests and metrics)

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._lock:
            self._in_flight += 1
            self._generation += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
                self._generation += 1

    def quiet(self) -> int | None:
        """The generation when no write is under way, else None."""
        with self._lock:
            return None if self._in_flight else self._generation


class WriteLock:
    """A re-entrant lock that knows its owner, so a writer's own reads need no check."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._owner: int | None = None
        self._depth = 0

    def acquire(self) -> None:
        self._lock.acquire()
        self._owner = threading.get_ident()
        self._depth += 1

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._owner = None
        self._lock.release()

    def __enter__(self) -> WriteLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def held_by_me(self) -> bool:
        return self._owner == threading.get_ident()


def read_consistently(tracker: WriteTracker, lock: WriteLock, fn: Callable[[], T]) -> T:
    """`fn()`, run so that no write through `tracker`'s store started or ended while it ran."""
    if lock.held_by_me():  # a writer reading its own region: no other engine write runs meanwhile
        return fn()
    for _ in range(OPTIMISTIC_TRIES):
        before = tracker.quiet()
        if before is None:  # a write is under way: wait a moment rather than read half of it
            time.sleep(BUSY_WAIT_S)
            continue
        out = fn()
        if tracker.quiet() == before:
            return out
        tracker.retries += 1
    with lock:
        return fn()


def try_read(tracker: WriteTracker, fn: Callable[[], T]) -> T | None:
    """`fn()` when no write through `tracker`'s store was under way, started or ended while it
    ran; else None, at once (for a caller that must not wait: an event loop). `fn` must not
    return None."""
    before = tracker.quiet()
    if before is None:
        return None
    out = fn()
    return out if tracker.quiet() == before else None
