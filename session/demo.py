"""identity-demo: the refrigerator story played through the real gRPC API, printed as a transcript.

A server (identity.v1 and session.v1) starts in this process on 127.0.0.1 with a free port and an
embedded SQLite store; the story then talks to it only through generated client stubs: a web chat
(cookie and a typed email), SMS from the phone given on the web, WhatsApp from the same number,
and a handoff code that takes the conversation to a second device.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format

from identity_graph.engine import IdentityGraph
from identity_graph.store import open_store
from session.policy import DEFAULT_HANDOFF_RULES, SessionPolicy
from session.service import Sessions
from session.store import conversation_store_for
from stubs.identity.v1 import identity_pb2 as ipb
from stubs.session.v1 import session_pb2 as pb
from stubs.session.v1 import session_pb2_grpc as pb_grpc

TIMEOUT = 30.0
COOKIE, TABLET = "web_cookie:ck-7f3a9", "web_cookie:ck-tablet-51c2"
EMAIL, PHONE, WHATSAPP = "email:Maria.Lopez@Example.com", "phone:(415) 555-0134", "whatsapp:+14155550134"
SMS_NUMBER = "phone:+14155550134"

# The demo shop also suggests SMS delivery updates while an order is open (the default policy
# does so for delivery, return and tracking flows); everything else is the default policy.
DEMO_POLICY = replace(
    SessionPolicy(),
    handoff_rules=(
        DEFAULT_HANDOFF_RULES[0],
        replace(DEFAULT_HANDOFF_RULES[1], flows=("order", *DEFAULT_HANDOFF_RULES[1].flows)),
        *DEFAULT_HANDOFF_RULES[2:],
    ),
)


# ---- the server, in this process ------------------------------------------------------------


@contextmanager
def serve_in_background(graph: IdentityGraph, sessions: Sessions) -> Iterator[int]:
    """Runs the real aio server on 127.0.0.1:0 in a private event loop; yields its port."""
    from server import BackgroundServer

    srv = BackgroundServer(graph, sessions=sessions, access_log_enabled=False, timeout_s=TIMEOUT)
    try:
        yield srv.port
    finally:
        srv.stop(2.0)


# ---- the client side ------------------------------------------------------------------------


def ident(key: str) -> ipb.Identifier:
    type_, _, value = key.partition(":")
    return ipb.Identifier(type=type_, value=value)


def _key(i: ipb.Identifier) -> str:
    return f"{i.type}:{i.value}"


def _data(state: pb.State) -> str:
    data = json_format.MessageToDict(state.data)
    plain = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in sorted(data.items())}
    return ", ".join(f"{k}={v}" for k, v in plain.items()) or "-"


class Story:
    """Plays the story against a SessionService stub and prints what happens."""

    def __init__(self, stub: pb_grpc.SessionServiceStub, out: Callable[[str], None]) -> None:
        self.stub, self.out = stub, out
        self.conversation_ids: dict[str, str] = {}

    # -- printing --

    def heading(self, title: str) -> None:
        self.out(f"\n━━ {title}")

    def remembers(self, conv: pb.Conversation) -> None:
        ctx, st = conv.context, conv.state
        slots = ", ".join(f"{k}={v}" for k, v in sorted(ctx.slots.items())) or "-"
        self.out(f"    ↳ bot remembers: conversation {conv.conversation_id} v{conv.version}")
        self.out(f"      context: topic={ctx.topic or '-'} intent={ctx.intent or '-'} slots: {slots}")
        self.out(f"      state:   flow={st.flow or '-'} step={st.step or '-'} data: {_data(st)}")

    def arrived(self, channel: str, r: pb.StartOrResumeResponse) -> str:
        conv = r.conversation
        how = f"resumed from {r.resumed_from_channel}" if r.resumed else "new"
        assurance = ipb.LinkKind.Name(r.assurance).removeprefix("LINK_KIND_") if r.assurance else "none"
        self.out(
            f"  [{channel}] conversation {conv.conversation_id} ({how}); customer {r.customer_id}; "
            f"assurance {assurance}; {len(conv.turns)} earlier turns visible"
        )
        self.conversation_ids.setdefault(channel, conv.conversation_id)
        return conv.conversation_id

    # -- calls --

    @staticmethod
    def caller(channel: str, key: str) -> pb.Caller:
        return pb.Caller(channel=channel, identifier=ident(key))

    def start(self, channel: str, *keys: str, **attributes: str) -> pb.StartOrResumeResponse:
        req = pb.StartOrResumeRequest(
            channel=channel, identifiers=[ident(k) for k in keys], attributes=attributes
        )
        return self.stub.StartOrResume(req, timeout=TIMEOUT)

    def say(self, cid: str, channel: str, who: str, role: int, text: str, **kw: str) -> None:
        req = pb.AppendTurnRequest(
            conversation_id=cid, caller=self.caller(channel, who), role=role, text=text, **kw
        )
        turn = self.stub.AppendTurn(req, timeout=TIMEOUT).turn
        name = pb.Role.Name(turn.role).removeprefix("ROLE_").lower()
        self.out(f"  [{turn.channel}] #{turn.seq:<2} {name + ':':9} {turn.text}")

    def context(self, conv: pb.Conversation, channel: str, who: str, **fields: Any) -> pb.Conversation:
        req = pb.UpdateContextRequest(
            conversation_id=conv.conversation_id,
            caller=self.caller(channel, who),
            expected_version=conv.version,
            context=pb.Context(**fields),
        )
        return self.stub.UpdateContext(req, timeout=TIMEOUT).conversation

    def state(
        self, conv: pb.Conversation, channel: str, who: str, flow: str, step: str, **data: Any
    ) -> pb.Conversation:
        st = pb.State(flow=flow, step=step)
        st.data.update(data)
        req = pb.UpdateStateRequest(
            conversation_id=conv.conversation_id,
            caller=self.caller(channel, who),
            expected_version=conv.version,
            state=st,
        )
        return self.stub.UpdateState(req, timeout=TIMEOUT).conversation

    def consent(self, key: str, channel: str, purpose: str, source: str) -> None:
        c = self.stub.RecordConsent(
            pb.RecordConsentRequest(
                identifier=ident(key), channel=channel, purpose=purpose, granted=True, source=source
            ),
            timeout=TIMEOUT,
        )
        self.out(f"    ✓ consent recorded: {_key(c.identifier)} may get {c.purpose} by {c.channel}")

    def suggest(self, cid: str, channel: str, who: str) -> str:
        s = self.stub.SuggestHandoff(
            pb.SuggestHandoffRequest(conversation_id=cid, caller=self.caller(channel, who)), timeout=TIMEOUT
        )
        if s.channel:
            self.out(f"    ⇢ handoff suggested: {s.channel} ({s.purpose}) because {s.reason}")
        else:
            self.out("    ⇢ no handoff suggested")
        return s.message

    # -- the story --

    def play(self) -> pb.Conversation:
        self.heading("1. Web chat: cookie ck-7f3a9; she types her email")
        web = self.start("web", COOKIE, EMAIL, first_name="Maria", last_name="Lopez")
        cid = self.arrived("web", web)
        conv = web.conversation
        self.say(
            cid,
            "web",
            COOKIE,
            pb.ROLE_CUSTOMER,
            "Hi! How wide is the FR-200 refrigerator? It has to fit a 70 cm niche.",
            intent="product_question",
            topic="dimensions",
        )
        self.say(
            cid,
            "web",
            COOKIE,
            pb.ROLE_BOT,
            "The FR-200 is 68 cm wide, 178 cm tall and 66 cm deep, so it fits. "
            "The FR-240 (70 cm) would be a squeeze.",
        )
        conv = self.context(
            conv,
            "web",
            COOKIE,
            topic="dimensions",
            intent="product_question",
            slots={"model": "FR-200", "niche_width_cm": "70"},
        )
        conv = self.state(
            conv, "web", COOKIE, "order", "choose_model", candidates=["FR-200", "FR-240"], qty=1
        )
        self.remembers(conv)
        self.say(
            cid,
            "web",
            COOKIE,
            pb.ROLE_CUSTOMER,
            "I'll take the FR-200. Text me delivery updates at (415) 555-0134 (I'm on WhatsApp too).",
        )
        # The form's phone field, with its "also on WhatsApp" box ticked, seen with her cookie.
        given = self.start("web", COOKIE, PHONE, WHATSAPP)
        self.out(
            f"    ✓ phone and WhatsApp given on the web → same customer {given.customer_id}, "
            f"same conversation: {given.conversation.conversation_id == cid}"
        )
        self.consent(PHONE, "sms", "delivery_updates", "web chat checkbox")
        message = self.suggest(cid, "web", COOKIE)
        self.out("      (the phone is typed, not held: the web chat sees nothing anchored at it,"
                 " its consents included; texting from it opens this conversation)")
        self.say(cid, "web", COOKIE, pb.ROLE_BOT, message or "Noted. We'll text you delivery updates.")

        self.heading("2. SMS from +1 415 555 0134, on the way home")
        sms = self.start("sms", SMS_NUMBER)
        self.arrived("sms", sms)
        self.out(
            f"    state intact on arrival: flow={sms.conversation.state.flow} "
            f"step={sms.conversation.state.step} data: {_data(sms.conversation.state)}"
        )
        conv = sms.conversation
        self.say(cid, "sms", SMS_NUMBER, pb.ROLE_CUSTOMER, "Can the FR-200 come on Friday morning?")
        conv = self.state(
            conv,
            "sms",
            SMS_NUMBER,
            "order",
            "choose_delivery",
            candidates=["FR-200", "FR-240"],
            model="FR-200",
            qty=1,
            delivery="Fri 08:00-12:00",
        )
        self.say(
            cid,
            "sms",
            SMS_NUMBER,
            pb.ROLE_BOT,
            "Friday 8-12 is free and held for you. Reply YES to finish the purchase on WhatsApp.",
        )
        self.say(cid, "sms", SMS_NUMBER, pb.ROLE_CUSTOMER, "YES")
        self.consent(WHATSAPP, "whatsapp", "purchase_support", "sms reply YES")
        self.suggest(cid, "sms", SMS_NUMBER)
        self.remembers(conv)

        self.heading("3. WhatsApp from the same number, in the evening")
        wa = self.start("whatsapp", WHATSAPP)
        self.arrived("whatsapp", wa)
        conv = wa.conversation
        self.say(cid, "whatsapp", WHATSAPP, pb.ROLE_CUSTOMER, "Hi, ready to pay for the fridge.")
        conv = self.state(
            conv,
            "whatsapp",
            WHATSAPP,
            "order",
            "payment",
            model="FR-200",
            qty=1,
            delivery="Fri 08:00-12:00",
            total_usd=1299,
        )
        self.say(
            cid,
            "whatsapp",
            WHATSAPP,
            pb.ROLE_BOT,
            "FR-200, delivery Friday 8-12, $1,299. Here is your payment link.",
        )
        conv = self.state(
            conv,
            "whatsapp",
            WHATSAPP,
            "order",
            "paid",
            model="FR-200",
            qty=1,
            delivery="Fri 08:00-12:00",
            total_usd=1299,
            order_id="FR-10042",
        )
        self.say(cid, "whatsapp", WHATSAPP, pb.ROLE_BOT, "Payment received. Order FR-10042 is confirmed.")
        self.remembers(conv)

        self.heading("4. A handoff code takes the conversation to her tablet")
        ticket = self.stub.CreateHandoff(
            pb.CreateHandoffRequest(
                conversation_id=cid, caller=self.caller("whatsapp", WHATSAPP), channel="web"
            ),
            timeout=TIMEOUT,
        )
        self.out(f"    ⇢ handoff code {ticket.code} (single use), link {ticket.link}")
        redeemed = self.stub.RedeemHandoff(
            pb.RedeemHandoffRequest(code=ticket.code, channel="web", identifiers=[ident(TABLET)]),
            timeout=TIMEOUT,
        )
        self.arrived("web (tablet)", redeemed)
        self.say(cid, "web", TABLET, pb.ROLE_CUSTOMER, "Can you show me the installation guide here?")
        again = None
        try:
            self.stub.RedeemHandoff(
                pb.RedeemHandoffRequest(code=ticket.code, channel="web", identifiers=[ident(TABLET)]),
                timeout=TIMEOUT,
            )
        except grpc.RpcError as e:
            again = e.code().name
        self.out(f"    ✓ the code again: {again}")

        # Read as the phone's holder, who reaches every side: the web visitor only typed the
        # phone, so the cookie (and the tablet linked to it) sees the web turns alone.
        final = self.stub.GetConversation(
            pb.GetConversationRequest(conversation_id=cid, caller=self.caller("whatsapp", WHATSAPP)),
            timeout=TIMEOUT,
        ).conversation
        return final


def run(db: str, out: Callable[[str], None] = print) -> pb.Conversation:
    """Plays the story against an in-process server over the SQLite file `db`."""
    with open_store(db) as store:
        graph = IdentityGraph(store)
        sessions = Sessions(graph, conversation_store_for(store), DEMO_POLICY)
        with serve_in_background(graph, sessions) as port:
            out("identity-demo: the refrigerator story through the real gRPC API")
            out(f"server: identity.v1 + session.v1 on 127.0.0.1:{port}; embedded SQLite {db}")
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                grpc.channel_ready_future(channel).result(TIMEOUT)
                stub = pb_grpc.SessionServiceStub(channel)
                story = Story(stub, out)
                final = story.play()
                _summary(stub, story, final, out)
                return final


def _summary(
    stub: pb_grpc.SessionServiceStub, story: Story, final: pb.Conversation, out: Callable[[str], None]
) -> None:
    out("\n━━ The whole conversation, as an agent would see it")
    for t in final.turns:
        out(f"  #{t.seq:<2} {t.channel:8} {pb.Role.Name(t.role).removeprefix('ROLE_').lower():8} {t.text}")
    listed = stub.ListConversations(
        pb.ListConversationsRequest(caller=pb.Caller(channel="sms", identifier=ident(SMS_NUMBER))),
        timeout=TIMEOUT,
    )
    ids = set(story.conversation_ids.values())
    channels = [c for c in ("web", "sms", "whatsapp") if c in final.channels]
    out("\n━━ Summary")
    out(f"  conversations of this customer: {len(listed.conversations)}")
    out(
        "  conversation ids seen per channel: "
        + ", ".join(f"{ch}={cid}" for ch, cid in story.conversation_ids.items())
    )
    out(f"  one conversation: {len(ids) == 1}; channels: {', '.join(channels)} ({len(channels)})")
    out(f"  final state: flow={final.state.flow} step={final.state.step} data: {_data(final.state)}")
    out(f"  version v{final.version}, {len(final.turns)} turns, {final.channel_switches} channel switches")
    intact = len(ids) == 1 and final.state.step == "paid" and len(channels) == 3
    out(f"  state intact across channels: {intact}")
    m = stub.GetMetrics(pb.GetMetricsRequest(), timeout=TIMEOUT)
    medians = ", ".join(f"{k}={v:.0f}s" for k, v in m.median_time_to_close_s.items()) or "-"
    out(
        f"  metrics: customers={m.customers} multi_channel_share={m.multi_channel_share:.2f} "
        f"conversations={m.conversations} resumed={m.resumed} channel_switches={m.channel_switches} "
        f"escalation_rate={m.escalation_rate:.2f} median_time_to_close={medians}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="identity-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="embedded SQLite file (recreated); default: a temporary directory")
    args = parser.parse_args(argv)
    if args.db:
        for suffix in ("", "-wal", "-shm"):
            Path(args.db + suffix).unlink(missing_ok=True)
        run(args.db)
        return 0
    with tempfile.TemporaryDirectory(prefix="identity-demo-") as tmp:
        run(str(Path(tmp) / "demo.db"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
