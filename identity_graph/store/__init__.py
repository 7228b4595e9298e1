"""Graph stores: one `GraphStore` interface, an embedded DuckDB backend and a Neo4j backend."""

from __future__ import annotations

import os

from identity_graph.errors import InvalidArgument
from identity_graph.store.base import GraphStore

__all__ = ["GraphStore", "choose_store", "open_store"]


def choose_store(db: str | None, neo4j_uri: str | None, default_db: str) -> tuple[str | None, str | None]:
    """(DuckDB path, Neo4j URI) from a command's `--db` and `--neo4j-uri`, one of them None.

    The flags exclude each other. `NEO4J_URI` in the environment counts only when neither is
    given, so `--db FILE` always means that file, whatever the shell exports."""
    if db and neo4j_uri:
        raise InvalidArgument("--db", "give --db or --neo4j-uri, not both")
    if db:
        return db, None
    if neo4j_uri:
        return None, neo4j_uri
    env_uri = os.environ.get("NEO4J_URI")
    return (None, env_uri) if env_uri else (default_db, None)


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
