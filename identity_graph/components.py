"""Connected components and stable customer ids, as pure functions over keys and links.

Two id policies from DESIGN.md ("Stable ids"):
- `assign_ids_incremental`: online changes. On a merge the oldest id survives; on a split the
  part with the most verified identifiers keeps the id (ties: most identifiers, then oldest).
- `assign_ids_by_overlap`: the nightly recompute. New components take previous ids by largest
  overlap, each id used once, so unchanged data changes no id (linear time; `tests/test_batch.py`
  checks it against a quadratic reference).

Both run inside `identity_graph.rules.decide`, the one place customers are decided.
"""

from __future__ import annotations

import secrets
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime


def new_customer_id() -> str:
    return "cus_" + secrets.token_hex(10)


class UnionFind:
    """Union-find with path halving and union by size; the reference is networkx."""

    def __init__(self, items: Iterable[Hashable] = ()) -> None:
        self.parent: dict[Hashable, Hashable] = {}
        self.size: dict[Hashable, int] = {}
        for x in items:
            self.add(x)

    def add(self, x: Hashable) -> None:
        if x not in self.parent:
            self.parent[x] = x
            self.size[x] = 1

    def find(self, x: Hashable) -> Hashable:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: Hashable, b: Hashable) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        return True

    def groups(self) -> list[set[Hashable]]:
        out: dict[Hashable, set[Hashable]] = defaultdict(set)
        for x in self.parent:
            out[self.find(x)].add(x)
        return list(out.values())


def components(nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> list[frozenset[str]]:
    """Connected components of an undirected graph (every node appears in exactly one)."""
    uf = UnionFind(nodes)
    for a, b in edges:
        uf.add(a)
        uf.add(b)
        uf.union(a, b)
    return [frozenset(g) for g in uf.groups()]


@dataclass(frozen=True, slots=True)
class Merge:
    survivor: str
    retired: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Split:
    original: str
    kept_by: frozenset[str]
    new_ids: tuple[str, ...]


@dataclass(slots=True)
class IdAssignment:
    """The outcome of an id policy: an id per component, plus what merged, split and was created."""

    ids: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    merges: list[Merge] = field(default_factory=list)
    splits: list[Split] = field(default_factory=list)

    def by_key(self, comps: list[frozenset[str]]) -> dict[str, str]:
        return {k: cid for comp, cid in zip(comps, self.ids, strict=True) for k in comp}


def assign_ids_incremental(
    comps: list[frozenset[str]],
    previous: Mapping[str, str | None],
    created_at: Mapping[str, datetime],
    verified: Callable[[str], bool],
    first_seen: Mapping[str, datetime],
    new_id: Callable[[], str] = new_customer_id,
    leaving: frozenset[str] = frozenset(),
) -> IdAssignment:
    """Ids for `comps` after an online change.

    Args:
        comps: the new components of the affected region.
        previous: key -> customer id before the change (None or absent for new keys).
        created_at: creation time of every previous customer id.
        verified: whether a key holds a verified link.
        first_seen: key -> first seen, to break ties by age.
        new_id: id factory.
        leaving: keys an operator detached; a part holding one never keeps the old id.
    """
    out = IdAssignment(ids=[""] * len(comps))
    holders: dict[str, list[int]] = defaultdict(list)
    for i, comp in enumerate(comps):
        for cid in {previous.get(k) for k in comp} - {None}:
            holders[cid].append(i)  # type: ignore[index]

    def rank(i: int) -> tuple:
        comp = comps[i]
        oldest = min((first_seen[k] for k in comp if k in first_seen), default=datetime.max)
        return (bool(comp & leaving), -sum(1 for k in comp if verified(k)), -len(comp), oldest, min(comp))

    won: dict[int, list[str]] = defaultdict(list)
    for cid, idxs in holders.items():
        winner = min(idxs, key=rank)
        won[winner].append(cid)
        if len(idxs) > 1:
            losers = [i for i in idxs if i != winner]
            out.splits.append(Split(cid, comps[winner], tuple(str(i) for i in losers)))

    for i in range(len(comps)):
        ids = sorted(won.get(i, []), key=lambda c: (created_at.get(c, datetime.max), c))
        if ids:
            out.ids[i] = ids[0]
            if len(ids) > 1:
                out.merges.append(Merge(ids[0], tuple(ids[1:])))
        else:
            out.ids[i] = new_id()
            out.created.append(out.ids[i])
    # Splits named their losing parts by index; now that every part has an id, name them by id.
    out.splits = [Split(s.original, s.kept_by, tuple(out.ids[int(i)] for i in s.new_ids)) for s in out.splits]
    return out


def assign_ids_by_overlap(
    comps: list[frozenset[str]],
    previous: Mapping[str, str | None],
    created_at: Mapping[str, datetime] | None = None,
    new_id: Callable[[], str] = new_customer_id,
) -> IdAssignment:
    """Nightly policy: each previous id goes to the component it overlaps most, each id once
    (ties: older id, then smaller id, then the component with the smaller key), in linear time.

    Components left without an id get a new one from `new_id` (random: ids carry no personal
    data). A previous id that no component keeps becomes an alias of the component holding
    most of its identifiers; one spread over several components is a split.
    """
    created_at = created_at or {}
    far = datetime.max.replace(tzinfo=UTC)
    overlaps: list[tuple[int, datetime, str, str, int]] = []
    holders: dict[str, list[int]] = defaultdict(list)
    counts_of: dict[int, Counter[str]] = {}
    smallest = [min(c) if c else "" for c in comps]
    for i, comp in enumerate(comps):
        counts: Counter[str] = Counter(cid for k in comp if (cid := previous.get(k)) is not None)
        if not counts:
            continue
        counts_of[i] = counts
        for cid, n in counts.items():
            holders[cid].append(i)
            at = created_at.get(cid, far)
            overlaps.append((-n, at if at.tzinfo else at.replace(tzinfo=UTC), cid, smallest[i], i))
    overlaps.sort()
    out = IdAssignment(ids=[""] * len(comps))
    used: set[str] = set()
    for _n, _at, cid, _k, i in overlaps:
        if cid in used or out.ids[i]:
            continue
        out.ids[i] = cid
        used.add(cid)
    for i in sorted(range(len(comps)), key=smallest.__getitem__):
        if not out.ids[i]:
            out.ids[i] = new_id()
            out.created.append(out.ids[i])
    retired: dict[int, list[str]] = defaultdict(list)
    for cid, idxs in holders.items():
        if cid in used:
            if len(idxs) > 1:
                keeper = next(i for i in idxs if out.ids[i] == cid)
                out.splits.append(Split(cid, comps[keeper], tuple(sorted(out.ids[i] for i in idxs
                                                                         if i != keeper))))
            continue
        best = min(idxs, key=lambda i: (-counts_of[i][cid], smallest[i]))
        retired[best].append(cid)
        if len(idxs) > 1:
            out.splits.append(Split(cid, comps[best], tuple(sorted(out.ids[i] for i in idxs
                                                                   if i != best))))
    for i, cids in sorted(retired.items()):
        out.merges.append(Merge(out.ids[i], tuple(sorted(cids))))
    return out
