"""Conversation stores: one per database backend, in the same database as the graph."""

from __future__ import annotations

from functools import singledispatch

from identity_graph.store.base import GraphStore
from identity_graph.store.database import Database
from identity_graph.store.neo4j_database import Neo4jDatabase
from identity_graph.store.sqlite import SQLiteDatabase
from session.store.base import ConversationStore
from session.store.neo4j import Neo4jConversationStore
from session.store.sqlite import SQLiteConversationStore

__all__ = ["ConversationStore", "conversation_store_for"]


@singledispatch
def _store_on(database: Database) -> ConversationStore:
    """One conversation store class per database class: the backend was chosen when the database
    was opened (`open_database`), and this table follows it instead of testing for it."""
    raise TypeError(f"no conversation store for {type(database).__name__}")


_store_on.register(SQLiteDatabase, SQLiteConversationStore)
_store_on.register(Neo4jDatabase, Neo4jConversationStore)


def conversation_store_for(graph: GraphStore) -> ConversationStore:
    """The conversation store that lives beside `graph`, in its database (so that one
    `graph.database.transaction()` spans both).

    Raises:
        TypeError: a database of no known backend.
    """
    return _store_on(graph.database)
