"""Conversation stores: one per database backend, in the same database as the graph."""

from __future__ import annotations

from identity_graph.store.base import GraphStore
from session.store.base import ConversationStore

__all__ = ["ConversationStore", "conversation_store_for"]


def conversation_store_for(graph: GraphStore) -> ConversationStore:
    """The conversation store that lives beside `graph`, in its database."""
    return graph.database.conversation_store()
