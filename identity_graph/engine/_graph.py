"""`IdentityGraph`: one object whose namespaces hold every domain operation over one `GraphStore`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from identity_graph.components import new_customer_id
from identity_graph.config import GraphConfig
from identity_graph.identifiers import Identifier, IdentifierTypes
from identity_graph.model import IdentifierNode, utcnow
from identity_graph.store.base import GraphStore
from identity_graph.writelock import WriteLock

from ._core import Core
from ._types import Scorer
from .customers import Customers
from .events import Events
from .links import Links
from .resolve import Resolve
from .review import Review


class IdentityGraph:
    """The identity service's domain logic. gRPC servicers call this and nothing below it.

    Like Splink's `Linker` (`linker.training`, `linker.inference`, ...), every operation is found
    by name in a namespace:

    - `graph.resolve(request)`, `graph.resolve.without_waiting(...)`, `.candidate_records(...)`;
    - `graph.links`: `add`, `remove`, `preview_remove`, `set_generic`, `split`, `preview_split`;
    - `graph.review`: `queue`, `accept`, `reject`, `constraints`, `withdraw_constraint`;
    - `graph.customers`: `id_of`, `members`, `get`, `disclosed`, `assurance`, `explain`;
    - `graph.events`: `read`, `subscribe`.

    What stays on the graph itself is shared plumbing: the store, configuration, scorer,
    identifier parsing and the write lock that batch jobs and erasure coordinate on.
    """

    def __init__(
        self,
        store: GraphStore,
        config: GraphConfig | None = None,
        types: IdentifierTypes | None = None,
        scorer: Scorer | None = None,
        clock: Callable[[], datetime] = utcnow,
        id_factory: Callable[[], str] = new_customer_id,
    ) -> None:
        core = Core(store, config, types, scorer, clock, id_factory)
        self._core = core
        self.resolve = Resolve(self, core)
        self.links = Links(self, core)
        self.review = Review(self, core)
        self.customers = Customers(self, core)
        self.events = Events(self, core)

    # ---- shared plumbing --------------------------------------------------------------------

    @property
    def store(self) -> GraphStore:
        """The store every namespace reads and writes."""
        return self._core.store

    @property
    def config(self) -> GraphConfig:
        return self._core.config

    @property
    def types(self) -> IdentifierTypes:
        """The identifier types (built-in and custom) and their normalisers."""
        return self._core.types

    @property
    def clock(self) -> Callable[[], datetime]:
        return self._core.clock

    @property
    def scorer(self) -> Scorer | None:
        """The online scorer; setting one makes the store keep (and, for a new model, rebuild)
        its blocking-key index (`identity_graph.blocking`)."""
        return self._core.scorer

    @scorer.setter
    def scorer(self, scorer: Scorer | None) -> None:
        self._core.scorer = scorer

    @property
    def suppressed(self) -> Callable[[str], bool] | None:
        """Privacy: whether a normalised key was erased, so it is never recorded again; the
        server sets this to `Privacy.is_suppressed`."""
        return self._core.suppressed

    @suppressed.setter
    def suppressed(self, test: Callable[[str], bool] | None) -> None:
        self._core.suppressed = test

    @property
    def write_lock(self) -> WriteLock:
        """Held by every write of this process; a batch apply takes it per batch so online calls
        interleave between batches, never inside one. Multi-statement reads go through its
        `read`, so they see a customer before or after a write, never half of it."""
        return self._core.write_lock

    def lock_keys(self, keys: Iterable[str]) -> dict[str, IdentifierNode]:
        """For a caller that writes the graph in a `database.transaction()` of its own (Forget),
        under `write_lock`: locks `keys`' customers as an engine write does, so no server writes
        them until that transaction ends, and returns their nodes as read under the locks."""
        return self._core.lock_keys(keys)

    def identifier(self, type_: str, value: str, field_name: str = "identifier") -> Identifier:
        """Normalises `(type_, value)`; an error names the caller's `field_name`.

        Raises:
            InvalidArgument: an unknown type or a malformed value.
        """
        return self._core.identifier(type_, value, field_name)

    def channel(self, value: str, field_name: str = "channel") -> str:
        """`value` when it is one of the configured channels.

        Raises:
            InvalidArgument: any other value, naming `field_name`.
        """
        return self._core.channel(value, field_name)

    def key(self, raw_key: str, field_name: str = "identifier") -> str:
        """Normalises a `type:value` key given by a caller.

        Raises:
            InvalidArgument: not `type:value`, or a malformed value.
        """
        return self._core.key(raw_key, field_name)
