"""Graph stores: one `GraphStore` interface, an embedded DuckDB backend and a Neo4j backend."""

from __future__ import annotations

from identity_graph.store.base import GraphStore

__all__ = ["GraphStore", "open_store"]


def open_store(
    path: str | None = None,
    *,
    neo4j_uri: str | None = None,
    neo4j_user: str = "neo4j",
    neo4j_password: str = "",
    neo4j_database: str = "neo4j",
) -> GraphStore:
    """Opens Neo4j when a URI is given, else the embedded DuckDB file at `path` (default in memory)."""
    if neo4j_uri:
        from identity_graph.store.neo4j import Neo4jStore

        return Neo4jStore(neo4j_uri, neo4j_user, neo4j_password, database=neo4j_database)
    from identity_graph.store.duckdb import DuckDBStore

    return DuckDBStore(path or ":memory:")
