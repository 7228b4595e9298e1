"""Conversions between identity.v1 messages and the engine's requests and results."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from identity_graph.api.auth import current_caller
from identity_graph.engine import (
    ChangeResult,
    CustomerView,
    Explanation,
    Proof,
    ResolveRequest,
    ResolveResult,
    SplitPlan,
)
from identity_graph.errors import InvalidArgument
from identity_graph.guardrails import Violation
from identity_graph.model import Event, IdentifierNode, Link, LinkKind, Observation
from identity_graph.paths import steps
from stubs.identity.v1 import identity_pb2 as pb

# ---- scalars --------------------------------------------------------------------------------


def timestamp(dt: datetime | None) -> Timestamp | None:
    if dt is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(dt if dt.tzinfo else dt.replace(tzinfo=UTC))
    return ts


def kind_to_pb(kind: LinkKind | None) -> int:
    return pb.LINK_KIND_UNSPECIFIED if kind is None else int(kind)


def kind_from_pb(value: int, field: str = "kind") -> LinkKind:
    """Raises InvalidArgument for LINK_KIND_UNSPECIFIED or an unknown number."""
    try:
        return LinkKind(value)
    except ValueError as e:
        raise InvalidArgument(field, "a link kind is required (LINK_KIND_POSSIBLE … "
                                     "LINK_KIND_VERIFIED)") from e


def require(value: str, field: str) -> str:
    if not value.strip():
        raise InvalidArgument(field, "is required")
    return value.strip()


def acting(typed: str, *, required: bool = False) -> str:
    """The actor to record on what a call writes: the authenticated caller when auth is on (a
    caller cannot sign its writes with another name; what it typed in `actor` is not used), else
    the `actor` the request typed (required when `required`)."""
    caller = current_caller.get()
    if caller is not None:
        return caller
    return require(typed, "actor") if required else typed.strip()


# ---- identifiers ----------------------------------------------------------------------------


def identifier_to_pb(key: str) -> pb.Identifier:
    type_, _, value = key.partition(":")
    return pb.Identifier(type=type_, value=value)


def key_from_pb(ident: pb.Identifier, field: str) -> str:
    """A raw `type:value` key for the engine, which normalises it and names `field` on errors."""
    if not ident.type and not ident.value:
        raise InvalidArgument(field, "an identifier (type and value) is required")
    if ":" in ident.type:  # would move the rest of the type into the value of another type
        raise InvalidArgument(f"{field}.type", f"unknown identifier type {ident.type[:40]!r}")
    return f"{ident.type}:{ident.value}"


# ---- requests -------------------------------------------------------------------------------


def resolve_request(req: pb.ResolveRequest) -> ResolveRequest:
    proof = None
    if req.HasField("proof"):
        proof = Proof(
            kind=req.proof.kind,
            identifier=key_from_pb(req.proof.identifier, "proof.identifier"),
            reference=req.proof.reference,
        )
    return ResolveRequest(
        channel=req.channel,
        identifiers=[(i.type, i.value) for i in req.identifiers],
        attributes=dict(req.attributes),
        proof=proof,
        source=req.source,
        event_id=req.event_id,
        actor=acting(req.actor),
    )


def link_args(req: pb.LinkRequest) -> dict[str, Any]:
    """Keyword arguments for `IdentityGraph.links.add`."""
    if not req.HasField("a"):
        raise InvalidArgument("a", "is required")
    if not req.HasField("b"):
        raise InvalidArgument("b", "is required")
    return {
        "a": key_from_pb(req.a, "a"),
        "b": key_from_pb(req.b, "b"),
        "kind": kind_from_pb(req.kind),
        "source": require(req.source, "source"),
        "actor": acting(req.actor, required=True),
        "channel": req.channel,
        "event_id": req.event_id,
        "model_version": req.model_version,
        "probability": req.probability if req.HasField("probability") else None,
        "match_weight": req.match_weight if req.HasField("match_weight") else None,
        "claimant": key_from_pb(req.claimant, "claimant") if req.HasField("claimant") else "",
        "by_person": req.by_person,
        "reason": req.reason,
    }


def unlink_args(req: pb.UnlinkRequest) -> dict[str, Any]:
    """Keyword arguments for `IdentityGraph.links.remove`."""
    if not req.HasField("a"):
        raise InvalidArgument("a", "is required")
    if not req.HasField("b"):
        raise InvalidArgument("b", "is required")
    return {
        "a": key_from_pb(req.a, "a"),
        "b": key_from_pb(req.b, "b"),
        "actor": acting(req.actor, required=not req.preview),
        "reason": req.reason,
        "kinds": [kind_from_pb(k, f"kinds[{i}]") for i, k in enumerate(req.kinds)] or None,
    }


def split_args(req: pb.SplitRequest, *, actor_required: bool) -> dict[str, Any]:
    """Keyword arguments for `IdentityGraph.links.preview_split` / `.split`."""
    cut = []
    for i, pair in enumerate(req.cut):
        if not pair.HasField("a") or not pair.HasField("b"):
            raise InvalidArgument(f"cut[{i}]", "a pair needs both a and b")
        cut.append((key_from_pb(pair.a, f"cut[{i}].a"), key_from_pb(pair.b, f"cut[{i}].b")))
    detach = [key_from_pb(d, f"detach[{i}]") for i, d in enumerate(req.detach)]
    actor = acting(req.actor, required=actor_required)
    return {"cut": cut, "detach": detach, "actor": actor}


def customer_ref(req: pb.GetCustomerRequest) -> tuple[str, str]:
    """(reference for `IdentityGraph.customers.id_of`, the request field it came from)."""
    which = req.WhichOneof("ref")
    if which == "customer_id":
        ref = require(req.customer_id, "customer_id")
        if not ref.startswith("cus_"):
            raise InvalidArgument("customer_id", "a customer id starts with 'cus_'")
        return ref, "customer_id"
    if which == "identifier":
        return key_from_pb(req.identifier, "identifier"), "identifier"
    raise InvalidArgument("ref", "give a customer_id or an identifier")


# ---- results --------------------------------------------------------------------------------


def comparisons_to_pb(evidence: Mapping[str, Any] | Sequence[Any] | None) -> list[pb.ComparisonContribution]:
    """A match weight's parts as a waterfall: the prior first, then each comparison in model order.

    Reads the engine's `waterfall()` form, `{"prior_match_weight": w, "comparisons": [{"name",
    "level", "bits"}, …]}`; also `{name: bits}` and `{name: {"level": …, "bits": …}}`.
    """
    if not evidence:
        return []
    out: list[pb.ComparisonContribution] = []
    items: Iterable[tuple[str, Any]]
    if isinstance(evidence, Mapping) and ("comparisons" in evidence or "prior_match_weight" in evidence):
        prior = evidence.get("prior_match_weight")
        if isinstance(prior, int | float):
            out.append(pb.ComparisonContribution(name="prior", bits=_finite(prior)))
        evidence = evidence.get("comparisons") or []
    if isinstance(evidence, Mapping):
        items = evidence.items()
    else:
        items = (
            (str(c.get("name") or c.get("comparison") or ""), c) for c in evidence if isinstance(c, Mapping)
        )
    for name, value in items:
        if value is None:
            continue
        level, bits = "", 0.0
        if isinstance(value, Mapping):
            level = str(value.get("level") or value.get("label") or "")
            for k in ("bits", "log2_bayes_factor", "match_weight"):
                if isinstance(value.get(k), int | float):
                    bits = float(value[k])
                    break
        elif isinstance(value, int | float) and not isinstance(value, bool):
            bits = float(value)
        else:
            level = str(value)
        out.append(pb.ComparisonContribution(name=str(name), level=level, bits=_finite(bits)))
    # The prior starts a waterfall; a stored mapping may come back with its keys sorted.
    return sorted(out, key=lambda c: c.name.lower() != "prior")


def _finite(x: float) -> float:
    if math.isnan(x):
        return 0.0
    return max(-1e308, min(1e308, float(x)))


def link_to_pb(lk: Link) -> pb.Link:
    msg = pb.Link(
        link_id=lk.id,
        a=identifier_to_pb(lk.a),
        b=identifier_to_pb(lk.b),
        kind=kind_to_pb(lk.kind),
        source=lk.source,
        channel=lk.channel,
        event_id=lk.event_id,
        model_version=lk.model_version,
        created_at=timestamp(lk.created_at),
        actor=lk.actor,
        comparisons=comparisons_to_pb(lk.comparisons),
        removed_at=timestamp(lk.removed_at),
        removed_by=lk.removed_by,
        removal_reason=lk.removal_reason,
    )
    if lk.probability is not None:
        msg.probability = lk.probability
    if lk.match_weight is not None:
        msg.match_weight = lk.match_weight
    if lk.claimant:
        msg.claimant.CopyFrom(identifier_to_pb(lk.claimant))
    return msg


def violation_to_pb(v: Violation) -> pb.Violation:
    return pb.Violation(kind=v.kind, identifier=identifier_to_pb(v.key), reason=v.reason)


def assurance_to_pb(assurance: Mapping[str, LinkKind | None], policy: LinkKind) -> list[pb.Assurance]:
    """One entry per identifier; full disclosure needs assurance ≥ the policy level."""
    return [
        pb.Assurance(
            identifier=identifier_to_pb(key),
            kind=kind_to_pb(kind),
            full_disclosure=kind is not None and kind >= policy,
        )
        for key, kind in sorted(assurance.items())
    ]


def resolve_response(result: ResolveResult, policy: LinkKind) -> pb.ResolveResponse:
    """The caller learns the identifiers it presented and those it reaches at the policy level;
    the rest of the customer stays unnamed (recognised, not disclosed)."""
    presented = set(result.identifiers)
    shown = {
        k: kind
        for k, kind in result.assurance.items()
        if k in presented or (kind is not None and kind >= policy)
    }
    return pb.ResolveResponse(
        customer_id=result.customer_id or "",
        is_new=result.is_new,
        identifiers=[identifier_to_pb(k) for k in result.identifiers],
        links=[link_to_pb(lk) for lk in result.links],
        violations=[violation_to_pb(v) for v in result.violations],
        assurance=assurance_to_pb(shown, policy),
        merged=result.merged,
    )


def _json_safe(payload: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(dict(payload), default=str))


def _api_payload(ev: Event) -> dict[str, Any]:
    """The payload as the API spells it: a link event's kind is its `LinkKind` value name
    (`LINK_KIND_VERIFIED`), as in every message; the store keeps the domain's label (`verified`)."""
    payload = _json_safe(ev.payload)
    label = payload.get("kind")
    if ev.type == "link" and isinstance(label, str) and label.strip().upper() in LinkKind.__members__:
        payload["kind"] = pb.LinkKind.Name(int(LinkKind.parse(label)))
    return payload


def event_to_pb(ev: Event) -> pb.Event:
    payload = Struct()
    payload.update(_api_payload(ev))
    return pb.Event(
        seq=ev.seq, type=ev.type, customer_id=ev.customer_id, at=timestamp(ev.at), payload=payload
    )


def change_fields(result: ChangeResult) -> dict[str, Any]:
    """The fields Link, Unlink and SetGeneric responses share."""
    return {
        "violations": [violation_to_pb(v) for v in result.violations],
        "customer_ids": result.customer_ids,
        "events": [event_to_pb(e) for e in result.events],
    }


def attribute_to_pb(o: Observation) -> pb.AttributeValue:
    return pb.AttributeValue(
        name=o.attribute,
        value=o.value,
        source=o.source,
        channel=o.channel,
        observed_at=timestamp(o.observed_at),
        identifier=identifier_to_pb(o.key),
    )


def identifier_info_to_pb(n: IdentifierNode) -> pb.IdentifierInfo:
    return pb.IdentifierInfo(
        identifier=identifier_to_pb(n.key),
        first_seen=timestamp(n.first_seen),
        last_seen=timestamp(n.last_seen),
        generic=n.generic,
    )


def customer_to_pb(view: CustomerView) -> pb.Customer:
    history = sorted(view.observations, key=lambda o: (o.observed_at, o.key, o.attribute))
    latest: dict[str, Observation] = {}
    for o in history:  # later wins
        latest[o.attribute] = o
    return pb.Customer(
        customer_id=view.customer_id,
        created_at=timestamp(view.created_at),
        aliases=view.aliases,
        identifiers=[identifier_info_to_pb(n) for n in view.identifiers],
        attributes=[attribute_to_pb(latest[name]) for name in sorted(latest)],
        attribute_history=[attribute_to_pb(o) for o in history],
        channels=view.channels,
        links=[link_to_pb(lk) for lk in view.links],
    )


def explain_response(ex: Explanation) -> pb.ExplainResponse:
    return pb.ExplainResponse(
        a=identifier_to_pb(ex.a),
        b=identifier_to_pb(ex.b),
        path=[link_to_pb(lk) for lk in ex.path],
        assurance=kind_to_pb(ex.assurance),
        same_customer=ex.same_customer,
        steps=[kind_to_pb(k) for k in steps(ex.path, ex.a)],
    )


def unlink_response(result: ChangeResult, moving: Sequence[str] = (), sealed: int = 0) -> pb.UnlinkResponse:
    """`moving`: the conversations that leave with the part the unlink splits off."""
    return pb.UnlinkResponse(
        links=[link_to_pb(lk) for lk in result.links],
        moving_conversations=list(moving),
        conversations_sealed=sealed,
        **change_fields(result),
    )


def split_response(
    plan: SplitPlan, moving: Sequence[Sequence[str]] = (), sealed: int = 0
) -> pb.SplitResponse:
    """`moving`: the conversations that move with each part, in the order of `plan.parts`."""
    moving = list(moving) or [[] for _ in plan.parts]
    return pb.SplitResponse(
        original_customer_id=plan.original,
        parts=[
            pb.SplitPart(
                customer_id=p.customer_id,
                identifiers=[identifier_to_pb(k) for k in p.members],
                is_new=p.is_new,
                moving_conversations=list(convs),
            )
            for p, convs in zip(plan.parts, moving, strict=True)
        ],
        cut=[link_to_pb(lk) for lk in plan.cut],
        conversations_sealed=sealed,
    )
