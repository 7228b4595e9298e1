"""Privacy stores: suppression list, audit table and erasure steps, one per graph backend."""

from __future__ import annotations

from identity_graph.privacy_store.base import (
    AuditRecord,
    PrivacyStore,
    pepper_from_env,
    suppression_hash,
)
from identity_graph.store.base import GraphStore

__all__ = ["AuditRecord", "PrivacyStore", "pepper_from_env", "privacy_store_for", "suppression_hash"]


def privacy_store_for(graph: GraphStore, pepper: str | None = None) -> PrivacyStore:
    """The privacy store that lives beside `graph`, in the same database.

    Args:
        graph: the identity graph's store.
        pepper: the suppression pepper; default `$IDENTITY_SUPPRESSION_PEPPER` (or the dev one).
    Raises:
        ValueError: no privacy store for this kind of graph store.
    """
    if graph.name == "duckdb":
        from identity_graph.privacy_store.duckdb import DuckDBPrivacyStore

        return DuckDBPrivacyStore(graph, pepper)  # type: ignore[arg-type]
    if graph.name == "neo4j":
        from identity_graph.privacy_store.neo4j import Neo4jPrivacyStore

        return Neo4jPrivacyStore(graph, pepper)  # type: ignore[arg-type]
    raise ValueError(f"no privacy store for a {graph.name} graph store")
