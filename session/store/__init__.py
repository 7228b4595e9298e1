"""Conversation stores: one per database backend, in the same database as the graph."""

from __future__ import annotations

from identity_graph.store.base import GraphStore
from identity_graph.store.sqlite import SQLiteDatabase
from session.store.base import ConversationStore

__all__ = ["ConversationStore", "conversation_store_for"]


def conversation_store_for(graph: GraphStore) -> ConversationStore:
    """The conversation store that lives beside `graph`, in its database (so that one
    `graph.database.transaction()` spans both).

    Raises:
        TypeError: a database of no known backend.
    """
    database = graph.database
    if isinstance(database, SQLiteDatabase):
        from session.store.sqlite import SQLiteConversationStore

        return SQLiteConversationStore(database)
    from identity_graph.store.neo4j_database import Neo4jDatabase  # the driver only when used

    if isinstance(database, Neo4jDatabase):
        from session.store.neo4j import Neo4jConversationStore

        return Neo4jConversationStore(database)
    raise TypeError(f"no conversation store for {type(database).__name__}")
