"""`graph.links`: explicit links and their removal, generic identifiers, and splits.

Each write here goes through the core's one write path (`Core.write`, `Core.settle`), under the
same guardrails as Resolve; a person's link, unlink or split also records a constraint
(`identity_graph.decisions`) that no rule and no relink undoes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import replace

from identity_graph import decisions
from identity_graph.errors import FailedPrecondition, InvalidArgument, NotFound
from identity_graph.guardrails import Violation, type_of
from identity_graph.model import (
    ChangeSet,
    ConstraintKind,
    IdentifierUpsert,
    Link,
    LinkKind,
)
from identity_graph.rules import blocked_violation

from ._core import Namespace, Outcome, parts_of, violation_event, with_seqs
from ._types import (
    MAX_IDENTIFIERS_PER_CALL,
    SUPPRESSED_REASON,
    ChangeResult,
    SplitPlan,
    UnlinkResult,
)


class Links(Namespace):
    """Writes that add, remove or reweigh links, and their previews."""

    def add(
        self,
        a: str,
        b: str,
        kind: LinkKind,
        *,
        source: str,
        actor: str,
        channel: str = "",
        event_id: str = "",
        model_version: str = "",
        probability: float | None = None,
        match_weight: float | None = None,
        claimant: str = "",
        by_person: bool = False,
        reason: str = "",
    ) -> ChangeResult:
        """Adds one link with its evidence, under the same guardrails as Resolve.

        An `observed` link from a trusted source (`GraphConfig.trusted_sources`) is recorded as
        `verified`; `claimant` (a or b) says which end asserted it, empty for both. With
        `by_person` (an agent or analyst decided) it is also a must-link: a fixed edge that no
        rule and no relink undoes (`identity_graph.decisions`).

        Raises:
            FailedPrecondition: `by_person`, and a person set the two customers apart.
        """
        a, b = self._core.key(a, "a"), self._core.key(b, "b")
        if claimant:
            claimant = self._core.key(claimant, "claimant")
            if claimant not in (a, b):
                raise InvalidArgument("claimant", "must be a or b")
        if kind is LinkKind.OBSERVED and self._core.config.is_trusted(source):
            kind = LinkKind.VERIFIED
        if a == b:
            raise InvalidArgument("b", "an identifier cannot link to itself")
        if channel:  # where the pair was seen, if anywhere
            self._core.channel(channel)
        self._core.labels(source=source, actor=actor, channel=channel, event_id=event_id,
                          model_version=model_version, reason=reason)
        if by_person and not kind.merges:
            raise InvalidArgument("kind", "a person's link (by_person) must be a merging kind")
        if kind in (LinkKind.PROBABLE, LinkKind.POSSIBLE) and probability is None:
            raise InvalidArgument("probability", f"a {kind.label} link needs a probability")
        if probability is not None and not 0 <= probability <= 1:
            raise InvalidArgument("probability", "must be between 0 and 1")
        if match_weight is not None and not math.isfinite(match_weight):
            raise InvalidArgument("match_weight", "must be a finite number")
        for k in (a, b):
            if self._core.config.is_blocked(k):
                refused = blocked_violation(k, b if k == a else a)
                self._core.write(lambda v=refused: self._core.store.apply(
                    ChangeSet(events=[violation_event(v, self._core.clock())])))
                return ChangeResult([], [refused], [], [])
        now = self._core.clock()

        def write() -> tuple[Outcome, ChangeSet, list[int]] | ChangeResult:
            existing = self._core.lock([a, b])
            for k in (a, b):  # privacy: erased, never relinked (checked under the region's locks)
                if self._core.suppressed is not None and self._core.suppressed(k):
                    erased = Violation("suppressed", f"{type_of(k)}:", SUPPRESSED_REASON)
                    return ChangeResult([], [erased], [], [])
            cs = ChangeSet()
            for k in (a, b):
                if k not in existing:
                    ident = self._core.types.parse(k)
                    cs.identifiers.append(IdentifierUpsert(k, ident.type, ident.value, now))
            cs.links_added.append(
                Link(
                    a,
                    b,
                    kind,
                    source=source,
                    channel=channel,
                    event_id=event_id,
                    model_version=model_version,
                    probability=probability,
                    match_weight=match_weight,
                    created_at=now,
                    actor=actor,
                    claimant=claimant,
                )
            )
            asked = cs.links_added[0]
            cs.links_added = self._core.store.revise(cs.links_added)
            if by_person:
                made = cs.links_added[0] if cs.links_added else asked
                self._core.decide_must(cs, made, actor, reason or "linked by a person", "link", now)
            outcome = self._core.settle(cs, {a, b}, {k for k in (a, b) if k not in existing}, now, actor)
            return outcome, cs, self._core.store.apply(cs)

        written = self._core.write(write)
        if isinstance(written, ChangeResult):
            return written
        outcome, cs, seqs = written
        return ChangeResult(
            outcome.links,
            outcome.violations,
            sorted(set(outcome.assignment.values())),
            with_seqs(cs.events, seqs),
        )

    def remove(
        self, a: str, b: str, *, actor: str, reason: str = "", kinds: Iterable[LinkKind] | None = None
    ) -> UnlinkResult:
        """Unlinks: records the removal of the active links between `a` and `b` (of `kinds`,
        default all), and a person's cannot-link of the pair.

        Raises:
            NotFound: no such active link.
        """
        def write() -> tuple[UnlinkResult, ChangeSet, list[int]]:
            result, cs = self._plan_remove(a, b, actor, reason, kinds)
            return result, cs, self._core.store.apply(cs)

        result, cs, seqs = self._core.write(write)
        return replace(result, events=with_seqs(cs.events, seqs))

    def preview_remove(
        self, a: str, b: str, *, actor: str = "", reason: str = "", kinds: Iterable[LinkKind] | None = None
    ) -> UnlinkResult:
        """What `remove` would do (its events without seq), written nowhere."""
        return self._core.read(lambda: self._plan_remove(a, b, actor, reason, kinds)[0])

    def _plan_remove(
        self, a: str, b: str, actor: str, reason: str, kinds: Iterable[LinkKind] | None
    ) -> tuple[UnlinkResult, ChangeSet]:
        a, b = self._core.key(a, "a"), self._core.key(b, "b")
        wanted = set(kinds) if kinds else set(LinkKind)
        now = self._core.clock()
        self._core.lock([a, b])
        found = [lk for lk in self._core.store.links([a]) if lk.other(a) == b and lk.kind in wanted]
        if not found:
            raise NotFound(f"no active link between {a} and {b}")
        cs = ChangeSet(links_removed=[(lk.id, now, actor, reason) for lk in found])
        # A person said these are two people: a cannot-link, superseding a must-link of the pair.
        for c in self._core.store.constraints([a]):
            if c.pair == tuple(sorted((a, b))) and c.kind is ConstraintKind.MUST_LINK:
                self._core.withdraw(cs, c, now, actor, "superseded: unlinked by a person")
        self._core.add_constraints(cs, [decisions.cannot_link(
            a, b, actor=actor, reason=reason or "unlinked by a person", origin="unlink", at=now)])
        outcome = self._core.settle(cs, {a, b}, set(), now, actor)
        result = UnlinkResult(
            found,
            outcome.violations,
            sorted(set(outcome.assignment.values())),
            list(cs.events),
            parts_of(outcome),
        )
        return result, cs

    def set_generic(self, key: str, generic: bool, *, actor: str) -> ChangeResult:
        """Marks an identifier shared by different people: it keeps its links but carries no merge."""
        key = self._core.key(key, "identifier")
        now = self._core.clock()

        def write() -> tuple[Outcome, ChangeSet, list[int]]:
            if key not in self._core.lock([key]):
                raise NotFound(f"unknown identifier {key}")
            cs = ChangeSet(generic={key: generic})
            outcome = self._core.settle(cs, {key}, set(), now, actor)
            return outcome, cs, self._core.store.apply(cs)

        outcome, cs, seqs = self._core.write(write)
        return ChangeResult(
            [], outcome.violations, sorted(set(outcome.assignment.values())), with_seqs(cs.events, seqs)
        )

    # ---- splits -----------------------------------------------------------------------------

    def preview_split(
        self, *, cut: Sequence[tuple[str, str]] = (), detach: Sequence[str] = (), actor: str = ""
    ) -> SplitPlan:
        """The customers that cutting links / detaching identifiers would leave, written nowhere.

        Raises:
            InvalidArgument: nothing to cut, or a malformed key.
            NotFound: an unknown identifier or link.
            FailedPrecondition: the cut spans several customers, or leaves the customer whole.
        """
        return self._core.read(lambda: self._preview_split(cut, detach, actor))

    def _preview_split(
        self, cut: Sequence[tuple[str, str]], detach: Sequence[str], actor: str
    ) -> SplitPlan:
        if not cut and not detach:
            raise InvalidArgument("cut", "name links to cut or identifiers to detach")
        for name, named in (("cut", cut), ("detach", detach)):
            if len(named) > MAX_IDENTIFIERS_PER_CALL:
                raise InvalidArgument(name, f"at most {MAX_IDENTIFIERS_PER_CALL} per call")
        now = self._core.clock()
        pairs = [(self._core.key(a, f"cut[{i}].a"), self._core.key(b, f"cut[{i}].b"))
                 for i, (a, b) in enumerate(cut)]
        detached = [self._core.key(k, f"detach[{i}]") for i, k in enumerate(detach)]
        touched = {k for p in pairs for k in p} | set(detached)
        nodes = self._core.lock(touched)
        missing = sorted(touched - set(nodes))
        if missing:
            raise NotFound(f"unknown identifier {missing[0]}")
        owners = {n.customer_id for n in nodes.values()}
        if len(owners) != 1:
            raise FailedPrecondition("a split works within one customer")
        original = next(iter(owners)) or ""
        removed: list[Link] = []
        for a, b in pairs:
            found = [lk for lk in self._core.store.links([a]) if lk.other(a) == b]
            if not found:
                raise NotFound(f"no active link between {a} and {b}")
            removed.extend(found)
        for k in detached:
            removed.extend(lk for lk in self._core.store.links([k]) if lk.kind.merges)
        cs = ChangeSet(
            links_removed=[(lk.id, now, actor, "split") for lk in {lk.id: lk for lk in removed}.values()]
        )
        outcome = self._core.settle(cs, touched, set(), now, actor, leaving=frozenset(detached))
        parts = parts_of(outcome)
        if len(parts) < 2:
            raise FailedPrecondition("the cut leaves the customer in one piece")
        self._core.add_constraints(cs, decisions.split_constraints(
            [p.members for p in parts], removed, actor=actor, reason=f"split by {actor or 'a person'}",
            at=now))
        return SplitPlan(
            original,
            parts,
            list({lk.id: lk for lk in removed}.values()),
            cs,
        )

    def split(
        self, *, cut: Sequence[tuple[str, str]] = (), detach: Sequence[str] = (), actor: str
    ) -> SplitPlan:
        """Does what `preview_split` shows, in one write.

        Raises:
            As `preview_split`.
        """
        def write() -> SplitPlan:
            plan = self.preview_split(cut=cut, detach=detach, actor=actor)
            self._core.store.apply(plan.changes)
            return plan

        return self._core.write(write)
