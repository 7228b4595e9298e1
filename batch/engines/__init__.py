"""Where the relink's heavy steps run: one small protocol, a DuckDB and a Spark backend.

`batch.relink.relink` drives the steps (`batch.steps`); an engine does the ones that grow with the data
(records, training, prediction, and the customer rules with stable ids, region by region) and
hands the driver a `Snapshot` and a `Target` that the diff and the write-back read the same way
whichever engine ran. The Spark engine lives in
`batch.engines.spark` and imports PySpark (the `spark` extra) only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from batch.steps.types import RelinkOptions, Snapshot, Target
    from identity_graph.config import GraphConfig
    from identity_graph.matching.model import MatchModel
    from identity_graph.store.base import GraphStore

__all__ = ["ENGINES", "DuckDBEngine", "RelinkEngine"]

ENGINES = ("duckdb", "spark")


class RelinkEngine(Protocol):
    """The steps of a relink that an engine runs, in order. Each fills the driver's `Snapshot`."""

    name: str

    def snapshot(self, store: GraphStore, options: RelinkOptions) -> Snapshot:
        """A consistent copy of the graph (identifiers, observations, links, customers, aliases)."""
        ...

    def build_records(self, snap: Snapshot) -> int:
        """Table `records` (`identity_graph.records.records_sql`); returns its row count."""
        ...

    def get_model(self, snap: Snapshot, options: RelinkOptions) -> tuple[MatchModel, dict[str, Any]]:
        """The given model or one trained here (saved canonical, in DuckDB's dialect)."""
        ...

    def predict(self, snap: Snapshot, model: MatchModel, config: GraphConfig,
                options: RelinkOptions) -> dict[str, Any]:
        """Table `pairs` (a, b, probability, match_weight, comparisons) at or above the review
        threshold; returns the step's report."""
        ...

    def cluster(self, snap: Snapshot, model: MatchModel, config: GraphConfig,
                options: RelinkOptions) -> Target:
        """The customer rules and stable ids over the snapshot (`batch.regions.decide_region`
        on regions that cover it): the target the driver diffs and writes."""
        ...

    def completed(self) -> None:
        """The run wrote everything: forget any checkpoint."""
        ...

    def close(self) -> None:
        ...


class DuckDBEngine:
    """Every step in the relink's private DuckDB database, in this process (the default)."""

    name = "duckdb"

    def snapshot(self, store: GraphStore, options: RelinkOptions) -> Snapshot:
        from batch.steps.snapshot import snapshot

        return snapshot(store, options)

    def build_records(self, snap: Snapshot) -> int:
        from batch.steps.records import build_records

        return build_records(snap)

    def get_model(self, snap: Snapshot, options: RelinkOptions) -> tuple[MatchModel, dict[str, Any]]:
        from batch.steps.model import get_model

        return get_model(snap, options)

    def predict(self, snap: Snapshot, model: MatchModel, config: GraphConfig,
                options: RelinkOptions) -> dict[str, Any]:
        from batch.steps.predict import predict

        return predict(snap, model, config, options)

    def cluster(self, snap: Snapshot, model: MatchModel, config: GraphConfig,
                options: RelinkOptions) -> Target:
        from batch.steps.cluster import cluster

        return cluster(snap, model, config, options)

    def completed(self) -> None:
        return None

    def close(self) -> None:
        return None
