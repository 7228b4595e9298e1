"""`graph.events`: the durable, ordered event log that every write appends to, for readers and
streams."""

from __future__ import annotations

from collections.abc import Callable

from identity_graph.model import Event

from ._core import Namespace


class Events(Namespace):
    """The event feed: read it from a sequence number, or be told when this process appends."""

    def read(self, from_seq: int = 0, limit: int = 1000) -> list[Event]:
        """Events with `seq > from_seq`, in order, at most `limit` (a page of the log).

        Raises:
            InvalidArgument: `limit` outside 1..100000.
        """
        return self._core.store.events(from_seq, limit)

    def subscribe(self, listener: Callable[[int], None]) -> Callable[[], None]:
        """Calls `listener(last_seq)` after each write of this process that appended events, so a
        stream wakes without polling; writes of other processes are seen only by `read`.

        Returns:
            A function that removes the listener.
        """
        return self._core.store.on_events(listener)
