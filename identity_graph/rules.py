"""The customer rules (DESIGN.md, "The customer"), applied in one place.

`decide(region, proposals, rules)` is the only code that decides which links carry merges: the
online engine (`identity_graph.engine`, `Core.settle`), ingest (`batch.ingest`) and the nightly relink
(`batch.relink.cluster`) all call it. It is plain Python over keys, links and records, with no
store in sight, so any engine (DuckDB, Spark) can feed it a region and write its decision.

A region is a set of identifiers with their settled links (kept as they are), generic flags,
records (what each identifier says about a person) and current customer ids. Proposals are the
links being considered, strongest first. For each proposal, in order:

0. a link a person fixed (a must-link) is made and merges, before everything else;
1. a blocked endpoint refuses it (`blocked`), as does a pair a person set apart (`cannot_link`);
1b. a merging link that would put the two ends of a cannot-link in one customer is refused
   (`cannot_link`): proposals go strongest first, so the one refused is the weakest link on the
   path between them;
2. a `possible` link, or one with a generic endpoint, is made but carries no merge;
3. a link inside one customer is made;
4. a link that would push the customer over a per-type limit is refused (`limit`);
5. a `probable` link that would join clearly different people is kept only as `possible`
   (`chain`: one weak edge between two people);
6. an end of a deterministic link whose own sightings show two people is set apart
   (`generic`);
7. a link of a deterministic kind (verified, equivalent, observed: evidence that a value is
   shared) that would join clearly different people sets apart the shared end that explains it
   (`generic`: a family phone, a shop's email);
8. an end of a deterministic link that would then join `junk_people` people whose descriptions
   contradict each other is set apart (`junk`: `a@a.com`, `1111111111`), listed nowhere;
9. otherwise the link merges.

Setting an identifier apart re-opens the merges made through it, so the pass repeats until no
new identifier is set apart (each repeat sets at least one apart; usually one repeat). Then
components and ids: `incremental` (online: the oldest id survives, the most-verified part keeps
it), `overlap` (nightly: largest overlap, each id once) or `none` (ingest: links only).
Every refusal is a `Violation`.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from identity_graph.components import (
    IdAssignment,
    UnionFind,
    assign_ids_by_overlap,
    assign_ids_incremental,
    new_customer_id,
)
from identity_graph.guardrails import (
    Profile,
    Similarity,
    Violation,
    limit_violation,
    type_of,
)
from identity_graph.model import Link, LinkKind

SHAREABLE_PRIORITY = ("phone", "whatsapp", "email", "device_id", "web_cookie")
"""Which end of a household bridge to set apart first: the kinds families and shops share."""

Record = Mapping[str, str | None]


@dataclass(frozen=True)
class Rules:
    """The guardrails' settings (from `GraphConfig`, see `Rules.of`)."""

    is_blocked: Callable[[str], bool]
    limits: Mapping[str, int]
    similarity: Similarity = field(default_factory=Similarity)
    junk_people: int = 3
    """An identifier joining this many mutually contradicting people is junk (generic)."""

    @classmethod
    def of(cls, config: object) -> Rules:
        return cls(
            config.is_blocked,  # type: ignore[attr-defined]
            config.limits,  # type: ignore[attr-defined]
            Similarity(config.name_similarity),  # type: ignore[attr-defined]
            config.junk_people,  # type: ignore[attr-defined]
        )


@dataclass
class Region:
    """A region of the graph as plain data (see the module docstring).

    `records` and `sightings` are read only for identifiers the rules must compare, so a caller
    may pass a mapping that loads on first access.
    """

    keys: Collection[str]
    links: Iterable[Link] = ()
    """Settled active links: edges as they are (unless an end is generic), never re-checked."""
    generic: Mapping[str, bool] = field(default_factory=dict)
    records: Mapping[str, Record] = field(default_factory=dict)
    """key -> its record (`identity_graph.records.record_of`): what it says about a person."""
    sightings: Mapping[str, Sequence[Record]] = field(default_factory=dict)
    """key -> its own sightings (`guardrails.sightings`), for junk found on the value itself."""
    previous: Mapping[str, str | None] = field(default_factory=dict)
    created_at: Mapping[str, datetime] = field(default_factory=dict)
    """customer id -> when it was created (the older survives a merge)."""
    first_seen: Mapping[str, datetime] = field(default_factory=dict)
    new_keys: Collection[str] = frozenset()
    """Keys first seen in this change: never the end set apart when an old one can be."""
    leaving: frozenset[str] = frozenset()
    """Keys an operator detached: a part holding one never keeps the old id."""
    cannot: Collection[tuple[str, str]] = ()
    """Pairs people set apart (cannot-links): no customer holds both ends."""
    must: Collection[tuple[str, str]] = ()
    """Pairs people linked (must-links): their proposals are fixed edges, never refused."""


@dataclass
class Decision:
    made: list[Link]
    """Proposals made, in order (a `chain` one as `possible`)."""
    refused: list[tuple[Link, Violation]]
    generic: dict[str, bool]
    """Identifiers newly set apart."""
    violations: list[Violation]
    """Every refusal, downgrade and identifier set apart, with its reason."""
    components: list[frozenset[str]]
    ids: IdAssignment

    def assignment(self) -> dict[str, str]:
        return self.ids.by_key(self.components)


def decide(
    region: Region,
    proposals: Iterable[Link],
    rules: Rules,
    *,
    policy: Literal["incremental", "overlap", "none"] = "incremental",
    new_id: Callable[[], str] = new_customer_id,
) -> Decision:
    """The decision on `proposals` over `region`: links made and refused, identifiers set apart,
    components and their ids, with a violation for everything refused."""
    keys = set(region.keys)
    must = {tuple(sorted(p)) for p in region.must}
    cannot = {tuple(sorted(p)) for p in region.cannot}
    ordered = sorted(proposals, key=lambda lk: ((lk.a, lk.b) not in must, *_strength(lk)))
    for lk in ordered:
        keys.add(lk.a)
        keys.add(lk.b)
    # a settled link leaving the region (to a key outside it) carries nothing inside it
    settled = [lk for lk in region.links if lk.active and lk.kind.merges and lk.a in keys and lk.b in keys]
    generic = {k: bool(region.generic.get(k, False)) for k in keys}
    marks: dict[str, Violation] = {}
    blocked: list[tuple[Link, Violation]] = []
    open_: list[Link] = []
    refuse = {k for k in keys if rules.is_blocked(k)}
    for lk in ordered:
        bad = lk.a if lk.a in refuse else lk.b if lk.b in refuse else None
        if bad is not None:
            blocked.append((lk, blocked_violation(bad, lk.other(bad))))
        elif (lk.a, lk.b) in cannot and (lk.a, lk.b) not in must:
            blocked.append((lk, Violation("cannot_link", lk.a, CANNOT_REASON, lk.b)))
        else:
            open_.append(lk)
    apart: dict[str, set[str]] = {}
    for x, y in cannot:
        apart.setdefault(x, set()).add(y)
        apart.setdefault(y, set()).add(x)
    # only proposals where some rule may act go through the passes; the rest are made as they are
    groups = _Groups(settled, open_, generic, region, rules, cannot)
    at = [i for i, lk in enumerate(open_) if groups.contested(lk)]
    todo = [open_[i] for i in at]
    settled_todo = [lk for lk in settled if groups.contested(lk)]
    while True:
        outcome, refused, chains, found = _pass(region, settled_todo, todo, keys, generic, rules,
                                                apart, must)
        if not found:
            break
        for k, v in found.items():
            generic[k] = True
            marks[k] = v
    decided: list[Link | None] = list(open_)
    for i, lk in zip(at, outcome, strict=True):
        decided[i] = lk
    made = [lk for lk in decided if lk is not None]
    comps = groups.components(keys, [*settled_todo, *(lk for lk in outcome if lk is not None)],
                              generic)
    if policy == "incremental":
        verified = {k for lk in [*settled, *made] if lk.kind is LinkKind.VERIFIED for k in (lk.a, lk.b)}
        ids = assign_ids_incremental(comps, region.previous, region.created_at, verified.__contains__,
                                     region.first_seen, new_id, region.leaving)
    elif policy == "overlap":
        ids = assign_ids_by_overlap(comps, region.previous, region.created_at, new_id)
    else:  # links only (ingest): customers are assigned by the next relink
        ids = IdAssignment()
    refused = blocked + refused
    violations = [*marks.values(), *(v for _, v in refused), *chains]
    return Decision(made, refused, {k: True for k in marks}, violations, comps, ids)


def blocked_violation(key: str, other: str = "") -> Violation:
    """The refusal of a link to a blocked value (`Rules.is_blocked`), also for callers that drop
    the value before anything is proposed (Resolve, Link)."""
    return Violation("blocked", key, "a blocked value never links", other)


CANNOT_REASON = "a person decided these are different people (cannot-link)"
CANNOT_PATH_REASON = ("would put two identifiers a person set apart in one customer (cannot-link "
                      "{x} / {y}); the weakest link on the path between them is not made")
CHAIN_REASON = "joins clearly different people through one weak link; kept as possible"
HOUSEHOLD_REASON = "shared by people with different names and birth dates"
SIGHTINGS_REASON = "its own sightings show different people (first names apart, birth dates not the same)"


def _strength(lk: Link) -> tuple:
    return (-lk.kind, -(lk.probability if lk.probability is not None else 1.0), lk.a, lk.b)


class _Groups:
    """The groups of a decision: identifiers joined by the merging links (settled and proposed)
    whose ends are not set apart. A group is contested when a rule may act in it: more
    identifiers of a type than its limit, two identifiers that describe someone (household,
    chain, junk), one whose own sightings differ, or the two ends of a cannot-link. In any
    other group every proposal is made as it is and the group is one customer, so `_pass`
    need not see it: most of a relink, where each person's records and identifiers form a
    group of their own. (A new rule in `_pass` must mark the groups it may act in here.)"""

    def __init__(self, settled: list[Link], proposals: list[Link], generic: Mapping[str, bool],
                 region: Region, rules: Rules, cannot: Iterable[tuple[str, str]] = ()) -> None:
        self.uf = uf = UnionFind()
        for lk in (*settled, *proposals):
            if lk.kind.merges and not generic[lk.a] and not generic[lk.b]:
                uf.add(lk.a)
                uf.add(lk.b)
                uf.union(lk.a, lk.b)
        self.hard = _contested_roots(uf, region, rules)
        parent, find = uf.parent, uf.find
        self.hard.update(find(x) for x, y in cannot if x in parent and y in parent and find(x) == find(y))

    def contested(self, lk: Link) -> bool:
        return bool(self.hard) and lk.a in self.uf.parent and self.uf.find(lk.a) in self.hard

    def components(self, keys: Iterable[str], decided: Iterable[Link],
                   generic: Mapping[str, bool]) -> list[frozenset[str]]:
        """The customers: each uncontested group whole, the contested ones by the links
        `decided` there; in the order of their first member in `keys`."""
        inside = UnionFind()
        for lk in decided:
            if lk.kind.merges and not generic[lk.a] and not generic[lk.b]:
                inside.add(lk.a)
                inside.add(lk.b)
                inside.union(lk.a, lk.b)
        parent, find, hard = self.uf.parent, self.uf.find, self.hard
        out: dict[str, list[str]] = {}
        for k in keys:
            root = find(k) if k in parent else k
            if root in hard:
                root = inside.find(k) if k in inside.parent else k
            out.setdefault(root, []).append(k)  # type: ignore[arg-type]
        return [frozenset(g) for g in out.values()]


def _contested_roots(uf: UnionFind, region: Region, rules: Rules) -> set[object]:
    find, size = uf.find, uf.size
    hard: set[object] = set()
    if rules.limits:
        smallest = min(rules.limits.values())
        counts: dict[object, Counter[str]] = {}
        for k in uf.parent:
            root = find(k)
            if size[root] > smallest:
                counts.setdefault(root, Counter())[type_of(k)] += 1
        hard.update(r for r, c in counts.items() if limit_violation(rules.limits, c))
    inside = uf.parent
    seen = {k: len(s) for k, s in region.sightings.items() if s and k in inside}
    hard.update(find(k) for k, n in seen.items() if n > 1)
    describing = seen.keys() | {k for k, r in region.records.items() if r and k in inside}
    described: set[object] = set()
    for k in describing:
        root = find(k)
        if root in described:
            hard.add(root)
        described.add(root)
    return hard

def _pass(
    region: Region,
    settled: list[Link],
    proposals: list[Link],
    keys: set[str],
    generic: Mapping[str, bool],
    rules: Rules,
    apart: Mapping[str, set[str]] | None = None,
    must: Collection[tuple[str, str]] = frozenset(),
) -> tuple[list[Link | None], list[tuple[Link, Violation]], list[Violation], dict[str, Violation]]:
    """One pass over the proposals with the current generic flags; returns what it made of each
    proposal (None: refused), what it refused and downgraded, and the identifiers it found must
    be set apart (none: the decision is final)."""
    uf = UnionFind()
    members: dict[object, list[str]] = {}
    counts: dict[object, dict[str, int]] = {}
    neighbours: dict[str, set[str]] = {}

    def add(k: str) -> None:
        if k not in uf.parent:
            uf.add(k)
            members[k] = [k]
            counts[k] = {type_of(k): 1}

    def join(ra: object, rb: object) -> None:
        uf.union(ra, rb)  # type: ignore[arg-type]
        root, other = (ra, rb) if uf.find(ra) == ra else (rb, ra)  # type: ignore[arg-type]
        members[root].extend(members.pop(other))
        into = counts[root]
        for t, n in counts.pop(other).items():
            into[t] = into.get(t, 0) + n

    for lk in settled:
        for k in (lk.a, lk.b):
            add(k)
        if not generic.get(lk.a) and not generic.get(lk.b):
            neighbours.setdefault(lk.a, set()).add(lk.b)
            neighbours.setdefault(lk.b, set()).add(lk.a)
            ra, rb = uf.find(lk.a), uf.find(lk.b)
            if ra != rb:
                join(ra, rb)
    made: list[Link | None] = []
    refused: list[tuple[Link, Violation]] = []
    found: dict[str, Violation] = {}
    chains: list[Violation] = []

    def profile(side: list[str], without: str) -> Profile:
        return Profile.of((d for k in side if k != without for d in _descriptions(k, region)),
                          rules.similarity.identifying)

    for lk in proposals:
        a, b = lk.a, lk.b
        add(a)
        add(b)
        if not lk.kind.merges or generic.get(a) or generic.get(b) or a in found or b in found:
            made.append(lk)
            continue
        ra, rb = uf.find(a), uf.find(b)
        if ra == rb:
            made.append(lk)
            continue
        if (a, b) in must:  # a person's link: a fixed edge
            join(ra, rb)
            made.append(lk)
            continue
        if apart:
            small, other = (ra, rb) if len(members[ra]) <= len(members[rb]) else (rb, ra)
            clash = next(((x, y) for x in members[small] for y in sorted(apart.get(x, ()))
                          if y in uf.parent and uf.find(y) == other), None)
            if clash is not None:
                refused.append((lk, Violation("cannot_link", a, CANNOT_PATH_REASON.format(
                    x=clash[0], y=clash[1]), b)))
                made.append(None)
                continue
        reason = limit_violation(rules.limits, counts[ra], counts[rb])
        if reason:
            at = a if len(members[ra]) < len(members[rb]) else b  # the end that would join
            refused.append((lk, Violation("limit", at, reason, lk.other(at))))
            made.append(None)
            continue
        side_a, side_b = members[ra], members[rb]
        shared = lk.kind > LinkKind.PROBABLE  # evidence that a value is shared, not a score
        if _both_describe(side_a, side_b, region.records, region.sightings):
            if not shared:
                if rules.similarity.clearly_different(profile(side_a, ""), profile(side_b, "")):
                    made.append(dataclasses.replace(lk, kind=LinkKind.POSSIBLE))
                    chains.append(Violation("chain", b, CHAIN_REASON, a))
                    continue
            else:
                old = [k for k in (a, b) if k not in region.new_keys] or [a, b]
                bridge = next((k for k in sorted(old, key=_shareable_rank) if _shareable(k)
                               and rules.similarity.clearly_different(profile(side_a, k),
                                                                      profile(side_b, k))), None)
                if bridge is not None:
                    found[bridge] = Violation("generic", bridge, HOUSEHOLD_REASON, lk.other(bridge))
                    made.append(lk)
                    continue
        if shared:
            ends = (a, b) if _shareable_rank(a) <= _shareable_rank(b) else (b, a)
            seen = next((k for k in ends if _shareable(k) and _two_people_seen(k, region, rules)),
                        None)
            if seen is not None:
                found[seen] = Violation("generic", seen, SIGHTINGS_REASON, lk.other(seen))
                made.append(lk)
                continue
            junk = _junk_end(lk, ends, neighbours, region, rules)
            if junk is not None:
                found[junk] = Violation("junk", junk, f"joins {rules.junk_people} or more people "
                                        "whose names or birth dates contradict each other",
                                        lk.other(junk))
                made.append(lk)
                continue
            neighbours.setdefault(a, set()).add(b)
            neighbours.setdefault(b, set()).add(a)
        join(ra, rb)
        made.append(lk)
    return made, refused, chains, found


def _both_describe(side_a: list[str], side_b: list[str], records: Mapping[str, Record],
                   seen: Mapping[str, Sequence[Record]]) -> bool:
    """Cheap pre-check: does each side describe anyone at all (else nobody can differ)."""
    return (any(records.get(k) or seen.get(k) for k in side_a)
            and any(records.get(k) or seen.get(k) for k in side_b))


def _descriptions(key: str, region: Region) -> Sequence[Record]:
    """What `key` says about people: each of its sightings, else its record."""
    seen = region.sightings.get(key)
    if seen:
        return seen
    record = region.records.get(key)
    return (record,) if record else ()


def _two_people_seen(key: str, region: Region, rules: Rules) -> bool:
    seen = region.sightings.get(key) or ()
    if len(seen) < 2:
        return False
    return any(rules.similarity.two_people(x, y) for i, x in enumerate(seen) for y in seen[i + 1:])


def _junk_end(lk: Link, ends: tuple[str, str], neighbours: Mapping[str, set[str]], region: Region,
              rules: Rules) -> str | None:
    """The end of `lk` that, with it, would join `junk_people` people who contradict each
    other (its neighbours' records and its own sightings)."""
    for k in ends:
        near = neighbours.get(k)
        if not near:
            continue  # one neighbour (this link's other end) joins nobody
        seen = region.sightings.get(k) or ()
        if len(near) + 1 + len(seen) < rules.junk_people:
            continue
        descriptions = [*(region.records.get(n) or {} for n in sorted(near | {lk.other(k)})), *seen]
        if rules.similarity.people_among(descriptions, rules.junk_people) >= rules.junk_people:
            return k
    return None


def _shareable(key: str) -> bool:
    """Only a value people share (a phone, an email, a device) is ever set apart as a household
    bridge; a source record or an account belongs to one person."""
    return type_of(key) in SHAREABLE_PRIORITY


def _shareable_rank(key: str) -> tuple[int, str]:
    t = type_of(key)
    return (SHAREABLE_PRIORITY.index(t) if t in SHAREABLE_PRIORITY else len(SHAREABLE_PRIORITY), key)
