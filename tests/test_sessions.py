"""The session service's domain logic on both backends: resume, disclosure, handoffs, escalation."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from identity_graph.engine import IdentityGraph, Proof
from identity_graph.errors import Conflict, FailedPrecondition, PermissionDenied
from identity_graph.model import LinkKind
from session.model import Context, State, Status
from session.service import Caller, Sessions
from session.store import conversation_store_for


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=10)
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sessions(store, clock: Clock) -> Sessions:
    counter = itertools.count(1)
    graph = IdentityGraph(store, clock=clock, id_factory=lambda: f"cus_{next(counter):04d}")
    return Sessions(graph, conversation_store_for(store))


WEB = Caller("web", "web_cookie:ck-1")
SMS = Caller("sms", "phone:+14155550134")
WA = Caller("whatsapp", "whatsapp:+14155550134")


def test_a_conversation_follows_the_customer_from_web_to_sms_to_whatsapp(sessions: Sessions) -> None:
    web = sessions.start_or_resume("web", [("web_cookie", "ck-1"), ("email", "maria@example.com")])
    assert not web.resumed and web.view.disclosed
    conv = web.view.conversation
    sessions.append_turn(conv.id, WEB, "customer", "How wide is the FR-200 fridge?", topic="dimensions")
    conv = sessions.update_context(
        conv.id, WEB, conv.version, Context("dimensions", "product_question", {"model": "FR-200"})
    )
    conv = sessions.update_state(conv.id, WEB, conv.version, State("order", "choose_delivery", {"qty": 1}))
    sessions.start_or_resume("web", [("web_cookie", "ck-1"), ("phone", "(415) 555-0134")])

    sms = sessions.start_or_resume("sms", [("phone", "+14155550134")])
    assert sms.resumed and sms.resumed_from_channel == "web"
    assert sms.view.conversation.id == conv.id
    assert sms.view.conversation.state.data == {"qty": 1}
    sessions.append_turn(conv.id, SMS, "customer", "Can it come on Friday?")

    wa = sessions.start_or_resume("whatsapp", [("whatsapp", "+14155550134")])
    assert wa.resumed and wa.resumed_from_channel == "sms" and wa.view.conversation.id == conv.id
    assert [t.text for t in wa.view.turns] == ["How wide is the FR-200 fridge?", "Can it come on Friday?"]
    assert wa.view.conversation.context.slots == {"model": "FR-200"}
    sessions.append_turn(conv.id, WA, "customer", "Buy it")
    final = sessions.get(conv.id, WA).conversation
    assert set(final.channels) == {"web", "sms", "whatsapp"} and final.channel_switches == 2


def test_stale_versions_are_rejected_and_nothing_is_overwritten(sessions: Sessions) -> None:
    conv = sessions.start_or_resume("web", [("web_cookie", "ck-1")]).view.conversation
    v2 = sessions.update_state(conv.id, WEB, conv.version, State("return", "pick_item"))
    with pytest.raises(Conflict):
        sessions.update_state(conv.id, WEB, conv.version, State("order", "overwrite"))
    assert sessions.get(conv.id, WEB).conversation.state.flow == "return"
    assert v2.version == conv.version + 1


def test_lookalike_on_a_new_phone_gets_no_history_and_must_step_up(sessions: Sessions) -> None:
    victim = sessions.start_or_resume("web", [("web_cookie", "ck-1"), ("email", "maria@example.com")])
    cid = victim.view.conversation.id
    sessions.append_turn(cid, WEB, "customer", "My address is 1 Secret Lane")
    sessions.graph.links.add(
        "phone:+14155559999",
        "email:maria@example.com",
        LinkKind.PROBABLE,
        source="splink",
        actor="t",
        probability=0.995,
    )
    attacker = Caller("sms", "phone:+14155559999")
    r = sessions.start_or_resume("sms", [("phone", "+14155559999")])
    assert r.customer_id == victim.customer_id  # recognised ...
    assert not r.resumed and r.view.conversation.id != cid  # ... but not shown the old conversation
    assert r.step_up_required and r.step_up_channels == ["email m•••@example.com"]
    assert r.view.turns == []
    hidden = sessions.get(cid, attacker)
    assert not hidden.disclosed and hidden.turns == [] and hidden.conversation.state == State()
    with pytest.raises(PermissionDenied):
        sessions.append_turn(cid, attacker, "customer", "hi")
    listed, _ = sessions.list(attacker)
    assert cid not in {v.conversation.id for v in listed}
    # Step-up: the code goes to the victim's email; only its owner can complete it.
    step, where = sessions.start_step_up(attacker, cid)
    assert where == "email m•••@example.com"
    with pytest.raises(PermissionDenied):
        sessions.complete_step_up(step.id, attacker, "000000x")
    code = sessions.store.outbox("maria@example.com")[-1].text.rsplit(" ", 1)[1]
    sessions.complete_step_up(step.id, attacker, code)
    assert sessions.get(cid, attacker).disclosed


def test_family_phone_does_not_show_one_person_the_others_conversation(sessions: Sessions) -> None:
    alice = sessions.start_or_resume(
        "web",
        [("web_cookie", "ck-a"), ("email", "alice@x.com"), ("phone", "+14155550001")],
        {"first_name": "Alice", "date_of_birth": "1980-01-01"},
    )
    sessions.append_turn(alice.view.conversation.id, Caller("web", "web_cookie:ck-a"), "customer", "secret")
    bob = sessions.start_or_resume(
        "web",
        [("web_cookie", "ck-b"), ("email", "bob@x.com"), ("phone", "+14155550001")],
        {"first_name": "Bob", "date_of_birth": "2010-05-05"},
    )
    assert bob.customer_id != alice.customer_id and not bob.resumed
    shared = sessions.start_or_resume("sms", [("phone", "+14155550001")])
    assert not shared.resumed or shared.view.conversation.id != alice.view.conversation.id
    assert sessions.get(alice.view.conversation.id, Caller("sms", "phone:+14155550001")).turns == []


def test_recycled_number_loses_the_old_owners_conversations(sessions: Sessions) -> None:
    owner = sessions.start_or_resume("web", [("web_cookie", "ck-1")])
    sessions.start_or_resume("web", [("web_cookie", "ck-1"), ("phone", "+14155550134")])
    conv = owner.view.conversation.id
    sessions.append_turn(conv, WEB, "customer", "order #123 to 1 Secret Lane")
    assert sessions.start_or_resume("sms", [("phone", "+14155550134")]).resumed
    sessions.graph.links.remove("web_cookie:ck-1", "phone:+14155550134", actor="ops",
                                reason="number recycled")
    new_owner = sessions.start_or_resume("sms", [("phone", "+14155550134")])
    assert not new_owner.resumed and new_owner.view.conversation.id != conv
    assert new_owner.customer_id != owner.customer_id
    assert sessions.get(conv, SMS).turns == []
    assert sessions.get(conv, WEB).turns[0].text == "order #123 to 1 Secret Lane"


def test_merges_and_splits_rehome_conversations(sessions: Sessions) -> None:
    a = sessions.start_or_resume("web", [("web_cookie", "ck-1")])
    b = sessions.start_or_resume("sms", [("phone", "+14155550134")])
    assert a.customer_id != b.customer_id
    # the phone typed the cookie: the web holder sees it
    sessions.graph.links.add("web_cookie:ck-1", "phone:+14155550134", LinkKind.OBSERVED, source="t",
                             actor="t", claimant="phone:+14155550134")
    listed, _ = sessions.list(WEB)
    assert {v.conversation.id for v in listed} == {a.view.conversation.id, b.view.conversation.id}
    sessions.graph.links.split(cut=[("web_cookie:ck-1", "phone:+14155550134")], actor="ops")
    assert {v.conversation.id for v in sessions.list(WEB)[0]} == {a.view.conversation.id}
    assert {v.conversation.id for v in sessions.list(SMS)[0]} == {b.view.conversation.id}


def test_handoff_code_is_single_use_links_verified_and_resumes(sessions: Sessions, clock: Clock) -> None:
    web = sessions.start_or_resume("web", [("web_cookie", "ck-1")])
    conv = web.view.conversation
    sessions.update_state(conv.id, WEB, conv.version, State("order", "payment"))
    ticket = sessions.create_handoff(conv.id, WEB, "whatsapp")
    # The link carries a 128-bit token of its own, not the short code.
    assert ticket.link.startswith("https://wa.me/") and ticket.code not in ticket.link
    token = ticket.link.rpartition("RESUME%20")[2]
    assert len(bytes.fromhex(token)) * 8 == 128
    with pytest.raises(FailedPrecondition):  # made for WhatsApp: refused by SMS, and not spent
        sessions.redeem_handoff(token, "sms", [("phone", "+14155550134")])
    r = sessions.redeem_handoff(token, "whatsapp", [("whatsapp", "+14155550134")])
    assert r.resumed and r.view.conversation.id == conv.id and r.view.conversation.state.step == "payment"
    assert r.assurance is not None
    path = sessions.graph.customers.explain("whatsapp:+14155550134", "web_cookie:ck-1").path
    assert [lk.kind for lk in path] == [LinkKind.VERIFIED]
    with pytest.raises(FailedPrecondition):  # the code and the token are one single-use handoff
        sessions.redeem_handoff(ticket.code, "whatsapp", [("whatsapp", "+14155550134")])
    late = sessions.create_handoff(conv.id, WEB, "sms")
    clock.advance(hours=1)
    with pytest.raises(FailedPrecondition):
        sessions.redeem_handoff(late.code, "sms", [("phone", "+14155550199")])


def test_handoff_suggestions_respect_consent(sessions: Sessions) -> None:
    # The web form proved the phone with a one-time code: a phone merely typed would not do.
    web = sessions.start_or_resume(
        "web", [("web_cookie", "ck-1"), ("phone", "+14155550134")], proof=Proof("otp", "phone:+14155550134")
    )
    conv = web.view.conversation
    sessions.update_state(conv.id, WEB, conv.version, State("delivery", "scheduled"))
    assert sessions.suggest_handoff(conv.id, WEB) is None  # no consent yet
    sessions.record_consent(("phone", "+14155550134"), "sms", "delivery_updates", True, "web form")
    s = sessions.suggest_handoff(conv.id, WEB)
    assert s is not None and s.channel == "sms" and "SMS" in s.message
    sessions.record_consent(("phone", "+14155550134"), "sms", "delivery_updates", False, "STOP reply")
    assert sessions.suggest_handoff(conv.id, WEB) is None
    current, history = sessions.consents(("phone", "+14155550134"))
    assert [c.granted for c in history] == [True, False] and [c.granted for c in current] == [False]


def test_escalation_hands_over_everything_the_caller_may_see(sessions: Sessions) -> None:
    first = sessions.start_or_resume(
        "web", [("web_cookie", "ck-1"), ("phone", "+14155550134")], {"first_name": "Maria"}
    )
    conv = first.view.conversation
    sessions.update_state(conv.id, WEB, conv.version, State("return", "label_sent", {"order": "A1"}))
    sessions.append_turn(conv.id, WEB, "customer", "the label does not print")
    sessions.append_turn(conv.id, SMS, "customer", "still broken")
    package = sessions.escalate(conv.id, SMS, "customer frustrated")
    assert package.conversation.conversation.status == Status.ESCALATED
    assert [t.text for t in package.conversation.turns] == ["the label does not print", "still broken"]
    assert [c.state.flow for c in package.open_flows] == ["return"]
    assert {n.key for n in package.profile.identifiers} == {"web_cookie:ck-1", "phone:+14155550134"}
    sessions.append_turn(conv.id, SMS, "agent", "Hi Maria, I'm Sam from support.")
    assert sessions.get(conv.id, SMS).turns[-1].role == "agent"


def test_idle_conversations_go_inactive_then_closed_and_context_carries_over(
    sessions: Sessions, clock: Clock
) -> None:
    first = sessions.start_or_resume("web", [("web_cookie", "ck-1")])
    conv = first.view.conversation
    sessions.update_context(conv.id, WEB, conv.version, Context("fridges", "browse", {"budget": "900"}))
    clock.advance(hours=1)
    assert sessions.housekeeping() == 1
    assert sessions.get(conv.id, WEB).conversation.status == Status.INACTIVE
    again = sessions.start_or_resume("web", [("web_cookie", "ck-1")])
    assert again.resumed and again.view.conversation.status == Status.ACTIVE
    clock.advance(days=5)
    sessions.housekeeping()
    assert sessions.get(conv.id, WEB).conversation.status == Status.CLOSED
    fresh = sessions.start_or_resume("web", [("web_cookie", "ck-1")])
    assert not fresh.resumed and fresh.carried_over_from == conv.id
    assert fresh.view.conversation.context.slots == {"budget": "900"}
    assert fresh.view.conversation.context.intent == ""


def test_metrics(sessions: Sessions, clock: Clock) -> None:
    start = clock.now
    a = sessions.start_or_resume("web", [("web_cookie", "ck-1"), ("phone", "+14155550134")]).view.conversation
    sessions.append_turn(a.id, WEB, "customer", "hi")
    sessions.start_or_resume("sms", [("phone", "+14155550134")])
    sessions.append_turn(a.id, SMS, "customer", "hi again")
    b = sessions.start_or_resume("web", [("web_cookie", "ck-2")]).view.conversation
    sessions.escalate(b.id, Caller("web", "web_cookie:ck-2"), "angry")
    clock.advance(minutes=5)
    sessions.close(a.id, WEB)
    m = sessions.metrics(start, clock.now + timedelta(seconds=1))
    assert m.customers == 2 and m.multi_channel_share == 0.5
    assert m.conversations == 2 and m.resumed == 1 and m.channel_switches == 1
    assert m.escalation_rate == 0.5
    assert 299 < m.median_time_to_close_s["web"] < 302


def test_recycled_number_seals_conversations_that_came_in_through_it(sessions: Sessions) -> None:
    old = sessions.start_or_resume("sms", [("phone", "+14155550134")]).view.conversation
    sessions.append_turn(old.id, SMS, "customer", "OLD OWNER SECRET")
    sessions.start_or_resume("web", [("web_cookie", "ck-1"), ("phone", "+14155550134")])
    closed, _cid = sessions.recycle_identifier("phone", "+1 415 555 0134", actor="ops")
    assert closed >= 1
    fresh = sessions.start_or_resume("sms", [("phone", "+14155550134")])
    assert not fresh.resumed and fresh.view.conversation.id != old.id
    assert fresh.carried_over_from == "" and fresh.view.conversation.context == Context()
    hidden = sessions.get(old.id, SMS)
    assert not hidden.disclosed and hidden.turns == []
    assert old.id not in {v.conversation.id for v in sessions.list(SMS)[0]}
    assert sessions.graph.customers.id_of("phone:+14155550134") != sessions.graph.customers.id_of(
        "web_cookie:ck-1"
    )
    with pytest.raises(PermissionDenied):
        sessions.append_turn(old.id, SMS, "customer", "hello?")
