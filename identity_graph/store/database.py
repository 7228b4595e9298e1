"""`Database`: one object per backend that owns the connection (or driver), the write tracker and
the transaction, shared by the graph, conversation and privacy stores that live in it.

The stores never reach into each other: each takes the database and uses only what is public
here. A transaction opened with `transaction()` is joined by every store call made from the same
thread until it ends, so a multi-store operation (Forget) commits or rolls back as one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from identity_graph.writelock import WriteTracker

if TYPE_CHECKING:
    from identity_graph.privacy_store.base import PrivacyStore
    from identity_graph.store.base import GraphStore
    from session.store.base import ConversationStore


@dataclass(frozen=True)
class Snapshot:
    """The graph's tables (schemas of `tables.TABLES`) as of one moment, and the last event seq
    they include."""

    tables: dict[str, pa.Table]
    last_seq: int


class Database(ABC):
    """A backend's database; see the module docstring."""

    name: str = "abstract"
    bulk_batch: int = 10_000
    """Identifiers per change set for a standalone bulk apply (each transaction has a fixed cost)."""
    apply_workers: int = 1
    """Change sets a standalone bulk apply keeps in flight at once."""

    def __init__(self) -> None:
        self.writes = WriteTracker()
        """Counts the writes through this object, so that multi-statement reads can tell whether
        one overlapped them (`identity_graph.writelock`)."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Any]:
        """A write transaction, committed when the block ends without an exception and rolled
        back otherwise. Nested use on one thread joins the outer transaction."""

    @abstractmethod
    def snapshot(self) -> AbstractContextManager[Snapshot]:
        """Every graph table as of one moment (a read transaction where the backend has one),
        without blocking writers."""

    @abstractmethod
    def last_seq(self) -> int:
        """The sequence number of the last event written (0 for none)."""

    @abstractmethod
    def checkpoint(self) -> None:
        """Makes what was deleted leave the files on disk (logs included), as far as the backend
        can: called after an erasure."""

    @abstractmethod
    def graph_store(self) -> GraphStore: ...

    @abstractmethod
    def conversation_store(self) -> ConversationStore: ...

    @abstractmethod
    def privacy_store(self, pepper: str | None = None) -> PrivacyStore: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

