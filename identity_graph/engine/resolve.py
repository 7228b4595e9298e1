"""`graph.resolve`: recognise the customer behind what one channel message presents.

The namespace is callable because resolving a request is the call almost every client makes:
`graph.resolve(request)`; the rest of it is `graph.resolve.without_waiting(request)` and
`graph.resolve.candidate_records(keys)`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from identity_graph import decisions
from identity_graph.attributes import clean_attributes
from identity_graph.errors import InvalidArgument
from identity_graph.guardrails import Violation
from identity_graph.identifiers import Identifier
from identity_graph.model import (
    ATTRIBUTES,
    ChangeSet,
    IdentifierUpsert,
    Link,
    LinkKind,
    Observation,
)
from identity_graph.records import records_of
from identity_graph.rules import blocked_violation
from identity_graph.writelock import try_read

from ._core import Core, Namespace, violation_event
from ._types import (
    CANDIDATE_LOOKUP_LIMIT,
    MAX_IDENTIFIERS_PER_CALL,
    PROOF_KINDS,
    SUPPRESSED_REASON,
    ResolveRequest,
    ResolveResult,
    waterfall,
)

if TYPE_CHECKING:
    from ._graph import IdentityGraph

log = logging.getLogger(__name__)


class Resolve(Namespace):
    """Resolve and what it reads: the fast read path, the write path, the online scorer's
    candidates."""

    def __init__(self, graph: IdentityGraph, core: Core) -> None:
        super().__init__(graph, core)
        self._stale_warned = False

    def __call__(self, req: ResolveRequest) -> ResolveResult:
        """Recognises the customer behind what a channel presents, linking what it proves.

        Raises:
            InvalidArgument: a bad identifier, attribute or proof (the field is named).
        """
        checked = self._checked(req)
        if isinstance(checked, ResolveResult):
            return checked
        idents, attributes, proven, violations = checked
        keys = [i.key for i in idents]
        # a refused value is written to the event log, so a call presenting one takes the write path
        blocked = any(v.kind == "blocked" for v in violations)
        fast = None if blocked else self._core.read(lambda: self._known(keys, attributes, proven))
        if fast is not None:
            return ResolveResult(fast[0], False, keys, [], violations, fast[1])

        return self._core.write(lambda: self._record(req, idents, attributes, proven, violations))

    def without_waiting(self, req: ResolveRequest) -> ResolveResult | None:
        """`graph.resolve(req)` when it is a read that needs neither a write nor a wait (a known
        identifier with nothing new, and no write under way): for a caller on an event loop,
        over a store whose reads take microseconds. None: call `graph.resolve` (in a worker
        thread).

        Raises:
            InvalidArgument: as `graph.resolve`.
        """
        checked = self._checked(req)
        if isinstance(checked, ResolveResult):
            return checked
        idents, attributes, proven, violations = checked
        if any(v.kind == "blocked" for v in violations):
            return None  # a refused value is written to the event log: the write path
        keys = [i.key for i in idents]
        fast = try_read(self._core.store.writes, lambda: self._known(keys, attributes, proven))
        if fast is None:
            return None
        return ResolveResult(fast[0], False, keys, [], violations, fast[1])

    def candidate_records(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """One record per identifier, built by the relink's own SQL (`identity_graph.records`)."""
        recs = records_of(self._core.store.observations(keys))
        return {k: {**dict.fromkeys(ATTRIBUTES), **recs.get(k, {})} for k in keys}

    def _checked(self, req: ResolveRequest) -> ResolveResult | tuple[
            list[Identifier], dict[str, str], str | None, list[Violation]]:
        """The request's identifiers (blocked and erased ones dropped), attributes, proven key
        and violations; or the result when nothing usable is left."""
        if not req.identifiers:
            raise InvalidArgument("identifiers", "at least one identifier is required")
        if len(req.identifiers) > MAX_IDENTIFIERS_PER_CALL:
            raise InvalidArgument("identifiers", f"at most {MAX_IDENTIFIERS_PER_CALL} per call")
        self._core.channel(req.channel)
        self._core.labels(channel=req.channel, source=req.source, event_id=req.event_id, actor=req.actor)
        idents: list[Identifier] = []
        for i, (type_, value) in enumerate(req.identifiers):
            ident = self._core.identifier(type_, value, f"identifiers[{i}]")
            if ident not in idents:
                idents.append(ident)
        attributes = clean_attributes(req.attributes)
        proven: str | None = None
        if req.proof is not None:
            if req.proof.kind not in PROOF_KINDS:
                raise InvalidArgument("proof.kind", f"one of {', '.join(PROOF_KINDS)}")
            proven = self._core.key(req.proof.identifier, "proof.identifier")
            if proven not in {i.key for i in idents}:
                raise InvalidArgument("proof.identifier", "must be one of the presented identifiers")

        violations = [
            blocked_violation(i.key)
            for i in idents
            if self._core.config.is_blocked(i.key)
        ]
        blocked = {v.key for v in violations}
        idents = [i for i in idents if i.key not in blocked]
        if not idents:
            return ResolveResult(None, False, [], [], violations, {})
        # Known identifiers exist, so none of them was erased (an erasure deletes them): the
        # suppression list is consulted on the write path only, under the region's locks.
        return idents, attributes, proven, violations

    def _known(
        self, keys: list[str], attributes: dict[str, str], proven: str | None
    ) -> tuple[str, dict[str, LinkKind | None]] | None:
        """Read-only path: known identifiers of one customer, nothing new to record."""
        if attributes or proven:
            return None
        subgraph = None
        if len(keys) == 1:  # the common case: the node and its customer's subgraph in one read
            node, subgraph = self._core.store.identifier_subgraph(keys[0])
            nodes = {} if node is None else {node.key: node}
        else:
            nodes = self._core.store.get_identifiers(keys)
        if len(nodes) != len(keys):
            return None
        cids = {n.customer_id for n in nodes.values()}
        if len(cids) != 1 or None in cids:
            return None
        now = self._core.clock()
        granularity = self._core.config.last_seen_granularity_s
        if any((now - n.last_seen).total_seconds() > granularity for n in nodes.values()):
            return None
        if len(keys) > 1 and not self._already_linked(keys):
            return None
        return next(iter(cids)), self._core.assurance(nodes[keys[0]], None, subgraph)  # type: ignore[return-value]

    def _already_linked(self, keys: list[str]) -> bool:
        """Whether the anchor's claims of `keys[1:]` are on record already (a link of another
        kind, or an observed link claimed by the anchor: the others' claims are not its own)."""
        anchor = keys[0]
        linked = {
            lk.other(anchor)
            for lk in self._core.store.links([anchor])
            if lk.kind is not LinkKind.OBSERVED or lk.claimant == anchor
        }
        return all(k in linked for k in keys[1:])

    def _record(
        self,
        req: ResolveRequest,
        idents: list[Identifier],
        attributes: dict[str, str],
        proven: str | None,
        violations: list[Violation],
    ) -> ResolveResult:
        existing = self._core.lock(i.key for i in idents)
        if self._core.suppressed is not None:  # privacy: an erased identifier is dropped, named by type only
            erased = [i for i in idents if self._core.suppressed(i.key)]
            violations = violations + [Violation("suppressed", f"{i.type}:", SUPPRESSED_REASON)
                                       for i in erased]
            idents = [i for i in idents if i not in erased]
            if not idents:
                return ResolveResult(None, False, [], [], violations, {})
        now = self._core.clock()
        anchor = idents[0].key
        source = req.source or req.channel or "resolve"
        observations = tuple(
            Observation(anchor, name, value, source, req.channel, now) for name, value in attributes.items()
        )
        cs = ChangeSet()
        for ident in idents:
            cs.identifiers.append(
                IdentifierUpsert(
                    ident.key, ident.type, ident.value, now, observations if ident.key == anchor else ()
                )
            )

        def evidence(a: str, b: str, kind: LinkKind, **kw: Any) -> Link:
            return Link(
                a,
                b,
                kind,
                source=source,
                channel=req.channel,
                event_id=req.event_id,
                created_at=now,
                actor=req.actor or source,
                **kw,
            )

        pending: list[Link] = []
        trusted = self._core.config.is_trusted(source)
        for ident in idents[1:]:
            kind = LinkKind.VERIFIED if trusted else LinkKind.OBSERVED
            if proven is not None and proven in (anchor, ident.key):
                kind = LinkKind.VERIFIED
            # The anchor is held (the message came in through it); the rest is its claim.
            pending.append(evidence(anchor, ident.key, kind, claimant=anchor))
        presented = {i.key for i in idents}
        for ident in idents:
            for eq in self._core.types.equivalents(ident):
                if eq.key in presented or self._core.store.get_identifier(eq.key) is not None:
                    pending.append(evidence(ident.key, eq.key, LinkKind.EQUIVALENT))
        if attributes and self._core.scorer is not None:
            pending.extend(self._probabilistic(anchor, attributes, evidence))
        # Drop links that exist already with the same evidence kind between the same keys.
        known = {(lk.a, lk.b, lk.kind, lk.claimant) for lk in self._core.store.links(presented)}
        fresh: dict[str, Link] = {}
        for lk in pending:
            if (lk.a, lk.b, lk.kind, lk.claimant) not in known:
                fresh.setdefault(lk.id, lk)
        cs.links_added = self._core.store.revise(fresh.values())
        fresh = {lk.id: lk for lk in cs.links_added}

        new_keys = {k for k in presented if k not in existing}
        outcome = self._core.settle(
            cs,
            seeds=presented | {lk.a for lk in fresh.values()} | {lk.b for lk in fresh.values()},
            new_keys=new_keys,
            now=now,
            actor=req.actor or source,
        )
        cs.events.extend(violation_event(v, now) for v in violations if v.kind == "blocked")
        self._core.store.apply(cs)
        cid = outcome.assignment.get(anchor) or (existing[anchor].customer_id if anchor in existing else None)
        is_new = all(k not in outcome.region.nodes for k in outcome.components_of(anchor))
        return ResolveResult(
            customer_id=cid,
            is_new=is_new,
            identifiers=[i.key for i in idents],
            links=outcome.links,
            violations=violations + outcome.violations,
            assurance=outcome.assurance_from(anchor),
            merged=[r for m in outcome.ids.merges for r in m.retired],
        )

    def _probabilistic(
        self, anchor: str, attributes: dict[str, str], evidence: Callable[..., Link]
    ) -> list[Link]:
        assert self._core.scorer is not None
        # every attribute, custom ones included: the model compares whatever columns it has
        record: dict[str, Any] = {**dict.fromkeys(ATTRIBUTES), **attributes}
        record["unique_id"] = anchor
        known = self.candidate_records([anchor])[anchor]  # earlier observations fill the gaps
        for name, value in known.items():
            if record.get(name) is None:
                record[name] = value
        wanted = set(self._core.scorer.blocking_keys(record))
        found, exact = self._candidates(record)
        found.discard(anchor)
        found -= decisions.apart_from(anchor, self._core.store.constraints([anchor]))  # people said no
        if not found:
            return []
        if exact:  # the index's rows are the rules' keys: nothing to check, read only the first
            ranked = sorted(found)[: self._core.config.max_candidates]
            records = self.candidate_records(ranked)
        else:
            records = self.candidate_records(sorted(found))
            ranked = [
                k
                for k in sorted(found)
                if wanted & set(self._core.scorer.blocking_keys({**records[k], "unique_id": k}))
            ][: self._core.config.max_candidates]
        if not ranked:
            return []
        scores = self._core.scorer.score(record, [{**records[k], "unique_id": k} for k in ranked])
        links = []
        for key, s in zip(ranked, scores, strict=True):
            if s.match_probability >= self._core.config.link_threshold:
                kind = LinkKind.PROBABLE
            elif s.match_probability >= self._core.config.review_threshold:
                kind = LinkKind.POSSIBLE
            else:
                continue
            links.append(
                evidence(
                    anchor,
                    key,
                    kind,
                    model_version=self._core.scorer.version,
                    probability=float(s.match_probability),
                    match_weight=float(s.match_weight),
                    comparisons=waterfall(s),
                )
            )
        return links

    def _candidates(self, record: dict[str, Any]) -> tuple[set[str], bool]:
        """Keys that share a blocking rule's key with `record`, and whether exactly those: one
        probe per rule of the store's blocking index, or (index stale) attribute lookups per
        rule, a superset to check."""
        assert self._core.scorer is not None
        index = self._core.store.blocking
        if index is not None and index.scorer is self._core.scorer:
            # one more per probe: the anchor itself may be among them
            keys = self._core.store.blocking_candidates(index.probes(record),
                                                        self._core.config.max_candidates + 1)
            if keys is not None:
                return set(keys), True
            if not self._stale_warned:
                self._stale_warned = True
                log.warning("blocking index stale (observations written by a process without the "
                            "model); candidates by attribute lookups until the next rebuild")
        found: set[str] = set()
        for conditions in self._core.scorer.blocking_lookups(record):
            # Every part of the rule that a store can look up, so a common surname alone does
            # not bring thousands of candidates; the whole rule is checked after.
            found.update(self._core.store.keys_matching(conditions, limit=CANDIDATE_LOOKUP_LIMIT,
                                                        enough=self._core.config.max_candidates))
        return found, False
