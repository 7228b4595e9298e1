"""People's decisions as constraints: cannot-links from Unlink and Split, must-links from Link and review.

An agent or analyst who unlinks two identifiers, splits a customer, links a pair by hand or
judges a `possible` link in the review queue gives the most reliable evidence the graph ever
gets. Each such decision is a `Constraint` (kept with actor, reason and time, withdrawn only with
the same audit), and the customer rules (`identity_graph.rules.decide`) honour it on every path:
online calls, ingest and the nightly relink.

Split: the constraint set stays small. Each link the split cut whose ends land in different
parts becomes a cannot-link of its two ends. A cannot-link binds customers, not only the pair (no
customer may hold both ends), so any later path that re-joins the two sides is refused at its
weakest link. Parts that no cut link joined directly (a detached bridge leaves its two former
neighbours' groups apart) get one more cannot-link between their anchors (an end of a cut link in
the part, else its smallest key), so every two parts stay apart: at most cut links + parts²
constraints, whatever the size of the customer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from identity_graph.model import Constraint, ConstraintKind, Event, Link

REVIEW_SOURCE = "review"
"""The source of a link a person accepted from the review queue (kind `probable`: a person's
judgement is no proof of who holds an identifier)."""


@dataclass(frozen=True)
class ReviewItem:
    """One `possible` link in the review queue, with the customers of its two ends."""

    link: Link
    customer_a: str
    customer_b: str
    waterfall: Mapping[str, Any] | None = None
    """The prior and each comparison's bits (`engine.waterfall` form): the link's own, else
    the pair scored now by the server's model; None without either."""


def cannot_link(a: str, b: str, *, actor: str, reason: str, origin: str, at: datetime) -> Constraint:
    return Constraint(ConstraintKind.CANNOT_LINK, a, b, actor=actor, reason=reason, origin=origin,
                      created_at=at)


def must_link(link: Link, *, actor: str, reason: str, origin: str, at: datetime) -> Constraint:
    return Constraint(ConstraintKind.MUST_LINK, link.a, link.b, actor=actor, reason=reason,
                      origin=origin, link_id=link.id, created_at=at)


def split_constraints(parts: Sequence[Iterable[str]], cut: Iterable[Link], *, actor: str,
                      reason: str, at: datetime) -> list[Constraint]:
    """The cannot-links that keep the parts of a split apart (see the module docstring)."""
    part_of = {k: i for i, members in enumerate(parts) for k in members}
    pairs: dict[tuple[str, str], None] = {}
    joined: set[tuple[int, int]] = set()
    anchors: dict[int, str] = {}
    for lk in sorted(cut, key=lambda lk: (lk.a, lk.b)):
        pa, pb = part_of.get(lk.a), part_of.get(lk.b)
        if pa is None or pb is None or pa == pb:
            continue
        pairs[(lk.a, lk.b)] = None
        joined.add((min(pa, pb), max(pa, pb)))
        anchors.setdefault(pa, lk.a)
        anchors.setdefault(pb, lk.b)
    for i, members in enumerate(parts):
        anchors.setdefault(i, min(members))
    for i in range(len(parts)):
        for j in range(i + 1, len(parts)):
            if (i, j) not in joined:
                x, y = sorted((anchors[i], anchors[j]))
                pairs[(x, y)] = None
    return [cannot_link(x, y, actor=actor, reason=reason, origin="split", at=at) for x, y in pairs]


def apart_from(key: str, constraints: Iterable[Constraint]) -> set[str]:
    """The identifiers a person set apart from `key` (active cannot-links)."""
    return {c.b if c.a == key else c.a for c in constraints
            if c.active and c.kind is ConstraintKind.CANNOT_LINK and key in c.pair}


def pairs_of(constraints: Iterable[Constraint], kind: ConstraintKind) -> set[tuple[str, str]]:
    return {c.pair for c in constraints if c.active and c.kind is kind}


def conflicts(side_a: Iterable[str], side_b: Iterable[str],
              constraints: Iterable[Constraint]) -> list[Constraint]:
    """Active cannot-links with one end on each side."""
    sa, sb = set(side_a), set(side_b)
    return [c for c in constraints if c.active and c.kind is ConstraintKind.CANNOT_LINK
            and ((c.a in sa and c.b in sb) or (c.a in sb and c.b in sa))]


def constraint_event(c: Constraint) -> Event:
    return Event("constraint", {"constraint_id": c.id, "kind": c.kind.value, "a": c.a, "b": c.b,
                                "origin": c.origin, "link_id": c.link_id, "actor": c.actor,
                                "reason": c.reason}, "", c.created_at)


def withdrawal_event(c: Constraint, at: datetime, actor: str, reason: str) -> Event:
    return Event("constraint_withdrawn", {"constraint_id": c.id, "kind": c.kind.value, "a": c.a,
                                          "b": c.b, "actor": actor, "reason": reason}, "", at)
