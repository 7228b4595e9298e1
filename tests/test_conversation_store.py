"""Contract tests for `ConversationStore`: every test runs on SQLite and on a real Neo4j."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from identity_graph.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound
from identity_graph.model import ChangeSet, IdentifierUpsert
from identity_graph.store.neo4j import Neo4jStore
from session.model import (
    Consent,
    Context,
    Conversation,
    Handoff,
    OutboxMessage,
    Role,
    State,
    Status,
    StepUp,
    Turn,
)
from session.store import conversation_store_for
from session.store.base import ConversationStore

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)

# Text that must come back byte-for-byte, and must not be executed by either backend.
EVIL = (
    "'); DROP TABLE turns; --",
    "MATCH (n) DETACH DELETE n",
    '" OR 1=1 --\\ \\\' `x` $param {a: 1} ${x}',
    "Grüße, 東京, مرحبا, emoji 👩‍👩‍👧‍👦, combining é, zero-width\u200b, nul\x00byte",
    "multi\nline\r\ntext\twith tabs  ",
    "",
)


@pytest.fixture
def conversations(store: Any) -> Iterator[ConversationStore]:
    """The conversation store beside `store`, empty before and after the test."""
    cs = conversation_store_for(store)
    cs.clear()
    try:
        yield cs
    finally:
        cs.clear()


def conv(id_: str, anchor: str = "email:a@example.com", *, at: datetime = T0,
         updated: datetime | None = None, status: Status = Status.ACTIVE,
         channels: tuple[str, ...] = ("web",), **kw: Any) -> Conversation:
    return Conversation(
        id=id_, anchor=anchor, status=status, channels=channels, context=kw.pop("context", Context()),
        state=kw.pop("state", State()), version=kw.pop("version", 1), created_at=at,
        updated_at=updated or at, last_channel=kw.pop("last_channel", channels[0] if channels else ""),
        **kw,
    )


def turn(channel: str = "web", text: str = "hi", at: datetime = T0, role: Role = Role.CUSTOMER,
         identifier: str = "email:a@example.com") -> Turn:
    return Turn("", 0, role, channel, identifier, text, "intent", "topic", at)


def run_concurrently(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """Runs `fn(0..n-1)` on n threads released together; re-raises the first failure."""
    barrier = threading.Barrier(n)

    def go(i: int) -> Any:
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(go, range(n)))


def assert_utc(value: datetime | None) -> None:
    assert value is not None and value.tzinfo is not None
    assert value.utcoffset() == timedelta(0)


# ---- create / get ----------------------------------------------------------------------------


def test_create_get_round_trip(conversations: ConversationStore) -> None:
    data = {
        "order": {"id": "ORD-1", "lines": [{"sku": "A", "qty": 2, "price": 9.99}, {"sku": "B"}]},
        "flags": [True, False, None],
        "big": 2**53 + 1,
        "neg": -0.5,
        "evil": list(EVIL),
        "ünï": {"": {"deep": [[1], [2, [3]]]}},
    }
    original = conv(
        "conv_1",
        anchor="phone:+14155550134",
        channels=("sms", "web", "whatsapp"),
        context=Context("returns", "start_return",
                        {"order": "ORD-1", **{f"k{i}": v for i, v in enumerate(EVIL)}}),
        state=State("return", "pick_reason", data),
        version=7,
        updated=T0 + timedelta(minutes=3),
        escalation_reason=EVIL[0],
        carried_from="conv_0",
        resumed_count=2,
        turn_count=0,
        last_channel="whatsapp",
        channel_switches=4,
    )
    conversations.create(original)
    got = conversations.get("conv_1")
    assert got == original
    assert got is not None
    assert got.context.slots["k1"] == "MATCH (n) DETACH DELETE n"
    assert got.state.data["order"]["lines"][0]["price"] == 9.99
    assert got.state.data["big"] == 2**53 + 1
    for value in (got.created_at, got.updated_at):
        assert_utc(value)
    assert got.created_at == T0 and got.updated_at == T0 + timedelta(minutes=3)
    assert got.closed_at is None

    closed = conv("conv_2", status=Status.CLOSED, closed_at=T0 + timedelta(hours=1))
    conversations.create(closed)
    assert conversations.get("conv_2") == closed
    assert_utc(conversations.get("conv_2").closed_at)  # type: ignore[union-attr]

    assert conversations.get("conv_nope") is None
    with pytest.raises(Conflict):
        conversations.create(replace(original, anchor="email:other@example.com"))
    assert conversations.get("conv_1") == original


def test_naive_datetimes_are_taken_as_utc(conversations: ConversationStore) -> None:
    conversations.create(conv("conv_n", at=T0.replace(tzinfo=None)))
    got = conversations.get("conv_n")
    assert got is not None and got.created_at == T0
    assert_utc(got.created_at)


def test_text_is_stored_byte_for_byte_and_never_executed(conversations: ConversationStore,
                                                         store: Any) -> None:
    key = "email:a@example.com"
    store.apply(ChangeSet(identifiers=[IdentifierUpsert(key, "email", "a@example.com", T0)]))
    conversations.create(conv("conv_e"))
    for i, text in enumerate(EVIL):
        t = conversations.append_turn("conv_e", replace(turn(text=text), intent=text, topic=text[::-1]))
        assert t.seq == i + 1 and t.text == text
    turns = conversations.turns("conv_e")
    assert [t.text for t in turns] == list(EVIL)
    assert [t.intent for t in turns] == list(EVIL)
    assert [t.topic for t in turns] == [e[::-1] for e in EVIL]
    for i, text in enumerate(EVIL):
        conversations.outbox_put(OutboxMessage(f"msg_{i}", "sms", EVIL[1], text, T0))
    assert [m.text for m in conversations.outbox(EVIL[1])] == list(EVIL)
    # Nothing was dropped or deleted by the text above.
    assert conversations.get("conv_e") is not None
    assert key in store.get_identifiers([key])


# ---- listing ---------------------------------------------------------------------------------


def test_by_anchors_order_and_filters(conversations: ConversationStore) -> None:
    a, b, c = "email:a@example.com", "phone:+14155550100", "email:c@example.com"
    rows = [
        conv("conv_a1", a, updated=T0 + timedelta(minutes=1), channels=("web",)),
        conv("conv_a2", a, updated=T0 + timedelta(minutes=5), channels=("web", "sms"),
             status=Status.INACTIVE),
        conv("conv_b1", b, updated=T0 + timedelta(minutes=5), channels=("sms",)),
        conv("conv_b2", b, updated=T0 + timedelta(minutes=9), channels=("whatsapp",),
             status=Status.CLOSED, closed_at=T0 + timedelta(minutes=9)),
        conv("conv_c1", c, updated=T0 + timedelta(minutes=20)),
    ]
    for r in rows:
        conversations.create(r)
    ids = lambda cs: [x.id for x in cs]  # noqa: E731
    # Newest updated_at first; the tie at +5 min is broken by id.
    assert ids(conversations.by_anchors([a, b])) == ["conv_b2", "conv_a2", "conv_b1", "conv_a1"]
    assert ids(conversations.by_anchors([b, a, a])) == ["conv_b2", "conv_a2", "conv_b1", "conv_a1"]
    assert ids(conversations.by_anchors([a])) == ["conv_a2", "conv_a1"]
    assert conversations.by_anchors([a, b])[0] == rows[3]
    assert ids(conversations.by_anchors([a, b], statuses=[Status.ACTIVE])) == ["conv_b1", "conv_a1"]
    assert ids(conversations.by_anchors([a, b], statuses=[Status.ACTIVE, Status.INACTIVE])) == [
        "conv_a2", "conv_b1", "conv_a1"]
    assert ids(conversations.by_anchors([a, b], channel="sms")) == ["conv_a2", "conv_b1"]
    assert ids(conversations.by_anchors([a, b], statuses=[Status.ACTIVE], channel="sms")) == ["conv_b1"]
    assert ids(conversations.by_anchors([a, b], channel="email")) == []
    assert ids(conversations.by_anchors([a, b], limit=2)) == ["conv_b2", "conv_a2"]
    after = (T0 + timedelta(minutes=5), "conv_a2")
    assert ids(conversations.by_anchors([a, b], after=after)) == ["conv_b1", "conv_a1"]
    assert conversations.by_anchors(["email:nobody@example.com"]) == []
    assert conversations.by_anchors([]) == []
    with pytest.raises(InvalidArgument):
        conversations.by_anchors([a], limit=0)


def test_cursor_pagination_returns_each_conversation_once(conversations: ConversationStore) -> None:
    anchors = ["email:p0@example.com", "email:p1@example.com", "email:p2@example.com"]
    for i in range(120):
        # Only 7 distinct times: many ties, so the id tie-break carries the cursor.
        conversations.create(conv(f"conv_{i:03d}", anchors[i % 3], updated=T0 + timedelta(seconds=i % 7)))
    seen: list[Conversation] = []
    after = None
    pages = 0
    while True:
        page = conversations.by_anchors(anchors, after=after, limit=50)
        pages += 1
        seen.extend(page)
        if len(page) < 50:
            break
        after = (page[-1].updated_at, page[-1].id)
    assert pages == 3
    ids = [c.id for c in seen]
    assert len(ids) == 120 and len(set(ids)) == 120
    assert [(c.updated_at, c.id) for c in seen] == sorted(
        ((c.updated_at, c.id) for c in seen), key=lambda k: (-k[0].timestamp(), k[1]))


def test_conversations_between(conversations: ConversationStore) -> None:
    for i in range(5):
        conversations.create(conv(f"conv_{i}", at=T0 + timedelta(hours=i)))
    got = conversations.conversations_between(T0 + timedelta(hours=1), T0 + timedelta(hours=3))
    assert [c.id for c in got] == ["conv_1", "conv_2"]  # [start, end)
    assert conversations.conversations_between(T0 - timedelta(days=1), T0) == []
    assert len(conversations.conversations_between(T0, T0 + timedelta(days=1))) == 5


# ---- turns -----------------------------------------------------------------------------------


def test_append_turn(conversations: ConversationStore) -> None:
    conversations.create(conv("conv_t", channels=("web",), last_channel="web"))
    plan = ["web", "web", "sms", "sms", "whatsapp", "web", "web"]
    for i, channel in enumerate(plan):
        t = conversations.append_turn("conv_t", turn(channel, f"turn {i}", T0 + timedelta(seconds=i + 1)))
        assert t.seq == i + 1 and t.conversation_id == "conv_t" and t.channel == channel
        assert_utc(t.at)
    got = conversations.get("conv_t")
    assert got is not None
    assert got.turn_count == 7
    assert got.channels == ("web", "sms", "whatsapp")
    assert got.channel_switches == 3  # web→sms, sms→whatsapp, whatsapp→web
    assert got.last_channel == "web"
    assert got.updated_at == T0 + timedelta(seconds=7)
    assert got.version == 1  # turns do not move the version
    turns = conversations.turns("conv_t")
    assert [t.seq for t in turns] == list(range(1, 8))
    assert [t.text for t in turns] == [f"turn {i}" for i in range(7)]
    assert turns[2] == Turn("conv_t", 3, Role.CUSTOMER, "sms", "email:a@example.com", "turn 2",
                            "intent", "topic", T0 + timedelta(seconds=3))
    assert [t.seq for t in conversations.turns("conv_t", after_seq=3, limit=2)] == [4, 5]
    assert conversations.turns("conv_t", after_seq=7) == []
    assert conversations.turns("conv_nope") == []


def test_append_turn_first_channel_and_status_rules(conversations: ConversationStore) -> None:
    conversations.create(conv("conv_new", channels=(), last_channel=""))
    conversations.append_turn("conv_new", turn("sms"))
    got = conversations.get("conv_new")
    assert got is not None and got.channels == ("sms",) and got.channel_switches == 0

    conversations.create(conv("conv_idle", status=Status.INACTIVE))
    conversations.append_turn("conv_idle", turn("web", at=T0 + timedelta(hours=1)))
    got = conversations.get("conv_idle")
    assert got is not None and got.status == Status.ACTIVE

    conversations.create(conv("conv_esc", status=Status.ESCALATED))
    conversations.append_turn("conv_esc", turn("agent", role=Role.AGENT))
    assert conversations.get("conv_esc").status == Status.ESCALATED  # type: ignore[union-attr]

    conversations.create(conv("conv_closed", status=Status.CLOSED, closed_at=T0))
    with pytest.raises(FailedPrecondition):
        conversations.append_turn("conv_closed", turn())
    assert conversations.turns("conv_closed") == []
    assert conversations.get("conv_closed").turn_count == 0  # type: ignore[union-attr]

    with pytest.raises(NotFound):
        conversations.append_turn("conv_nope", turn())


# ---- versioned updates -----------------------------------------------------------------------


def test_update_with_version(conversations: ConversationStore) -> None:
    original = conv("conv_u", context=Context("t", "i", {"a": "1"}), state=State("f", "s", {"n": 1}))
    conversations.create(original)
    ctx = Context("returns", "start", {"order": EVIL[0]})
    after = conversations.update("conv_u", 1, context=ctx, at=T0 + timedelta(minutes=1))
    assert after.version == 2 and after.context == ctx and after.state == original.state
    assert after.updated_at == T0 + timedelta(minutes=1)
    assert conversations.get("conv_u") == after

    st = State("return", "label", {"nested": {"list": [1, 2, {"x": None}]}})
    after = conversations.update("conv_u", 2, state=st, at=T0 + timedelta(minutes=2))
    assert after.version == 3 and after.state == st and after.context == ctx

    with pytest.raises(Conflict):
        conversations.update("conv_u", 2, context=Context("stale"), state=State("stale"),
                             at=T0 + timedelta(minutes=3))
    assert conversations.get("conv_u") == after  # nothing changed, version included

    both = conversations.update("conv_u", 3, context=Context(), state=State(), at=T0 + timedelta(minutes=4))
    assert both.version == 4 and both.context == Context() and both.state == State()

    with pytest.raises(NotFound):
        conversations.update("conv_nope", 1, context=ctx, at=T0)
    with pytest.raises(InvalidArgument):
        conversations.update("conv_u", 4, at=T0)


def test_concurrent_turns_and_state_updates_lose_nothing(conversations: ConversationStore) -> None:
    conversations.create(conv("conv_c", state=State("count", "", {"n": 0}), channels=("web",)))
    conflicts = [0] * 20

    def writer(i: int) -> None:
        rng = random.Random(i)
        for k in range(5):
            conversations.append_turn("conv_c", turn(f"ch{i}", f"w{i} t{k}", datetime.now(UTC)))
            while True:  # read-modify-write, retried on a stale version
                cur = conversations.get("conv_c")
                assert cur is not None
                data = {"n": cur.state.data["n"] + 1}
                try:
                    conversations.update("conv_c", cur.version, state=State("count", "", data),
                                         at=datetime.now(UTC))
                    break
                except Conflict:
                    conflicts[i] += 1
                    time.sleep(rng.random() * 0.002)

    run_concurrently(20, writer)
    got = conversations.get("conv_c")
    assert got is not None
    assert got.state.data["n"] == 100
    assert got.version == 101
    assert got.turn_count == 100
    turns = conversations.turns("conv_c")
    assert [t.seq for t in turns] == list(range(1, 101))
    assert sorted(t.text for t in turns) == sorted(f"w{i} t{k}" for i in range(20) for k in range(5))
    assert set(got.channels) == {"web"} | {f"ch{i}" for i in range(20)}
    assert len(got.channels) == 21
    # Every turn after the first either stays on its channel or counts one switch.
    switches = sum(1 for x, y in itertools.pairwise(turns) if x.channel != y.channel)
    assert got.channel_switches == switches + (turns[0].channel != "web")


def test_reads_see_version_context_and_state_of_one_write(conversations: ConversationStore) -> None:
    """Callers update with the version they read: a read that paired a new version with an older
    state would let their write-back lose an update. Neo4j applies a commit property by property
    and reads take no locks, which once made this happen (the 20-writer API test lost one of 60)."""
    conversations.create(conv("conv_t", state=State("f", "", {"v": 1}),
                              context=Context("t", "", {"v": "1"})))
    done = threading.Event()
    torn: list[tuple[int, Any, Any]] = []
    reads = [0]

    def read() -> None:
        while not done.is_set():
            c = conversations.get("conv_t")
            assert c is not None
            reads[0] += 1
            if not (c.state.data["v"] == c.version and c.context.slots["v"] == str(c.version)):
                torn.append((c.version, c.state.data["v"], c.context.slots["v"]))

    def write() -> None:
        try:
            for k in range(2, 202):  # the state's size changes with each write; turns between
                conversations.update("conv_t", k - 1, at=datetime.now(UTC),
                                     context=Context("t", "", {"v": str(k)}),
                                     state=State("f", "", {"v": k, "pad": "x" * (k % 7 * 150)}))
                conversations.append_turn("conv_t", turn("web", f"t{k}", datetime.now(UTC)))
        finally:
            done.set()

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    write()
    for t in readers:
        t.join()
    assert reads[0] > 100
    assert torn == []
    got = conversations.get("conv_t")
    assert got is not None and got.version == 201 and got.state.data["v"] == 201


# ---- status ----------------------------------------------------------------------------------

def test_set_status(conversations: ConversationStore) -> None:
    conversations.create(conv("conv_s"))
    esc = conversations.set_status("conv_s", Status.ESCALATED, T0 + timedelta(minutes=1), reason=EVIL[1])
    assert esc.status == Status.ESCALATED and esc.escalation_reason == EVIL[1]
    assert esc.updated_at == T0 + timedelta(minutes=1) and esc.version == 1
    res = conversations.set_status("conv_s", Status.ACTIVE, T0 + timedelta(minutes=2), resumed=True)
    assert res.status == Status.ACTIVE and res.resumed_count == 1 and res.escalation_reason == EVIL[1]
    closed = conversations.set_status("conv_s", Status.CLOSED, T0 + timedelta(minutes=3))
    assert closed.status == Status.CLOSED and closed.closed_at == T0 + timedelta(minutes=3)
    assert_utc(closed.closed_at)
    assert conversations.get("conv_s") == closed
    again = conversations.set_status("conv_s", Status.CLOSED, T0 + timedelta(minutes=9))
    assert again.closed_at == T0 + timedelta(minutes=3)  # the first close counts
    with pytest.raises(FailedPrecondition):
        conversations.set_status("conv_s", Status.ACTIVE, T0 + timedelta(minutes=4), resumed=True)
    with pytest.raises(NotFound):
        conversations.set_status("conv_nope", Status.CLOSED, T0)


def test_mark_idle(conversations: ConversationStore) -> None:
    now = T0 + timedelta(days=10)
    conversations.create(conv("conv_old_active", updated=now - timedelta(hours=2)))
    conversations.create(conv("conv_fresh", updated=now - timedelta(minutes=5)))
    conversations.create(conv("conv_old_inactive", status=Status.INACTIVE, updated=now - timedelta(days=3)))
    conversations.create(conv("conv_new_inactive", status=Status.INACTIVE, updated=now - timedelta(hours=2)))
    conversations.create(conv("conv_escalated", status=Status.ESCALATED, updated=now - timedelta(days=9)))
    conversations.create(conv("conv_closed", status=Status.CLOSED, updated=now - timedelta(days=9),
                              closed_at=now - timedelta(days=9)))
    idle, close = now - timedelta(hours=1), now - timedelta(days=1)

    assert conversations.mark_idle(idle, close, now) == 2
    status = {c.id: c for c in conversations.conversations_between(T0 - timedelta(days=1), now)}
    assert status["conv_old_active"].status == Status.INACTIVE
    assert status["conv_old_active"].updated_at == now - timedelta(hours=2)  # not touched by the sweep
    assert status["conv_fresh"].status == Status.ACTIVE
    assert status["conv_old_inactive"].status == Status.CLOSED
    assert status["conv_old_inactive"].closed_at == now
    assert status["conv_new_inactive"].status == Status.INACTIVE
    assert status["conv_escalated"].status == Status.ESCALATED
    assert status["conv_closed"].closed_at == now - timedelta(days=9)

    assert conversations.mark_idle(idle, close, now) == 0
    later = now + timedelta(days=2)
    # Untouched for longer than the close timeout: an active one closes in one sweep, counted once.
    assert conversations.mark_idle(later - timedelta(hours=1), later - timedelta(days=1), later) == 3
    for cid in ("conv_fresh", "conv_old_active", "conv_new_inactive"):
        got = conversations.get(cid)
        assert got is not None and got.status == Status.CLOSED and got.closed_at == later
    assert conversations.get("conv_escalated").status == Status.ESCALATED  # type: ignore[union-attr]


# ---- handoffs, step-ups ----------------------------------------------------------------------


def test_handoff_is_redeemed_exactly_once(conversations: ConversationStore) -> None:
    conversations.create(conv("conv_h"))
    h = Handoff("hash_1", "conv_h", "whatsapp", T0, T0 + timedelta(minutes=10))
    conversations.put_handoff(h)
    with pytest.raises(Conflict):
        conversations.put_handoff(replace(h, conversation_id="conv_other"))

    at = T0 + timedelta(minutes=1)
    results = run_concurrently(
        10, lambda i: conversations.redeem_handoff("hash_1", "whatsapp", f"phone:+1415555{i:04d}", at))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    won = winners[0]
    assert won.code_hash == "hash_1" and won.conversation_id == "conv_h" and won.channel == "whatsapp"
    assert won.redeemed_at == at and won.redeemed_by.startswith("phone:+1415555")
    assert_utc(won.redeemed_at)
    assert won.expires_at == T0 + timedelta(minutes=10)
    assert conversations.redeem_handoff("hash_1", "whatsapp", "phone:+14155550000", at) is None

    conversations.put_handoff(Handoff("hash_2", "conv_h", "sms", T0, T0 + timedelta(minutes=10)))
    for late in (T0 + timedelta(minutes=10), T0 + timedelta(hours=1)):
        assert conversations.redeem_handoff("hash_2", "sms", "phone:+14155550001", late) is None
    assert conversations.redeem_handoff("hash_nope", "sms", "phone:+14155550001", T0) is None
    # Expiry did not consume it: still redeemable inside the window.
    got = conversations.redeem_handoff("hash_2", "sms", "phone:+14155550001", T0 + timedelta(minutes=9))
    assert got is not None and got.redeemed_by == "phone:+14155550001"


def test_handoff_is_redeemed_on_its_channel_only_by_code_or_link_token(
        conversations: ConversationStore) -> None:
    conversations.create(conv("conv_h"))
    conversations.put_handoff(Handoff("code_1", "conv_h", "whatsapp", T0, T0 + timedelta(minutes=10),
                                      link_hash="link_1"))
    at = T0 + timedelta(minutes=1)
    for channel in ("sms", "web", "email"):  # presented on another channel: refused, not spent
        assert conversations.redeem_handoff("code_1", channel, "phone:+14155550001", at) is None
        assert conversations.redeem_handoff("link_1", channel, "phone:+14155550001", at) is None
    got = conversations.redeem_handoff("link_1", "whatsapp", "whatsapp:+14155550001", at)
    assert got is not None and got.link_hash == "link_1" and got.code_hash == "code_1"
    # One handoff: the code went with the link token.
    assert conversations.redeem_handoff("code_1", "whatsapp", "whatsapp:+14155550001", at) is None
    conversations.put_handoff(Handoff("code_2", "conv_h", "sms", T0, T0 + timedelta(minutes=10)))
    assert conversations.redeem_handoff("", "sms", "phone:+14155550001", at) is None  # no link token


def test_attempt_counters_cap_atomically_and_restart_their_window(
        conversations: ConversationStore) -> None:
    end = T0 + timedelta(minutes=10)
    limits = {"a|phone:+14155550100": 3, "b|*": 5}
    taken = run_concurrently(20, lambda i: conversations.take_attempt(limits, end, T0))
    assert taken.count(True) == 3  # the smaller cap; all or nothing across both counters
    # "b" counted only the three that went ahead: two more fit, a third does not.
    assert [conversations.take_attempt({"b|*": 5}, end, T0) for _ in range(3)] == [True, True, False]
    conversations.give_back_attempt(["a|phone:+14155550100"], end, T0)
    assert conversations.take_attempt({"a|phone:+14155550100": 3}, end, T0)
    assert not conversations.take_attempt({"a|phone:+14155550100": 3}, end, T0)
    for _ in range(10):  # never below zero
        conversations.give_back_attempt(["c|x"], end, T0)
    assert [conversations.take_attempt({"c|x": 1}, end, T0) for _ in range(2)] == [True, False]
    # After the window, a counter starts again from zero, with the new window's end.
    later, later_end = end, end + timedelta(minutes=10)
    assert conversations.take_attempt({"a|phone:+14155550100": 1}, later_end, later)
    assert not conversations.take_attempt({"a|phone:+14155550100": 1}, later_end, later)
    assert conversations.take_attempt({}, end, T0)
    # Erasing an identifier forgets the counters keyed by it.
    conversations.erase_for(["phone:+14155550100"])
    assert conversations.take_attempt({"a|phone:+14155550100": 1}, later_end, later)


def test_step_up(conversations: ConversationStore) -> None:
    s = StepUp("stp_1", "phone:+14155550100", "email:a@example.com", "right", "email", T0,
               T0 + timedelta(minutes=5))
    conversations.put_step_up(s)
    assert conversations.get_step_up("stp_1") == s
    with pytest.raises(Conflict):
        conversations.put_step_up(s)

    assert conversations.complete_step_up("stp_1", "wrong", T0 + timedelta(minutes=1)) is None
    assert conversations.get_step_up("stp_1") == replace(s, attempts=1)
    done = conversations.complete_step_up("stp_1", "right", T0 + timedelta(minutes=2))
    assert done == replace(s, attempts=2, completed_at=T0 + timedelta(minutes=2))
    assert_utc(done.completed_at)  # type: ignore[union-attr]
    assert conversations.complete_step_up("stp_1", "right", T0 + timedelta(minutes=3)) is None
    assert conversations.get_step_up("stp_1") == replace(s, attempts=3,
                                                         completed_at=T0 + timedelta(minutes=2))

    conversations.put_step_up(replace(s, id="stp_2"))
    assert conversations.complete_step_up("stp_2", "right", T0 + timedelta(minutes=5)) is None  # expired
    assert conversations.get_step_up("stp_2") == replace(s, id="stp_2", attempts=1)

    assert conversations.complete_step_up("stp_nope", "right", T0) is None
    assert conversations.get_step_up("stp_nope") is None


def test_step_up_completes_once_under_concurrency(conversations: ConversationStore) -> None:
    s = StepUp("stp_c", "phone:+14155550100", "email:a@example.com", "right", "email", T0,
               T0 + timedelta(minutes=5))
    conversations.put_step_up(s)
    results = run_concurrently(10, lambda i: conversations.complete_step_up("stp_c", "right", T0))
    assert sum(r is not None for r in results) == 1
    assert conversations.get_step_up("stp_c").attempts == 10  # type: ignore[union-attr]


# ---- consents, outbox ------------------------------------------------------------------------


def test_consents_history_oldest_first(conversations: ConversationStore) -> None:
    a, b = "phone:+14155550100", "email:a@example.com"
    records = [
        Consent(a, "sms", "marketing", True, "web form", T0 + timedelta(days=2)),
        Consent(a, "sms", "marketing", False, "STOP reply", T0 + timedelta(days=5)),
        Consent(a, "whatsapp", "*", True, "agent", T0),
        Consent(b, "email", "service", True, EVIL[0], T0 + timedelta(days=1)),
        # Same time as the one before it: recording order decides.
        Consent(a, "sms", "marketing", True, "re-opt-in", T0 + timedelta(days=5)),
    ]
    for r in records:
        conversations.add_consent(r)
    assert conversations.consents([a]) == [records[2], records[0], records[1], records[4]]
    assert conversations.consents([b]) == [records[3]]
    assert conversations.consents([a, b]) == [records[2], records[3], records[0], records[1], records[4]]
    assert conversations.consents(["email:nobody@example.com"]) == []
    assert all(c.at.utcoffset() == timedelta(0) for c in conversations.consents([a]))


def test_outbox(conversations: ConversationStore) -> None:
    msgs = [
        OutboxMessage("msg_2", "sms", "+14155550100", "second", T0 + timedelta(seconds=1)),
        OutboxMessage("msg_1", "sms", "+14155550100", "first", T0),
        OutboxMessage("msg_0", "sms", "+14155550100", "third, same time", T0 + timedelta(seconds=1)),
        OutboxMessage("msg_x", "email", "a@example.com", EVIL[0], T0),
    ]
    for m in msgs:
        conversations.outbox_put(m)
    assert conversations.outbox("+14155550100") == [msgs[1], msgs[0], msgs[2]]
    assert conversations.outbox("a@example.com") == [msgs[3]]
    assert conversations.outbox("nobody") == []
    with pytest.raises(Conflict):
        conversations.outbox_put(msgs[0])


# ---- erasure ---------------------------------------------------------------------------------


def test_delete_for(conversations: ConversationStore, store: Any) -> None:
    a, b, c = "email:a@example.com", "phone:+14155550100", "email:c@example.com"
    store.apply(ChangeSet(identifiers=[IdentifierUpsert(a, "email", "a@example.com", T0),
                                       IdentifierUpsert(c, "email", "c@example.com", T0)]))
    for cid, anchor in (("conv_a1", a), ("conv_a2", a), ("conv_b1", b), ("conv_c1", c)):
        conversations.create(conv(cid, anchor))
        conversations.append_turn(cid, turn(identifier=anchor))
        conversations.append_turn(cid, turn("sms", identifier=anchor))
    for key in (a, b, c):
        conversations.add_consent(Consent(key, "sms", "service", True, "form", T0))
    conversations.put_handoff(Handoff("h_a", "conv_a1", "sms", T0, T0 + timedelta(hours=1)))
    conversations.put_handoff(Handoff("h_c", "conv_c1", "sms", T0, T0 + timedelta(hours=1)))
    conversations.put_step_up(StepUp("stp_a", c, a, "x", "email", T0, T0 + timedelta(hours=1)))
    conversations.put_step_up(StepUp("stp_c", c, c, "x", "email", T0, T0 + timedelta(hours=1)))

    assert conversations.erase_for([a, b, a]).conversations == 3
    for cid in ("conv_a1", "conv_a2", "conv_b1"):
        assert conversations.get(cid) is None
        assert conversations.turns(cid) == []
    assert conversations.by_anchors([a, b]) == []
    assert conversations.consents([a, b]) == []
    assert conversations.redeem_handoff("h_a", "sms", c, T0) is None
    assert conversations.get_step_up("stp_a") is None
    # The other customer's data is untouched, and so is the identity graph.
    assert conversations.get("conv_c1") is not None
    assert [t.seq for t in conversations.turns("conv_c1")] == [1, 2]
    assert len(conversations.consents([c])) == 1
    assert conversations.get_step_up("stp_c") is not None
    assert conversations.redeem_handoff("h_c", "sms", c, T0) is not None
    assert set(store.get_identifiers([a, c])) == {a, c}
    assert conversations.erase_for([a]).conversations == 0
    assert conversations.erase_for([]).conversations == 0


def test_erase_for_and_export_for(conversations: ConversationStore, store: Any) -> None:
    a, c = "email:a@example.com", "phone:+14155550100"
    for cid, anchor in (("conv_a1", a), ("conv_c1", c)):
        conversations.create(conv(cid, anchor))
    conversations.append_turn("conv_a1", turn(identifier=a, text="mine"))
    conversations.append_turn("conv_c1", turn(identifier=c, text="theirs"))
    conversations.append_turn("conv_c1", turn(identifier=a, text="typed through a"))
    conversations.add_consent(Consent(a, "sms", "service", True, "form", T0))
    conversations.outbox_put(OutboxMessage("msg_a", "email", "a@example.com", "code", T0))
    conversations.outbox_put(OutboxMessage("msg_c", "sms", "+14155550100", "code", T0))

    history = conversations.export_for([a])
    assert [(cv.id, [t.text for t in ts]) for cv, ts in history.conversations] == [("conv_a1", ["mine"])]
    assert [x.identifier for x in history.consents] == [a]

    # Inside a transaction the caller holds, rolled back with it ...
    with pytest.raises(RuntimeError), conversations.database.transaction():
        assert conversations.erase_for([a]).conversations == 1
        raise RuntimeError("rolled back")
    assert conversations.get("conv_a1") is not None and len(conversations.outbox("a@example.com")) == 1
    # ... and on its own.
    erased = conversations.erase_for([a, a])
    assert (erased.conversations, erased.turns_redacted, erased.outbox) == (1, 1, 1)
    assert conversations.get("conv_a1") is None and conversations.consents([a]) == []
    assert [(t.identifier, t.text) for t in conversations.turns("conv_c1")] == [(c, "theirs"), ("", "")]
    assert conversations.outbox("a@example.com") == [] and len(conversations.outbox("+14155550100")) == 1
    assert conversations.export_for([a]).conversations == []
    assert conversations.erase_for([]).conversations == 0


def test_clear(conversations: ConversationStore) -> None:
    conversations.create(conv("conv_1"))
    conversations.append_turn("conv_1", turn())
    conversations.add_consent(Consent("email:a@example.com", "sms", "*", True, "form", T0))
    conversations.outbox_put(OutboxMessage("msg_1", "sms", "r", "t", T0))
    conversations.clear()
    assert conversations.get("conv_1") is None
    assert conversations.turns("conv_1") == []
    assert conversations.consents(["email:a@example.com"]) == []
    assert conversations.outbox("r") == []


def test_came_in_through_relationship(conversations: ConversationStore, store: Any) -> None:
    """Neo4j links a conversation to its anchor's node when it exists; both keep `anchor`."""
    key = "email:a@example.com"
    store.apply(ChangeSet(identifiers=[IdentifierUpsert(key, "email", "a@example.com", T0)]))
    conversations.create(conv("conv_known", key))
    conversations.create(conv("conv_unknown", "email:ghost@example.com"))
    assert conversations.get("conv_known").anchor == key  # type: ignore[union-attr]
    assert conversations.get("conv_unknown").anchor == "email:ghost@example.com"  # type: ignore[union-attr]
    assert store.get_identifiers(["email:ghost@example.com"]) == {}  # no placeholder was created
    if isinstance(store, Neo4jStore):
        records = store.database.read(
            "MATCH (c:Conversation)-[:CAME_IN_THROUGH]->(i:Identifier) RETURN c.id AS c, i.key AS k")
        assert [(r["c"], r["k"]) for r in records] == [("conv_known", key)]
