"""`IdentityGraph`: online resolution, linking, splits and explanations over one `GraphStore`.

Every write follows one path: build the pending links, `_settle` the affected region (guardrails,
components, stable ids, events) in memory, then `store.apply` the whole change set in one
transaction. Writers are serialised by one lock per process, so concurrent calls end in the same
components as a serial run; reads take no lock.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, TypeVar

from identity_graph.attributes import clean_attributes
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
from identity_graph.rules import Region, Rules, decide
from identity_graph.store.base import MAX_TRAVERSAL, GraphStore
from identity_graph.writelock import WriteLock, read_consistently

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
        self.scorer = scorer
        self.clock = clock
        self.new_id = id_factory
        self._write_lock = WriteLock()
        # Privacy: erased identifiers (a normalised key -> True) are never recorded again; the
        # server sets this to `Privacy.is_suppressed`.
        self.suppressed: Callable[[str], bool] | None = None

    def _read(self, fn: Callable[[], T]) -> T:
        """`fn()` (several store reads) as of one moment between this process's writes."""
        return read_consistently(self.store.writes, self._write_lock, fn)

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
            Violation("blocked", i.key, "a blocked value never links")
            for i in idents
            if self.config.is_blocked(i.key)
        ]
        blocked = {v.key for v in violations}
        idents = [i for i in idents if i.key not in blocked]
        if self.suppressed is not None:  # privacy: an erased identifier is dropped, named by type only
            erased = [i for i in idents if self.suppressed(i.key)]
            violations += [Violation("suppressed", f"{i.type}:", SUPPRESSED_REASON) for i in erased]
            idents = [i for i in idents if i not in erased]
        keys = [i.key for i in idents]
        if not idents:
            return ResolveResult(None, False, [], [], violations, {})

        fast = self._read(lambda: self._resolve_known(keys, attributes, proven))
        if fast is not None:
            return ResolveResult(fast[0], False, keys, [], violations, fast[1])

        with self._write_lock:
            return self._resolve_write(req, idents, attributes, proven, violations)

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
        now = self.clock()
        anchor = idents[0].key
        source = req.source or req.channel or "resolve"
        observations = tuple(
            Observation(anchor, name, value, source, req.channel, now) for name, value in attributes.items()
        )
        existing = self.store.get_identifiers([i.key for i in idents])
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
        found: set[str] = set()
        for conditions in self.scorer.blocking_lookups(record):
            # Every part of the rule that a store can look up, so a common surname alone does
            # not bring thousands of candidates; the whole rule is checked below.
            found.update(self.store.keys_matching(conditions, limit=CANDIDATE_LOOKUP_LIMIT,
                                                  enough=self.config.max_candidates))
        found.discard(anchor)
        if not found:
            return []
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
    ) -> ChangeResult:
        """Adds one link with its evidence, under the same guardrails as Resolve.

        An `observed` link from a trusted source (`GraphConfig.trusted_sources`) is recorded as
        `verified`; `claimant` (a or b) says which end asserted it, empty for both.
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
                     model_version=model_version)
        if kind in (LinkKind.PROBABLE, LinkKind.POSSIBLE) and probability is None:
            raise InvalidArgument("probability", f"a {kind.label} link needs a probability")
        if probability is not None and not 0 <= probability <= 1:
            raise InvalidArgument("probability", "must be between 0 and 1")
        if match_weight is not None and not math.isfinite(match_weight):
            raise InvalidArgument("match_weight", "must be a finite number")
        for k in (a, b):
            if self.config.is_blocked(k):
                return ChangeResult([], [Violation("blocked", k, "a blocked value never links")], [], [])
            if self.suppressed is not None and self.suppressed(k):  # privacy: erased, never relinked
                erased = Violation("suppressed", f"{type_of(k)}:", SUPPRESSED_REASON)
                return ChangeResult([], [erased], [], [])
        now = self.clock()
        with self._write_lock:
            existing = self.store.get_identifiers([a, b])
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
            cs.links_added = self.store.revise(cs.links_added)
            outcome = self._settle(cs, {a, b}, {k for k in (a, b) if k not in existing}, now, actor)
            seqs = self.store.apply(cs)
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
        with self._write_lock:
            result, cs = self._plan_unlink(a, b, actor, reason, kinds)
            seqs = self.store.apply(cs)
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
        found = [lk for lk in self.store.links([a]) if lk.other(a) == b and lk.kind in wanted]
        if not found:
            raise NotFound(f"no active link between {a} and {b}")
        cs = ChangeSet(links_removed=[(lk.id, now, actor, reason) for lk in found])
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
        with self._write_lock:
            if self.store.get_identifier(key) is None:
                raise NotFound(f"unknown identifier {key}")
            cs = ChangeSet(generic={key: generic})
            outcome = self._settle(cs, {key}, set(), now, actor)
            seqs = self.store.apply(cs)
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
        nodes = self.store.get_identifiers(touched)
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
        return SplitPlan(
            original,
            parts,
            list({lk.id: lk for lk in removed}.values()),
            cs,
        )

    def split(
        self, *, cut: Sequence[tuple[str, str]] = (), detach: Sequence[str] = (), actor: str
    ) -> SplitPlan:
        with self._write_lock:
            plan = self.preview_split(cut=cut, detach=detach, actor=actor)
            self.store.apply(plan.changes)
        return plan

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
            events.append(Event("violation", {"kind": v.kind, "key": v.key, "reason": v.reason}, "", now))
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
