"""The data the relink's steps hand each other: options, the snapshot, the target, the plan, results.

Imports no step module, so every step, the report and the engines can import it.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from identity_graph.guardrails import Violation
from identity_graph.matching.model import MatchModel
from identity_graph.model import ChangeSet, Link

__all__ = ["ACTOR", "SOURCE", "ApplyResult", "Plan", "RelinkOptions", "RelinkResult", "Snapshot",
           "SnapshotInUse", "Target", "Unit"]

ACTOR = "identity-batch"
SOURCE = "batch"


class SnapshotInUse(RuntimeError):
    """The embedded store is held by another process (normally the running identity-server)."""


@dataclass
class RelinkOptions:
    """What one relink run does. Defaults suit a nightly run."""

    model_path: str | None = None
    """Load this model instead of training one."""
    settings_path: str | None = None
    """JSON merged over the default Splink settings (training only)."""
    models_dir: str | None = "models"
    """Where a trained model is saved as `<version>.json`; None: not saved."""
    seed: int = 42
    max_training_records: int = 300_000
    max_label_pairs: int = 50_000
    min_label_pairs_for_m: int = 50
    """Fewer verified/equivalent pairs than this teach m nothing reliable: EM estimates it."""
    dry_run: bool = False
    batch_size: int | None = None
    """Identifiers per change set (whole units, so a batch may be larger); None: see
    `batch_size_for` (2,000 inside the server, larger standalone)."""
    apply_workers: int | None = None
    """Batches written at once; None: see `apply_workers_for` (2 on Neo4j standalone, else 1)."""
    fail_after_batches: int | None = None
    """Testing: kill this process (SIGKILL) after this many applied batches."""
    labels_path: str | None = None
    """Ground truth (parquet: key, cluster[, household]) for the quality section."""
    work_dir: str | None = None
    """A directory for the snapshot database; default in memory."""
    progress: bool = True
    samples: int = 10
    giant_cluster: int = 200
    """Warn about customers with more identifiers than this."""
    threshold_from_labels: bool = True
    """Choose the link threshold from labelled pairs when there are enough (`choose_threshold`);
    False: always the configured one."""
    precision_floor: float = 0.99
    """With labelled pairs, the link threshold is the one of best F1 at this precision or more."""
    min_label_pairs: int = 20
    """Fewer labelled true pairs than this: the configured link threshold is kept."""
    min_threshold_f1: float = 0.2
    """A threshold from labelled pairs whose F1 is below this is not used (the labels and the
    model disagree; it would link almost nothing): the configured one is kept, and said why."""
    comparisons_per_record: float = 30.0
    """Comparison budget of prediction: blocking rules are kept, most specific first, while the
    pairs they make stay within this many per record (DESIGN "cost is bounded")."""
    charts: bool = True


@dataclass
class Snapshot:
    con: duckdb.DuckDBPyConnection
    last_seq: int
    taken_at: datetime
    backend: str
    path: str | None = None

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        return self.con.execute(sql, params).fetchall()[0][0]

    def run(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """A statement run to its end (DuckDB 2 keeps an unread result pending otherwise)."""
        self.con.execute(sql, params)
        self.con.complete()

    def close(self) -> None:
        self.con.close()
        if self.path:
            for p in (self.path, self.path + ".wal"):
                if os.path.exists(p):
                    os.remove(p)


@dataclass
class Target:
    """The state the relink wants, derived only from the snapshot and the model."""

    keys: list[str]
    previous: list[str | None]
    component: list[int]
    """node -> component number (components numbered by their smallest key)."""
    ids: dict[int, str]
    """component -> customer id"""
    created: set[str]
    merges: dict[str, list[str]]
    """survivor -> retired ids (each retired id becomes an alias of the survivor)"""
    splits: dict[str, list[str]]
    """original id -> ids of the other parts"""
    links: dict[str, Link]
    """every batch link the target holds, by id"""
    generic_new: list[str]
    violations: list[Violation]
    sizes: Counter[int]
    removed: dict[str, str] = field(default_factory=dict)
    """link id -> reason: stored links the target drops (refused by the rules, or a probable or
    possible link of another source, re-scored here as a batch link)"""


@dataclass
class Unit:
    """New customers that share old ones: written together, in one change set."""

    comps: list[int]
    keys: list[int]
    changes: ChangeSet
    expected: dict[str, str | None]
    """key -> customer id the snapshot saw; the unit is skipped if the store differs."""


@dataclass
class Plan:
    units: list[Unit]
    links_added: int = 0
    links_removed: int = 0
    assignments: int = 0
    customers_created: int = 0
    merges: list[dict[str, Any]] = field(default_factory=list)
    splits: list[dict[str, Any]] = field(default_factory=list)
    generic: int = 0
    violations_logged: int = 0
    """violation events this run writes (refusals not in the event log yet)"""


@dataclass
class ApplyResult:
    batches: int = 0
    units_applied: int = 0
    units_skipped: int = 0
    skipped_keys: list[str] = field(default_factory=list)
    events: int = 0


@dataclass
class RelinkResult:
    report: dict[str, Any]
    target: Target | None = None
    plan: Plan | None = None
    model: MatchModel | None = None
    """the model the run applied (or, dry, would apply): `--save-model` saves it as is"""
