"""People's decisions in the nightly relink: the constraints the cluster step honours, the labels
training takes from them, and the report's count of the review queue and of recent decisions.

The relink reads the snapshot's `constraints` table (every decision, withdrawn ones too) and:

- hands active cannot-links and must-links to `identity_graph.rules.decide` (a cannot-linked
  pair is never re-created, and no component joins its two ends; a must-link is a fixed edge);
- proposes each must-link's own link as it is (a review-accepted `probable` link is not re-scored,
  and no batch link of the same pair is proposed beside it);
- gives training positive labels (must-links) and negative labels (cannot-links) next to the
  verified/equivalent components (`label_pairs`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batch.steps.types import Snapshot, Target

ACTIVE = "withdrawn_at IS NULL"


@dataclass
class People:
    """The active decisions of a snapshot."""

    cannot: set[tuple[str, str]] = field(default_factory=set)
    must: set[tuple[str, str]] = field(default_factory=set)
    must_link_ids: set[str] = field(default_factory=set)


def people(snap: Snapshot) -> People:
    out = People()
    for kind, a, b, link_id in snap.con.execute(
            f"SELECT kind, a, b, link_id FROM constraints WHERE {ACTIVE} ORDER BY a, b").fetchall():
        pair = (min(a, b), max(a, b))
        if kind == "cannot_link":
            out.cannot.add(pair)
        else:
            out.must.add(pair)
            if link_id:
                out.must_link_ids.add(link_id)
    return out


def must_links(snap: Snapshot, who: People) -> list[tuple[str, str, str, str, str]]:
    """(link id, a, b, kind, source) of the active stored links that must-links fix and that the
    relink would otherwise re-score (probable and possible ones)."""
    if not who.must_link_ids:
        return []
    return snap.con.execute(
        "SELECT link_id, a, b, kind, source FROM links WHERE kind IN ('probable', 'possible') "
        "AND link_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY a, b, link_id",
        [sorted(who.must_link_ids)]).fetchall()


def label_pairs(snap: Snapshot) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(positive, negative) pairs of records that people decided: must-links (a person's link, a
    review accepted) and cannot-links (an unlink, a split, a review rejected), active ones whose
    two ends carry records."""
    rows = snap.con.execute(f"""
        SELECT kind, a, b FROM constraints
        WHERE {ACTIVE} AND a IN (SELECT unique_id FROM records) AND b IN (SELECT unique_id FROM records)
        ORDER BY a, b""").fetchall()
    positive = [(a, b) for kind, a, b in rows if kind == "must_link"]
    negative = [(a, b) for kind, a, b in rows if kind == "cannot_link"]
    return positive, negative


def report(snap: Snapshot, target: Target) -> dict[str, Any]:
    """The review queue after this run and people's decisions since the previous run."""
    from identity_graph.model import LinkKind

    last: datetime | None = snap.scalar('SELECT max("at") FROM relinks')
    since = "" if last is None else "created_at > ?"
    params = [] if last is None else [last]
    made = dict(snap.con.execute(
        f"SELECT kind || ' (' || origin || ')', count(*) FROM constraints "
        f"{'WHERE ' + since if since else ''} GROUP BY 1 ORDER BY 1", params).fetchall())
    withdrawn = int(snap.scalar(
        "SELECT count(*) FROM constraints WHERE withdrawn_at IS NOT NULL"
        + (" AND withdrawn_at > ?" if last is not None else ""), params))
    queue = sum(1 for lk in target.links.values() if lk.kind is LinkKind.POSSIBLE)
    active = dict(snap.con.execute(
        f"SELECT kind, count(*) FROM constraints WHERE {ACTIVE} GROUP BY kind").fetchall())
    return {
        "review_queue": queue,
        "since": None if last is None else last.isoformat(),
        "decisions_since_last_run": {k: int(v) for k, v in made.items()},
        "withdrawn_since_last_run": withdrawn,
        "active_constraints": {k: int(v) for k, v in sorted(active.items())},
        "violations_honoured": sum(1 for v in target.violations if v.kind == "cannot_link"),
    }
