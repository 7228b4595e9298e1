"""`graph.review`: the people's side: the queue of `possible` links, a person's verdict on one, and
the constraints (must-link, cannot-link) that people's decisions leave (`identity_graph.decisions`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from identity_graph import decisions
from identity_graph.errors import FailedPrecondition, InvalidArgument, NotFound
from identity_graph.model import ChangeSet, Constraint, Link, LinkKind

from ._core import Namespace, with_seqs
from ._types import ReviewResult, waterfall


class Review(Namespace):
    """The review queue and people's constraints; what the ReviewService serves."""

    def constraints(self, ref: str = "", *, include_withdrawn: bool = False) -> list[Constraint]:
        """People's decisions, oldest first: every one, or those touching a customer (a
        customer id, alias or identifier key)."""
        def read() -> list[Constraint]:
            if not ref:
                return self._core.store.constraints(None, include_withdrawn)
            keys = self._core.store.members(self._graph.customers.id_of(ref)) \
                if ref.startswith("cus_") else [self._core.key(ref, "ref")]
            return self._core.store.constraints(keys, include_withdrawn)

        return self._core.read(read)

    def withdraw_constraint(self, constraint_id: str, *, actor: str, reason: str) -> Constraint:
        """Withdraws a person's decision (with the same audit). A withdrawn cannot-link lets the
        pair link again; a withdrawn must-link leaves its link to the rules like any other.

        Raises:
            InvalidArgument: no actor or reason.
            NotFound: no such constraint.
            FailedPrecondition: it was withdrawn already.
        """
        if not constraint_id:
            raise InvalidArgument("constraint_id", "is required")
        if not actor:
            raise InvalidArgument("actor", "say who withdraws it")
        if not reason:
            raise InvalidArgument("reason", "say why it is withdrawn")
        self._core.labels(actor=actor, reason=reason, constraint_id=constraint_id)
        with self._core.write_lock:
            c = self._core.store.constraints_by_id([constraint_id]).get(constraint_id)
            if c is None:
                raise NotFound(f"unknown constraint {constraint_id}")
            if not c.active:
                raise FailedPrecondition(f"constraint {constraint_id} was withdrawn already")
            now = self._core.clock()
            cs = ChangeSet()
            self._core.withdraw(cs, c, now, actor, reason)
            self._core.store.apply(cs)
        return replace(c, withdrawn_at=now, withdrawn_by=actor, withdrawal_reason=reason)

    def queue(self, customer: str = "", *, by_score: bool = False, limit: int = 50,
              offset: int = 0) -> tuple[list[decisions.ReviewItem], int]:
        """A page of the `possible` links (kept, not merging) waiting for a person, oldest first
        or highest probability first, of every customer or of one; and how many there are."""
        if limit <= 0 or limit > 1000:
            raise InvalidArgument("page_size", "must be between 1 and 1000")
        if offset < 0:
            raise InvalidArgument("page_token", "not a token this server gave")

        def read() -> tuple[list[decisions.ReviewItem], int]:
            if customer:
                members = self._core.store.members(self._graph.customers.id_of(customer))
                found = sorted({lk.id: lk for lk in self._core.store.links(members)
                                if lk.kind is LinkKind.POSSIBLE}.values(),
                               key=lambda lk: (-(lk.probability or 0), lk.created_at, lk.id) if by_score
                               else (lk.created_at, lk.id))
                links, total = found[offset:offset + limit], len(found)
            else:
                links, total = self._core.store.active_links_of_kind(
                    LinkKind.POSSIBLE, by_score=by_score, limit=limit, offset=offset)
            nodes = self._core.store.get_identifiers({k for lk in links for k in (lk.a, lk.b)})
            items = [decisions.ReviewItem(lk, (nodes[lk.a].customer_id or "") if lk.a in nodes else "",
                                          (nodes[lk.b].customer_id or "") if lk.b in nodes else "",
                                          self._waterfall_of(lk))
                     for lk in links]
            return items, total

        return self._core.read(read)

    def _waterfall_of(self, lk: Link) -> Mapping[str, Any] | None:
        """The link's stored waterfall, else the pair scored now by this engine's model (batch
        links keep only the comparison levels)."""
        if lk.comparisons and "comparisons" in lk.comparisons:
            return lk.comparisons
        if self._core.scorer is None:
            return None
        records = self._graph.resolve.candidate_records([lk.a, lk.b])
        [score] = self._core.scorer.score({**records[lk.a], "unique_id": lk.a},
                                          [{**records[lk.b], "unique_id": lk.b}])
        return waterfall(score)

    def _queued(self, link_id: str, actor: str, reason: str) -> Link:
        if not link_id:
            raise InvalidArgument("link_id", "is required")
        if not actor:
            raise InvalidArgument("actor", "say who decides")
        self._core.labels(actor=actor, reason=reason, link_id=link_id)
        found = self._core.store.links_by_id([link_id])
        if not found:
            raise NotFound(f"unknown link {link_id}")
        lk = found[0]
        if not lk.active or lk.kind is not LinkKind.POSSIBLE:
            state = "removed" if not lk.active else lk.kind.label
            raise FailedPrecondition(f"link {link_id} is not in the review queue (it is {state})")
        return lk

    def accept(self, link_id: str, *, actor: str, reason: str = "") -> ReviewResult:
        """A person judges a `possible` link to be one person: it becomes a `probable` link of
        source `review` with the same waterfall, fixed by a must-link. It merges, but discloses
        only as `probable` (a person's judgement is no proof of who holds an identifier).

        Raises:
            NotFound: no such link. FailedPrecondition: it is not in the queue, or a person set
            the two customers apart.
        """
        with self._core.write_lock:
            old = self._queued(link_id, actor, reason)
            now = self._core.clock()
            new = Link(old.a, old.b, LinkKind.PROBABLE, source=decisions.REVIEW_SOURCE,
                       event_id=old.id, model_version=old.model_version, probability=old.probability,
                       match_weight=old.match_weight, comparisons=old.comparisons, created_at=now,
                       actor=actor)
            cs = ChangeSet(links_added=self._core.store.revise([new]),
                           links_removed=[(old.id, now, actor, f"accepted in review: {reason}".rstrip(": "))])
            self._core.decide_must(cs, cs.links_added[0] if cs.links_added else new, actor,
                                   reason or "accepted in review", "review", now)
            outcome = self._core.settle(cs, {old.a, old.b}, set(), now, actor)
            seqs = self._core.store.apply(cs)
        return ReviewResult(outcome.links, outcome.violations, sorted(set(outcome.assignment.values())),
                            with_seqs(cs.events, seqs),
                            cs.constraints_added[-1] if cs.constraints_added else None)

    def reject(self, link_id: str, *, actor: str, reason: str = "") -> ReviewResult:
        """A person judges a `possible` link to be two people: it is removed and the pair
        becomes a cannot-link, so no scorer or relink proposes it again.

        Raises:
            NotFound: no such link. FailedPrecondition: it is not in the queue.
        """
        with self._core.write_lock:
            old = self._queued(link_id, actor, reason)
            now = self._core.clock()
            cs = ChangeSet(links_removed=[(old.id, now, actor, f"rejected in review: {reason}".rstrip(": "))])
            self._core.add_constraints(cs, [decisions.cannot_link(
                old.a, old.b, actor=actor, reason=reason or "rejected in review", origin="review",
                at=now)])
            outcome = self._core.settle(cs, {old.a, old.b}, set(), now, actor)
            seqs = self._core.store.apply(cs)
        return ReviewResult(outcome.links, outcome.violations, sorted(set(outcome.assignment.values())),
                            with_seqs(cs.events, seqs),
                            cs.constraints_added[-1] if cs.constraints_added else None)
