"""Conversions between session.v1 messages and the `Sessions` domain objects."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from identity_graph.api.convert import identifier_to_pb, kind_to_pb, timestamp
from identity_graph.engine import CustomerView, Proof
from identity_graph.errors import InvalidArgument
from session.model import Consent, Context, Conversation, Role, State, Status, Turn
from session.service import (
    Caller,
    ConversationView,
    EscalationPackage,
    HandoffTicket,
    Metrics,
    Sessions,
    StartResult,
    Suggestion,
    person,
)
from stubs.identity.v1 import identity_pb2 as ipb
from stubs.session.v1 import session_pb2 as pb

# ---- enums ----------------------------------------------------------------------------------

_STATUS_TO_PB = {
    Status.ACTIVE: pb.STATUS_ACTIVE,
    Status.INACTIVE: pb.STATUS_INACTIVE,
    Status.ESCALATED: pb.STATUS_ESCALATED,
    Status.CLOSED: pb.STATUS_CLOSED,
}
_STATUS_FROM_PB = {v: k for k, v in _STATUS_TO_PB.items()}
_ROLE_TO_PB = {Role.CUSTOMER: pb.ROLE_CUSTOMER, Role.BOT: pb.ROLE_BOT, Role.AGENT: pb.ROLE_AGENT}
_ROLE_FROM_PB = {v: k for k, v in _ROLE_TO_PB.items()}


def status_to_pb(status: Status) -> int:
    return _STATUS_TO_PB.get(status, pb.STATUS_UNSPECIFIED)


def statuses_from_pb(values: Any, field: str = "statuses") -> list[Status]:
    out = []
    for i, v in enumerate(values):
        if v not in _STATUS_FROM_PB:
            raise InvalidArgument(f"{field}[{i}]", "one of ACTIVE, INACTIVE, ESCALATED, CLOSED")
        out.append(_STATUS_FROM_PB[v])
    return out


def role_from_pb(value: int) -> str:
    """The domain's role name; an unspecified or unknown role raises InvalidArgument("role")."""
    role = _ROLE_FROM_PB.get(value)  # type: ignore[call-overload]
    if role is None:
        raise InvalidArgument("role", "one of CUSTOMER, BOT, AGENT")
    return role.value


# ---- callers and identifiers ----------------------------------------------------------------


def caller_from_pb(sessions: Sessions, msg: pb.Caller, field: str = "caller") -> Caller:
    """A normalised caller; errors name `caller.channel` or `caller.identifier…`."""
    sessions.graph.channel(msg.channel, f"{field}.channel")
    if not msg.HasField("identifier") or not (msg.identifier.type or msg.identifier.value):
        raise InvalidArgument(f"{field}.identifier", "an identifier (type and value) is required")
    ident = sessions.graph.identifier(msg.identifier.type, msg.identifier.value, f"{field}.identifier")
    return Caller(msg.channel, ident.key, person(msg.attributes, f"{field}.attributes"))


def request_caller(sessions: Sessions, request: Any) -> Caller:
    if not request.HasField("caller"):
        raise InvalidArgument("caller", "is required (channel and identifier)")
    return caller_from_pb(sessions, request.caller)


def identifier_pairs(idents: Any, field: str = "identifiers") -> list[tuple[str, str]]:
    if not idents:
        raise InvalidArgument(field, "at least one identifier is required")
    return [(i.type, i.value) for i in idents]


def identifier_pair(ident: ipb.Identifier, field: str = "identifier") -> tuple[str, str]:
    if not ident.type and not ident.value:
        raise InvalidArgument(field, "an identifier (type and value) is required")
    return ident.type, ident.value


def proof_from_pb(req: pb.StartOrResumeRequest) -> Proof | None:
    if not req.HasField("proof"):
        return None
    p = req.proof
    type_, value = identifier_pair(p.identifier, "proof.identifier")
    return Proof(kind=p.kind, identifier=f"{type_}:{value}", reference=p.reference)


def conversation_id(value: str) -> str:
    if not value.strip():
        raise InvalidArgument("conversation_id", "is required")
    return value.strip()


def expected_version(value: int) -> int:
    if value <= 0:
        raise InvalidArgument("expected_version", "the version you read is required (versions start at 1)")
    return value


# ---- context and state ----------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Struct numbers are doubles; whole numbers come back as ints, as they were written."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def context_from_pb(msg: pb.Context) -> Context:
    return Context(topic=msg.topic, intent=msg.intent, slots=dict(msg.slots))


def state_from_pb(msg: pb.State) -> State:
    """Raises InvalidArgument("state.data") for a NaN or infinite number, which JSON cannot hold."""
    try:
        data = _plain(json_format.MessageToDict(msg.data)) if msg.HasField("data") else {}
    except ValueError as e:  # json_format refuses non-finite numbers
        raise InvalidArgument("state.data", "numbers must be finite") from e
    return State(flow=msg.flow, step=msg.step, data=data)


def time_from_pb(ts: Timestamp, field: str) -> datetime:
    """A UTC datetime; a Timestamp outside 0001-01-01..9999-12-31 or with bad nanos names `field`."""
    try:
        return ts.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as e:
        raise InvalidArgument(field, "not a valid timestamp (0001-01-01 to 9999-12-31)") from e


def context_to_pb(ctx: Context) -> pb.Context:
    return pb.Context(topic=ctx.topic, intent=ctx.intent, slots=dict(ctx.slots))


def _struct(data: Mapping[str, Any]) -> Struct:
    s = Struct()
    s.update(json.loads(json.dumps(dict(data), default=str)))
    return s


def state_to_pb(state: State) -> pb.State:
    return pb.State(flow=state.flow, step=state.step, data=_struct(state.data))


# ---- conversations --------------------------------------------------------------------------


def turn_to_pb(t: Turn) -> pb.Turn:
    return pb.Turn(
        seq=t.seq,
        role=_ROLE_TO_PB.get(t.role, pb.ROLE_UNSPECIFIED),
        channel=t.channel,
        identifier=identifier_to_pb(t.identifier),
        text=t.text,
        intent=t.intent,
        topic=t.topic,
        at=timestamp(t.at),
    )


def _full(conv: Conversation, view: ConversationView, turns: bool) -> pb.Conversation:
    return pb.Conversation(
        conversation_id=conv.id,
        status=status_to_pb(conv.status),
        channels=list(conv.channels),
        disclosed=True,
        context=context_to_pb(conv.context),
        state=state_to_pb(conv.state),
        version=conv.version,
        turns=[turn_to_pb(t) for t in view.turns] if turns else [],
        created_at=timestamp(conv.created_at),
        updated_at=timestamp(conv.updated_at),
        closed_at=timestamp(conv.closed_at),
        escalation_reason=conv.escalation_reason,
        assurance=kind_to_pb(view.assurance),
        channel_switches=conv.channel_switches,
        resumed_count=conv.resumed_count,
        last_channel=conv.last_channel,
        carried_from=conv.carried_from,
    )


def view_to_pb(view: ConversationView, turns: bool = True) -> pb.Conversation:
    """A conversation as the caller may see it.

    Undisclosed, it carries only its id, status, `disclosed=False` and the caller's assurance:
    channels, times, counts, the escalation reason and what it was carried from are data anchored
    where the caller does not reach, so they stay out as well as context, state and turns.
    """
    conv = view.conversation
    if not view.disclosed:
        return pb.Conversation(
            conversation_id=conv.id,
            status=status_to_pb(conv.status),
            disclosed=False,
            assurance=kind_to_pb(view.assurance),
        )
    return _full(conv, view, turns)


def start_to_pb(r: StartResult) -> pb.StartOrResumeResponse:
    return pb.StartOrResumeResponse(
        conversation=view_to_pb(r.view),
        resumed=r.resumed,
        resumed_from_channel=r.resumed_from_channel,
        customer_id=r.customer_id,
        assurance=kind_to_pb(r.assurance),
        step_up_required=r.step_up_required,
        step_up_channels=r.step_up_channels,
        carried_over_from=r.carried_over_from,
        step_up_conversation_id=r.step_up_conversation_id,
    )


def suggestion_to_pb(s: Suggestion | None) -> pb.SuggestHandoffResponse:
    if s is None:
        return pb.SuggestHandoffResponse()
    return pb.SuggestHandoffResponse(channel=s.channel, purpose=s.purpose, reason=s.reason, message=s.message)


def ticket_to_pb(t: HandoffTicket) -> pb.CreateHandoffResponse:
    return pb.CreateHandoffResponse(
        code=t.code, link=t.link, channel=t.channel, expires_at=timestamp(t.expires_at)
    )


def profile_to_pb(view: CustomerView) -> pb.CustomerProfile:
    return pb.CustomerProfile(
        customer_id=view.customer_id,
        identifiers=[identifier_to_pb(n.key) for n in view.identifiers],
        attributes=[
            pb.ProfileAttribute(
                name=o.attribute,
                value=o.value,
                identifier=identifier_to_pb(o.key),
                source=o.source,
                channel=o.channel,
                observed_at=timestamp(o.observed_at),
            )
            for o in sorted(view.observations, key=lambda o: (o.observed_at, o.key, o.attribute))
        ],
        channels=view.channels,
    )


def escalation_to_pb(p: EscalationPackage) -> pb.EscalateResponse:
    by_id = {v.conversation.id: v for v in p.history}
    open_flows = [
        view_to_pb(by_id[c.id], turns=False) for c in p.open_flows if c.id in by_id and by_id[c.id].disclosed
    ]
    return pb.EscalateResponse(
        conversation=view_to_pb(p.conversation),
        history=[view_to_pb(v) for v in p.history],
        profile=profile_to_pb(p.profile),
        open_flows=open_flows,
        reason=p.reason,
    )


def consent_to_pb(c: Consent) -> pb.Consent:
    return pb.Consent(
        identifier=identifier_to_pb(c.identifier),
        channel=c.channel,
        purpose=c.purpose,
        granted=c.granted,
        source=c.source,
        at=timestamp(c.at),
    )


def metrics_to_pb(m: Metrics) -> pb.GetMetricsResponse:
    def finite(x: float) -> float:
        return 0.0 if math.isnan(x) or math.isinf(x) else float(x)

    return pb.GetMetricsResponse(
        customers=m.customers,
        multi_channel_share=finite(m.multi_channel_share),
        conversations=m.conversations,
        resumed=m.resumed,
        channel_switches=m.channel_switches,
        escalation_rate=finite(m.escalation_rate),
        median_time_to_close_s={k: finite(v) for k, v in m.median_time_to_close_s.items()},
    )
