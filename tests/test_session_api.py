"""session.v1 through a real aio server on 127.0.0.1 and real generated stubs, on both backends:
every RPC, the error mapping, disclosure by assurance against three attacks, and 20 concurrent
writers on one conversation."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import text_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from identity_graph.engine import IdentityGraph
from identity_graph.store.base import GraphStore
from server import SESSION_SERVICE, BackgroundServer
from session.policy import SessionPolicy
from session.service import Sessions
from session.store import conversation_store_for
from stubs.identity.v1 import identity_pb2 as ipb
from stubs.identity.v1 import identity_pb2_grpc as ipb_grpc
from stubs.session.v1 import session_pb2 as pb
from stubs.session.v1 import session_pb2_grpc as pb_grpc

TIMEOUT = 30.0


@dataclass
class Api:
    sessions: Sessions
    channel: grpc.Channel
    stub: pb_grpc.SessionServiceStub
    identity: ipb_grpc.IdentityServiceStub
    port: int

    def new_stub(self) -> tuple[grpc.Channel, pb_grpc.SessionServiceStub]:
        channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        return channel, pb_grpc.SessionServiceStub(channel)


@pytest.fixture
def api(store: GraphStore, request: pytest.FixtureRequest) -> Iterator[Api]:
    """A server over `store` (a `SessionPolicy` can come in by indirect parametrisation)."""
    policy = getattr(request, "param", None) or SessionPolicy()
    graph = IdentityGraph(store)
    sessions = Sessions(graph, conversation_store_for(store), policy)
    srv = BackgroundServer(graph, sessions=sessions, housekeeping_interval_s=0.05, timeout_s=TIMEOUT)
    channel = grpc.insecure_channel(f"127.0.0.1:{srv.port}")
    try:
        grpc.channel_ready_future(channel).result(TIMEOUT)
        yield Api(
            sessions,
            channel,
            pb_grpc.SessionServiceStub(channel),
            ipb_grpc.IdentityServiceStub(channel),
            srv.port,
        )
    finally:
        channel.close()
        srv.stop()


# ---- helpers --------------------------------------------------------------------------------


def ident(key: str) -> ipb.Identifier:
    type_, _, value = key.partition(":")
    return ipb.Identifier(type=type_, value=value)


def key_of(i: ipb.Identifier) -> str:
    return f"{i.type}:{i.value}"


def caller(channel: str, key: str) -> pb.Caller:
    return pb.Caller(channel=channel, identifier=ident(key))


WEB_OF = {"web_cookie": "web", "phone": "sms", "whatsapp": "whatsapp", "email": "email"}


def as_caller(key: str) -> pb.Caller:
    return caller(WEB_OF[key.partition(":")[0]], key)


def start(
    api: Api, channel: str, *keys: str, attributes: Mapping[str, str] | None = None, otp: str = ""
) -> pb.StartOrResumeResponse:
    """StartOrResume from `keys[0]`, claiming the rest; `otp` names one proven by a code."""
    req = pb.StartOrResumeRequest(
        channel=channel, identifiers=[ident(k) for k in keys], attributes=dict(attributes or {})
    )
    if otp:
        req.proof.CopyFrom(ipb.Proof(kind="otp", identifier=ident(otp)))
    return api.stub.StartOrResume(req, timeout=TIMEOUT)


def say(api: Api, cid: str, who: str, text: str, role: int = pb.ROLE_CUSTOMER, **kw: str) -> pb.Turn:
    req = pb.AppendTurnRequest(conversation_id=cid, caller=as_caller(who), role=role, text=text, **kw)
    return api.stub.AppendTurn(req, timeout=TIMEOUT).turn


def get(api: Api, cid: str, who: str) -> pb.Conversation:
    req = pb.GetConversationRequest(conversation_id=cid, caller=as_caller(who))
    return api.stub.GetConversation(req, timeout=TIMEOUT).conversation


def listed(api: Api, who: str, **kw: Any) -> pb.ListConversationsResponse:
    req = pb.ListConversationsRequest(caller=as_caller(who), **kw)
    return api.stub.ListConversations(req, timeout=TIMEOUT)


def set_context(api: Api, conv: pb.Conversation, who: str, **ctx: Any) -> pb.Conversation:
    req = pb.UpdateContextRequest(
        conversation_id=conv.conversation_id,
        caller=as_caller(who),
        expected_version=conv.version,
        context=pb.Context(**ctx),
    )
    return api.stub.UpdateContext(req, timeout=TIMEOUT).conversation


def set_state(
    api: Api, conv: pb.Conversation, who: str, flow: str, step: str, **data: Any
) -> pb.Conversation:
    state = pb.State(flow=flow, step=step)
    state.data.update(data)
    req = pb.UpdateStateRequest(
        conversation_id=conv.conversation_id,
        caller=as_caller(who),
        expected_version=conv.version,
        state=state,
    )
    return api.stub.UpdateState(req, timeout=TIMEOUT).conversation


def escalate(
    api: Api, cid: str, who: str, reason: str = "customer asked for a person"
) -> pb.EscalateResponse:
    req = pb.EscalateRequest(conversation_id=cid, caller=as_caller(who), reason=reason)
    return api.stub.Escalate(req, timeout=TIMEOUT)


def rpc_error(call: Any, request: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=TIMEOUT)
    return info.value


def code_of(call: Any, request: Any) -> grpc.StatusCode:
    return rpc_error(call, request).code()


def assert_no_leak(message: Any, *secrets: str) -> None:
    """Nothing in the whole response (any field, however nested) mentions a secret."""
    text = text_format.MessageToString(message, as_utf8=True).lower()
    for secret in secrets:
        assert secret.lower() not in text, f"{secret!r} leaked in\n{text}"


def texts(conv: pb.Conversation) -> list[str]:
    return [t.text for t in conv.turns]


MARIA = {"first_name": "Maria", "last_name": "Lopez", "date_of_birth": "1988-03-14"}


# ---- every RPC ------------------------------------------------------------------------------


def test_a_conversation_follows_the_customer_across_three_channels(api: Api) -> None:
    web = start(api, "web", "web_cookie:ck-1", "email:Maria@Example.com", attributes=MARIA)
    assert not web.resumed and web.customer_id.startswith("cus_") and web.assurance == ipb.LINK_KIND_VERIFIED
    conv = web.conversation
    cid = conv.conversation_id
    assert conv.disclosed and conv.status == pb.STATUS_ACTIVE and list(conv.channels) == ["web"]
    assert conv.version == 1 and conv.created_at.seconds > 0 and not web.step_up_required

    turn = say(
        api, cid, "web_cookie:ck-1", "How wide is the FR-200?", intent="product_question", topic="dimensions"
    )
    assert (turn.seq, turn.role, turn.channel, key_of(turn.identifier)) == (
        1,
        pb.ROLE_CUSTOMER,
        "web",
        "web_cookie:ck-1",
    )
    assert turn.intent == "product_question" and turn.topic == "dimensions" and turn.at.seconds > 0
    bot = say(api, cid, "web_cookie:ck-1", "It is 70 cm wide.", role=pb.ROLE_BOT)
    assert bot.seq == 2 and bot.role == pb.ROLE_BOT

    conv = set_context(
        api, conv, "web_cookie:ck-1", topic="dimensions", intent="buy", slots={"model": "FR-200"}
    )
    assert conv.version == 2 and conv.context.slots["model"] == "FR-200" and texts(conv)[0].startswith("How")
    conv = set_state(
        api, conv, "web_cookie:ck-1", "order", "choose_model", qty=1, models=["FR-200", "FR-300"]
    )
    assert conv.version == 3 and conv.state.step == "choose_model"
    assert dict(conv.state.data) == {"qty": 1, "models": ["FR-200", "FR-300"]}

    # She gives her phone on the web; SMS from it resumes the same conversation with its state.
    start(api, "web", "web_cookie:ck-1", "phone:(415) 555-0134")
    sms = start(api, "sms", "phone:+1 415 555 0134")
    assert sms.resumed and sms.resumed_from_channel == "web" and sms.customer_id == web.customer_id
    assert sms.conversation.conversation_id == cid and sms.assurance == ipb.LINK_KIND_OBSERVED
    assert sms.conversation.state.step == "choose_model" and sms.conversation.state.data["qty"] == 1
    assert texts(sms.conversation) == ["How wide is the FR-200?", "It is 70 cm wide."]
    say(api, cid, "phone:+14155550134", "Can it come on Friday?")

    wa = start(api, "whatsapp", "whatsapp:+14155550134")
    assert wa.resumed and wa.resumed_from_channel == "sms" and wa.conversation.conversation_id == cid
    assert wa.conversation.context.slots == {"model": "FR-200"}
    conv = set_state(api, wa.conversation, "whatsapp:+14155550134", "order", "paid", qty=1)
    say(api, cid, "whatsapp:+14155550134", "Paid, thanks!")

    final = get(api, cid, "whatsapp:+14155550134")
    assert final.disclosed and final.state.step == "paid" and final.version == 4
    assert set(final.channels) == {"web", "sms", "whatsapp"} and final.channel_switches == 2
    assert final.last_channel == "whatsapp" and final.resumed_count >= 2
    assert [t.seq for t in final.turns] == [1, 2, 3, 4]
    assert [t.channel for t in final.turns] == ["web", "web", "sms", "whatsapp"]

    # ListConversations: newest first, filtered and paged.
    other = start(api, "email", "email:maria@example.com")  # resumes the same one
    assert other.conversation.conversation_id == cid
    all_ = listed(api, "phone:+14155550134")
    assert [c.conversation_id for c in all_.conversations] == [cid] and not all_.next_page_token
    assert all_.conversations[0].disclosed and not all_.conversations[0].turns
    assert not listed(api, "web_cookie:ck-1", statuses=[pb.STATUS_CLOSED]).conversations
    closed = api.stub.Close(
        pb.CloseRequest(conversation_id=cid, caller=as_caller("web_cookie:ck-1")), timeout=TIMEOUT
    )
    assert closed.conversation.status == pb.STATUS_CLOSED and closed.conversation.closed_at.seconds > 0
    fresh = start(api, "web", "web_cookie:ck-1")
    assert not fresh.resumed and fresh.carried_over_from == cid
    assert fresh.conversation.context.slots == {"model": "FR-200"} and not fresh.conversation.context.intent
    page1 = listed(api, "web_cookie:ck-1", page_size=1)
    assert [c.conversation_id for c in page1.conversations] == [fresh.conversation.conversation_id]
    page2 = listed(api, "web_cookie:ck-1", page_size=1, page_token=page1.next_page_token)
    assert [c.conversation_id for c in page2.conversations] == [cid] and not page2.next_page_token
    only_closed = listed(api, "web_cookie:ck-1", statuses=[pb.STATUS_CLOSED])
    assert [c.conversation_id for c in only_closed.conversations] == [cid]


def test_consent_suggestion_and_handoff_code(api: Api) -> None:
    # The web form proved the phone with a one-time code (a phone merely typed would not do).
    web = start(api, "web", "web_cookie:ck-2", "phone:+14155550177", otp="phone:+14155550177")
    conv = set_state(api, web.conversation, "web_cookie:ck-2", "delivery", "scheduled")
    cid = conv.conversation_id
    suggest = pb.SuggestHandoffRequest(conversation_id=cid, caller=as_caller("web_cookie:ck-2"))
    assert api.stub.SuggestHandoff(suggest, timeout=TIMEOUT).channel == ""  # no consent yet

    granted = api.stub.RecordConsent(
        pb.RecordConsentRequest(
            identifier=ident("phone:(415) 555-0177"),
            channel="sms",
            purpose="delivery_updates",
            granted=True,
            source="web form",
        ),
        timeout=TIMEOUT,
    )
    assert key_of(granted.identifier) == "phone:+14155550177" and granted.granted and granted.at.seconds > 0
    s = api.stub.SuggestHandoff(suggest, timeout=TIMEOUT)
    assert s.channel == "sms" and s.purpose == "delivery_updates" and "SMS" in s.message and s.reason
    api.stub.RecordConsent(
        pb.RecordConsentRequest(
            identifier=ident("phone:+14155550177"),
            channel="sms",
            purpose="delivery_updates",
            granted=False,
            source="STOP reply",
        ),
        timeout=TIMEOUT,
    )
    assert api.stub.SuggestHandoff(suggest, timeout=TIMEOUT).channel == ""
    consents = api.stub.GetConsents(
        pb.GetConsentsRequest(identifier=ident("phone:+14155550177")), timeout=TIMEOUT
    )
    assert [c.granted for c in consents.history] == [True, False]
    assert [(c.channel, c.purpose, c.granted, c.source) for c in consents.current] == [
        ("sms", "delivery_updates", False, "STOP reply")
    ]

    # A handoff code moves the conversation to a new WhatsApp number and links it verified.
    ticket = api.stub.CreateHandoff(
        pb.CreateHandoffRequest(conversation_id=cid, caller=as_caller("web_cookie:ck-2"), channel="whatsapp"),
        timeout=TIMEOUT,
    )
    assert ticket.channel == "whatsapp" and ticket.link.startswith("https://wa.me/") and len(ticket.code) == 8
    assert ticket.code not in ticket.link and ticket.expires_at.seconds > time.time()
    assert len(bytes.fromhex(ticket.link.rpartition("RESUME%20")[2])) == 16  # a 128-bit link token
    redeem = pb.RedeemHandoffRequest(
        code=ticket.code.lower(), channel="whatsapp", identifiers=[ident("whatsapp:+447700900123")]
    )
    r = api.stub.RedeemHandoff(redeem, timeout=TIMEOUT)
    assert r.resumed and r.conversation.conversation_id == cid and r.conversation.state.step == "scheduled"
    assert r.customer_id == web.customer_id and r.assurance == ipb.LINK_KIND_VERIFIED
    path = api.identity.Explain(
        ipb.ExplainRequest(a=ident("whatsapp:+447700900123"), b=ident("web_cookie:ck-2")), timeout=TIMEOUT
    )
    assert [lk.kind for lk in path.path] == [ipb.LINK_KIND_VERIFIED] and path.path[0].source == "handoff"
    assert code_of(api.stub.RedeemHandoff, redeem) is grpc.StatusCode.FAILED_PRECONDITION  # single use
    bad = pb.RedeemHandoffRequest(code="NOPE2345", channel="sms", identifiers=[ident("phone:+14155550100")])
    assert code_of(api.stub.RedeemHandoff, bad) is grpc.StatusCode.FAILED_PRECONDITION


def test_escalate_close_and_metrics(api: Api) -> None:
    first = start(api, "web", "web_cookie:ck-3", "phone:+14155550188", attributes={"first_name": "Maria"})
    conv = set_state(api, first.conversation, "web_cookie:ck-3", "return", "label_sent", order="A1")
    cid = conv.conversation_id
    say(api, cid, "web_cookie:ck-3", "the label does not print")
    say(api, cid, "phone:+14155550188", "still broken")
    package = escalate(api, cid, "phone:+14155550188", "customer frustrated")
    assert package.reason == "customer frustrated"
    assert package.conversation.status == pb.STATUS_ESCALATED
    assert package.conversation.escalation_reason == "customer frustrated"
    assert texts(package.conversation) == ["the label does not print", "still broken"]
    assert [c.conversation_id for c in package.history] == [cid]
    assert [(c.conversation_id, c.state.flow) for c in package.open_flows] == [(cid, "return")]
    assert not package.open_flows[0].turns
    assert {key_of(i) for i in package.profile.identifiers} == {"web_cookie:ck-3", "phone:+14155550188"}
    assert package.profile.customer_id == first.customer_id
    assert [(a.name, a.value, key_of(a.identifier)) for a in package.profile.attributes] == [
        ("first_name", "maria", "web_cookie:ck-3")
    ]
    assert {"web", "sms"} <= set(package.profile.channels)
    agent = say(api, cid, "phone:+14155550188", "Hi Maria, I'm Sam from support.", role=pb.ROLE_AGENT)
    assert agent.role == pb.ROLE_AGENT and agent.seq == 3
    done = api.stub.Close(
        pb.CloseRequest(conversation_id=cid, caller=as_caller("web_cookie:ck-3")), timeout=TIMEOUT
    )
    assert done.conversation.status == pb.STATUS_CLOSED
    late = pb.AppendTurnRequest(
        conversation_id=cid, caller=as_caller("web_cookie:ck-3"), role=pb.ROLE_CUSTOMER, text="hi"
    )
    assert code_of(api.stub.AppendTurn, late) is grpc.StatusCode.FAILED_PRECONDITION

    m = api.stub.GetMetrics(pb.GetMetricsRequest(), timeout=TIMEOUT)
    assert m.customers == 1 and m.conversations == 1 and m.escalation_rate == 1.0
    assert m.multi_channel_share == 1.0 and m.channel_switches == 1
    assert set(m.median_time_to_close_s) == {"web"} and m.median_time_to_close_s["web"] >= 0
    empty = pb.GetMetricsRequest()
    empty.start.FromSeconds(0)
    empty.end.FromSeconds(1)
    assert api.stub.GetMetrics(empty, timeout=TIMEOUT).conversations == 0
    backwards = pb.GetMetricsRequest()
    backwards.start.FromSeconds(10)
    backwards.end.FromSeconds(5)
    err = rpc_error(api.stub.GetMetrics, backwards)
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith("end:")


@pytest.mark.parametrize(
    "api",
    [SessionPolicy(idle_timeout=timedelta(milliseconds=300), close_after=timedelta(hours=1))],
    indirect=True,
    ids=["short-idle"],
)
def test_housekeeping_runs_in_the_background(api: Api) -> None:
    cid = start(api, "web", "web_cookie:ck-idle").conversation.conversation_id
    deadline = time.monotonic() + 15
    status = pb.STATUS_ACTIVE
    while time.monotonic() < deadline:
        status = get(api, cid, "web_cookie:ck-idle").status
        if status == pb.STATUS_INACTIVE:
            break
        time.sleep(0.1)
    assert status == pb.STATUS_INACTIVE  # nobody called StartOrResume: the server's own task did it


def test_health_and_reflection_include_the_session_service(api: Api) -> None:
    health = health_pb2_grpc.HealthStub(api.channel)
    resp = health.Check(health_pb2.HealthCheckRequest(service=SESSION_SERVICE), timeout=TIMEOUT)
    assert (
        resp.status == health_pb2.HealthCheckResponse.SERVING
        and SESSION_SERVICE == "session.v1.SessionService"
    )
    stub = reflection_pb2_grpc.ServerReflectionStub(api.channel)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=SESSION_SERVICE),
    ]
    listing, described = list(stub.ServerReflectionInfo(iter(requests), timeout=TIMEOUT))
    names = {s.name for s in listing.list_services_response.service}
    assert {SESSION_SERVICE, "identity.v1.IdentityService"} <= names
    assert described.file_descriptor_response.file_descriptor_proto


# ---- errors ---------------------------------------------------------------------------------


def test_errors_name_the_field_and_map_to_codes(api: Api) -> None:
    conv = start(api, "web", "web_cookie:ck-e", "email:e@example.com").conversation
    cid = conv.conversation_id

    def invalid(call: Any, request: Any, field: str) -> None:
        err = rpc_error(call, request)
        assert err.code() is grpc.StatusCode.INVALID_ARGUMENT, (field, err.details())
        assert err.details().startswith(field), (field, err.details())
        assert "Traceback" not in err.details()

    def turn(**kw: Any) -> pb.AppendTurnRequest:
        fields: dict[str, Any] = {
            "conversation_id": cid,
            "caller": as_caller("web_cookie:ck-e"),
            "role": pb.ROLE_CUSTOMER,
            "text": "hello",
        }
        return pb.AppendTurnRequest(**{**fields, **kw})

    invalid(api.stub.AppendTurn, turn(caller=caller("sms", "phone:not a phone")), "caller.identifier")
    invalid(api.stub.AppendTurn, turn(caller=caller("sms", "fax:123")), "caller.identifier.type")
    invalid(api.stub.AppendTurn, turn(caller=caller("pigeon", "web_cookie:ck-e")), "caller.channel")
    invalid(
        api.stub.AppendTurn, pb.AppendTurnRequest(conversation_id=cid, role=pb.ROLE_CUSTOMER, text="x"),
        "caller"
    )
    invalid(api.stub.AppendTurn, turn(text="   "), "text")
    invalid(api.stub.AppendTurn, turn(text="x" * 4001), "text")
    invalid(api.stub.AppendTurn, turn(role=pb.ROLE_UNSPECIFIED), "role")
    invalid(api.stub.AppendTurn, turn(role=42), "role")
    invalid(api.stub.AppendTurn, turn(conversation_id=""), "conversation_id")
    invalid(api.stub.AppendTurn, turn(intent="i" * 201), "intent")
    invalid(api.stub.StartOrResume, pb.StartOrResumeRequest(channel="web"), "identifiers")
    invalid(
        api.stub.StartOrResume,
        pb.StartOrResumeRequest(channel="fax", identifiers=[ident("email:a@b.com")]),
        "channel",
    )
    invalid(
        api.stub.StartOrResume,
        pb.StartOrResumeRequest(channel="web", identifiers=[ident("email:not-an-email")]),
        "identifiers",
    )
    invalid(
        api.stub.UpdateState,
        pb.UpdateStateRequest(
            conversation_id=cid, caller=as_caller("web_cookie:ck-e"), state=pb.State(flow="x")
        ),
        "expected_version",
    )
    invalid(
        api.stub.UpdateContext,
        pb.UpdateContextRequest(conversation_id=cid, caller=as_caller("web_cookie:ck-e"), expected_version=1),
        "context",
    )
    invalid(
        api.stub.ListConversations,
        pb.ListConversationsRequest(caller=as_caller("web_cookie:ck-e"), page_size=1000),
        "page_size",
    )
    invalid(
        api.stub.CreateHandoff,
        pb.CreateHandoffRequest(conversation_id=cid, caller=as_caller("web_cookie:ck-e"), channel="fax"),
        "channel",
    )
    invalid(
        api.stub.Escalate,
        pb.EscalateRequest(conversation_id=cid, caller=as_caller("web_cookie:ck-e")),
        "reason",
    )
    invalid(api.stub.RecordConsent, pb.RecordConsentRequest(channel="sms", purpose="x"), "identifier")
    invalid(api.stub.GetConsents, pb.GetConsentsRequest(), "identifier")
    assert len(texts(get(api, cid, "web_cookie:ck-e"))) == 0  # nothing invalid was written

    # NOT_FOUND
    for call, request in (
        (
            api.stub.GetConversation,
            pb.GetConversationRequest(conversation_id="conv_nope", caller=turn().caller),
        ),
        (api.stub.AppendTurn, turn(conversation_id="conv_nope")),
        (api.stub.Close, pb.CloseRequest(conversation_id="conv_nope", caller=turn().caller)),
        (
            api.stub.CompleteStepUp,
            pb.CompleteStepUpRequest(step_up_id="stp_nope", caller=turn().caller, code="1"),
        ),
    ):
        assert code_of(call, request) is grpc.StatusCode.NOT_FOUND

    # ABORTED: a stale version is rejected and nothing is overwritten.
    v2 = set_state(api, conv, "web_cookie:ck-e", "return", "pick_item")
    assert v2.version == conv.version + 1
    stale = pb.UpdateStateRequest(
        conversation_id=cid, caller=turn().caller, expected_version=conv.version, state=pb.State(flow="order")
    )
    assert code_of(api.stub.UpdateState, stale) is grpc.StatusCode.ABORTED
    stale_ctx = pb.UpdateContextRequest(
        conversation_id=cid,
        caller=turn().caller,
        expected_version=conv.version,
        context=pb.Context(topic="x"),
    )
    assert code_of(api.stub.UpdateContext, stale_ctx) is grpc.StatusCode.ABORTED
    now = get(api, cid, "web_cookie:ck-e")
    assert now.state.flow == "return" and now.version == v2.version and not now.context.topic

    # PERMISSION_DENIED: another customer's cookie does not reach this conversation.
    start(api, "web", "web_cookie:ck-stranger")
    denied = rpc_error(api.stub.AppendTurn, turn(caller=as_caller("web_cookie:ck-stranger")))
    assert denied.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "e@example.com" not in denied.details() and "ck-e" not in denied.details()


# ---- disclosure by assurance ----------------------------------------------------------------

GUARDED_RPCS = (
    "AppendTurn",
    "UpdateContext",
    "UpdateState",
    "Escalate",
    "Close",
    "SuggestHandoff",
    "CreateHandoff",
)


def assert_locked_out(api: Api, cid: str, who: str, *secrets: str) -> None:
    """`who` sees nothing of conversation `cid` and may not touch it, through any RPC."""
    hidden = get(api, cid, who)
    assert hidden.conversation_id == cid and not hidden.disclosed
    assert not hidden.turns and not hidden.context.slots and not hidden.state.flow and not hidden.version
    assert not hidden.channels and not hidden.escalation_reason
    assert_no_leak(hidden, *secrets)
    mine = listed(api, who)
    assert cid not in {c.conversation_id for c in mine.conversations}
    assert_no_leak(mine, *secrets)
    c = as_caller(who)
    requests = {
        "AppendTurn": pb.AppendTurnRequest(conversation_id=cid, caller=c, role=pb.ROLE_CUSTOMER, text="hi"),
        "UpdateContext": pb.UpdateContextRequest(
            conversation_id=cid, caller=c, expected_version=1, context=pb.Context(topic="x")
        ),
        "UpdateState": pb.UpdateStateRequest(
            conversation_id=cid, caller=c, expected_version=1, state=pb.State()
        ),
        "Escalate": pb.EscalateRequest(conversation_id=cid, caller=c, reason="let me see it"),
        "Close": pb.CloseRequest(conversation_id=cid, caller=c),
        "SuggestHandoff": pb.SuggestHandoffRequest(conversation_id=cid, caller=c),
        "CreateHandoff": pb.CreateHandoffRequest(conversation_id=cid, caller=c, channel="whatsapp"),
    }
    for name in GUARDED_RPCS:
        err = rpc_error(getattr(api.stub, name), requests[name])
        assert err.code() is grpc.StatusCode.PERMISSION_DENIED, name
        for secret in secrets:
            assert secret.lower() not in err.details().lower()


def plant_secrets(api: Api, conv: pb.Conversation, who: str) -> pb.Conversation:
    cid = conv.conversation_id
    say(api, cid, who, "Deliver to 1 Secret Lane, door code K4711Q")
    conv = set_context(api, conv, who, topic="delivery", intent="order", slots={"address": "1 Secret Lane"})
    return set_state(api, conv, who, "order", "payment", card_last4="Q4242Z")


# Distinctive enough never to appear by chance (a bare "4242" matched a timestamp's nanos).
SECRETS = ("Secret Lane", "K4711Q", "Q4242Z")


def test_lookalike_on_a_new_phone_sees_nothing_until_it_steps_up(api: Api) -> None:
    victim = start(api, "web", "web_cookie:victim", "email:maria@example.com", attributes=MARIA)
    cid = victim.conversation.conversation_id
    plant_secrets(api, victim.conversation, "web_cookie:victim")
    # Someone with a look-alike profile on a new phone: the model scores a probable match.
    link = api.identity.Link(
        ipb.LinkRequest(
            a=ident("phone:+14155559999"),
            b=ident("email:maria@example.com"),
            kind=ipb.LINK_KIND_PROBABLE,
            probability=0.995,
            source="splink",
            actor="model",
        ),
        timeout=TIMEOUT,
    )
    assert [lk.kind for lk in link.links] == [ipb.LINK_KIND_PROBABLE]
    attacker = "phone:+14155559999"
    r = start(api, "sms", attacker)
    assert r.customer_id == victim.customer_id  # recognised ...
    assert not r.resumed and r.conversation.conversation_id != cid  # ... but shown nothing
    assert r.step_up_required and list(r.step_up_channels) == ["email m•••@example.com"]
    assert r.step_up_conversation_id == cid
    assert not r.carried_over_from and not r.conversation.context.slots and not r.conversation.turns
    assert_no_leak(r, *SECRETS, "maria@", "Maria", "Lopez", "victim")
    assert_locked_out(api, cid, attacker, *SECRETS, "maria@", "Lopez", "victim")
    own = escalate(api, r.conversation.conversation_id, attacker)
    assert [c.conversation_id for c in own.history] == [r.conversation.conversation_id]
    assert {key_of(i) for i in own.profile.identifiers} == {attacker} and not own.profile.attributes
    assert_no_leak(own, *SECRETS, "maria@", "Maria", "Lopez", "victim")

    # Step-up: a code goes to the victim's email; a guess fails, the real owner's code works.
    step = api.stub.StartStepUp(
        pb.StartStepUpRequest(caller=as_caller(attacker), conversation_id=cid), timeout=TIMEOUT
    )
    assert step.sent_to == "email m•••@example.com" and step.step_up_id and step.expires_at.seconds > 0
    wrong = pb.CompleteStepUpRequest(step_up_id=step.step_up_id, caller=as_caller(attacker), code="000000x")
    assert code_of(api.stub.CompleteStepUp, wrong) is grpc.StatusCode.PERMISSION_DENIED
    other = pb.CompleteStepUpRequest(
        step_up_id=step.step_up_id, caller=as_caller("phone:+14155550000"), code="1"
    )
    assert code_of(api.stub.CompleteStepUp, other) is grpc.StatusCode.NOT_FOUND  # not theirs
    assert get(api, cid, attacker).disclosed is False
    code = api.sessions.store.outbox("maria@example.com")[-1].text.rsplit(" ", 1)[1]
    done = api.stub.CompleteStepUp(
        pb.CompleteStepUpRequest(step_up_id=step.step_up_id, caller=as_caller(attacker), code=code),
        timeout=TIMEOUT,
    )
    assert done.verified
    seen = get(api, cid, attacker)
    assert (
        seen.disclosed and seen.state.data["card_last4"] == "Q4242Z" and texts(seen)[0].startswith("Deliver")
    )


def test_a_shared_family_phone_shows_neither_person_the_others_conversation(api: Api) -> None:
    family = "phone:+14155550001"
    alice = start(
        api,
        "web",
        "web_cookie:ck-a",
        "email:alice@x.com",
        family,
        attributes={"first_name": "Alice", "date_of_birth": "1980-01-01"},
    )
    a_cid = alice.conversation.conversation_id
    plant_secrets(api, alice.conversation, "web_cookie:ck-a")
    bob = start(
        api,
        "web",
        "web_cookie:ck-b",
        "email:bob@x.com",
        family,
        attributes={"first_name": "Bob", "date_of_birth": "2010-05-05"},
    )
    assert bob.customer_id != alice.customer_id and not bob.resumed
    assert bob.conversation.conversation_id != a_cid and not bob.carried_over_from
    assert_no_leak(bob, *SECRETS, "alice")
    b_cid = bob.conversation.conversation_id
    say(api, b_cid, "web_cookie:ck-b", "Bob's birthday present: a red bike")

    shared = start(api, "sms", family)
    s_cid = shared.conversation.conversation_id
    assert s_cid not in (a_cid, b_cid) and not shared.resumed and not shared.carried_over_from
    assert_no_leak(shared, *SECRETS, "red bike", "alice", "bob@")
    assert_locked_out(api, a_cid, family, *SECRETS, "alice")
    assert_locked_out(api, b_cid, family, "red bike", "bob@")
    assert_locked_out(api, a_cid, "web_cookie:ck-b", *SECRETS, "alice")
    assert_locked_out(api, b_cid, "web_cookie:ck-a", "red bike", "bob@")
    own = escalate(api, s_cid, family)
    assert [c.conversation_id for c in own.history] == [s_cid]
    assert {key_of(i) for i in own.profile.identifiers} <= {family} and not own.profile.attributes
    assert_no_leak(own, *SECRETS, "red bike", "alice", "bob@", "Bob")
    # Each of them still sees their own conversation from their own cookie.
    assert texts(get(api, a_cid, "web_cookie:ck-a"))[0].startswith("Deliver to 1 Secret Lane")
    assert texts(get(api, b_cid, "web_cookie:ck-b")) == ["Bob's birthday present: a red bike"]


@pytest.mark.parametrize("how", ["unlink", "split"])
def test_a_recycled_number_does_not_get_the_old_owners_conversation(api: Api, how: str) -> None:
    number = "phone:+14155550134"
    owner = start(api, "web", "web_cookie:old", "email:olga@example.com", attributes={"first_name": "Olga"})
    cid = owner.conversation.conversation_id
    plant_secrets(api, owner.conversation, "web_cookie:old")
    given = start(api, "web", "web_cookie:old", number)  # she gives her mobile on the web
    assert given.resumed and given.conversation.conversation_id == cid
    sms = start(api, "sms", number)
    assert sms.resumed and sms.conversation.conversation_id == cid
    say(api, cid, number, "also leave it with the neighbour at number 9")

    # The carrier recycles the number; operations detach it from the old owner.
    if how == "unlink":
        api.identity.Unlink(
            ipb.UnlinkRequest(
                a=ident("web_cookie:old"), b=ident(number), actor="ops", reason="number recycled"
            ),
            timeout=TIMEOUT,
        )
    else:
        api.identity.Split(
            ipb.SplitRequest(
                cut=[ipb.IdentifierPair(a=ident("web_cookie:old"), b=ident(number))], actor="ops"
            ),
            timeout=TIMEOUT,
        )
    secrets = (*SECRETS, "neighbour", "olga")
    new_owner = start(api, "sms", number)
    new_cid = new_owner.conversation.conversation_id
    assert not new_owner.resumed and new_cid != cid and new_owner.customer_id != owner.customer_id
    assert not new_owner.step_up_required and not new_owner.step_up_conversation_id
    assert not new_owner.carried_over_from and not new_owner.conversation.context.slots
    assert_no_leak(new_owner, *secrets)
    assert_locked_out(api, cid, number, *secrets)
    whatsapp = start(api, "whatsapp", "whatsapp:+14155550134")  # the same number on WhatsApp
    assert whatsapp.conversation.conversation_id != cid
    assert_no_leak(whatsapp, *secrets)
    assert_locked_out(api, cid, "whatsapp:+14155550134", *secrets)
    own = escalate(api, new_cid, number)
    assert cid not in {c.conversation_id for c in own.history}
    assert number in {key_of(i) for i in own.profile.identifiers}
    assert {key_of(i) for i in own.profile.identifiers}.isdisjoint(
        {"web_cookie:old", "email:olga@example.com"}
    )
    assert_no_leak(own, *secrets)
    # The old owner keeps her conversation on the web.
    old = get(api, cid, "web_cookie:old")
    assert old.disclosed and texts(old)[0].startswith("Deliver to 1 Secret Lane")


def test_recycling_a_number_seals_the_conversations_that_came_in_through_it(api: Api) -> None:
    number = "phone:+14155550177"
    first = start(api, "sms", number, attributes={"first_name": "Olga"})  # she texts first
    cid = first.conversation.conversation_id
    plant_secrets(api, first.conversation, number)
    start(api, "web", "web_cookie:olga", number)  # later she gives the number on the web
    sealed = api.stub.RecycleIdentifier(
        pb.RecycleIdentifierRequest(identifier=ident(number), actor="ops", reason="carrier reissued"),
        timeout=TIMEOUT,
    )
    assert sealed.conversations_sealed == 1 and sealed.customer_id != first.customer_id
    new_owner = start(api, "sms", number)
    assert not new_owner.resumed and new_owner.conversation.conversation_id != cid
    assert not new_owner.carried_over_from and not new_owner.step_up_required
    assert_no_leak(new_owner, *SECRETS, "olga")
    assert_locked_out(api, cid, number, *SECRETS)
    missing = pb.RecycleIdentifierRequest(identifier=ident(number), actor="")
    assert code_of(api.stub.RecycleIdentifier, missing) is grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("seal", [False, True], ids=["move", "seal"])
def test_split_preview_lists_the_conversations_that_move_and_split_can_seal_them(
    api: Api, seal: bool
) -> None:
    """A phone detached from a customer takes the conversation that came in through it along
    (it follows whoever holds the phone). PreviewSplit names it under the part that leaves, and
    Split with `seal_moving_conversations` seals it instead: nobody opens it afterwards."""
    phone = "phone:+14155550155"
    sms = start(api, "sms", phone)
    moving = sms.conversation.conversation_id
    web = start(api, "web", "web_cookie:s1", "email:s1@example.com")
    start(api, "web", "web_cookie:s1", phone)  # the web visitor gives the phone: one customer
    staying = web.conversation.conversation_id
    request = ipb.SplitRequest(detach=[ident(phone)], actor="ops", seal_moving_conversations=seal)
    preview = api.identity.PreviewSplit(request, timeout=TIMEOUT)
    parts = {tuple(sorted(key_of(i) for i in p.identifiers)): p for p in preview.parts}
    assert list(parts[(phone,)].moving_conversations) == [moving] and parts[(phone,)].is_new
    kept = parts[("email:s1@example.com", "web_cookie:s1")]
    assert not kept.is_new and not kept.moving_conversations and preview.conversations_sealed == 0
    assert get(api, moving, phone).disclosed  # a preview changes nothing

    done = api.identity.Split(request, timeout=TIMEOUT)
    part = next(p for p in done.parts if p.is_new)
    assert list(part.moving_conversations) == [moving]
    assert done.conversations_sealed == (1 if seal else 0)
    assert get(api, moving, phone).disclosed is not seal
    again = start(api, "sms", phone)
    assert again.resumed is not seal and (again.conversation.conversation_id == moving) is not seal
    assert get(api, staying, "web_cookie:s1").disclosed  # the other part's conversation stays


def unlink_fixture(api: Api, phone: str, cookie: str, email: str) -> tuple[str, str]:
    """A phone that texted in, then given by a web visitor: one customer, two conversations.
    Returns (the SMS conversation, the web conversation)."""
    sms = start(api, "sms", phone)
    web = start(api, "web", cookie, email)
    start(api, "web", cookie, phone)  # the web visitor gives the phone: one customer
    return sms.conversation.conversation_id, web.conversation.conversation_id


def test_unlink_preview_lists_the_conversation_that_would_move_and_writes_nothing(api: Api) -> None:
    """Unlink with `preview` names the conversation that came in through the phone the unlink
    would split off, and changes nothing (even with `seal_moving_conversations` set): the same
    event log, customer and links afterwards, and the conversation still opens for the phone."""
    phone, cookie, email = "phone:+14155550177", "web_cookie:u1", "email:u1@example.com"
    moving, staying = unlink_fixture(api, phone, cookie, email)
    whole = api.identity.GetCustomer(ipb.GetCustomerRequest(identifier=ident(phone)), timeout=TIMEOUT)
    by_id = ipb.GetCustomerRequest(customer_id=whole.customer.customer_id)
    before = api.identity.GetCustomer(by_id, timeout=TIMEOUT).customer
    assert {key_of(i.identifier) for i in before.identifiers} == {phone, cookie, email}
    between = [lk.link_id for lk in before.links if {key_of(lk.a), key_of(lk.b)} == {phone, cookie}]
    events_before = api.sessions.graph.events.read(0, 100_000)
    for seal in (False, True):
        request = ipb.UnlinkRequest(
            a=ident(cookie), b=ident(phone), preview=True, seal_moving_conversations=seal
        )
        preview = api.identity.Unlink(request, timeout=TIMEOUT)
        assert list(preview.moving_conversations) == [moving] and preview.conversations_sealed == 0
        assert [lk.link_id for lk in preview.links] == between
        assert len(preview.customer_ids) == 2 and before.customer_id in preview.customer_ids
        assert {e.type for e in preview.events} >= {"unlink", "split"}
        assert all(e.seq == 0 for e in preview.events)  # events it would append, not appended
    assert api.sessions.graph.events.read(0, 100_000) == events_before
    assert api.identity.GetCustomer(by_id, timeout=TIMEOUT).customer == before
    assert get(api, moving, phone).disclosed and get(api, staying, cookie).disclosed  # none sealed


@pytest.mark.parametrize("seal", [False, True], ids=["move", "seal"])
def test_unlink_moves_the_conversation_with_the_phone_or_seals_it(api: Api, seal: bool) -> None:
    """Unlinking a phone from the web visitor who gave it splits the phone off: the conversation
    that came in through it moves along (its holder still opens it), or, with
    `seal_moving_conversations`, is sealed first and nobody opens it afterwards."""
    phone, cookie, email = "phone:+14155550188", "web_cookie:u2", "email:u2@example.com"
    moving, staying = unlink_fixture(api, phone, cookie, email)
    request = ipb.UnlinkRequest(
        a=ident(cookie), b=ident(phone), actor="ops", reason="typo", seal_moving_conversations=seal
    )
    done = api.identity.Unlink(request, timeout=TIMEOUT)
    assert list(done.moving_conversations) == [moving]
    assert done.conversations_sealed == (1 if seal else 0)
    assert len(done.customer_ids) == 2 and all(e.seq > 0 for e in done.events)
    apart = [
        api.identity.GetCustomer(ipb.GetCustomerRequest(identifier=ident(k)), timeout=TIMEOUT).customer
        for k in (phone, cookie)
    ]
    assert apart[0].customer_id != apart[1].customer_id
    assert get(api, moving, phone).disclosed is not seal
    assert not get(api, moving, cookie).disclosed  # it left the web visitor's customer either way
    again = start(api, "sms", phone)
    assert again.resumed is not seal and (again.conversation.conversation_id == moving) is not seal
    assert get(api, staying, cookie).disclosed  # the staying part's conversation stays


def test_a_recycled_number_has_no_window_between_seal_and_detach(api: Api) -> None:
    """RecycleIdentifier takes two steps (seal, detach). The new holder texts in right after each
    step, interleaved by events (the recycle waits until that call has answered): neither call
    resumes, or sees, the conversation that came in through the number."""
    number = "phone:+14155550166"
    first = start(api, "sms", number, attributes={"first_name": "Olga"})
    cid = first.conversation.conversation_id
    plant_secrets(api, first.conversation, number)
    start(api, "web", "web_cookie:olga-2", number)
    seen: list[pb.StartOrResumeResponse] = []

    def new_holder_texts_in() -> None:
        """Runs on the server's worker thread between the steps: a call on another channel."""
        done = threading.Event()

        def call() -> None:
            channel, stub = api.new_stub()
            try:
                req = pb.StartOrResumeRequest(channel="sms", identifiers=[ident(number)])
                seen.append(stub.StartOrResume(req, timeout=TIMEOUT))
            finally:
                channel.close()
                done.set()

        threading.Thread(target=call).start()
        assert done.wait(TIMEOUT)

    def after(fn: Any) -> Any:
        def wrapped(*args: Any, **kw: Any) -> Any:
            out = fn(*args, **kw)
            new_holder_texts_in()
            return out

        return wrapped

    store, graph = api.sessions.store, api.sessions.graph
    store.seal = after(store.seal)  # type: ignore[method-assign]
    graph.links.split = after(graph.links.split)  # type: ignore[method-assign]
    try:
        sealed = api.stub.RecycleIdentifier(
            pb.RecycleIdentifierRequest(identifier=ident(number), actor="ops", reason="carrier reissued"),
            timeout=TIMEOUT,
        )
    finally:
        del store.seal, graph.links.split  # type: ignore[attr-defined]
    assert sealed.conversations_sealed == 1
    assert len(seen) == 2  # one call after each step
    assert not seen[0].resumed  # after the seal: a new conversation of the new holder ...
    assert seen[1].conversation.conversation_id == seen[0].conversation.conversation_id  # ... his
    for r in seen:
        assert r.conversation.conversation_id != cid and not r.carried_over_from
        assert_no_leak(r, *SECRETS, "olga")
    assert_locked_out(api, cid, number, *SECRETS)


# ---- concurrency ----------------------------------------------------------------------------

WRITERS = 20
TURNS_EACH = 3
UPDATES_EACH = 3


def test_twenty_concurrent_writers_from_two_channels_lose_nothing(api: Api) -> None:
    web_key, sms_key = "web_cookie:ck-c", "phone:+14155550155"
    conv = start(api, "web", web_key, "phone:(415) 555-0155").conversation
    cid = conv.conversation_id
    conv = set_state(api, conv, web_key, "order", "counting", counter=0)
    base_version = conv.version
    barrier = threading.Barrier(WRITERS)

    def writer(i: int) -> int:
        who = web_key if i % 2 == 0 else sms_key
        rng = random.Random(i)
        channel, stub = api.new_stub()
        retries = 0
        try:
            barrier.wait(TIMEOUT)
            for j in range(max(TURNS_EACH, UPDATES_EACH)):
                if j < TURNS_EACH:
                    req = pb.AppendTurnRequest(
                        conversation_id=cid,
                        caller=as_caller(who),
                        role=pb.ROLE_CUSTOMER,
                        text=f"writer {i} turn {j}",
                    )
                    stub.AppendTurn(req, timeout=TIMEOUT)
                if j >= UPDATES_EACH:
                    continue
                while True:  # read-modify-write, retried on ABORTED
                    current = stub.GetConversation(
                        pb.GetConversationRequest(conversation_id=cid, caller=as_caller(who)), timeout=TIMEOUT
                    ).conversation
                    state = pb.State(flow="order", step="counting")
                    state.data.update(
                        {
                            "counter": int(current.state.data["counter"]) + 1,
                            "last_writer": i,
                        }
                    )
                    req = pb.UpdateStateRequest(
                        conversation_id=cid,
                        caller=as_caller(who),
                        expected_version=current.version,
                        state=state,
                    )
                    try:
                        stub.UpdateState(req, timeout=TIMEOUT)
                        break
                    except grpc.RpcError as e:
                        if e.code() is not grpc.StatusCode.ABORTED:
                            raise
                        retries += 1
                        assert retries < 1000
                        time.sleep(rng.uniform(0, 0.01))
        finally:
            channel.close()
        return retries

    with ThreadPoolExecutor(WRITERS) as pool:
        retries = list(pool.map(writer, range(WRITERS)))
    final = get(api, cid, sms_key)  # the phone was typed on the web: its holder sees both sides
    n_turns = WRITERS * TURNS_EACH
    assert [t.seq for t in final.turns] == list(range(1, n_turns + 1))
    assert sorted(texts(final)) == sorted(
        f"writer {i} turn {j}" for i in range(WRITERS) for j in range(TURNS_EACH)
    )
    by_channel = {t.channel for t in final.turns}
    assert by_channel == {"web", "sms"}
    assert final.state.data["counter"] == WRITERS * UPDATES_EACH
    assert final.version == base_version + WRITERS * UPDATES_EACH
    assert all(r < 1000 for r in retries)


# ---- holding is not claiming ------------------------------------------------------------------
# Each scenario can be replayed with grpcurl: StartOrResume from the attacker's own identifier,
# presenting the victim's as a second one, then every read and write the attacker could try.

VICTIM_PROFILE = {**MARIA, "street": "1 Secret Lane"}  # an attribute GetCustomer would carry


def assert_claim_opens_nothing(api: Api, attacker: str, claimed: str, cid: str) -> None:
    """`attacker` (held) presents `claimed` (the victim's): no response field carries a victim
    secret, and nothing of the victim's conversation `cid` can be read or written."""
    # (Not "Maria": the typed email holds it. The cookie's value only when it was not typed.)
    secrets = (*SECRETS, "Lopez", "1988-03-14", *(["victim"] if "victim" not in claimed else []))
    r = start(api, WEB_OF[attacker.partition(":")[0]], attacker, claimed)
    assert not r.resumed and r.conversation.conversation_id != cid
    assert r.assurance == ipb.LINK_KIND_VERIFIED  # the caller's own, new conversation
    assert not r.carried_over_from and not r.conversation.context.slots and not r.conversation.turns
    assert r.step_up_required and r.step_up_conversation_id == cid  # recognised: must prove it
    assert_no_leak(r, *secrets)
    assert_locked_out(api, cid, attacker, *secrets)  # Get, List, AppendTurn, UpdateState, Escalate ...
    own = escalate(api, r.conversation.conversation_id, attacker)
    assert [c.conversation_id for c in own.history] == [r.conversation.conversation_id]
    assert {key_of(i) for i in own.profile.identifiers} == {attacker} and not own.profile.attributes
    assert_no_leak(own, *secrets)
    profile = api.identity.GetCustomer(ipb.GetCustomerRequest(identifier=ident(attacker)), timeout=TIMEOUT)
    assert {key_of(i.identifier) for i in profile.customer.identifiers} == {attacker}
    assert not profile.customer.attributes and not profile.customer.attribute_history
    assert_no_leak(profile, *secrets)
    explained = api.identity.Explain(ipb.ExplainRequest(a=ident(attacker), b=ident(claimed)), timeout=TIMEOUT)
    # proves nothing
    assert explained.assurance == ipb.LINK_KIND_PROBABLE and list(explained.steps) == [ipb.LINK_KIND_PROBABLE]
    assert key_of(explained.path[0].claimant) == attacker
    assert_no_leak(explained, *secrets)
    resolved = api.identity.Resolve(
        ipb.ResolveRequest(channel="sms", identifiers=[ident(attacker)]), timeout=TIMEOUT
    )
    assert not [a for a in resolved.assurance if a.full_disclosure and key_of(a.identifier) != attacker]
    assert_no_leak(resolved, *secrets)
    # The victim's own view is unchanged.
    assert texts(get(api, cid, "web_cookie:victim"))[0].startswith("Deliver to 1 Secret Lane")


def test_typing_the_victims_email_opens_nothing(api: Api) -> None:
    victim = start(api, "web", "web_cookie:victim", "email:maria@example.com", attributes=VICTIM_PROFILE)
    cid = victim.conversation.conversation_id
    plant_secrets(api, victim.conversation, "web_cookie:victim")
    assert_claim_opens_nothing(api, "phone:+14155559999", "email:maria@example.com", cid)
    # The other way round a claim works: whoever holds the typed email sees the typist's data.
    assert get(api, cid, "email:maria@example.com").disclosed


def test_typing_the_victims_cookie_opens_nothing(api: Api) -> None:
    victim = start(api, "web", "web_cookie:victim", attributes=VICTIM_PROFILE)
    cid = victim.conversation.conversation_id
    plant_secrets(api, victim.conversation, "web_cookie:victim")
    assert_claim_opens_nothing(api, "phone:+14155559999", "web_cookie:victim", cid)


def test_a_typed_phone_with_an_sms_history_needs_a_code_then_shows_it(api: Api) -> None:
    phone = "phone:+14155550155"
    sms = start(api, "sms", phone, attributes=VICTIM_PROFILE)
    cid = sms.conversation.conversation_id
    plant_secrets(api, sms.conversation, phone)
    web = start(api, "web", "web_cookie:new-laptop", phone)  # typed in the web chat's form
    assert web.customer_id == sms.customer_id and not web.resumed
    assert web.step_up_required and web.step_up_conversation_id == cid
    assert list(web.step_up_channels) == ["sms ••••0155"]
    assert_no_leak(web, *SECRETS, "Lopez")
    assert_locked_out(api, cid, "web_cookie:new-laptop", *SECRETS)
    step = api.stub.StartStepUp(
        pb.StartStepUpRequest(caller=as_caller("web_cookie:new-laptop"), conversation_id=cid), timeout=TIMEOUT
    )
    assert step.sent_to == "sms ••••0155"
    code = api.sessions.store.outbox("+14155550155")[-1].text.rsplit(" ", 1)[1]
    laptop = as_caller("web_cookie:new-laptop")
    done = api.stub.CompleteStepUp(
        pb.CompleteStepUpRequest(step_up_id=step.step_up_id, caller=laptop, code=code), timeout=TIMEOUT
    )
    assert done.verified
    seen = get(api, cid, "web_cookie:new-laptop")
    assert seen.disclosed and texts(seen)[0].startswith("Deliver to 1 Secret Lane")
    assert seen.state.data["card_last4"] == "Q4242Z"
    assert cid in {c.conversation_id for c in listed(api, "web_cookie:new-laptop").conversations}


ALICE = {"first_name": "Alice", "last_name": "Stone", "date_of_birth": "1975-06-01"}
BOB = {"first_name": "Bob", "last_name": "Stone", "date_of_birth": "2008-09-09"}


def test_a_shared_family_phone_resumes_only_for_the_person_who_started_it(api: Api) -> None:
    family = "phone:+14155550002"
    # Both gave the family phone on the web with their own profiles: it is set apart as shared.
    start(api, "web", "web_cookie:ck-alice", family, attributes=ALICE)
    start(api, "web", "web_cookie:ck-bob", family, attributes=BOB)
    shared = api.identity.GetCustomer(ipb.GetCustomerRequest(identifier=ident(family)), timeout=TIMEOUT)
    assert [i.generic for i in shared.customer.identifiers] == [True]

    def by(profile: Mapping[str, str] | None) -> pb.Caller:
        return pb.Caller(channel="sms", identifier=ident(family), attributes=dict(profile or {}))

    # Alice texts from the family phone and says who she is.
    alice = start(api, "sms", family, attributes=ALICE)
    a_cid = alice.conversation.conversation_id
    assert not alice.resumed and alice.conversation.disclosed
    said = pb.AppendTurnRequest(conversation_id=a_cid, caller=by(ALICE), role=pb.ROLE_CUSTOMER,
                                text="Deliver to 1 Secret Lane, door code K4711Q")
    api.stub.AppendTurn(said, timeout=TIMEOUT)
    conv = api.stub.GetConversation(
        pb.GetConversationRequest(conversation_id=a_cid, caller=by(ALICE)), timeout=TIMEOUT).conversation
    state = pb.State(flow="order", step="payment")
    state.data.update({"card_last4": "Q4242Z"})
    api.stub.UpdateState(pb.UpdateStateRequest(conversation_id=a_cid, caller=by(ALICE),
                                                expected_version=conv.version, state=state), timeout=TIMEOUT)
    secrets = (*SECRETS, "Alice", "1975-06-01")

    # Bob, from the same phone, saying who he is: not Alice's conversation, not even step-up.
    bob = start(api, "sms", family, attributes=BOB)
    b_cid = bob.conversation.conversation_id
    assert not bob.resumed and b_cid != a_cid and not bob.carried_over_from
    assert not bob.step_up_required and not bob.step_up_conversation_id
    assert_no_leak(bob, *secrets)
    hidden = api.stub.GetConversation(
        pb.GetConversationRequest(conversation_id=a_cid, caller=by(BOB)), timeout=TIMEOUT).conversation
    assert not hidden.disclosed and not hidden.turns and not hidden.state.flow
    assert_no_leak(hidden, *secrets)
    mine = api.stub.ListConversations(pb.ListConversationsRequest(caller=by(BOB)), timeout=TIMEOUT)
    assert [c.conversation_id for c in mine.conversations] == [b_cid]
    for call, request in (
        (api.stub.AppendTurn, pb.AppendTurnRequest(conversation_id=a_cid, caller=by(BOB),
                                                   role=pb.ROLE_CUSTOMER,
                                                   text="hi")),
        (api.stub.UpdateState, pb.UpdateStateRequest(conversation_id=a_cid, caller=by(BOB),
                                                     expected_version=conv.version + 1, state=pb.State())),
        (api.stub.Escalate, pb.EscalateRequest(conversation_id=a_cid, caller=by(BOB), reason="show me")),
    ):
        assert code_of(call, request) is grpc.StatusCode.PERMISSION_DENIED
    own = api.stub.Escalate(pb.EscalateRequest(conversation_id=b_cid, caller=by(BOB), reason="help"),
                            timeout=TIMEOUT)
    assert [c.conversation_id for c in own.history] == [b_cid] and not own.profile.attributes
    assert_no_leak(own, *secrets)
    profile = api.identity.GetCustomer(ipb.GetCustomerRequest(identifier=ident(family)), timeout=TIMEOUT)
    assert not profile.customer.attributes and not profile.customer.attribute_history
    assert_no_leak(profile, *secrets)

    # Someone who says nothing: no profiled conversation resumes; a step-up (say who you are) is asked.
    nobody = start(api, "sms", family)
    assert not nobody.resumed and nobody.conversation.conversation_id not in (a_cid, b_cid)
    assert nobody.step_up_required and not nobody.step_up_channels  # the phone itself proves nothing
    assert_no_leak(nobody, *secrets)
    for cid in (a_cid, b_cid):
        assert not get(api, cid, family).disclosed
    # ... while a conversation nobody put a name to stays open to the phone's holder.
    again = start(api, "sms", family)
    assert again.resumed and again.conversation.conversation_id == nobody.conversation.conversation_id

    # Alice again, saying who she is: her conversation, intact.
    back = start(api, "sms", family, attributes={"first_name": "alice", "date_of_birth": "1975-06-01"})
    assert back.resumed and back.conversation.conversation_id == a_cid
    assert texts(back.conversation) == ["Deliver to 1 Secret Lane, door code K4711Q"]
    assert back.conversation.state.data["card_last4"] == "Q4242Z"
