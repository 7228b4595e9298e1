"""The relink's cluster step for one region of the graph, as plain data in and plain data out.

A region is a set of identifiers closed under the relink's proposals (stored deterministic
links, links people fixed, scored pairs) and under shared customer ids, with people's decisions
between its own identifiers (a cannot-link across two regions needs nothing: no proposal joins
them): the customer rules
(`identity_graph.rules.decide`) and the stable-id mapping (largest overlap, each id once)
decide it without looking outside it, so deciding every region apart gives the decision on the
whole graph. The DuckDB engine decides the whole graph as one region; the Spark engine groups
the graph into regions on Spark and runs `decide_region` per region on its executors
(`applyInPandas`). Both read the same inputs the same way (`sighting_rows_sql`, `sightings_of`,
`proposals_of`) and the driver turns the outcomes into the target (`batch.steps.types.Target`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from identity_graph.guardrails import PERSON_ATTRIBUTES
from identity_graph.model import JsonMapping, Link, LinkKind
from identity_graph.rules import Region, Rules, decide

__all__ = ["DETERMINISTIC", "Outcome", "RegionInput", "decide_region", "proposals_of",
           "sighting_rows_sql", "sightings_of"]

SOURCE = "batch"
ACTOR = "identity-batch"
DETERMINISTIC = ("verified", "equivalent", "observed")
"""Stored link kinds proposed again as they are (evidence, not scores)."""


def sighting_rows_sql(observations: str = "observations") -> str:
    """The person attributes of identifiers whose own observations name more than one person
    (a family phone, a junk value): key, attribute, value, source, channel, observed_at, in the
    order `sightings_of` groups them. Standard SQL (DuckDB and Spark)."""
    attrs = ", ".join(f"'{a}'" for a in PERSON_ATTRIBUTES)
    return f"""
        WITH multi AS (
            SELECT DISTINCT key FROM (
                SELECT key, attribute FROM {observations}
                WHERE attribute IN ({attrs}) AND value <> ''
                GROUP BY key, attribute HAVING count(DISTINCT lower(value)) > 1) m)
        SELECT key, attribute, value, source, channel, observed_at FROM {observations}
        WHERE key IN (SELECT key FROM multi) AND attribute IN ({attrs}) AND value <> ''
        ORDER BY key, observed_at, source, channel, attribute, value"""


def sightings_of(rows: Iterable[Sequence[Any]]) -> dict[str, list[dict[str, str]]]:
    """key -> its sightings (one self-description per source, channel and moment), from the
    rows of `sighting_rows_sql` in its order."""
    seen: dict[str, dict[tuple, dict[str, str]]] = {}
    for key, attribute, value, source, channel, at in rows:
        seen.setdefault(key, {}).setdefault((source, channel, at), {})[attribute] = value
    return {k: list(v.values()) for k, v in seen.items()}


@dataclass
class RegionInput:
    """One region as the cluster step reads it (see the module docstring)."""

    keys: list[str]
    previous: dict[str, str | None]
    generic: set[str]
    records: dict[str, dict[str, str | None]]
    """key -> its person attributes (only keys that have one)."""
    sightings: dict[str, list[dict[str, str]]]
    created_at: dict[str, datetime]
    stored: list[tuple[str, str, str, str, str]]
    """(link id, a, b, kind, source): active links of a deterministic kind."""
    scored: list[tuple[str, str, float, float, str | None]]
    """(a, b, probability, match weight, comparisons JSON): this run's pairs and re-scores."""
    cannot: set[tuple[str, str]] = field(default_factory=set)
    """Pairs (smaller key first) people set apart (`batch.people`): no customer holds both."""
    must: set[tuple[str, str]] = field(default_factory=set)
    """Pairs people linked: fixed edges; no batch link of the pair is proposed beside them."""
    fixed: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    """(link id, a, b, kind, source): active probable/possible links a must-link fixes,
    proposed as they are instead of re-scored."""


@dataclass
class Outcome:
    """The decision on one region, as JSON-able data (what `decide` made of it)."""

    components: list[list[str]]
    ids: list[str]
    created: list[str]
    merges: list[tuple[str, list[str]]]
    splits: list[tuple[str, list[str]]]
    links: list[tuple[str, str, str, float, float, str | None]]
    """Batch links made: (a, b, kind, probability, match weight, comparisons JSON)."""
    removed: dict[str, str]
    """Stored link id -> why the rules refused it."""
    generic: list[str]
    violations: list[tuple[str, str, str, str]]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Outcome:
        return cls(**json.loads(text))


def proposals_of(region: RegionInput, model_version: str, link_threshold: float,
                 now: datetime) -> tuple[list[Link], dict[int, str]]:
    """The proposals of a region: its stored deterministic links as they are, the links
    people fixed (must-links) as they are, and its scored pairs as batch links (`probable` at
    or above `link_threshold`, else `possible`; none for a must-linked pair); with
    id(link) -> stored link id for the stored deterministic ones."""
    index = set(region.keys)
    stored: dict[int, str] = {}
    out: list[Link] = []
    for lid, a, b, kind, source in sorted(region.stored, key=lambda r: (r[1], r[2], r[0])):
        if a in index and b in index:
            lk = Link(a, b, LinkKind.parse(kind), source=source, created_at=now)
            stored[id(lk)] = lid
            out.append(lk)
    for _lid, a, b, kind, source in sorted(region.fixed, key=lambda r: (r[1], r[2], r[0])):
        if a in index and b in index:
            out.append(Link(a, b, LinkKind.parse(kind), source=source, created_at=now))
    for a, b, p, w, comp in region.scored:
        if a in index and b in index and (a, b) not in region.must:
            kind = LinkKind.PROBABLE if p >= link_threshold else LinkKind.POSSIBLE
            out.append(batch_link(a, b, kind.label, p, w, comp, model_version, now))
    return out, stored


def batch_link(a: str, b: str, kind: str, p: float, w: float, comp: str | None,
               model_version: str, now: datetime) -> Link:
    """A link this relink makes (the same id wherever it is rebuilt from its fields)."""
    return Link(a, b, LinkKind.parse(kind), source=SOURCE, model_version=model_version,
                probability=float(p), match_weight=float(w),
                comparisons=JsonMapping(comp) if comp else None, created_at=now, actor=ACTOR)


def decide_region(region: RegionInput, rules: Rules, model_version: str, link_threshold: float,
                  now: datetime) -> Outcome:
    """`identity_graph.rules.decide` on one region with the nightly id policy (overlap)."""
    proposals, stored = proposals_of(region, model_version, link_threshold, now)
    decision = decide(
        Region(keys=region.keys, generic={k: True for k in region.generic}, records=region.records,
               sightings=region.sightings, previous=region.previous, created_at=region.created_at,
               cannot=region.cannot, must=region.must),
        proposals, rules, policy="overlap")
    links = [(lk.a, lk.b, lk.kind.label, lk.probability, lk.match_weight, lk.comparisons_json())
             for lk in decision.made if lk.source == SOURCE]
    return Outcome(
        components=[sorted(c) for c in decision.components],
        ids=list(decision.ids.ids),
        created=list(decision.ids.created),
        merges=[(m.survivor, list(m.retired)) for m in decision.ids.merges],
        splits=[(s.original, list(s.new_ids)) for s in decision.ids.splits],
        links=links,
        removed={stored[id(lk)]: v.reason for lk, v in decision.refused if id(lk) in stored},
        generic=sorted(decision.generic),
        violations=[(v.kind, v.key, v.reason, v.other) for v in decision.violations],
    )


def person_records(rows: Iterable[Sequence[Any]], columns: Sequence[str]) -> dict[str, dict[str, str | None]]:
    """key -> its person attributes, from rows (key, *columns) of the records table; keys
    with none of them are left out."""
    out: dict[str, dict[str, str | None]] = {}
    for key, *values in rows:
        if any(v is not None for v in values):
            out[key] = dict(zip(columns, values, strict=True))
    return out


def link_from(row: Sequence[Any], model_version: str, now: datetime) -> Link:
    """An `Outcome.links` row as the batch link it is."""
    a, b, kind, p, w, comp = row
    return batch_link(a, b, kind, p, w, comp, model_version, now)


def merged(outcomes: Iterable[Outcome]) -> Mapping[str, Any]:
    """Every region's outcome in one (components, ids, created, ...), for the target."""
    out: dict[str, Any] = {"components": [], "ids": [], "created": [], "merges": [], "splits": [],
                           "links": [], "removed": {}, "generic": [], "violations": []}
    for o in outcomes:
        for name in ("components", "ids", "created", "merges", "splits", "links", "generic",
                     "violations"):
            out[name].extend(getattr(o, name))
        out["removed"].update(o.removed)
    return out
