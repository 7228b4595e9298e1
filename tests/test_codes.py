"""Guessing and spraying codes through the real server on both backends: step-up codes compared
no more often than the caps allow even in parallel (counted in the store, not timed), handoff
redemptions locked out per caller and over all callers, a handoff code refused on another
channel, and StartStepUp answering a stranger as if the conversation did not exist."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from identity_graph.engine import IdentityGraph
from identity_graph.store.base import GraphStore
from server import BackgroundServer
from session.policy import SessionPolicy
from session.service import Sessions
from session.store import conversation_store_for
from stubs.identity.v1 import identity_pb2 as ipb
from stubs.identity.v1 import identity_pb2_grpc as ipb_grpc
from stubs.session.v1 import session_pb2 as pb
from stubs.session.v1 import session_pb2_grpc as pb_grpc

TIMEOUT = 30.0
VICTIM_EMAIL = "email:maria@example.com"
ATTACKER = "phone:+14155559999"
PARALLEL = 40


class Clock:
    """The server's clock, moved by the test (thread-safe: calls come from worker threads)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
        self.lock = threading.Lock()

    def __call__(self) -> datetime:
        with self.lock:
            self.now += timedelta(microseconds=1)
            return self.now

    def advance(self, **kw: float) -> None:
        with self.lock:
            self.now += timedelta(**kw)


@dataclass
class Api:
    sessions: Sessions
    stub: pb_grpc.SessionServiceStub
    identity: ipb_grpc.IdentityServiceStub
    clock: Clock


POLICY = SessionPolicy(
    step_up_max_attempts=5,
    step_up_attempts_per_caller=7,
    step_up_starts_per_conversation=3,
    handoff_failures_per_caller=3,
    handoff_failures_global=10,
)


@pytest.fixture
def api(store: GraphStore) -> Iterator[Api]:
    clock = Clock()
    graph = IdentityGraph(store, clock=clock)
    sessions = Sessions(graph, conversation_store_for(store), POLICY)
    srv = BackgroundServer(graph, sessions=sessions, housekeeping_interval_s=None, timeout_s=TIMEOUT)
    channel = grpc.insecure_channel(f"127.0.0.1:{srv.port}")
    try:
        grpc.channel_ready_future(channel).result(TIMEOUT)
        yield Api(sessions, pb_grpc.SessionServiceStub(channel), ipb_grpc.IdentityServiceStub(channel), clock)
    finally:
        channel.close()
        srv.stop()


def ident(key: str) -> ipb.Identifier:
    type_, _, value = key.partition(":")
    return ipb.Identifier(type=type_, value=value)


def as_caller(key: str) -> pb.Caller:
    channel = {"web_cookie": "web", "phone": "sms", "whatsapp": "whatsapp", "email": "email"}
    return pb.Caller(channel=channel[key.partition(":")[0]], identifier=ident(key))


def start(api: Api, channel: str, *keys: str) -> pb.StartOrResumeResponse:
    req = pb.StartOrResumeRequest(channel=channel, identifiers=[ident(k) for k in keys])
    return api.stub.StartOrResume(req, timeout=TIMEOUT)


def status(call: Callable[..., Any], request: Any) -> tuple[grpc.StatusCode, str]:
    try:
        call(request, timeout=TIMEOUT)
    except grpc.RpcError as e:
        return e.code(), e.details() or ""
    return grpc.StatusCode.OK, ""


def in_parallel(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """Runs fn(0..n-1) on n threads released together by a barrier."""
    barrier = threading.Barrier(n)

    def go(i: int) -> Any:
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(go, range(n)))


def victim_and_attacker(api: Api) -> str:
    """The victim's web conversation, and an attacker whose phone the model links `probable` to
    the victim's email: recognised, shown nothing, offered step-up. Returns the conversation id."""
    victim = start(api, "web", "web_cookie:victim", VICTIM_EMAIL)
    api.identity.Link(
        ipb.LinkRequest(
            a=ident(ATTACKER),
            b=ident(VICTIM_EMAIL),
            kind=ipb.LINK_KIND_PROBABLE,
            probability=0.995,
            source="splink",
            actor="model",
        ),
        timeout=TIMEOUT,
    )
    r = start(api, "sms", ATTACKER)
    assert r.step_up_required and r.step_up_conversation_id == victim.conversation.conversation_id
    return victim.conversation.conversation_id


def step_up(api: Api, cid: str, who: str = ATTACKER) -> pb.StartStepUpResponse:
    req = pb.StartStepUpRequest(caller=as_caller(who), conversation_id=cid)
    return api.stub.StartStepUp(req, timeout=TIMEOUT)


def sent_code(api: Api) -> str:
    return api.sessions.store.outbox("maria@example.com")[-1].text.rsplit(" ", 1)[1]


def complete(step_up_id: str, code: str, who: str = ATTACKER) -> pb.CompleteStepUpRequest:
    return pb.CompleteStepUpRequest(step_up_id=step_up_id, caller=as_caller(who), code=code)


# ---- step-up ----------------------------------------------------------------------------------


def test_parallel_step_up_guesses_get_no_more_compares_than_the_cap(api: Api) -> None:
    """40 wrong codes at once against one step-up: the store compares exactly 5 (its own count
    of compares, `attempts`, says so), the other 35 are refused before any compare, and the right
    code afterwards is refused too: the step-up is spent."""
    cid = victim_and_attacker(api)
    step = step_up(api, cid)
    right = sent_code(api)
    wrong = [f"{(int(right) + 1 + i) % 10**6:06d}" for i in range(PARALLEL)]
    results = in_parallel(
        PARALLEL, lambda i: status(api.stub.CompleteStepUp, complete(step.step_up_id, wrong[i]))
    )
    codes = Counter(code for code, _ in results)
    assert codes == {grpc.StatusCode.PERMISSION_DENIED: 5, grpc.StatusCode.RESOURCE_EXHAUSTED: 35}, codes
    stored = api.sessions.store.get_step_up(step.step_up_id)
    assert stored is not None and stored.attempts == 5 and stored.completed_at is None
    assert status(api.stub.CompleteStepUp, complete(step.step_up_id, right))[0] is (
        grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    seen = api.stub.GetConversation(
        pb.GetConversationRequest(conversation_id=cid, caller=as_caller(ATTACKER)), timeout=TIMEOUT
    ).conversation
    assert not seen.disclosed


def test_step_up_caps_per_caller_and_starts_per_conversation(api: Api) -> None:
    """Wrong codes count per caller over its step-ups (7 here), and codes sent per conversation
    are capped (3 here): a refused start sends nothing. The right code gives back its count."""
    cid = victim_and_attacker(api)
    first = step_up(api, cid)
    for _ in range(5):
        assert status(api.stub.CompleteStepUp, complete(first.step_up_id, "000000"))[0] is (
            grpc.StatusCode.PERMISSION_DENIED
        )
    second = step_up(api, cid)
    right = sent_code(api)
    for _ in range(2):
        assert status(api.stub.CompleteStepUp, complete(second.step_up_id, "000000"))[0] is (
            grpc.StatusCode.PERMISSION_DENIED
        )
    # 7 wrong codes from this caller: even the right one is not compared now.
    code, details = status(api.stub.CompleteStepUp, complete(second.step_up_id, right))
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED and details.startswith("too many"), details
    step_up(api, cid)
    sent = len(api.sessions.store.outbox("maria@example.com"))
    code, details = status(
        api.stub.StartStepUp, pb.StartStepUpRequest(caller=as_caller(ATTACKER), conversation_id=cid)
    )
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED, details
    assert len(api.sessions.store.outbox("maria@example.com")) == sent  # nothing sent
    # After the window, the owner's next code works and the caller's wrong count starts afresh.
    api.clock.advance(minutes=16)
    third = step_up(api, cid)
    assert api.stub.CompleteStepUp(complete(third.step_up_id, sent_code(api)), timeout=TIMEOUT).verified


def test_start_step_up_answers_a_stranger_as_if_the_conversation_did_not_exist(api: Api) -> None:
    """A caller with no path to the conversation (it learnt the id somehow) gets NOT_FOUND, the
    answer an unknown id gets, with no masked target; no code goes to the owner."""
    cid = victim_and_attacker(api)
    stranger = "phone:+14155550666"
    start(api, "sms", stranger)
    unknown = status(
        api.stub.StartStepUp, pb.StartStepUpRequest(caller=as_caller(stranger), conversation_id="conv_0")
    )
    known = status(
        api.stub.StartStepUp, pb.StartStepUpRequest(caller=as_caller(stranger), conversation_id=cid)
    )
    assert known[0] is unknown[0] is grpc.StatusCode.NOT_FOUND
    assert known[1].replace(cid, "conv_0") == unknown[1] and "•" not in known[1]
    assert api.sessions.store.outbox("maria@example.com") == []


# ---- handoff codes ------------------------------------------------------------------------------


def handoff(
    api: Api, channel: str = "whatsapp", owner: str = "web_cookie:owner"
) -> tuple[str, pb.CreateHandoffResponse]:
    web = start(api, "web", owner)
    cid = web.conversation.conversation_id
    ticket = api.stub.CreateHandoff(
        pb.CreateHandoffRequest(conversation_id=cid, caller=as_caller(owner), channel=channel),
        timeout=TIMEOUT,
    )
    return cid, ticket


def redeem(code: str, who: str, channel: str = "whatsapp") -> pb.RedeemHandoffRequest:
    return pb.RedeemHandoffRequest(code=code, channel=channel, identifiers=[ident(who)])


def test_handoff_guessing_locks_out_the_caller_then_everyone(api: Api) -> None:
    """3 wrong codes lock out one identifier (even its right code is not tried), and 10 wrong codes
    over all callers, sprayed in parallel from 40 numbers, lock out redemption for everyone until
    the window ends: exactly 10 guesses were compared. The code itself stays good."""
    cid, ticket = handoff(api)
    guesser = "whatsapp:+14155550001"
    for _ in range(3):
        assert (
            status(api.stub.RedeemHandoff, redeem("AAAAAAAA", guesser))[0]
            is grpc.StatusCode.FAILED_PRECONDITION
        )
    code, details = status(api.stub.RedeemHandoff, redeem(ticket.code, guesser))
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED and details.startswith("too many"), details

    results = in_parallel(
        PARALLEL,
        lambda i: status(api.stub.RedeemHandoff, redeem(f"GUESS{i:03d}", f"whatsapp:+1415555{i + 100:04d}")),
    )
    codes = Counter(c for c, _ in results)
    # 3 failures were counted already: 7 more are compared, 33 refused unseen.
    assert codes == {grpc.StatusCode.FAILED_PRECONDITION: 7, grpc.StatusCode.RESOURCE_EXHAUSTED: 33}, codes
    owner = "whatsapp:+14155550134"
    assert status(api.stub.RedeemHandoff, redeem(ticket.code, owner))[0] is grpc.StatusCode.RESOURCE_EXHAUSTED
    api.clock.advance(minutes=16)  # the window ends; the code (30 minutes) is still good
    r = api.stub.RedeemHandoff(redeem(ticket.code, owner), timeout=TIMEOUT)
    assert r.resumed and r.conversation.conversation_id == cid


def test_a_right_code_gives_its_count_back(api: Api) -> None:
    """Only failures count: many customers redeeming good codes never reach the global cap."""
    for i in range(POLICY.handoff_failures_global + 5):
        _, ticket = handoff(api, owner=f"web_cookie:owner-{i}")
        r = api.stub.RedeemHandoff(redeem(ticket.code, f"whatsapp:+1415555{i + 200:04d}"), timeout=TIMEOUT)
        assert r.resumed


def test_a_handoff_code_is_redeemed_on_its_channel_only(api: Api) -> None:
    """A code made for WhatsApp, presented by SMS or web chat, is refused and stays unspent; the
    link's 128-bit token works on WhatsApp, and spends the code with it."""
    cid, ticket = handoff(api, "whatsapp")
    token = ticket.link.rpartition("RESUME%20")[2]
    assert len(bytes.fromhex(token)) == 16 and ticket.code not in ticket.link
    for code in (ticket.code, token):
        assert status(api.stub.RedeemHandoff, redeem(code, "phone:+14155550134", "sms"))[0] is (
            grpc.StatusCode.FAILED_PRECONDITION
        )
        assert status(api.stub.RedeemHandoff, redeem(code, "web_cookie:other", "web"))[0] is (
            grpc.StatusCode.FAILED_PRECONDITION
        )
    r = api.stub.RedeemHandoff(redeem(token, "whatsapp:+14155550134"), timeout=TIMEOUT)
    assert r.resumed and r.conversation.conversation_id == cid
    assert status(api.stub.RedeemHandoff, redeem(ticket.code, "whatsapp:+14155550135"))[0] is (
        grpc.StatusCode.FAILED_PRECONDITION
    )
