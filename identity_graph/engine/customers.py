"""`graph.customers`: who a customer is, what a caller may see of it, and why two identifiers meet."""

from __future__ import annotations

from collections.abc import Iterable

from identity_graph.errors import InvalidArgument, NotFound
from identity_graph.model import LinkKind
from identity_graph.paths import bottleneck

from ._core import Namespace
from ._types import CustomerView, Explanation


class Customers(Namespace):
    """Reads of customers: ids, members, views, assurance and explanations. They take no lock."""

    def id_of(self, ref: str) -> str:
        """A customer id from a customer id, an alias of one, or an identifier key.

        Raises:
            NotFound: nothing matches.
        """
        if not ref:
            raise InvalidArgument("ref", "must not be empty")
        if ref.startswith("cus_"):
            cid = self._core.store.canonical_customer_id(ref)
            if cid is None:
                raise NotFound(f"unknown customer {ref}")
            return cid
        node = self._core.store.get_identifier(self._core.key(ref, "ref"))
        if node is None or node.customer_id is None:
            raise NotFound(f"unknown identifier {ref}")
        return node.customer_id

    def members(self, ref: str) -> tuple[str, list[str]]:
        """(customer id, its identifier keys) for a customer id, alias or identifier, read as of
        one moment (not across a merge or split).

        Raises:
            NotFound: nothing matches.
        """
        def read() -> tuple[str, list[str]]:
            cid = self.id_of(ref)
            return cid, self._core.store.members(cid)

        return self._core.read(read)

    def get(self, ref: str, viewer: str | None = None) -> CustomerView:
        """The customer of `ref` (a customer id, alias or identifier key).

        With `viewer` (the identifier a caller holds), only what it may see: identifiers it
        reaches at the disclosure level, their attributes and the links between them.
        """
        return self._core.read(lambda: self._get(ref, viewer))

    def disclosed(self, kind: LinkKind | None) -> bool:
        """Whether an assurance allows full disclosure (`GraphConfig.disclosure_level`)."""
        return kind is not None and kind >= self._core.config.disclosure_level

    def _get(self, ref: str, viewer: str | None = None) -> CustomerView:
        cid = self.id_of(ref)
        members = self._core.store.members(cid)
        customer = self._core.store.customers([cid]).get(cid)
        if customer is None:
            raise NotFound(f"unknown customer {ref}")
        shared = False
        if viewer is not None:
            node = self._core.store.get_identifier(viewer)
            reach = {} if node is None else self._core.assurance(node, members)
            members = [k for k in members if self.disclosed(reach.get(k))]
            # A generic viewer (a family phone) reaches only itself, and what was observed with
            # it belongs to several people: none of it is shown to whoever holds it.
            shared = bool(node and node.generic)
        links = [lk for lk in self._core.store.links(members)
                 if viewer is None or {lk.a, lk.b} <= set(members)]
        return CustomerView(
            customer_id=cid,
            created_at=customer.created_at,
            aliases=self._core.store.aliases_of(cid),
            identifiers=sorted(self._core.store.get_identifiers(members).values(), key=lambda n: n.key),
            observations=[] if shared else self._core.store.observations(members),
            links=sorted({lk.id: lk for lk in links}.values(), key=lambda lk: (lk.a, lk.b, -lk.kind)),
        )

    def assurance(self, anchor: str, keys: Iterable[str] | None = None) -> dict[str, LinkKind | None]:
        """How strongly `anchor` reaches each identifier of its customer (or each of `keys`)."""
        wanted = None if keys is None else list(keys)

        def read() -> dict[str, LinkKind | None]:
            node = self._core.store.get_identifier(anchor)
            return {} if node is None else self._core.assurance(node, wanted)

        return self._core.read(read)

    def explain(self, a: str, b: str) -> Explanation:
        """The strongest (bottleneck) path between two identifiers, and whether they share a
        customer.

        Raises:
            InvalidArgument: a malformed key, or a == b. NotFound: an unknown identifier.
        """
        a, b = self._core.key(a, "a"), self._core.key(b, "b")
        if a == b:
            raise InvalidArgument("b", "must be another identifier than a")
        return self._core.read(lambda: self._explain(a, b))

    def _explain(self, a: str, b: str) -> Explanation:
        nodes = self._core.store.get_identifiers([a, b])
        for k in (a, b):
            if k not in nodes:
                raise NotFound(f"unknown identifier {k}")
        path = self._core.store.bottleneck_path(a, b)
        same = nodes[a].customer_id is not None and nodes[a].customer_id == nodes[b].customer_id
        return Explanation(a, b, path or [], bottleneck(path, a) if path is not None else None, same)
