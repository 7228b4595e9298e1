"""The machinery `IdentityGraph`'s namespaces share: state, locks, the write path, settling.

Every write follows one path: build the pending links, `Core.settle` the affected region
(guardrails, components, stable ids, events) in memory, then `store.apply` the whole change set in
one transaction. Each write runs in one database transaction that first locks its region in the
database (`identity_graph.regionlock`) and reads it under those locks, so concurrent calls through
any number of servers on one database end in the same components as a serial run; within one
process, writers also queue on one lock first (an optimisation). Reads take no lock.

Internal to `identity_graph.engine`: its names are public so the namespace modules can share them,
not so that anything outside the package calls them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from identity_graph import decisions
from identity_graph.blocking import BlockingIndex
from identity_graph.components import IdAssignment
from identity_graph.config import GraphConfig
from identity_graph.errors import FailedPrecondition, InvalidArgument
from identity_graph.guardrails import Violation
from identity_graph.identifiers import Identifier, IdentifierTypes
from identity_graph.limits import check_text
from identity_graph.model import (
    ChangeSet,
    Constraint,
    ConstraintKind,
    Customer,
    Event,
    IdentifierNode,
    Link,
    LinkKind,
)
from identity_graph.paths import bottleneck, widest_paths
from identity_graph.region_data import RegionObservations
from identity_graph.regionlock import RegionLocks, names_of
from identity_graph.rules import Region, Rules, decide
from identity_graph.store.base import MAX_TRAVERSAL, GraphStore
from identity_graph.writelock import WriteLock, read_consistently

from ._types import Scorer, SplitPart

if TYPE_CHECKING:
    from ._graph import IdentityGraph

T = TypeVar("T")


@dataclass
class LoadedRegion:
    """The identifiers an operation can change, with their links, in memory."""

    nodes: dict[str, IdentifierNode]
    links: dict[str, Link]
    generic: dict[str, bool]
    new_keys: set[str]


class Core:
    """One graph's store, configuration, scorer and write path, shared by its namespaces."""

    def __init__(
        self,
        store: GraphStore,
        config: GraphConfig | None,
        types: IdentifierTypes | None,
        scorer: Scorer | None,
        clock: Callable[[], datetime],
        id_factory: Callable[[], str],
    ) -> None:
        self.store = store
        self.config = config or GraphConfig()
        self.types = types or IdentifierTypes(self.config.default_region)
        self.clock = clock
        self.new_id = id_factory
        self._write_lock = WriteLock()
        self._tx = threading.local()  # this thread's write: its `RegionLocks`
        self.scorer = scorer
        # Privacy: erased identifiers (a normalised key -> True) are never recorded again; the
        # server sets this to `Privacy.is_suppressed`.
        self.suppressed: Callable[[str], bool] | None = None

    @property
    def scorer(self) -> Scorer | None:
        """The online scorer; setting one makes the store keep (and, for a new model, rebuild)
        its blocking-key index (`identity_graph.blocking`)."""
        return self._scorer

    @scorer.setter
    def scorer(self, scorer: Scorer | None) -> None:
        with self._write_lock:
            self._scorer = scorer
            self.store.use_blocking(None if scorer is None else BlockingIndex(scorer))

    def read(self, fn: Callable[[], T]) -> T:
        """`fn()` (several store reads) as of one moment between this process's writes; inside a
        caller's transaction (`Database.atomically`) its reads are that transaction's."""
        if self.store.database.in_transaction():
            return fn()
        return read_consistently(self.store.writes, self._write_lock, fn)

    def write(self, work: Callable[[], T]) -> T:
        """`work()` as one write: behind this process's lock, in one database transaction that
        is run again on a transient error (a deadlock between two servers' writes), so `work`
        reads what it settles inside it, after `lock` has locked it."""
        database = self.store.database

        def attempt() -> T:
            outer = getattr(self._tx, "locks", None)
            self._tx.locks = outer or RegionLocks(database)
            try:
                return work()
            finally:
                self._tx.locks = outer

        with self._write_lock:
            return database.run_transaction(attempt)

    def lock(self, keys: Iterable[str]) -> dict[str, IdentifierNode]:
        """Inside `write`: locks the customers of `keys` and returns their nodes as read under
        the locks. Elsewhere (a preview) just reads them."""
        locks: RegionLocks | None = getattr(self._tx, "locks", None)
        if locks is None:
            return self.store.get_identifiers(keys)
        return locks.cover_keys(self.store, keys)

    def lock_keys(self, keys: Iterable[str]) -> dict[str, IdentifierNode]:
        """For a caller that writes the graph in a `database.transaction()` of its own (Forget),
        under `write_lock`: locks `keys`' customers as an engine write does, so no server writes
        them until that transaction ends, and returns their nodes as read under the locks."""
        return RegionLocks(self.store.database).cover_keys(self.store, keys)

    @property
    def write_lock(self) -> WriteLock:
        """Held by every write of this process; a batch apply takes it per batch so online calls
        interleave between batches, never inside one. Multi-statement reads go through its
        `read`, so they see a customer before or after a write, never half of it."""
        return self._write_lock

    # ---- input ------------------------------------------------------------------------------

    def identifier(self, type_: str, value: str, field_name: str = "identifier") -> Identifier:
        """Normalises `(type_, value)`; an error names the caller's `field_name`."""
        try:
            return self.types.make(type_, value)
        except InvalidArgument as e:
            # the normaliser names the type; the caller's field is `value` (or `type`)
            raise InvalidArgument(f"{field_name}.{'type' if e.field == 'type' else 'value'}", e.reason) from e

    def channel(self, value: str, field_name: str = "channel") -> str:
        """`value` when it is one of the configured channels.

        Raises:
            InvalidArgument: any other value, naming `field_name`.
        """
        if value not in self.config.channels:
            raise InvalidArgument(field_name, f"one of {', '.join(self.config.channels)}")
        return value

    def key(self, raw_key: str, field_name: str = "identifier") -> str:
        """Normalises a `type:value` key given by a caller."""
        type_, sep, value = (raw_key or "").partition(":")
        if not sep:
            raise InvalidArgument(field_name, "an identifier key is 'type:value'")
        return self.identifier(type_.strip().lower(), value, field_name).key

    def labels(self, **labels: str) -> None:
        """Refuses an over-long (or NUL-carrying) evidence label: source, actor, event id, ..."""
        for name, value in labels.items():
            check_text(name, value, self.config.max_label_length)

    # ---- assurance (read by Resolve's fast path and by the customer reads) ---------------------

    def assurance(self, node: IdentifierNode, keys: Iterable[str] | None,
                  subgraph: tuple[list[str], list[Link], dict[str, IdentifierNode]] | None = None,
                  ) -> dict[str, LinkKind | None]:
        """How strongly `node` reaches each identifier of its customer (or each of `keys`).
        `subgraph`: the node's `customer_subgraph`, when the caller read it already."""
        anchor = node.key
        wanted = set(keys) if keys is not None else None
        if not node.generic:
            local = self._customer_subgraph(node, subgraph)
            if local is not None:
                members, links_by_key, generic = local
                targets = members if wanted is None else wanted
                if targets <= members:
                    paths = widest_paths(
                        anchor,
                        lambda ks: [lk for k in ks for lk in links_by_key.get(k, ())],
                        lambda k: generic.get(k, False),
                    )
                    return {
                        k: (bottleneck(paths[k], anchor) if k in paths else None) for k in sorted(targets)
                    }
        targets = wanted if wanted is not None else set(self.store.component(anchor).members)
        if node.generic:  # shared by different people: whoever presents it proves only itself
            return {k: (LinkKind.VERIFIED if k == anchor else None) for k in sorted(targets)}
        generic_flags: dict[str, bool] = {}

        def is_generic(k: str) -> bool:
            if k not in generic_flags:
                n = self.store.get_identifier(k)
                generic_flags[k] = bool(n and n.generic)
            return generic_flags[k]

        paths = widest_paths(anchor, self.store.links, is_generic)
        return {k: (bottleneck(paths[k], anchor) if k in paths else None) for k in sorted(targets)}

    def _customer_subgraph(
        self, node: IdentifierNode,
        subgraph: tuple[list[str], list[Link], dict[str, IdentifierNode]] | None = None,
    ) -> tuple[set[str], dict[str, list[Link]], dict[str, bool]] | None:
        """`node`'s component with every active link of its members, in one store read.

        Reads the identifiers assigned to `node`'s customer, their links and the generic flags of
        every endpoint (`GraphStore.customer_subgraph`), then replays `GraphStore.component` in
        memory. Each member's links keep the
        order `store.links([member])` gives, so widest paths (and their tie-breaks) come out as if
        read one identifier at a time. Paths to the members never leave the component (only a
        `possible` link leads out, and it is weaker than any path inside), so nothing beyond it is
        needed. Returns None, for the caller to walk the store instead, when the traversal would
        reach an identifier that is not assigned to the customer, or when the customer is huge.
        """
        if node.customer_id is None:
            return None
        member_keys, links, nodes = subgraph or self.store.customer_subgraph(node.customer_id)
        assigned = set(member_keys)
        if node.key not in assigned or len(assigned) >= MAX_TRAVERSAL:
            return None
        links_by_key: dict[str, list[Link]] = {k: [] for k in assigned}
        for lk in links:
            for k in {lk.a, lk.b} & assigned:
                links_by_key[k].append(lk)
        generic = {k: n.generic for k, n in nodes.items()}
        members = {node.key}
        frontier = {node.key}
        while frontier and len(members) < MAX_TRAVERSAL:
            if not frontier <= assigned:
                return None
            nxt: set[str] = set()
            for k in frontier:
                for lk in links_by_key[k]:
                    if lk.kind.merges:
                        nxt.add(lk.a)
                        nxt.add(lk.b)
            nxt -= members
            shared = {k for k in nxt if generic.get(k, False)}
            members |= nxt - shared
            frontier = nxt - shared
        return members, links_by_key, generic

    # ---- people's decisions (identity_graph.decisions) -----------------------------------------

    def add_constraints(self, cs: ChangeSet, constraints: Iterable[Constraint]) -> None:
        for c in constraints:
            cs.constraints_added.append(c)
            cs.events.append(decisions.constraint_event(c))

    def withdraw(self, cs: ChangeSet, c: Constraint, now: datetime, actor: str, reason: str) -> None:
        cs.constraints_withdrawn.append((c.id, now, actor, reason))
        cs.events.append(decisions.withdrawal_event(c, now, actor, reason))

    def decide_must(self, cs: ChangeSet, link: Link, actor: str, reason: str, origin: str,
                     now: datetime) -> None:
        """Records `link` as a person's must-link. A cannot-link of the same pair is superseded;
        one between other members of the two customers stops it (withdraw that one first)."""
        side_a = self.store.component(link.a).members or {link.a}
        side_b = self.store.component(link.b).members or {link.b}
        held = self.store.constraints(side_a | side_b)
        for c in decisions.conflicts(side_a, side_b, held):
            if c.pair != (link.a, link.b):
                raise FailedPrecondition(f"a person set these customers apart: constraint {c.id} "
                                         f"({c.a} / {c.b}); withdraw it first")
            self.withdraw(cs, c, now, actor, f"superseded: linked by {actor}")
        if not any(c.active and c.kind is ConstraintKind.MUST_LINK and c.pair == (link.a, link.b)
                   for c in held):
            self.add_constraints(cs, [decisions.must_link(link, actor=actor, reason=reason,
                                                           origin=origin, at=now)])

    def _load_region(self, seeds: set[str], cs: ChangeSet) -> LoadedRegion:
        """The old components of `seeds`; around an identifier whose generic flag changes, also
        the components of its neighbours, which it may join or leave."""
        region: set[str] = set()
        todo = set(seeds)
        flagged = set(cs.generic)
        for node in self.store.get_identifiers(seeds).values():
            if node.generic:
                flagged.add(node.key)
        for k in flagged:
            todo |= {lk.other(k) for lk in self.store.links([k]) if lk.kind.merges}
        for k in sorted(todo):
            if k not in region:
                region |= self.store.component(k).members or {k}
        region |= flagged & seeds
        nodes = self.store.get_identifiers(region)
        locks: RegionLocks | None = getattr(self._tx, "locks", None)
        if locks is not None and not locks.cover(names_of(nodes, region)):
            # the region reaches customers this write had not locked: read it again under them
            return self._load_region(seeds, cs)
        links = {lk.id: lk for lk in self.store.links(region)}
        return LoadedRegion(nodes=nodes, links=links, generic={}, new_keys=set())

    def settle(
        self,
        cs: ChangeSet,
        seeds: set[str],
        new_keys: set[str],
        now: datetime,
        actor: str,
        leaving: frozenset[str] = frozenset(),
    ) -> Outcome:
        """Completes `cs` with guardrails, components, ids and events for the affected region."""
        region = self._load_region(seeds, cs)
        for up in cs.identifiers:
            region.generic.setdefault(up.key, False)
        for key, node in region.nodes.items():
            region.generic[key] = node.generic
        region.generic.update(cs.generic)
        removed = {lid for lid, *_ in cs.links_removed}
        for lid in removed:
            region.links.pop(lid, None)
        region.new_keys = set(new_keys)

        observed = RegionObservations(self.store, set(region.generic) - region.new_keys, cs)
        withdrawn = {cid for cid, *_ in cs.constraints_withdrawn}
        held = [c for c in [*self.store.constraints(region.generic.keys()), *cs.constraints_added]
                if c.id not in withdrawn]
        previous = {k: n.customer_id for k, n in region.nodes.items()}
        old_ids = sorted({c for c in previous.values() if c})
        decision = decide(
            Region(
                keys=region.generic.keys(),
                links=region.links.values(),
                generic=region.generic,
                records=observed.records,
                sightings=observed.sightings,
                previous=previous,
                created_at={c.id: c.created_at for c in self.store.customers(old_ids).values()},
                first_seen={k: n.first_seen for k, n in region.nodes.items()},
                new_keys=region.new_keys,
                leaving=leaving,
                cannot=decisions.pairs_of(held, ConstraintKind.CANNOT_LINK),
                must=decisions.pairs_of(held, ConstraintKind.MUST_LINK),
            ),
            cs.links_added,
            Rules.of(self.config),
            new_id=self.new_id,
        )
        accepted, violations = decision.made, decision.violations
        cs.links_added = accepted
        for key, flag in decision.generic.items():
            region.generic[key] = flag
            cs.generic[key] = flag
        for lk in accepted:
            region.links[lk.id] = lk
        comps, ids = decision.components, decision.ids
        assignment = ids.by_key(comps)
        for key, cid in assignment.items():
            if previous.get(key) != cid:
                cs.assignments[key] = cid
        for cid in ids.created:
            cs.customers_created.append(Customer(cid, now))
        events = cs.events
        for lk in accepted:
            events.append(
                Event(
                    "link",
                    {
                        "link_id": lk.id,
                        "a": lk.a,
                        "b": lk.b,
                        "kind": lk.kind.label,
                        "source": lk.source,
                        "actor": lk.actor,
                    },
                    assignment.get(lk.a, ""),
                    now,
                )
            )
        for lid, _at, by, why in cs.links_removed:
            events.append(Event("unlink", {"link_id": lid, "actor": by, "reason": why}, "", now))
        for key, flag in cs.generic.items():
            events.append(
                Event("generic", {"key": key, "generic": flag, "actor": actor}, assignment.get(key, ""), now)
            )
        for v in violations:
            events.append(violation_event(v, now))
        for cid in ids.created:
            events.append(Event("customer_created", {"customer_id": cid}, cid, now))
        for m in ids.merges:
            events.append(
                Event(
                    "merge",
                    {"survivor": m.survivor, "retired": list(m.retired), "actor": actor},
                    m.survivor,
                    now,
                )
            )
            for r in m.retired:
                cs.aliases[r] = m.survivor
                events.append(Event("alias", {"alias": r, "customer_id": m.survivor}, m.survivor, now))
        for s in ids.splits:
            events.append(
                Event(
                    "split",
                    {
                        "original": s.original,
                        "new_ids": list(s.new_ids),
                        "kept": sorted(s.kept_by),
                        "actor": actor,
                    },
                    s.original,
                    now,
                )
            )
        return Outcome(comps, ids, assignment, accepted, violations, region)


def violation_event(v: Violation, at: datetime) -> Event:
    """A refused link or value, as the event log records it."""
    return Event("violation", {"kind": v.kind, "key": v.key, "other": v.other, "reason": v.reason},
                 "", at)


def parts_of(outcome: Outcome) -> list[SplitPart]:
    """The customers a settled change leaves, the one keeping an existing id first."""
    parts = [
        SplitPart(cid, sorted(c), cid in outcome.ids.created)
        for c, cid in zip(outcome.comps, outcome.ids.ids, strict=True)
    ]
    return sorted(parts, key=lambda p: (p.is_new, p.customer_id))


def with_seqs(events: list[Event], seqs: list[int]) -> list[Event]:
    """`events` with the sequence numbers `store.apply` gave them."""
    return [Event(e.type, e.payload, e.customer_id, e.at, s) for e, s in zip(events, seqs, strict=False)]


@dataclass
class Outcome:
    """What `Core.settle` decided for a region: components, ids, the links made, violations."""

    comps: list[frozenset[str]]
    ids: IdAssignment
    assignment: dict[str, str]
    links: list[Link]
    violations: list[Violation]
    region: LoadedRegion

    def components_of(self, key: str) -> frozenset[str]:
        for c in self.comps:
            if key in c:
                return c
        return frozenset()

    def assurance_from(self, anchor: str) -> dict[str, LinkKind | None]:
        """Assurance from `anchor` over the settled region, before it is read back from the store."""
        links_by_key: dict[str, list[Link]] = {}
        for lk in self.region.links.values():
            if lk.active:
                links_by_key.setdefault(lk.a, []).append(lk)
                links_by_key.setdefault(lk.b, []).append(lk)

        def links_of(keys: Iterable[str]) -> list[Link]:
            return [lk for k in keys for lk in links_by_key.get(k, ())]

        if self.region.generic.get(anchor):
            return {anchor: LinkKind.VERIFIED}
        paths = widest_paths(anchor, links_of, lambda k: self.region.generic.get(k, False))
        return {k: (bottleneck(paths[k], anchor) if k in paths else None)
                for k in sorted(self.components_of(anchor))}


class Namespace:
    """One group of `IdentityGraph` operations, like Splink's linker components: it keeps a
    reference back to its graph (to call the other namespaces) and to the shared core."""

    def __init__(self, graph: IdentityGraph, core: Core) -> None:
        self._graph = graph
        self._core = core
