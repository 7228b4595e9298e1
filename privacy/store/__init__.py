"""Privacy stores: the suppression list and the audit table, one per database backend."""

from __future__ import annotations

from identity_graph.store.base import GraphStore
from identity_graph.store.sqlite import SQLiteDatabase
from privacy.store.base import (
    AuditRecord,
    PrivacyStore,
    pepper_from_env,
    suppression_hash,
)

__all__ = ["AuditRecord", "PrivacyStore", "pepper_from_env", "privacy_store_for", "suppression_hash"]


def privacy_store_for(graph: GraphStore, pepper: str | None = None) -> PrivacyStore:
    """The privacy store that lives beside `graph`, in the same database (so that one
    `graph.database.transaction()` spans both: Forget).

    Args:
        graph: the identity graph's store.
        pepper: the suppression pepper; default `$IDENTITY_SUPPRESSION_PEPPER` (or the dev one).
    Raises:
        TypeError: a database of no known backend.
    """
    database = graph.database
    if isinstance(database, SQLiteDatabase):
        from privacy.store.sqlite import SQLitePrivacyStore

        return SQLitePrivacyStore(database, pepper)
    from identity_graph.store.neo4j_database import Neo4jDatabase  # the driver only when used

    if isinstance(database, Neo4jDatabase):
        from privacy.store.neo4j import Neo4jPrivacyStore

        return Neo4jPrivacyStore(database, pepper)
    raise TypeError(f"no privacy store for {type(database).__name__}")
