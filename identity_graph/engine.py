"""`IdentityGraph`: online resolution, linking, splits and explanations over one `GraphStore`.

Every write follows one path: build the pending links, `_settle` the affected region (guardrails,
components, stable ids, events) in memory, then `store.apply` the whole change set in one
transaction. Each write runs in one database transaction that first locks its region in the
database (`identity_graph.regionlock`) and reads it under those locks, so concurrent calls through
any number of servers on one database end in the same components as a serial run; within one
process, writers also queue on one lock first (an optimisation). Reads take no lock.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, TypeVar

from identity_graph import decisions
from identity_graph.attributes import clean_attributes
from identity_graph.blocking import BlockingIndex
from identity_graph.components import (
    IdAssignment,
    new_customer_id,
)
from identity_graph.config import GraphConfig
from identity_graph.errors import FailedPrecondition, InvalidArgument, NotFound
from identity_graph.guardrails import Violation, type_of
from identity_graph.identifiers import Identifier, IdentifierTypes
from identity_graph.limits import check_text
from identity_graph.model import (
    ATTRIBUTES,
    AttributeMatch,
    ChangeSet,
    Constraint,
    ConstraintKind,
    Customer,
    Event,
    IdentifierNode,
    IdentifierUpsert,
    Link,
    LinkKind,
    Observation,
    utcnow,
)
from identity_graph.paths import bottleneck, widest_paths
from identity_graph.records import records_of
from identity_graph.region_data import RegionObservations
from identity_graph.regionlock import RegionLocks, names_of
from identity_graph.rules import Region, Rules, blocked_violation, decide
from identity_graph.store.base import MAX_TRAVERSAL, GraphStore
from identity_graph.writelock import WriteLock, read_consistently, try_read

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_IDENTIFIERS_PER_CALL = 20
PROOF_KINDS = ("login", "otp", "handoff")
CANDIDATE_LOOKUP_LIMIT = 500
CHANNEL_OF_TYPE = {"web_cookie": "web", "phone": "sms", "whatsapp": "whatsapp", "email": "email"}
SUPPRESSED_REASON = "an erased identifier is not recorded again"


class Scorer(Protocol):
    """What the engine needs from a match model (`identity_graph.matching.OnlineScorer`)."""

    @property
    def version(self) -> str: ...

    def blocking_keys(self, record: Mapping[str, Any]) -> list[tuple[str, str]]: ...

    def blocking_lookups(self, record: Mapping[str, Any]) -> list[list[AttributeMatch]]: ...

    def score(self, record: Mapping[str, Any], candidates: Sequence[Mapping[str, Any]]) -> list[Any]: ...


def waterfall(score: Any) -> dict[str, Any]:
    """A pair score's evidence as stored on a link: the prior and each comparison's bits."""
    return {
        "prior_match_weight": score.prior_match_weight,
        "comparisons": [{"name": c.comparison, "level": c.level, "bits": c.bits} for c in score.comparisons],
    }


# ---- requests and results -------------------------------------------------------------------


@dataclass(frozen=True)
class Proof:
    """Proof, at this moment, that the caller controls `identifier` (a key, normalised or not)."""

    kind: str
    identifier: str
    reference: str = ""


@dataclass(frozen=True)
class ResolveRequest:
    """What one channel message presents. The first identifier is the one it came in through."""

    channel: str
    identifiers: Sequence[tuple[str, str]]
    attributes: Mapping[str, str] = field(default_factory=dict)
    proof: Proof | None = None
    source: str = ""
    event_id: str = ""
    actor: str = ""


@dataclass(frozen=True)
class ResolveResult:
    customer_id: str | None
    is_new: bool
    identifiers: list[str]
    links: list[Link]
    violations: list[Violation]
    assurance: dict[str, LinkKind | None]
    merged: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ChangeResult:
    links: list[Link]
    violations: list[Violation]
    customer_ids: list[str]
    events: list[Event]


@dataclass(frozen=True)
class ReviewResult(ChangeResult):
    """A review decision's outcome, with the constraint it recorded."""

    constraint: Constraint | None = None


@dataclass(frozen=True)
class CustomerView:
    customer_id: str
    created_at: datetime
    aliases: list[str]
    identifiers: list[IdentifierNode]
    observations: list[Observation]
    links: list[Link]

    @property
    def channels(self) -> list[str]:
        """Channels that can reach the customer (by identifier type) or that evidence came from."""
        seen = {CHANNEL_OF_TYPE[n.type] for n in self.identifiers if n.type in CHANNEL_OF_TYPE}
        seen |= {o.channel for o in self.observations if o.channel}
        seen |= {lk.channel for lk in self.links if lk.channel}
        return sorted(seen)


@dataclass(frozen=True)
class Explanation:
    a: str
    b: str
    path: list[Link]
    assurance: LinkKind | None
    same_customer: bool


@dataclass(frozen=True)
class SplitPart:
    customer_id: str
    members: list[str]
    is_new: bool


@dataclass(frozen=True)
class SplitPlan:
    original: str
    parts: list[SplitPart]
    cut: list[Link]
    changes: ChangeSet


@dataclass(frozen=True)
class UnlinkResult(ChangeResult):
    """An unlink's outcome, with the customers of its two ends afterwards as `parts` (two when it
    splits one, the leaving one `is_new`), so that the conversations moving with it are known."""

    parts: list[SplitPart] = field(default_factory=list)


# ---- the engine -----------------------------------------------------------------------------


@dataclass
class _Region:
    """The identifiers an operation can change, with their links, in memory."""

    nodes: dict[str, IdentifierNode]
    links: dict[str, Link]
    generic: dict[str, bool]
    new_keys: set[str]


class IdentityGraph:
    """The identity service's domain logic. gRPC servicers call this and nothing below it."""

    def __init__(
        self,
        store: GraphStore,
        config: GraphConfig | None = None,
        types: IdentifierTypes | None = None,
        scorer: Scorer | None = None,
        clock: Callable[[], datetime] = utcnow,
        id_factory: Callable[[], str] = new_customer_id,
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

    def _read(self, fn: Callable[[], T]) -> T:
        """`fn()` (several store reads) as of one moment between this process's writes; inside a
        caller's transaction (`Database.atomically`) its reads are that transaction's."""
        if self.store.database.in_transaction():
            return fn()
        return read_consistently(self.store.writes, self._write_lock, fn)

    def _write(self, work: Callable[[], T]) -> T:
        """`work()` as one write: behind this process's lock, in one database transaction that
        is run again on a transient error (a deadlock between two servers' writes), so `work`
        reads what it settles inside it, after `_lock` has locked it."""
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

    def _lock(self, keys: Iterable[str]) -> dict[str, IdentifierNode]:
        """Inside `_write`: locks the customers of `keys` and returns their nodes as read under
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

    def _labels(self, **labels: str) -> None:
        """Refuses an over-long (or NUL-carrying) evidence label: source, actor, event id, ..."""
        for name, value in labels.items():
            check_text(name, value, self.config.max_label_length)

    # ---- Resolve ----------------------------------------------------------------------------

    def resolve(self, req: ResolveRequest) -> ResolveResult:
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
        fast = None if blocked else self._read(lambda: self._resolve_known(keys, attributes, proven))
        if fast is not None:
            return ResolveResult(fast[0], False, keys, [], violations, fast[1])

        return self._write(lambda: self._resolve_write(req, idents, attributes, proven, violations))

    def resolve_without_waiting(self, req: ResolveRequest) -> ResolveResult | None:
        """`resolve(req)` when it is a read that needs neither a write nor a wait (a known
        identifier with nothing new, and no write under way): for a caller on an event loop,
        over a store whose reads take microseconds. None: call `resolve` (in a worker thread).

        Raises:
            InvalidArgument: as `resolve`.
        """
        checked = self._checked(req)
        if isinstance(checked, ResolveResult):
            return checked
        idents, attributes, proven, violations = checked
        if any(v.kind == "blocked" for v in violations):
            return None  # a refused value is written to the event log: the write path
        keys = [i.key for i in idents]
        fast = try_read(self.store.writes, lambda: self._resolve_known(keys, attributes, proven))
        if fast is None:
            return None
        return ResolveResult(fast[0], False, keys, [], violations, fast[1])

    def _checked(self, req: ResolveRequest) -> ResolveResult | tuple[
            list[Identifier], dict[str, str], str | None, list[Violation]]:
        """The request's identifiers (blocked and erased ones dropped), attributes, proven key
        and violations; or the result when nothing usable is left."""
        if not req.identifiers:
            raise InvalidArgument("identifiers", "at least one identifier is required")
        if len(req.identifiers) > MAX_IDENTIFIERS_PER_CALL:
            raise InvalidArgument("identifiers", f"at most {MAX_IDENTIFIERS_PER_CALL} per call")
        self.channel(req.channel)
        self._labels(channel=req.channel, source=req.source, event_id=req.event_id, actor=req.actor)
        idents: list[Identifier] = []
        for i, (type_, value) in enumerate(req.identifiers):
            ident = self.identifier(type_, value, f"identifiers[{i}]")
            if ident not in idents:
                idents.append(ident)
        attributes = clean_attributes(req.attributes)
        proven: str | None = None
        if req.proof is not None:
            if req.proof.kind not in PROOF_KINDS:
                raise InvalidArgument("proof.kind", f"one of {', '.join(PROOF_KINDS)}")
            proven = self.key(req.proof.identifier, "proof.identifier")
            if proven not in {i.key for i in idents}:
                raise InvalidArgument("proof.identifier", "must be one of the presented identifiers")

        violations = [
            blocked_violation(i.key)
            for i in idents
            if self.config.is_blocked(i.key)
        ]
        blocked = {v.key for v in violations}
        idents = [i for i in idents if i.key not in blocked]
        if not idents:
            return ResolveResult(None, False, [], [], violations, {})
        # Known identifiers exist, so none of them was erased (an erasure deletes them): the
        # suppression list is consulted on the write path only, under the region's locks.
        return idents, attributes, proven, violations

    def _resolve_known(
        self, keys: list[str], attributes: dict[str, str], proven: str | None
    ) -> tuple[str, dict[str, LinkKind | None]] | None:
        """Read-only path: known identifiers of one customer, nothing new to record."""
        if attributes or proven:
            return None
        subgraph = None
        if len(keys) == 1:  # the common case: the node and its customer's subgraph in one read
            node, subgraph = self.store.identifier_subgraph(keys[0])
            nodes = {} if node is None else {node.key: node}
        else:
            nodes = self.store.get_identifiers(keys)
        if len(nodes) != len(keys):
            return None
        cids = {n.customer_id for n in nodes.values()}
        if len(cids) != 1 or None in cids:
            return None
        now = self.clock()
        if any(
            (now - n.last_seen).total_seconds() > self.config.last_seen_granularity_s for n in nodes.values()
        ):
            return None
        if len(keys) > 1 and not self._already_linked(keys):
            return None
        return next(iter(cids)), self._assurance(nodes[keys[0]], None, subgraph)  # type: ignore[return-value]

    def _already_linked(self, keys: list[str]) -> bool:
        """Whether the anchor's claims of `keys[1:]` are on record already (a link of another
        kind, or an observed link claimed by the anchor: the others' claims are not its own)."""
        anchor = keys[0]
        linked = {
            lk.other(anchor)
            for lk in self.store.links([anchor])
            if lk.kind is not LinkKind.OBSERVED or lk.claimant == anchor
        }
        return all(k in linked for k in keys[1:])

    def _resolve_write(
        self,
        req: ResolveRequest,
        idents: list[Identifier],
        attributes: dict[str, str],
        proven: str | None,
        violations: list[Violation],
    ) -> ResolveResult:
        existing = self._lock(i.key for i in idents)
        if self.suppressed is not None:  # privacy: an erased identifier is dropped, named by type only
            erased = [i for i in idents if self.suppressed(i.key)]
            violations = violations + [Violation("suppressed", f"{i.type}:", SUPPRESSED_REASON)
                                       for i in erased]
            idents = [i for i in idents if i not in erased]
            if not idents:
                return ResolveResult(None, False, [], [], violations, {})
        now = self.clock()
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
        trusted = self.config.is_trusted(source)
        for ident in idents[1:]:
            kind = LinkKind.VERIFIED if trusted else LinkKind.OBSERVED
            if proven is not None and proven in (anchor, ident.key):
                kind = LinkKind.VERIFIED
            # The anchor is held (the message came in through it); the rest is its claim.
            pending.append(evidence(anchor, ident.key, kind, claimant=anchor))
        presented = {i.key for i in idents}
        for ident in idents:
            for eq in self.types.equivalents(ident):
                if eq.key in presented or self.store.get_identifier(eq.key) is not None:
                    pending.append(evidence(ident.key, eq.key, LinkKind.EQUIVALENT))
        if attributes and self.scorer is not None:
            pending.extend(self._probabilistic(anchor, attributes, evidence))
        # Drop links that exist already with the same evidence kind between the same keys.
        known = {(lk.a, lk.b, lk.kind, lk.claimant) for lk in self.store.links(presented)}
        fresh: dict[str, Link] = {}
        for lk in pending:
            if (lk.a, lk.b, lk.kind, lk.claimant) not in known:
                fresh.setdefault(lk.id, lk)
        cs.links_added = self.store.revise(fresh.values())
        fresh = {lk.id: lk for lk in cs.links_added}

        new_keys = {k for k in presented if k not in existing}
        outcome = self._settle(
            cs,
            seeds=presented | {lk.a for lk in fresh.values()} | {lk.b for lk in fresh.values()},
            new_keys=new_keys,
            now=now,
            actor=req.actor or source,
        )
        cs.events.extend(_violation_event(v, now) for v in violations if v.kind == "blocked")
        self.store.apply(cs)
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
        assert self.scorer is not None
        # every attribute, custom ones included: the model compares whatever columns it has
        record: dict[str, Any] = {**dict.fromkeys(ATTRIBUTES), **attributes}
        record["unique_id"] = anchor
        known = self.candidate_records([anchor])[anchor]  # earlier observations fill the gaps
        for name, value in known.items():
            if record.get(name) is None:
                record[name] = value
        wanted = set(self.scorer.blocking_keys(record))
        found, exact = self._candidates(record)
        found.discard(anchor)
        found -= decisions.apart_from(anchor, self.store.constraints([anchor]))  # people said no
        if not found:
            return []
        if exact:  # the index's rows are the rules' keys: nothing to check, read only the first
            ranked = sorted(found)[: self.config.max_candidates]
            records = self.candidate_records(ranked)
        else:
            records = self.candidate_records(sorted(found))
            ranked = [
                k
                for k in sorted(found)
                if wanted & set(self.scorer.blocking_keys({**records[k], "unique_id": k}))
            ][: self.config.max_candidates]
        if not ranked:
            return []
        scores = self.scorer.score(record, [{**records[k], "unique_id": k} for k in ranked])
        links = []
        for key, s in zip(ranked, scores, strict=True):
            if s.match_probability >= self.config.link_threshold:
                kind = LinkKind.PROBABLE
            elif s.match_probability >= self.config.review_threshold:
                kind = LinkKind.POSSIBLE
            else:
                continue
            links.append(
                evidence(
                    anchor,
                    key,
                    kind,
                    model_version=self.scorer.version,
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
        assert self.scorer is not None
        index = self.store.blocking
        if index is not None and index.scorer is self.scorer:
            # one more per probe: the anchor itself may be among them
            keys = self.store.blocking_candidates(index.probes(record), self.config.max_candidates + 1)
            if keys is not None:
                return set(keys), True
            if not self.__dict__.get("_stale_warned"):
                self._stale_warned = True
                log.warning("blocking index stale (observations written by a process without the "
                            "model); candidates by attribute lookups until the next rebuild")
        found: set[str] = set()
        for conditions in self.scorer.blocking_lookups(record):
            # Every part of the rule that a store can look up, so a common surname alone does
            # not bring thousands of candidates; the whole rule is checked after.
            found.update(self.store.keys_matching(conditions, limit=CANDIDATE_LOOKUP_LIMIT,
                                                  enough=self.config.max_candidates))
        return found, False

    def candidate_records(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """One record per identifier, built by the relink's own SQL (`identity_graph.records`)."""
        recs = records_of(self.store.observations(keys))
        return {k: {**dict.fromkeys(ATTRIBUTES), **recs.get(k, {})} for k in keys}

    # ---- explicit links ---------------------------------------------------------------------

    def link(
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
        a, b = self.key(a, "a"), self.key(b, "b")
        if claimant:
            claimant = self.key(claimant, "claimant")
            if claimant not in (a, b):
                raise InvalidArgument("claimant", "must be a or b")
        if kind is LinkKind.OBSERVED and self.config.is_trusted(source):
            kind = LinkKind.VERIFIED
        if a == b:
            raise InvalidArgument("b", "an identifier cannot link to itself")
        if channel:  # where the pair was seen, if anywhere
            self.channel(channel)
        self._labels(source=source, actor=actor, channel=channel, event_id=event_id,
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
            if self.config.is_blocked(k):
                refused = blocked_violation(k, b if k == a else a)
                self._write(lambda v=refused: self.store.apply(
                    ChangeSet(events=[_violation_event(v, self.clock())])))
                return ChangeResult([], [refused], [], [])
        now = self.clock()

        def write() -> tuple[_Outcome, ChangeSet, list[int]] | ChangeResult:
            existing = self._lock([a, b])
            for k in (a, b):  # privacy: erased, never relinked (checked under the region's locks)
                if self.suppressed is not None and self.suppressed(k):
                    erased = Violation("suppressed", f"{type_of(k)}:", SUPPRESSED_REASON)
                    return ChangeResult([], [erased], [], [])
            cs = ChangeSet()
            for k in (a, b):
                if k not in existing:
                    ident = self.types.parse(k)
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
            cs.links_added = self.store.revise(cs.links_added)
            if by_person:
                made = cs.links_added[0] if cs.links_added else asked
                self._decide_must(cs, made, actor, reason or "linked by a person", "link", now)
            outcome = self._settle(cs, {a, b}, {k for k in (a, b) if k not in existing}, now, actor)
            return outcome, cs, self.store.apply(cs)

        written = self._write(write)
        if isinstance(written, ChangeResult):
            return written
        outcome, cs, seqs = written
        return ChangeResult(
            outcome.links,
            outcome.violations,
            sorted(set(outcome.assignment.values())),
            _with_seqs(cs.events, seqs),
        )

    def unlink(
        self, a: str, b: str, *, actor: str, reason: str = "", kinds: Iterable[LinkKind] | None = None
    ) -> UnlinkResult:
        """Records the removal of the active links between `a` and `b` (of `kinds`, default all).

        Raises:
            NotFound: no such active link.
        """
        def write() -> tuple[UnlinkResult, ChangeSet, list[int]]:
            result, cs = self._plan_unlink(a, b, actor, reason, kinds)
            return result, cs, self.store.apply(cs)

        result, cs, seqs = self._write(write)
        return replace(result, events=_with_seqs(cs.events, seqs))

    def preview_unlink(
        self, a: str, b: str, *, actor: str = "", reason: str = "", kinds: Iterable[LinkKind] | None = None
    ) -> UnlinkResult:
        """What `unlink` would do (its events without seq), written nowhere."""
        return self._read(lambda: self._plan_unlink(a, b, actor, reason, kinds)[0])

    def _plan_unlink(
        self, a: str, b: str, actor: str, reason: str, kinds: Iterable[LinkKind] | None
    ) -> tuple[UnlinkResult, ChangeSet]:
        a, b = self.key(a, "a"), self.key(b, "b")
        wanted = set(kinds) if kinds else set(LinkKind)
        now = self.clock()
        self._lock([a, b])
        found = [lk for lk in self.store.links([a]) if lk.other(a) == b and lk.kind in wanted]
        if not found:
            raise NotFound(f"no active link between {a} and {b}")
        cs = ChangeSet(links_removed=[(lk.id, now, actor, reason) for lk in found])
        # A person said these are two people: a cannot-link, superseding a must-link of the pair.
        for c in self.store.constraints([a]):
            if c.pair == tuple(sorted((a, b))) and c.kind is ConstraintKind.MUST_LINK:
                self._withdraw(cs, c, now, actor, "superseded: unlinked by a person")
        self._add_constraints(cs, [decisions.cannot_link(
            a, b, actor=actor, reason=reason or "unlinked by a person", origin="unlink", at=now)])
        outcome = self._settle(cs, {a, b}, set(), now, actor)
        result = UnlinkResult(
            found,
            outcome.violations,
            sorted(set(outcome.assignment.values())),
            list(cs.events),
            _parts(outcome),
        )
        return result, cs

    def set_generic(self, key: str, generic: bool, *, actor: str) -> ChangeResult:
        """Marks an identifier shared by different people: it keeps its links but carries no merge."""
        key = self.key(key, "identifier")
        now = self.clock()

        def write() -> tuple[_Outcome, ChangeSet, list[int]]:
            if key not in self._lock([key]):
                raise NotFound(f"unknown identifier {key}")
            cs = ChangeSet(generic={key: generic})
            outcome = self._settle(cs, {key}, set(), now, actor)
            return outcome, cs, self.store.apply(cs)

        outcome, cs, seqs = self._write(write)
        return ChangeResult(
            [], outcome.violations, sorted(set(outcome.assignment.values())), _with_seqs(cs.events, seqs)
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
        return self._read(lambda: self._preview_split(cut, detach, actor))

    def _preview_split(
        self, cut: Sequence[tuple[str, str]], detach: Sequence[str], actor: str
    ) -> SplitPlan:
        if not cut and not detach:
            raise InvalidArgument("cut", "name links to cut or identifiers to detach")
        for name, named in (("cut", cut), ("detach", detach)):
            if len(named) > MAX_IDENTIFIERS_PER_CALL:
                raise InvalidArgument(name, f"at most {MAX_IDENTIFIERS_PER_CALL} per call")
        now = self.clock()
        pairs = [(self.key(a, f"cut[{i}].a"), self.key(b, f"cut[{i}].b")) for i, (a, b) in enumerate(cut)]
        detached = [self.key(k, f"detach[{i}]") for i, k in enumerate(detach)]
        touched = {k for p in pairs for k in p} | set(detached)
        nodes = self._lock(touched)
        missing = sorted(touched - set(nodes))
        if missing:
            raise NotFound(f"unknown identifier {missing[0]}")
        owners = {n.customer_id for n in nodes.values()}
        if len(owners) != 1:
            raise FailedPrecondition("a split works within one customer")
        original = next(iter(owners)) or ""
        removed: list[Link] = []
        for a, b in pairs:
            found = [lk for lk in self.store.links([a]) if lk.other(a) == b]
            if not found:
                raise NotFound(f"no active link between {a} and {b}")
            removed.extend(found)
        for k in detached:
            removed.extend(lk for lk in self.store.links([k]) if lk.kind.merges)
        cs = ChangeSet(
            links_removed=[(lk.id, now, actor, "split") for lk in {lk.id: lk for lk in removed}.values()]
        )
        outcome = self._settle(cs, touched, set(), now, actor, leaving=frozenset(detached))
        parts = _parts(outcome)
        if len(parts) < 2:
            raise FailedPrecondition("the cut leaves the customer in one piece")
        self._add_constraints(cs, decisions.split_constraints(
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
        def write() -> SplitPlan:
            plan = self.preview_split(cut=cut, detach=detach, actor=actor)
            self.store.apply(plan.changes)
            return plan

        return self._write(write)

    # ---- people's decisions (identity_graph.decisions) ---------------------------------------

    def _add_constraints(self, cs: ChangeSet, constraints: Iterable[Constraint]) -> None:
        for c in constraints:
            cs.constraints_added.append(c)
            cs.events.append(decisions.constraint_event(c))

    def _withdraw(self, cs: ChangeSet, c: Constraint, now: datetime, actor: str, reason: str) -> None:
        cs.constraints_withdrawn.append((c.id, now, actor, reason))
        cs.events.append(decisions.withdrawal_event(c, now, actor, reason))

    def _decide_must(self, cs: ChangeSet, link: Link, actor: str, reason: str, origin: str,
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
            self._withdraw(cs, c, now, actor, f"superseded: linked by {actor}")
        if not any(c.active and c.kind is ConstraintKind.MUST_LINK and c.pair == (link.a, link.b)
                   for c in held):
            self._add_constraints(cs, [decisions.must_link(link, actor=actor, reason=reason,
                                                           origin=origin, at=now)])

    def constraints(self, ref: str = "", *, include_withdrawn: bool = False) -> list[Constraint]:
        """People's decisions, oldest first: every one, or those touching a customer (a
        customer id, alias or identifier key)."""
        def read() -> list[Constraint]:
            if not ref:
                return self.store.constraints(None, include_withdrawn)
            keys = self.store.members(self.customer_id_of(ref)) if ref.startswith("cus_") else \
                [self.key(ref, "ref")]
            return self.store.constraints(keys, include_withdrawn)

        return self._read(read)

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
        self._labels(actor=actor, reason=reason, constraint_id=constraint_id)
        with self._write_lock:
            c = self.store.constraints_by_id([constraint_id]).get(constraint_id)
            if c is None:
                raise NotFound(f"unknown constraint {constraint_id}")
            if not c.active:
                raise FailedPrecondition(f"constraint {constraint_id} was withdrawn already")
            now = self.clock()
            cs = ChangeSet()
            self._withdraw(cs, c, now, actor, reason)
            self.store.apply(cs)
        return replace(c, withdrawn_at=now, withdrawn_by=actor, withdrawal_reason=reason)

    def review_queue(self, customer: str = "", *, by_score: bool = False, limit: int = 50,
                     offset: int = 0) -> tuple[list[decisions.ReviewItem], int]:
        """A page of the `possible` links (kept, not merging) waiting for a person, oldest first
        or highest probability first, of every customer or of one; and how many there are."""
        if limit <= 0 or limit > 1000:
            raise InvalidArgument("page_size", "must be between 1 and 1000")
        if offset < 0:
            raise InvalidArgument("page_token", "not a token this server gave")

        def read() -> tuple[list[decisions.ReviewItem], int]:
            if customer:
                members = self.store.members(self.customer_id_of(customer))
                found = sorted({lk.id: lk for lk in self.store.links(members)
                                if lk.kind is LinkKind.POSSIBLE}.values(),
                               key=lambda lk: (-(lk.probability or 0), lk.created_at, lk.id) if by_score
                               else (lk.created_at, lk.id))
                links, total = found[offset:offset + limit], len(found)
            else:
                links, total = self.store.active_links_of_kind(LinkKind.POSSIBLE, by_score=by_score,
                                                               limit=limit, offset=offset)
            nodes = self.store.get_identifiers({k for lk in links for k in (lk.a, lk.b)})
            items = [decisions.ReviewItem(lk, (nodes[lk.a].customer_id or "") if lk.a in nodes else "",
                                          (nodes[lk.b].customer_id or "") if lk.b in nodes else "",
                                          self._waterfall_of(lk))
                     for lk in links]
            return items, total

        return self._read(read)

    def _waterfall_of(self, lk: Link) -> Mapping[str, Any] | None:
        """The link's stored waterfall, else the pair scored now by this engine's model (batch
        links keep only the comparison levels)."""
        if lk.comparisons and "comparisons" in lk.comparisons:
            return lk.comparisons
        if self.scorer is None:
            return None
        records = self.candidate_records([lk.a, lk.b])
        [score] = self.scorer.score({**records[lk.a], "unique_id": lk.a},
                                    [{**records[lk.b], "unique_id": lk.b}])
        return waterfall(score)

    def _queued(self, link_id: str, actor: str, reason: str) -> Link:
        if not link_id:
            raise InvalidArgument("link_id", "is required")
        if not actor:
            raise InvalidArgument("actor", "say who decides")
        self._labels(actor=actor, reason=reason, link_id=link_id)
        found = self.store.links_by_id([link_id])
        if not found:
            raise NotFound(f"unknown link {link_id}")
        lk = found[0]
        if not lk.active or lk.kind is not LinkKind.POSSIBLE:
            state = "removed" if not lk.active else lk.kind.label
            raise FailedPrecondition(f"link {link_id} is not in the review queue (it is {state})")
        return lk

    def accept_review(self, link_id: str, *, actor: str, reason: str = "") -> ReviewResult:
        """A person judges a `possible` link to be one person: it becomes a `probable` link of
        source `review` with the same waterfall, fixed by a must-link. It merges, but discloses
        only as `probable` (a person's judgement is no proof of who holds an identifier).

        Raises:
            NotFound: no such link. FailedPrecondition: it is not in the queue, or a person set
            the two customers apart.
        """
        with self._write_lock:
            old = self._queued(link_id, actor, reason)
            now = self.clock()
            new = Link(old.a, old.b, LinkKind.PROBABLE, source=decisions.REVIEW_SOURCE,
                       event_id=old.id, model_version=old.model_version, probability=old.probability,
                       match_weight=old.match_weight, comparisons=old.comparisons, created_at=now,
                       actor=actor)
            cs = ChangeSet(links_added=self.store.revise([new]),
                           links_removed=[(old.id, now, actor, f"accepted in review: {reason}".rstrip(": "))])
            self._decide_must(cs, cs.links_added[0] if cs.links_added else new, actor,
                              reason or "accepted in review", "review", now)
            outcome = self._settle(cs, {old.a, old.b}, set(), now, actor)
            seqs = self.store.apply(cs)
        return ReviewResult(outcome.links, outcome.violations, sorted(set(outcome.assignment.values())),
                            _with_seqs(cs.events, seqs),
                            cs.constraints_added[-1] if cs.constraints_added else None)

    def reject_review(self, link_id: str, *, actor: str, reason: str = "") -> ReviewResult:
        """A person judges a `possible` link to be two people: it is removed and the pair
        becomes a cannot-link, so no scorer or relink proposes it again.

        Raises:
            NotFound: no such link. FailedPrecondition: it is not in the queue.
        """
        with self._write_lock:
            old = self._queued(link_id, actor, reason)
            now = self.clock()
            cs = ChangeSet(links_removed=[(old.id, now, actor, f"rejected in review: {reason}".rstrip(": "))])
            self._add_constraints(cs, [decisions.cannot_link(
                old.a, old.b, actor=actor, reason=reason or "rejected in review", origin="review",
                at=now)])
            outcome = self._settle(cs, {old.a, old.b}, set(), now, actor)
            seqs = self.store.apply(cs)
        return ReviewResult(outcome.links, outcome.violations, sorted(set(outcome.assignment.values())),
                            _with_seqs(cs.events, seqs),
                            cs.constraints_added[-1] if cs.constraints_added else None)

    # ---- reads ------------------------------------------------------------------------------

    def customer_id_of(self, ref: str) -> str:
        """A customer id from a customer id, an alias of one, or an identifier key.

        Raises:
            NotFound: nothing matches.
        """
        if not ref:
            raise InvalidArgument("ref", "must not be empty")
        if ref.startswith("cus_"):
            cid = self.store.canonical_customer_id(ref)
            if cid is None:
                raise NotFound(f"unknown customer {ref}")
            return cid
        node = self.store.get_identifier(self.key(ref, "ref"))
        if node is None or node.customer_id is None:
            raise NotFound(f"unknown identifier {ref}")
        return node.customer_id

    def customer_members(self, ref: str) -> tuple[str, list[str]]:
        """(customer id, its identifier keys) for a customer id, alias or identifier, read as of
        one moment (not across a merge or split).

        Raises:
            NotFound: nothing matches.
        """
        def read() -> tuple[str, list[str]]:
            cid = self.customer_id_of(ref)
            return cid, self.store.members(cid)

        return self._read(read)

    def get_customer(self, ref: str, viewer: str | None = None) -> CustomerView:
        """The customer of `ref` (a customer id, alias or identifier key).

        With `viewer` (the identifier a caller holds), only what it may see: identifiers it
        reaches at the disclosure level, their attributes and the links between them.
        """
        return self._read(lambda: self._get_customer(ref, viewer))

    def disclosed(self, kind: LinkKind | None) -> bool:
        """Whether an assurance allows full disclosure (`GraphConfig.disclosure_level`)."""
        return kind is not None and kind >= self.config.disclosure_level

    def _get_customer(self, ref: str, viewer: str | None = None) -> CustomerView:
        cid = self.customer_id_of(ref)
        members = self.store.members(cid)
        customer = self.store.customers([cid]).get(cid)
        if customer is None:
            raise NotFound(f"unknown customer {ref}")
        shared = False
        if viewer is not None:
            node = self.store.get_identifier(viewer)
            reach = {} if node is None else self._assurance(node, members)
            members = [k for k in members if self.disclosed(reach.get(k))]
            # A generic viewer (a family phone) reaches only itself, and what was observed with
            # it belongs to several people: none of it is shown to whoever holds it.
            shared = bool(node and node.generic)
        links = [lk for lk in self.store.links(members) if viewer is None or {lk.a, lk.b} <= set(members)]
        return CustomerView(
            customer_id=cid,
            created_at=customer.created_at,
            aliases=self.store.aliases_of(cid),
            identifiers=sorted(self.store.get_identifiers(members).values(), key=lambda n: n.key),
            observations=[] if shared else self.store.observations(members),
            links=sorted({lk.id: lk for lk in links}.values(), key=lambda lk: (lk.a, lk.b, -lk.kind)),
        )

    def assurance(self, anchor: str, keys: Iterable[str] | None = None) -> dict[str, LinkKind | None]:
        """How strongly `anchor` reaches each identifier of its customer (or each of `keys`)."""
        wanted = None if keys is None else list(keys)

        def read() -> dict[str, LinkKind | None]:
            node = self.store.get_identifier(anchor)
            return {} if node is None else self._assurance(node, wanted)

        return self._read(read)

    def _assurance(self, node: IdentifierNode, keys: Iterable[str] | None,
                   subgraph: tuple[list[str], list[Link], dict[str, IdentifierNode]] | None = None,
                   ) -> dict[str, LinkKind | None]:
        """`subgraph`: the node's `customer_subgraph`, when the caller read it already."""
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

    def explain(self, a: str, b: str) -> Explanation:
        a, b = self.key(a, "a"), self.key(b, "b")
        if a == b:
            raise InvalidArgument("b", "must be another identifier than a")
        return self._read(lambda: self._explain(a, b))

    def _explain(self, a: str, b: str) -> Explanation:
        nodes = self.store.get_identifiers([a, b])
        for k in (a, b):
            if k not in nodes:
                raise NotFound(f"unknown identifier {k}")
        path = self.store.bottleneck_path(a, b)
        same = nodes[a].customer_id is not None and nodes[a].customer_id == nodes[b].customer_id
        return Explanation(a, b, path or [], bottleneck(path, a) if path is not None else None, same)

    def events(self, from_seq: int = 0, limit: int = 1000) -> list[Event]:
        return self.store.events(from_seq, limit)

    # ---- settling a change ------------------------------------------------------------------

    def _load_region(self, seeds: set[str], cs: ChangeSet) -> _Region:
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
        return _Region(nodes=nodes, links=links, generic={}, new_keys=set())

    def _settle(
        self,
        cs: ChangeSet,
        seeds: set[str],
        new_keys: set[str],
        now: datetime,
        actor: str,
        leaving: frozenset[str] = frozenset(),
    ) -> _Outcome:
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
            events.append(_violation_event(v, now))
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
        return _Outcome(comps, ids, assignment, accepted, violations, region)


def _violation_event(v: Violation, at: datetime) -> Event:
    return Event("violation", {"kind": v.kind, "key": v.key, "other": v.other, "reason": v.reason},
                 "", at)


def _edges(links: Iterable[Link], generic: Mapping[str, bool]) -> Iterable[tuple[str, str]]:
    for lk in links:
        if (
            lk.kind.merges
            and lk.active
            and lk.a in generic
            and lk.b in generic
            and not generic[lk.a]
            and not generic[lk.b]
        ):
            yield lk.a, lk.b


def _parts(outcome: _Outcome) -> list[SplitPart]:
    """The customers a settled change leaves, the one keeping an existing id first."""
    parts = [
        SplitPart(cid, sorted(c), cid in outcome.ids.created)
        for c, cid in zip(outcome.comps, outcome.ids.ids, strict=True)
    ]
    return sorted(parts, key=lambda p: (p.is_new, p.customer_id))


def _with_seqs(events: list[Event], seqs: list[int]) -> list[Event]:
    return [Event(e.type, e.payload, e.customer_id, e.at, s) for e, s in zip(events, seqs, strict=False)]


@dataclass
class _Outcome:
    comps: list[frozenset[str]]
    ids: IdAssignment
    assignment: dict[str, str]
    links: list[Link]
    violations: list[Violation]
    region: _Region

    def components_of(self, key: str) -> frozenset[str]:
        for c in self.comps:
            if key in c:
                return c
        return frozenset()

    def assurance_from(self, anchor: str) -> dict[str, LinkKind | None]:
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
