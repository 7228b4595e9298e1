"""Conversation stores: one per graph backend, sharing its database."""

from __future__ import annotations

from identity_graph.store.base import GraphStore
from session.store.base import ConversationStore

__all__ = ["ConversationStore", "conversation_store_for"]


def conversation_store_for(graph: GraphStore) -> ConversationStore:
    """The conversation store that lives beside `graph`, in the same database."""
    if graph.name == "duckdb":
        from session.store.duckdb import DuckDBConversationStore

        return DuckDBConversationStore(graph)  # type: ignore[arg-type]
    if graph.name == "neo4j":
        from session.store.neo4j import Neo4jConversationStore

        return Neo4jConversationStore(graph)  # type: ignore[arg-type]
    raise ValueError(f"no conversation store for a {graph.name} graph store")
