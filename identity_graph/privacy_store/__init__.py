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
    """
    return graph.database.privacy_store(pepper)
