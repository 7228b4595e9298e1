"""Privacy stores: the suppression list and the audit table, one per database backend."""

from __future__ import annotations

from functools import singledispatch

from identity_graph.store.base import GraphStore
from identity_graph.store.database import Database
from identity_graph.store.neo4j_database import Neo4jDatabase
from identity_graph.store.sqlite import SQLiteDatabase
from privacy.store.base import (
    AuditRecord,
    PrivacyStore,
    pepper_from_env,
    suppression_hash,
)
from privacy.store.neo4j import Neo4jPrivacyStore
from privacy.store.sqlite import SQLitePrivacyStore

__all__ = ["AuditRecord", "PrivacyStore", "pepper_from_env", "privacy_store_for", "suppression_hash"]


@singledispatch
def _store_on(database: Database, pepper: str | None) -> PrivacyStore:
    """One privacy store class per database class: the backend was chosen when the database was
    opened (`open_database`), and this table follows it instead of testing for it."""
    raise TypeError(f"no privacy store for {type(database).__name__}")


_store_on.register(SQLiteDatabase, SQLitePrivacyStore)
_store_on.register(Neo4jDatabase, Neo4jPrivacyStore)


def privacy_store_for(graph: GraphStore, pepper: str | None = None) -> PrivacyStore:
    """The privacy store that lives beside `graph`, in the same database (so that one
    `graph.database.transaction()` spans both: Forget).

    Args:
        graph: the identity graph's store.
        pepper: the suppression pepper; default `$IDENTITY_SUPPRESSION_PEPPER` (or the dev one).
    Raises:
        TypeError: a database of no known backend.
    """
    return _store_on(graph.database, pepper)
