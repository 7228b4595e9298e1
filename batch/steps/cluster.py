"""Step 4, cluster: the customer rules over the whole graph, and stable ids: the `Target`.

Every deterministic link and this run's scored pairs are proposed, strongest first, to
`identity_graph.rules.decide` (through `batch.regions.decide_region`); people's decisions
(`batch.people`) hold. Components map to stable ids by largest overlap, each id once.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter
from collections.abc import Sequence

from batch.people import must_links, people
from batch.regions import (
    DETERMINISTIC,
    Outcome,
    RegionInput,
    decide_region,
    link_from,
    merged,
    person_records,
    sighting_rows_sql,
    sightings_of,
)
from batch.steps.progress import progress_bar
from batch.steps.records import attribute_kinds
from batch.steps.types import SOURCE, RelinkOptions, Snapshot, Target
from identity_graph.attributes import Kind
from identity_graph.config import GraphConfig
from identity_graph.guardrails import PERSON_ATTRIBUTES, Violation
from identity_graph.matching.model import MatchModel
from identity_graph.rules import Rules

__all__ = ["cluster", "identifying_columns", "rescored", "rules_with", "target_of"]

log = logging.getLogger(__name__)


def identifying_columns(snap: Snapshot) -> tuple[str, ...]:
    """Record columns declared of kind `code` (a national ID): `Similarity.identifying`."""
    have = [d[0] for d in snap.con.execute("SELECT * FROM records LIMIT 0").description]
    kinds = attribute_kinds(snap, [c for c in have if c != "unique_id"])
    return tuple(c for c, k in kinds.items() if k is Kind.CODE)


def rules_with(rules: Rules, identifying: Sequence[str]) -> Rules:
    """`rules` whose similarity also compares the identifying columns (a national ID)."""
    return dataclasses.replace(rules, similarity=dataclasses.replace(
        rules.similarity, identifying=tuple(identifying)))


def _profiles(snap: Snapshot, identifying: Sequence[str] = ()
              ) -> tuple[dict[str, dict[str, str | None]], dict[str, list[dict[str, str]]]]:
    """Each identifier's record (the `records` table: `identity_graph.records`) as a person's
    description, with the identifying columns, and the sightings of those whose own
    observations name more than one person (a family phone, a junk value), as the rules
    compare them (`batch.regions`)."""
    have = {d[0] for d in snap.con.execute("SELECT * FROM records LIMIT 0").description}
    cols = [c for c in (*PERSON_ATTRIBUTES, *identifying) if c in have]
    records = person_records(snap.con.execute(
        f"SELECT unique_id, {', '.join(cols)} FROM records").fetchall(), cols) if cols else {}
    return records, sightings_of(snap.con.execute(sighting_rows_sql()).fetchall())


def rescored(snap: Snapshot, model: MatchModel, config: GraphConfig) -> list[tuple]:
    """Probable and possible links of other sources (online Resolve) whose pair prediction did
    not produce, scored here under this run's model: (a, b, probability, match weight,
    comparisons JSON), those at or above the review threshold."""
    from identity_graph.engine import waterfall
    from identity_graph.matching.scorer import OnlineScorer, UnsupportedModel

    missing = snap.con.execute(f"""
        SELECT DISTINCT l.a, l.b FROM links l
        WHERE l.kind IN ('probable', 'possible') AND l.source <> '{SOURCE}'
          AND NOT EXISTS (SELECT 1 FROM pairs p WHERE p.a = l.a AND p.b = l.b)
          AND l.link_id NOT IN (SELECT link_id FROM constraints
                                WHERE kind = 'must_link' AND withdrawn_at IS NULL)
        ORDER BY 1, 2""").fetchall()
    if not missing:
        return []
    try:
        scorer = OnlineScorer(model)
    except UnsupportedModel:
        log.warning("relink: the model cannot score single pairs; %d online links left to expire",
                    len(missing))
        return []
    keys = sorted({k for pair in missing for k in pair})
    table = snap.con.execute("SELECT * FROM records WHERE unique_id IN (SELECT unnest(?::VARCHAR[]))",
                             [keys]).to_arrow_table().to_pylist()
    records = {r["unique_id"]: r for r in table}
    out = []
    for a, b in missing:
        if a in records and b in records:
            score = scorer.score_pair(records[a], records[b])
            if score.match_probability >= config.review_threshold:
                comps = json.dumps(waterfall(score))
                out.append((a, b, float(score.match_probability), float(score.match_weight), comps))
    return out


def cluster(snap: Snapshot, model: MatchModel, config: GraphConfig,
            options: RelinkOptions) -> Target:
    """Step 4: the rules (`identity_graph.rules.decide`) over the whole graph: the target.

    Every active merging link of a deterministic kind (verified, equivalent, observed: online,
    ingested or trusted) is proposed again, so the per-type limits, household and junk rules
    hold whatever wrote it; every probable and possible link, whatever its source, is replaced
    by this run's scores under this run's model, except a link people fixed (`batch.people`).
    The whole graph is one region here (`batch.regions.decide_region`); the Spark engine
    decides it region by region.
    """
    con = snap.con
    bar = progress_bar("cluster", 3, options.progress)
    rows = con.execute("SELECT key, customer_id, generic FROM identifiers ORDER BY key").fetchall()
    identifying = identifying_columns(snap)
    records, seen = _profiles(snap, identifying)
    kinds = ", ".join(f"'{k}'" for k in DETERMINISTIC)
    stored = con.execute(f"SELECT link_id, a, b, kind, source FROM links WHERE kind IN ({kinds})").fetchall()
    scored = con.execute("SELECT a, b, probability, match_weight, comparisons FROM pairs").fetchall()
    scored += rescored(snap, model, config)
    who = people(snap)
    region = RegionInput(
        keys=[r[0] for r in rows], previous={r[0]: r[1] for r in rows},
        generic={r[0] for r in rows if r[2]}, records=records, sightings=seen,
        created_at=dict(con.execute("SELECT id, created_at FROM customers").fetchall()),
        stored=stored, scored=scored, cannot=who.cannot, must=who.must,
        fixed=must_links(snap, who))
    bar.update(1)
    outcome = decide_region(region, rules_with(Rules.of(config), identifying), model.version,
                            config.link_threshold, snap.taken_at)
    bar.update(1)
    target = target_of(snap, model, [outcome])
    bar.update(1)
    bar.close()
    return target


def target_of(snap: Snapshot, model: MatchModel, outcomes: Sequence[Outcome]) -> Target:
    """The target from the decisions on regions that cover the snapshot's identifiers."""
    con = snap.con
    rows = con.execute("SELECT key, customer_id FROM identifiers ORDER BY key").fetchall()
    keys = [r[0] for r in rows]
    previous = [r[1] for r in rows]
    index = {k: i for i, k in enumerate(keys)}
    who = people(snap)
    o = merged(outcomes)
    made = (link_from(r, model.version, snap.taken_at) for r in o["links"])
    links = {lk.id: lk for lk in made}
    removed = dict(o["removed"])
    for lid, kind in con.execute(
            f"SELECT link_id, kind FROM links WHERE kind IN ('probable', 'possible') "
            f"AND source <> '{SOURCE}'").fetchall():
        if lid not in who.must_link_ids:  # fixed by a person: never re-scored away
            removed[lid] = f"{kind} link re-scored by relink with model {model.version}"
    comps = o["components"]
    covered = sum(len(c) for c in comps)
    if covered != len(keys):
        raise RuntimeError(f"the regions decided cover {covered} identifiers, the snapshot holds {len(keys)}")
    component = [0] * len(keys)
    ids: dict[int, str] = {}
    for comp, cid in zip(comps, o["ids"], strict=True):
        label = min(index[k] for k in comp)
        ids[label] = cid
        for k in comp:
            component[index[k]] = label
    return Target(keys, previous, component, ids, set(o["created"]), dict(o["merges"]),
                  dict(o["splits"]), links, sorted(o["generic"]),
                  [Violation(*v) for v in o["violations"]], Counter(len(c) for c in comps), removed)
