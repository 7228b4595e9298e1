"""Step 6, apply: the plan written in batches of whole units, one transaction per batch.

A unit whose identifiers changed since the snapshot is skipped (left to the next run); under a
write lock (inside the server) online calls interleave between batches, never inside one.
"""

from __future__ import annotations

import logging
import os
import signal
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from typing import Any

from batch.steps.progress import progress_bar
from batch.steps.types import ApplyResult, Plan, RelinkOptions, Unit
from identity_graph.model import ChangeSet, Event
from identity_graph.regionlock import RegionLocks
from identity_graph.store.base import GraphStore

__all__ = ["FAIL_ENV", "LOCKED_BATCH", "apply", "apply_workers_for", "batch_size_for"]

log = logging.getLogger(__name__)

FAIL_ENV = "IDENTITY_BATCH_FAIL_AFTER_BATCHES"
LOCKED_BATCH = 2_000
"""Default identifiers per change set under a write lock (inside the server)."""


def batch_size_for(options: RelinkOptions, store: GraphStore, write_lock: Any) -> int:
    """Identifiers per change set: `options.batch_size`, or by default `LOCKED_BATCH` under a
    write lock (inside the server, where online calls wait for the batch being written), else
    the database's standalone size (`Database.bulk_batch`): each transaction has a fixed cost (on
    DuckDB, the assignment UPDATE joins the whole identifiers table), so a standalone run
    writes fewer, larger ones."""
    if options.batch_size:
        return options.batch_size
    if write_lock is not None:
        return LOCKED_BATCH
    return store.database.bulk_batch


def apply_workers_for(options: RelinkOptions, store: GraphStore, write_lock: Any) -> int:
    """Batches in flight at once: `options.apply_workers`, or by default 2 on Neo4j without a
    write lock (the server commits one batch while this process prepares and sends the next),
    else 1."""
    if options.apply_workers:
        return options.apply_workers
    return store.database.apply_workers if write_lock is None else 1


def apply(store: GraphStore, the_plan: Plan, options: RelinkOptions,
          write_lock: Any = None, summary: Event | None = None) -> ApplyResult:
    """Step 6: write the plan in batches of whole units, each batch one transaction.

    Batches hold disjoint units, so with several workers they commit in any order; the run's
    summary event is written after all of them.
    """
    result = ApplyResult()
    fail_after = options.fail_after_batches
    if fail_after is None and os.environ.get(FAIL_ENV):
        fail_after = int(os.environ[FAIL_ENV])
    bar = progress_bar("apply", len(the_plan.units), options.progress, "unit")
    lock = write_lock if write_lock is not None else nullcontext()
    limit = batch_size_for(options, store, write_lock)
    workers = apply_workers_for(options, store, write_lock)

    def batches() -> Iterator[list[Unit]]:
        pending: list[Unit] = []
        size = 0
        for unit in the_plan.units:
            pending.append(unit)
            size += max(len(unit.keys), 1)
            if size >= limit:
                yield pending
                pending, size = [], 0
        if pending:
            yield pending

    def write(pending: list[Unit]) -> ApplyResult:
        with lock:
            return store.database.run_transaction(lambda: write_locked(pending))

    def write_locked(pending: list[Unit]) -> ApplyResult:
        """One batch in one transaction that first locks its customers (as an online write
        does: `identity_graph.regionlock`), so servers on the same database never interleave
        with it, and checks under those locks which units changed since the snapshot."""
        out = ApplyResult(batches=1)
        expected = {k: v for u in pending for k, v in u.expected.items()}
        current = RegionLocks(store.database).cover_customers(store, expected)
        ok = []
        for u in pending:
            if all(k in current and current[k] == v for k, v in u.expected.items()):
                ok.append(u)
            else:
                out.units_skipped += 1
                out.skipped_keys.extend(sorted(u.expected)[:3])
        cs = _combine([u.changes for u in ok])
        cs.links_added = store.revise(cs.links_added)  # a pair unlinked since: a new revision
        out.events += len(store.apply(cs)) if cs else 0
        out.units_applied += len(ok)
        return out

    def done(pending: list[Unit], out: ApplyResult) -> None:
        result.batches += out.batches
        result.units_applied += out.units_applied
        result.units_skipped += out.units_skipped
        result.skipped_keys.extend(out.skipped_keys)
        result.events += out.events
        bar.update(len(pending))
        if fail_after is not None and result.batches >= fail_after:
            log.error("relink: killing itself after %d batches (testing)", result.batches)
            os.kill(os.getpid(), signal.SIGKILL)

    if workers <= 1:
        for pending in batches():
            done(pending, write(pending))
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="relink-apply") as pool:
            in_flight: deque[tuple[list[Unit], Future[ApplyResult]]] = deque()
            for pending in batches():
                if len(in_flight) >= workers:
                    first, fut = in_flight.popleft()
                    done(first, fut.result())
                in_flight.append((pending, pool.submit(write, pending)))
            while in_flight:
                first, fut = in_flight.popleft()
                done(first, fut.result())
    if summary is not None:
        with lock:
            result.events += len(store.apply(ChangeSet(events=[summary])))
    bar.close()
    return result


def _combine(sets: Sequence[ChangeSet]) -> ChangeSet:
    out = ChangeSet()
    for cs in sets:
        out.links_added.extend(cs.links_added)
        out.links_removed.extend(cs.links_removed)
        out.customers_created.extend(cs.customers_created)
        out.assignments.update(cs.assignments)
        out.aliases.update(cs.aliases)
        out.generic.update(cs.generic)
        out.events.extend(cs.events)
    return out
