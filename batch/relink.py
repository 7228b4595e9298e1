"""`identity-batch relink`: the nightly re-link of the whole graph with Splink on DuckDB.

The pipeline is six steps, each a function with its own progress bar in its own module of
`batch.steps` (this module runs them in order, and re-exports their public names); the data
they hand each other is in `batch.steps.types`:

    snapshot → model → predict → cluster → plan → apply

- **snapshot** (`steps.snapshot`, then `steps.records`) copies identifiers, attributes, active
  links, customers and aliases into a private DuckDB database (in memory, or a temp file with
  `work_dir`). On SQLite the copy is read in one read transaction (WAL: beside a running server);
  on Neo4j it is repeated until the event log did not move while it was read. `records` then holds
  one Splink record per identifier.
- **model** (`steps.model`; `steps.labels`, `steps.blocking`) loads a saved model (`--model`) or
  trains one (u by random sampling, m from the graph's verified/equivalent pairs, EM for the rest)
  and saves it as versioned JSON (`models/<version>.json`), the file the online engine's scorer
  loads.
- **predict** (`steps.predict`) scores the pairs of the blocking rules that fit the comparison
  budget with Splink on DuckDB: `probable` at or above the link threshold, `possible` in the
  review band. The link threshold comes from labelled pairs when there are enough
  (`steps.threshold`), else from the configuration.
- **cluster** (`steps.cluster`) applies the customer rules (`identity_graph.rules.decide`) to the
  whole graph: every deterministic link (verified, equivalent, observed, from any source) and this
  run's scored pairs are proposed, strongest first; blocked values never link, a link over a
  per-type limit is refused (and removed when it was stored), a household bridge or junk value is
  marked generic, a probable link between clearly different people is kept only as `possible`.
  People's decisions (`batch.people`) hold: a cannot-linked pair is never linked and no component
  joins its two ends (the weakest link between them is not made); a must-link is a fixed edge, and
  its link is never re-scored away. Components map to stable ids by largest overlap, each id once;
  new ids are random.
- **plan** (`steps.plan`) diffs the target against the snapshot, per *unit*: the new customers
  that share any old customer, so that a merge or split is always written whole.
- **apply** (`steps.apply`) writes units in batches, one `store.apply` (one transaction) per
  batch, under the engine's `write_lock` when run in-process. A unit whose identifiers changed
  since the snapshot is skipped (left to the next run). Old batch links of earlier model versions
  are removed in the same change set as the new links of the same customers.

Re-running after a kill converges: links have deterministic ids, already-applied units diff to
nothing (their ids are in the store now), and the rest plans as before. A run on unchanged data
with the same model writes nothing.

Embedded store while `identity-server` runs: the SQLite file is in WAL mode, so the CLI reads
its snapshot beside the server; its batches wait for the server's write transactions (and the
server's online writes for them). Units the server changed meanwhile are skipped. The relink
can also run inside the server: `run_relink(graph, ...)` takes the server's `IdentityGraph`,
applies through its store under its `write_lock` (online calls interleave between batches,
never inside one); the admin RPC runs it so (`batch.job`, `batch.api`). On Neo4j the CLI and the server
can run side by side.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from batch.people import report as people_report
from batch.report import build_report
from batch.steps.apply import apply, apply_workers_for, batch_size_for
from batch.steps.cluster import cluster
from batch.steps.model import explain_model, explain_text, get_model
from batch.steps.plan import plan
from batch.steps.predict import linker_on, predict
from batch.steps.progress import progress_bar
from batch.steps.records import build_records
from batch.steps.snapshot import snapshot
from batch.steps.threshold import choose_threshold
from batch.steps.types import (
    ACTOR,
    ApplyResult,
    Plan,
    RelinkOptions,
    RelinkResult,
    SnapshotInUse,
    Target,
)
from identity_graph.config import GraphConfig
from identity_graph.model import Event, utcnow
from identity_graph.store.base import GraphStore

if TYPE_CHECKING:
    from batch.engines import RelinkEngine
    from identity_graph.engine import IdentityGraph

__all__ = [
    "ApplyResult",
    "Plan",
    "RelinkOptions",
    "RelinkResult",
    "SnapshotInUse",
    "Target",
    "apply",
    "apply_workers_for",
    "batch_size_for",
    "build_records",
    "choose_threshold",
    "cluster",
    "explain_model",
    "explain_text",
    "get_model",
    "linker_on",
    "plan",
    "predict",
    "relink",
    "run_relink",
    "snapshot",
]


@dataclass
class StepTimes:
    """Seconds per step, for the report."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - t, 3)


def relink(
    store: GraphStore,
    config: GraphConfig | None = None,
    options: RelinkOptions | None = None,
    *,
    write_lock: Any = None,
    on_step: Callable[[str], None] | None = None,
    engine: RelinkEngine | None = None,
) -> RelinkResult:
    """Runs the whole pipeline on `store` and returns the run report (a JSON-able dict).

    Args:
        store: the graph store (either backend).
        config: thresholds, blocked values and limits.
        options: see `RelinkOptions`.
        write_lock: held around each batch write (the engine's `write_lock` in-process).
        on_step: called with each step's name as it starts (for logs or an admin RPC).
        engine: where snapshot, records, model and predict run (`batch.engines`; default
            DuckDB in this process, or `batch.engines.spark.SparkEngine`).
    Returns:
        The report (see `batch.report`), with the target and plan for callers and tests.
    """
    config = config or GraphConfig()
    options = options or RelinkOptions()
    times = StepTimes()
    started = utcnow()
    run_id = "relink-" + started.strftime("%Y%m%dT%H%M%SZ")

    def step(name: str) -> Any:
        if on_step:
            on_step(name)
        return times.step(name)

    if engine is None:
        from batch.engines import DuckDBEngine

        engine = DuckDBEngine()
    steps = progress_bar("relink", 6, options.progress, "step")
    with step("snapshot"):
        snap = engine.snapshot(store, options)
        n_records = engine.build_records(snap)
    steps.update(1)
    try:
        with step("model"):
            model, model_info = engine.get_model(snap, options)
        steps.update(1)
        with step("predict"):
            predict_info = engine.predict(snap, model, config, options)
        steps.update(1)
        threshold, predict_info["threshold"] = choose_threshold(snap, config, options)
        with step("cluster"):
            target = engine.cluster(snap, model, dataclasses.replace(config, link_threshold=threshold),
                                    options)
        steps.update(1)
        with step("plan"):
            the_plan = plan(snap, target, model, options)
        steps.update(1)
        applied = ApplyResult()
        summary_counts = {
            "run_id": run_id, "model_version": model.version, "actor": ACTOR,
            "links_added": the_plan.links_added, "links_removed": the_plan.links_removed,
            "assignments": the_plan.assignments, "merges": len(the_plan.merges),
            "splits": len(the_plan.splits), "customers_created": the_plan.customers_created,
        }
        with step("apply"):
            if not options.dry_run:
                summary = Event("relink", summary_counts, "", utcnow()) if the_plan.units else None
                applied = apply(store, the_plan, options, write_lock, summary)
        engine.completed()
        steps.update(1)
        steps.close()
        with step("report"):
            report = build_report(
                snap=snap, model=model, model_info=model_info, predict_info=predict_info,
                target=target, plan=the_plan, applied=applied, config=config, options=options,
                run_id=run_id, started=started, times=times.seconds, n_records=n_records,
                backend=store.name)
            report["people"] = people_report(snap, target)
            report["engine"] = engine.name
    finally:
        snap.close()
    return RelinkResult(report, target, the_plan, model)


def run_relink(graph: IdentityGraph, options: RelinkOptions | None = None,
               on_step: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The relink inside a running process (the identity-server): the single-writer path.

    Applies through `graph.store` under `graph.write_lock`, so online Resolve calls interleave
    between batches and see each customer either before or after its change, never half of it.
    An admin RPC can call this in a worker thread and return (or stream) the report.

    Returns:
        The run report.
    """
    return relink(graph.store, graph.config, options, write_lock=graph.write_lock,
                  on_step=on_step).report
