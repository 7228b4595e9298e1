"""Graph stores: one `GraphStore` interface over a `Database`, embedded SQLite or Neo4j.

`open_database` is the one place a backend is chosen; the graph store is then asked of the
database it returns, and the layers above build their stores on the same database
(`session.store.conversation_store_for`, `privacy.store.privacy_store_for`)."""

from __future__ import annotations

import os

from identity_graph.errors import InvalidArgument, StoreError
from identity_graph.store.base import GraphStore
from identity_graph.store.database import Database, Snapshot

__all__ = ["Database", "GraphStore", "Snapshot", "choose_store", "open_database", "open_store"]


def choose_store(db: str | None, neo4j_uri: str | None, default_db: str) -> tuple[str | None, str | None]:
    """(SQLite path, Neo4j URI) from a command's `--db` and `--neo4j-uri`, one of them None.

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


def open_database(
    path: str | None = None,
    *,
    neo4j_uri: str | None = None,
    neo4j_user: str = "neo4j",
    neo4j_password: str = "",
    neo4j_database: str = "neo4j",
) -> Database:
    """Neo4j when a URI is given, else the embedded SQLite file at `path` (default in memory).

    Raises:
        StoreError: the file is not a SQLite database or cannot be opened.
    """
    if neo4j_uri:
        from identity_graph.store.neo4j_database import Neo4jDatabase

        return Neo4jDatabase(neo4j_uri, neo4j_user, neo4j_password, database=neo4j_database)
    import sqlite3

    from identity_graph.store.sqlite import SQLiteDatabase

    try:
        return SQLiteDatabase(path or ":memory:")
    except sqlite3.Error as e:  # not a SQLite file (a DuckDB file of an older version?), no access
        raise StoreError(f"cannot open {path} as a SQLite database: {e}") from e


def open_store(
    path: str | None = None,
    *,
    neo4j_uri: str | None = None,
    neo4j_user: str = "neo4j",
    neo4j_password: str = "",
    neo4j_database: str = "neo4j",
) -> GraphStore:
    """The graph store of `open_database(...)`; closing it closes the database.

    Raises:
        StoreError: the database cannot be opened.
    """
    database = open_database(path, neo4j_uri=neo4j_uri, neo4j_user=neo4j_user,
                             neo4j_password=neo4j_password, neo4j_database=neo4j_database)
    try:
        return database.graph_store()
    except BaseException:
        database.close()
        raise
