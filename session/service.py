"""`Sessions`: conversations that follow a customer across channels, within what assurance allows.

The rule that shapes every method (DESIGN.md, "Assurance and disclosure"): data anchored at
identifier B is shown to a caller presenting A only when the bottleneck path A→B is at least the
policy level. Everything else here is bookkeeping around that rule.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

from identity_graph.attributes import clean_attributes
from identity_graph.engine import (
    MAX_IDENTIFIERS_PER_CALL,
    CustomerView,
    IdentityGraph,
    Proof,
    ResolveRequest,
    SplitPart,
    SplitPlan,
    UnlinkResult,
)
from identity_graph.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    TooManyAttempts,
)
from identity_graph.guardrails import PERSON_ATTRIBUTES, contradicts
from identity_graph.limits import check_text
from identity_graph.model import LinkKind
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
from session.policy import CHANNEL_OF_TYPE, SENDABLE_TYPES, SessionPolicy
from session.store.base import ConversationStore

T = TypeVar("T")

MAX_TURN_TEXT = SessionPolicy.max_turn_text
MAX_SLOTS = SessionPolicy.max_slots
OPEN = (Status.ACTIVE, Status.INACTIVE, Status.ESCALATED)
_EPOCH = datetime.min.replace(tzinfo=UTC)


class Sender(Protocol):
    """Delivers a text to a recipient on a channel (SMS gateway, WhatsApp API, email)."""

    def send(self, channel: str, recipient: str, text: str) -> None: ...


class OutboxSender:
    """The default sender: writes to the outbox table, where a relay (or a test) picks it up."""

    def __init__(self, store: ConversationStore, clock: Any) -> None:
        self.store, self.clock = store, clock

    def send(self, channel: str, recipient: str, text: str) -> None:
        self.store.outbox_put(
            OutboxMessage("msg_" + secrets.token_hex(8), channel, recipient, text, self.clock())
        )


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


def mask(key: str) -> str:
    """An identifier shown without revealing it: `sms ••••0134`, `email m•••@example.com`."""
    type_, _, value = key.partition(":")
    channel = CHANNEL_OF_TYPE.get(type_, type_)
    if type_ == "email":
        local, _, domain = value.partition("@")
        return f"{channel} {local[:1]}•••@{domain}"
    return f"{channel} ••••{value[-4:]}"


@dataclass(frozen=True)
class Caller:
    """Who is on the line: the channel, the identifier the message came through (held), and who
    they say they are (`person`), which matters on a shared identifier."""

    channel: str
    identifier: str
    presented: tuple[tuple[str, str], ...] = ()

    @property
    def profile(self) -> dict[str, str]:
        return dict(self.presented)


def person(attributes: Mapping[str, str], field_name: str = "attributes") -> tuple[tuple[str, str], ...]:
    """The name and birth date among `attributes`, cleaned, as a `Caller.presented`.

    Raises:
        InvalidArgument: a malformed value, naming `field_name.<attribute>`.
    """
    try:
        cleaned = clean_attributes({k: v for k, v in attributes.items() if k in PERSON_ATTRIBUTES})
    except InvalidArgument as e:
        raise InvalidArgument(f"{field_name}.{e.field}", e.reason) from e
    return tuple(sorted(cleaned.items()))


@dataclass(frozen=True)
class ConversationView:
    """A conversation as the caller may see it. `disclosed` False means only ids and status."""

    conversation: Conversation
    turns: list[Turn]
    disclosed: bool
    assurance: LinkKind | None


@dataclass(frozen=True)
class StartResult:
    view: ConversationView
    resumed: bool
    resumed_from_channel: str
    customer_id: str
    assurance: LinkKind | None
    step_up_required: bool = False
    step_up_channels: list[str] = field(default_factory=list)
    carried_over_from: str = ""
    step_up_conversation_id: str = ""


@dataclass(frozen=True)
class Suggestion:
    channel: str
    purpose: str
    reason: str
    message: str


@dataclass(frozen=True)
class HandoffTicket:
    code: str
    link: str
    channel: str
    expires_at: datetime


@dataclass(frozen=True)
class EscalationPackage:
    conversation: ConversationView
    history: list[ConversationView]
    profile: CustomerView
    open_flows: list[Conversation]
    reason: str


@dataclass(frozen=True)
class Metrics:
    customers: int
    multi_channel_share: float
    conversations: int
    resumed: int
    channel_switches: int
    escalation_rate: float
    median_time_to_close_s: dict[str, float]


class Sessions:
    """The session service's domain logic; the gRPC servicer only translates to and from this."""

    def __init__(
        self,
        graph: IdentityGraph,
        store: ConversationStore,
        policy: SessionPolicy | None = None,
        sender: Sender | None = None,
    ) -> None:
        self.graph = graph
        self.store = store
        self.policy = policy or SessionPolicy()
        self.clock = graph.clock
        self.sender = sender or OutboxSender(store, self.clock)
        # Audit hook (the server sets `Privacy.record_handoff_redemption`): called with the
        # redeemed handoff, its conversation, the redeeming identifier key and the actor.
        self.on_handoff_redeemed: Callable[[Handoff, Conversation, str, str], None] | None = None

    # ---- helpers ----------------------------------------------------------------------------

    def _atomic(self, work: Callable[[], T], *, graph_writes: bool) -> T:
        """`work()` as one transaction over the graph and the conversations (one database). When
        it may write the graph, under the engine's write lock, taken first as every engine write
        takes it before its own transaction; a read of the graph inside needs no lock (the
        engine reads in the transaction). Conversations in another database: the lock only."""
        database = self.graph.store.database
        if self.store.database is not database:
            with self.graph.write_lock:
                return work()
        if not graph_writes:
            return database.atomically(work)
        with self.graph.write_lock:
            return database.atomically(work)

    def caller(self, channel: str, type_: str, value: str) -> Caller:
        self.graph.channel(channel)
        return Caller(channel, self.graph.identifier(type_, value, "caller").key)

    def _assurance(self, caller: Caller, keys: Sequence[str]) -> dict[str, LinkKind | None]:
        return self.graph.customers.assurance(caller.identifier, keys)

    def _allowed(self, kind: LinkKind | None) -> bool:
        return self.graph.customers.disclosed(kind)

    def _conversation(self, conversation_id: str) -> Conversation:
        if not conversation_id:
            raise InvalidArgument("conversation_id", "must not be empty")
        conv = self.store.get(conversation_id)
        if conv is None:
            raise NotFound(f"unknown conversation {conversation_id}")
        return conv

    def _shared(self, caller: Caller) -> bool:
        """Whether the caller's identifier is generic (shared by different people)."""
        node = self.graph.store.get_identifier(caller.identifier)
        return bool(node and node.generic)

    @staticmethod
    def _same_person(conv: Conversation, caller: Caller, shared: bool) -> bool:
        """On a shared identifier, a conversation whose participant said who they are is for a
        caller who presents a profile that does not contradict it; elsewhere, always true."""
        if not shared or not conv.participant:
            return True
        return bool(caller.presented) and not contradicts(conv.participant, caller.profile)

    def _view(
        self,
        conv: Conversation,
        caller: Caller,
        assurance: Mapping[str, LinkKind | None] | None = None,
        recent: int | None = None,
        seals: Mapping[str, datetime] | None = None,
        shared: bool | None = None,
    ) -> ConversationView:
        if seals is None:
            seals = self.store.seals([conv.anchor, caller.identifier])
        if _sealed(conv, seals, caller):  # an earlier holder's conversation: hidden from everyone
            return ConversationView(replace(conv, context=Context(), state=State()), [], False, None)
        if not self._same_person(conv, caller, self._shared(caller) if shared is None else shared):
            return ConversationView(replace(conv, context=Context(), state=State()), [], False, None)
        turns = self.store.turns(conv.id)
        keys = {conv.anchor} | {t.identifier for t in turns}
        reach = dict(assurance or {})
        missing = [k for k in keys if k not in reach]
        if missing:
            reach.update(self._assurance(caller, missing))
        disclosed = self._allowed(reach.get(conv.anchor))
        if not disclosed:
            hidden = replace(conv, context=Context(), state=State())
            return ConversationView(hidden, [], False, reach.get(conv.anchor))
        visible = [t for t in turns if self._allowed(reach.get(t.identifier))]
        if recent is not None:
            visible = visible[-recent:]
        return ConversationView(conv, visible, True, reach.get(conv.anchor))

    def _require_disclosed(self, conv: Conversation, caller: Caller) -> LinkKind:
        kind = self._assurance(caller, [conv.anchor]).get(conv.anchor)
        if not self._allowed(kind):
            raise PermissionDenied("the caller's assurance does not reach this conversation; step up first")
        if _sealed(conv, self.store.seals([conv.anchor, caller.identifier]), caller):
            raise PermissionDenied("this conversation belongs to an earlier holder of the identifier")
        if not self._same_person(conv, caller, self._shared(caller)):
            raise PermissionDenied("this identifier is shared: say who you are (name, birth date)")
        return kind  # type: ignore[return-value]

    def housekeeping(self) -> int:
        """Moves idle conversations to inactive and old inactive ones to closed."""
        now = self.clock()
        return self.store.mark_idle(now - self.policy.idle_timeout, now - self.policy.close_after, now)

    # ---- StartOrResume ----------------------------------------------------------------------

    def start_or_resume(
        self,
        channel: str,
        identifiers: Sequence[tuple[str, str]],
        attributes: Mapping[str, str] | None = None,
        proof: Proof | None = None,
        actor: str = "",
    ) -> StartResult:
        """Resolves the caller, then resumes the customer's latest conversation it may see.

        Raises:
            InvalidArgument: a bad channel, identifier or attribute.
        """
        self.graph.channel(channel)
        return self._atomic(lambda: self._start_or_resume(channel, identifiers, attributes, proof, actor),
                            graph_writes=True)

    def _start_or_resume(
        self,
        channel: str,
        identifiers: Sequence[tuple[str, str]],
        attributes: Mapping[str, str] | None,
        proof: Proof | None,
        actor: str,
    ) -> StartResult:
        resolved = self.graph.resolve(
            ResolveRequest(channel, identifiers, attributes or {}, proof, source=channel, actor=actor)
        )
        if resolved.customer_id is None:
            raise InvalidArgument("identifiers", "no usable identifier (all were blocked)")
        caller = Caller(channel, resolved.identifiers[0], person(attributes or {}))
        shared = self._shared(caller)
        now = self.clock()
        reach = resolved.assurance
        members = list(reach)
        recent = self.store.by_anchors(members, statuses=OPEN, limit=20)
        # A recycled number's new holder starts from its seal: nothing from before it, anchored
        # at the number or reached through it, is theirs.
        window_start = max(now - self.policy.resume_window,
                           self.store.seals([caller.identifier]).get(caller.identifier, _EPOCH))
        # On a shared identifier, another person's conversation is not even offered for step-up.
        candidates = [
            c for c in recent
            if c.updated_at >= window_start
            and not (shared and c.participant and contradicts(c.participant, caller.profile))
        ]
        if shared and caller.presented:  # their own conversation before one nobody put a name to
            candidates.sort(key=lambda c: not c.participant)
        for conv in candidates:
            if self._allowed(reach.get(conv.anchor)) and self._same_person(conv, caller, shared):
                resumed = self.store.set_status(
                    conv.id,
                    Status.ACTIVE if conv.status != Status.ESCALATED else Status.ESCALATED,
                    now,
                    resumed=True,
                )
                # An open conversation is never sealed (a seal closes it for good): skip the lookup.
                view = self._view(resumed, caller, reach, self.policy.recent_turns, seals={}, shared=shared)
                return StartResult(
                    view, True, conv.last_channel, resolved.customer_id, reach.get(conv.anchor)
                )
        # What the caller may not see yet: unreached by assurance, or, on a shared identifier, a
        # participant who said who they are while this caller did not.
        step_up = candidates
        context, carried = self._carry_over(members, reach, caller, shared)
        conv = Conversation(
            id="conv_" + secrets.token_hex(10),
            anchor=caller.identifier,
            status=Status.ACTIVE,
            channels=(channel,),
            context=context,
            state=State(),
            version=1,
            created_at=now,
            updated_at=now,
            carried_from=carried,
            last_channel=channel,
            participant=caller.profile,
        )
        self.store.create(conv)
        view = self._view(conv, caller, reach, seals={}, shared=shared)  # created just now: not sealed
        targets = self._step_up_targets(step_up[0].anchor) if step_up else []
        targets = [k for k in targets if k != caller.identifier]  # a code to oneself proves nothing
        return StartResult(
            view,
            False,
            "",
            resolved.customer_id,
            reach.get(caller.identifier),
            step_up_required=bool(step_up),
            step_up_channels=[mask(k) for k in targets],
            carried_over_from=carried,
            step_up_conversation_id=step_up[0].id if step_up else "",
        )

    def _carry_over(
        self, members: list[str], reach: Mapping[str, LinkKind | None], caller: Caller, shared: bool
    ) -> tuple[Context, str]:
        recent = self.store.by_anchors(members, limit=10)
        seals = self.store.seals([c.anchor for c in recent] + [caller.identifier])
        for conv in recent:
            if not self._allowed(reach.get(conv.anchor)) or _sealed(conv, seals, caller):
                continue
            if not self._same_person(conv, caller, shared):
                continue
            ctx = conv.context
            return Context(
                topic=ctx.topic if "topic" in self.policy.carry_over else "",
                intent=ctx.intent if "intent" in self.policy.carry_over else "",
                slots=dict(ctx.slots) if "slots" in self.policy.carry_over else {},
            ), conv.id
        return Context(), ""

    # ---- turns, context, state --------------------------------------------------------------

    def append_turn(
        self, conversation_id: str, caller: Caller, role: str, text: str, intent: str = "", topic: str = ""
    ) -> Turn:
        try:
            role_ = Role(role)
        except ValueError as e:
            raise InvalidArgument("role", "one of customer, bot, agent") from e
        if not isinstance(text, str) or not text.strip():
            raise InvalidArgument("text", "must not be empty")
        check_text("text", text, self.policy.max_turn_text)
        check_text("intent", intent, self.policy.max_intent)
        check_text("topic", topic, self.policy.max_topic)

        def work() -> Turn:
            conv = self._conversation(conversation_id)
            self._require_disclosed(conv, caller)
            if conv.status == Status.CLOSED:
                raise FailedPrecondition("the conversation is closed")
            turn = Turn(conv.id, 0, role_, caller.channel, caller.identifier, text, intent, topic,
                        self.clock())
            return self.store.append_turn(conv.id, turn)

        return self._atomic(work, graph_writes=False)

    def update_context(
        self, conversation_id: str, caller: Caller, expected_version: int, context: Context
    ) -> Conversation:
        self._check_context(context)
        conv = self._conversation(conversation_id)
        self._require_disclosed(conv, caller)
        return self.store.update(conv.id, expected_version, context=context, at=self.clock())

    def _check_context(self, context: Context) -> None:
        p = self.policy
        check_text("context.topic", context.topic, p.max_topic)
        check_text("context.intent", context.intent, p.max_intent)
        if len(context.slots) > p.max_slots:
            raise InvalidArgument("context.slots", f"at most {p.max_slots} slots")
        for name, value in context.slots.items():
            check_text("context.slots", name, p.max_slot_name)
            check_text(f"context.slots.{name}", value, p.max_slot_value)

    def _check_state(self, state: State) -> None:
        check_text("state.flow", state.flow, self.policy.max_flow)
        check_text("state.step", state.step, self.policy.max_flow)
        size = len(json.dumps(dict(state.data), ensure_ascii=False).encode())
        if size > self.policy.max_state_bytes:
            raise InvalidArgument("state.data", f"at most {self.policy.max_state_bytes} bytes as JSON")
        if _has_nul(state.data):
            raise InvalidArgument("state.data", "must not contain NUL bytes")

    def update_state(
        self, conversation_id: str, caller: Caller, expected_version: int, state: State
    ) -> Conversation:
        self._check_state(state)
        conv = self._conversation(conversation_id)
        self._require_disclosed(conv, caller)
        return self.store.update(conv.id, expected_version, state=state, at=self.clock())

    def get(self, conversation_id: str, caller: Caller) -> ConversationView:
        return self._view(self._conversation(conversation_id), caller)

    def list(
        self,
        caller: Caller,
        statuses: Sequence[Status] = (),
        channel: str = "",
        page_size: int = 20,
        page_token: str = "",
    ) -> tuple[list[ConversationView], str]:
        """The caller's customer's conversations it may see, newest first, a page at a time."""
        if not 0 < page_size <= 100:
            raise InvalidArgument("page_size", "between 1 and 100")
        after = _decode_token(page_token) if page_token else None
        _, members = self.graph.customers.members(caller.identifier)
        reach = self._assurance(caller, members)
        visible = [k for k in members if self._allowed(reach.get(k))]
        page = self.store.by_anchors(visible, statuses, channel, after, page_size + 1)
        token = _encode_token(page[page_size - 1]) if len(page) > page_size else ""
        seals = self.store.seals([c.anchor for c in page] + [caller.identifier])
        shared = self._shared(caller)
        views = [self._view(c, caller, reach, seals=seals, shared=shared) for c in page[:page_size]]
        return [v for v in views if v.disclosed], token

    def close(self, conversation_id: str, caller: Caller) -> Conversation:
        conv = self._conversation(conversation_id)
        self._require_disclosed(conv, caller)
        return self.store.set_status(conv.id, Status.CLOSED, self.clock())

    # ---- handoffs ---------------------------------------------------------------------------

    def _consented(self, key: str, channel: str, purpose: str) -> bool:
        latest: dict[tuple[str, str], Consent] = {}
        for c in self.store.consents([key]):
            latest[(c.channel, c.purpose)] = c
        hit = latest.get((channel, purpose)) or latest.get((channel, "*"))
        return bool(hit and hit.granted)

    def suggest_handoff(self, conversation_id: str, caller: Caller) -> Suggestion | None:
        """A better channel for where this conversation stands, if the customer can be reached
        there and agreed to it; None when no rule fits."""
        conv = self._conversation(conversation_id)
        self._require_disclosed(conv, caller)
        _, members = self.graph.customers.members(caller.identifier)
        reach = self._assurance(caller, members)
        for rule in self.policy.handoff_rules:
            if rule.channel == caller.channel or (
                rule.from_channels and caller.channel not in rule.from_channels
            ):
                continue
            flow_ok = not rule.flows or conv.state.flow in rule.flows
            topic_ok = not rule.topics or conv.context.topic in rule.topics
            if not ((rule.flows and flow_ok) or (rule.topics and topic_ok)):
                continue
            reachable = [
                k
                for k in members
                if CHANNEL_OF_TYPE.get(k.partition(":")[0]) == rule.channel and self._allowed(reach.get(k))
            ]
            if rule.channel == "web" or any(
                self._consented(k, rule.channel, rule.purpose) for k in reachable
            ):
                if rule.channel != "web" and not reachable:
                    continue
                return Suggestion(rule.channel, rule.purpose, rule.reason, rule.message)
        return None

    def create_handoff(self, conversation_id: str, caller: Caller, channel: str) -> HandoffTicket:
        if channel not in ("web", "sms", "whatsapp"):
            raise InvalidArgument("channel", "one of web, sms, whatsapp")
        conv = self._conversation(conversation_id)
        self._require_disclosed(conv, caller)
        # Two secrets for one single-use handoff: a short code a person can type (guessable alone,
        # so its redemptions are capped) and a 128-bit token that only the deep link carries.
        code = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(8))
        token = secrets.token_hex(self.policy.handoff_link_token_bytes)
        now = self.clock()
        expires = now + self.policy.handoff_ttl
        self.store.put_handoff(Handoff(_hash(code), conv.id, channel, now, expires, link_hash=_hash(token)))
        text = quote(f"RESUME {token}")
        if channel == "whatsapp":
            link = f"https://wa.me/{self.policy.business_numbers['whatsapp']}?text={text}"
        elif channel == "sms":
            link = f"sms:{self.policy.business_numbers['sms']}?body={text}"
        else:
            link = f"{self.policy.web_chat_url}?handoff={token}"
        return HandoffTicket(code, link, channel, expires)

    def redeem_handoff(
        self, code: str, channel: str, identifiers: Sequence[tuple[str, str]], actor: str = ""
    ) -> StartResult:
        """Redeems a code (or a link's token) on the channel it was made for: links the new
        channel's identifier `verified` and resumes.

        Failed redemptions are capped per redeeming identifier and over all callers, per
        `policy.attempt_window`; the cap is taken before the code is compared (so parallel
        guesses gain nothing) and given back when it was right.

        Raises:
            FailedPrecondition: the code is unknown, used, expired or made for another channel.
            TooManyAttempts: a cap on failed redemptions is reached.
        """
        if not code or len(code) > 64:
            raise InvalidArgument("code", "must be a handoff code")
        self.graph.channel(channel)
        if not identifiers:
            raise InvalidArgument("identifiers", "at least one identifier is required")
        # Every check that StartOrResume would make comes before the single-use code is spent.
        if len(identifiers) > MAX_IDENTIFIERS_PER_CALL:
            raise InvalidArgument("identifiers", f"at most {MAX_IDENTIFIERS_PER_CALL} per call")
        key = self.graph.identifier(identifiers[0][0], identifiers[0][1], "identifiers[0]").key
        for i, (type_, value) in enumerate(identifiers[1:], start=1):
            self.graph.identifier(type_, value, f"identifiers[{i}]")
        erased = self.graph.suppressed is not None and self.graph.suppressed(key)
        if self.graph.config.is_blocked(key) or erased:
            raise InvalidArgument("identifiers[0]", "this identifier cannot redeem a handoff")
        now = self.clock()
        until = now + self.policy.attempt_window
        caps = {
            f"handoff-fail|{key}": self.policy.handoff_failures_per_caller,
            "handoff-fail|*": self.policy.handoff_failures_global,
        }
        if not self.store.take_attempt(caps, until, now):
            raise TooManyAttempts("too many wrong handoff codes; try again later")
        handoff = self.store.redeem_handoff(_hash(code), channel, key, now)
        if handoff is None:
            raise FailedPrecondition("the handoff code is unknown, used, expired or for another channel")
        self.store.give_back_attempt(list(caps), until, now)
        conv = self._conversation(handoff.conversation_id)
        if key != conv.anchor:
            self.graph.links.add(
                key,
                conv.anchor,
                LinkKind.VERIFIED,
                source="handoff",
                channel=channel,
                event_id=handoff.code_hash[:16],
                actor=actor or "session",
            )
        if self.on_handoff_redeemed is not None:
            self.on_handoff_redeemed(handoff, conv, key, actor)
        return self.start_or_resume(channel, identifiers, actor=actor)

    # ---- step-up ----------------------------------------------------------------------------

    def _step_up_targets(self, anchor: str) -> list[str]:
        """Identifiers a code can go to whose holder may see `anchor`'s data: proving to hold one
        is worth as much as holding it. (The direction matters: a code to an email that the
        anchor merely typed would prove nothing about the anchor.)"""
        _, members = self.graph.customers.members(anchor)
        sendable = set(SENDABLE_TYPES.values())
        return sorted(
            k
            for k in members
            if k.partition(":")[0] in sendable
            and self._allowed(self.graph.customers.assurance(k, [anchor]).get(anchor))
        )

    def start_step_up(self, caller: Caller, conversation_id: str, channel: str = "") -> tuple[StepUp, str]:
        """Sends a one-time code to a channel of the conversation's anchor. Returns the step-up
        and where the code went, masked.

        A caller with no path at all to the conversation gets the answer an unknown id gets, and
        nothing is sent: naming someone's conversation id neither confirms it nor texts them.

        Raises:
            NotFound: an unknown conversation, or one the caller has no path to.
            FailedPrecondition: no channel of the owner can receive a code.
            TooManyAttempts: too many codes sent for this conversation or to this target.
        """
        conv = self._conversation(conversation_id)
        if self._assurance(caller, [conv.anchor]).get(conv.anchor) is None:
            raise NotFound(f"unknown conversation {conversation_id}")
        targets = self._step_up_targets(conv.anchor)
        if channel:
            targets = [k for k in targets if CHANNEL_OF_TYPE.get(k.partition(":")[0]) == channel]
        targets = [k for k in targets if k != caller.identifier]
        if not targets:
            raise FailedPrecondition("no channel of the conversation's owner can receive a code")
        target = targets[0]
        now = self.clock()
        caps = {
            f"step-up-start|{conv.id}": self.policy.step_up_starts_per_conversation,
            f"step-up-start|{target}": self.policy.step_up_starts_per_target,
        }
        if not self.store.take_attempt(caps, now + self.policy.attempt_window, now):
            raise TooManyAttempts("too many codes sent for this conversation; try again later")
        code = f"{secrets.randbelow(10**6):06d}"
        step = StepUp(
            "stp_" + secrets.token_hex(8),
            caller.identifier,
            target,
            _hash(code),
            CHANNEL_OF_TYPE[target.partition(":")[0]],
            now,
            now + self.policy.step_up_ttl,
        )
        self.store.put_step_up(step)
        self.sender.send(step.channel, target.partition(":")[2], f"Your verification code is {code}")
        return step, mask(target)

    def complete_step_up(self, step_up_id: str, caller: Caller, code: str) -> StepUp:
        """Compares the code, if the caps allow one more compare, and links `verified` when right.

        Caps (policy): compares per step-up, and wrong codes per caller and per target within
        `attempt_window`. Each compare first takes its place under every cap in one atomic store
        call, so 40 parallel guesses still get at most `step_up_max_attempts` compares.

        Raises:
            NotFound: an unknown step-up, or another caller's.
            TooManyAttempts: a cap is reached.
            PermissionDenied: a wrong or expired code.
        """
        step = self.store.get_step_up(step_up_id)
        if step is None or step.requester != caller.identifier:
            raise NotFound("unknown step-up")
        now = self.clock()
        until = max(step.expires_at, now + self.policy.attempt_window)
        wrong_caps = {
            f"step-up-wrong|{step.requester}": self.policy.step_up_attempts_per_caller,
            f"step-up-wrong|{step.target}": self.policy.step_up_attempts_per_target,
        }
        caps = {f"step-up-code|{step.id}": self.policy.step_up_max_attempts, **wrong_caps}
        if not self.store.take_attempt(caps, until, now):
            raise TooManyAttempts("too many attempts; start a new step-up later")
        done = self.store.complete_step_up(step_up_id, _hash(code), now)
        if done is None:
            raise PermissionDenied("wrong or expired code")
        self.store.give_back_attempt(list(wrong_caps), until, now)
        self.graph.links.add(
            step.requester,
            step.target,
            LinkKind.VERIFIED,
            source="step_up",
            channel=step.channel,
            event_id=step.id,
            actor="session",
        )
        return done

    # ---- escalation -------------------------------------------------------------------------

    def escalate(self, conversation_id: str, caller: Caller, reason: str) -> EscalationPackage:
        """Hands the conversation to a human with everything the caller may see, in one package."""
        if not reason.strip():
            raise InvalidArgument("reason", "say why the conversation is escalated")
        check_text("reason", reason, self.policy.max_reason)
        conv = self._conversation(conversation_id)
        self._require_disclosed(conv, caller)
        conv = self.store.set_status(conv.id, Status.ESCALATED, self.clock(), reason=reason)
        profile = self.graph.customers.get(caller.identifier, viewer=caller.identifier)
        visible = [n.key for n in profile.identifiers]
        reach = self._assurance(caller, visible)
        shared = self._shared(caller)
        history = [
            v
            for c in self.store.by_anchors(visible, limit=100)
            if (v := self._view(c, caller, reach, shared=shared)).disclosed
        ]
        history.sort(key=lambda v: v.conversation.created_at)
        open_flows = [
            v.conversation for v in history if v.conversation.status in OPEN and v.conversation.state.flow
        ]
        return EscalationPackage(
            self._view(conv, caller, reach, shared=shared), history, profile, open_flows, reason
        )

    # ---- recycled identifiers ----------------------------------------------------------------

    def recycle_identifier(self, type_: str, value: str, actor: str, reason: str = "") -> tuple[int, str]:
        """The identifier now belongs to someone else (a reissued phone number): detach it from
        its customer and seal the conversations that came in through it, so that neither the new
        holder nor anyone linked to it later sees the earlier holder's history.

        Returns:
            (conversations closed by the seal, the identifier's customer id afterwards)
        """
        if not actor:
            raise InvalidArgument("actor", "say who recycles the identifier")
        key = self.graph.identifier(type_, value, "identifier").key
        node = self.graph.store.get_identifier(key)
        if node is None:
            raise NotFound(f"unknown identifier {key}")
        # Seal first, detach second: between the two steps the number is still the earlier
        # holder's customer's, but its conversations are already sealed, so no moment exists in
        # which the new holder (texting from it) could resume them.
        now = self.clock()
        closed = self.store.seal(key, now, reason or "recycled", actor, now)
        if any(lk.kind.merges for lk in self.graph.store.links([key])):
            with contextlib.suppress(FailedPrecondition):  # its links held nothing together
                self.graph.links.split(detach=[key], actor=actor)
        return closed, self.graph.customers.id_of(key)

    # ---- splits -----------------------------------------------------------------------------

    def moving_conversations(self, parts: Sequence[SplitPart]) -> list[list[str]]:
        """For each of `parts` (in order): the conversations that came in through its
        identifiers and so leave the original customer with them (empty for the part that keeps
        the original id)."""
        return [
            [c.id for c in self.store.by_anchors(p.members, limit=1000)] if p.is_new else []
            for p in parts
        ]

    def preview_split(
        self, *, cut: Sequence[tuple[str, str]] = (), detach: Sequence[str] = (), actor: str = ""
    ) -> tuple[SplitPlan, list[list[str]]]:
        """`IdentityGraph.links.preview_split`, with the conversations each new part would take along."""
        plan = self.graph.links.preview_split(cut=cut, detach=detach, actor=actor)
        return plan, self.moving_conversations(plan.parts)

    def split(
        self,
        *,
        cut: Sequence[tuple[str, str]] = (),
        detach: Sequence[str] = (),
        actor: str,
        seal_moving: bool = False,
    ) -> tuple[SplitPlan, list[list[str]], int]:
        """`IdentityGraph.links.split`. With `seal_moving`, the conversations that would move are
        sealed first (as RecycleIdentifier does), so that no moment exists in which the other
        part's holder opens them; any that a concurrent change added to the moving parts are
        sealed right after.

        Returns:
            (the plan as applied, the moving conversations per part, how many the seal closed)
        """
        sealed: set[str] = set()
        closed = 0
        if seal_moving:
            planned = self.graph.links.preview_split(cut=cut, detach=detach, actor=actor)
            closed += self._seal_leaving(planned.parts, sealed, actor, "moved by a split")
        plan = self.graph.links.split(cut=cut, detach=detach, actor=actor)
        if seal_moving:
            closed += self._seal_leaving(plan.parts, sealed, actor, "moved by a split")
        return plan, self.moving_conversations(plan.parts), closed

    def unlink(
        self,
        a: str,
        b: str,
        *,
        actor: str,
        reason: str = "",
        kinds: Iterable[LinkKind] | None = None,
        preview: bool = False,
        seal_moving: bool = False,
    ) -> tuple[UnlinkResult, list[str], int]:
        """`IdentityGraph.links.remove` (or, with `preview`, what it would do, written nowhere). When it
        splits a customer, the conversations that came in through the leaving part's identifiers
        move with them; with `seal_moving` they are sealed first, as `split` does.

        Returns:
            (the outcome, the conversations that move, how many the seal closed)
        """
        kinds = list(kinds) if kinds else None
        if preview:
            result = self.graph.links.preview_remove(a, b, actor=actor, reason=reason, kinds=kinds)
            return result, self._moving(result.parts), 0
        sealed: set[str] = set()
        closed = 0
        if seal_moving:
            planned = self.graph.links.preview_remove(a, b, actor=actor, reason=reason, kinds=kinds)
            closed += self._seal_leaving(planned.parts, sealed, actor, "moved by an unlink")
        result = self.graph.links.remove(a, b, actor=actor, reason=reason, kinds=kinds)
        if seal_moving:
            closed += self._seal_leaving(result.parts, sealed, actor, "moved by an unlink")
        return result, self._moving(result.parts), closed

    def _moving(self, parts: Sequence[SplitPart]) -> list[str]:
        return [c for convs in self.moving_conversations(parts) for c in convs]

    def _seal_leaving(self, parts: Sequence[SplitPart], sealed: set[str], actor: str, why: str) -> int:
        """Seals the conversations that came in through the identifiers of the new `parts`
        (those leaving their customer), skipping anchors in `sealed` and adding to it.

        Returns:
            how many conversations the seal closed
        """
        closed = 0
        now = self.clock()
        for part in parts:
            if not part.is_new:
                continue
            anchors = {c.anchor for c in self.store.by_anchors(part.members, limit=1000)} - sealed
            for anchor in sorted(anchors):
                closed += self.store.seal(anchor, now, why, actor, now)
                sealed.add(anchor)
        return closed

    # ---- consent ----------------------------------------------------------------------------

    def record_consent(
        self, identifier: tuple[str, str], channel: str, purpose: str, granted: bool, source: str
    ) -> Consent:
        key = self.graph.identifier(identifier[0], identifier[1], "identifier").key
        self.graph.channel(channel)
        if not purpose or len(purpose) > 64:
            raise InvalidArgument("purpose", "a short purpose name, or '*' for all")
        check_text("purpose", purpose, 64)
        check_text("source", source, self.graph.config.max_label_length)
        consent = Consent(key, channel, purpose, granted, source or "unknown", self.clock())
        self.store.add_consent(consent)
        return consent

    def consents(self, identifier: tuple[str, str]) -> tuple[list[Consent], list[Consent]]:
        """(current decision per channel and purpose, full history oldest first)."""
        key = self.graph.identifier(identifier[0], identifier[1], "identifier").key
        history = self.store.consents([key])
        latest: dict[tuple[str, str], Consent] = {}
        for c in history:
            latest[(c.channel, c.purpose)] = c
        return sorted(latest.values(), key=lambda c: (c.channel, c.purpose)), history

    # ---- analytics --------------------------------------------------------------------------

    def metrics(self, start: datetime, end: datetime) -> Metrics:
        if end <= start:
            raise InvalidArgument("end", "must be after start")
        convs = self.store.conversations_between(start, end)
        owners: dict[str, set[str]] = defaultdict(set)
        anchors = sorted({c.anchor for c in convs})
        nodes = self.graph.store.get_identifiers(anchors)
        for c in convs:
            node = nodes.get(c.anchor)
            owners[(node.customer_id if node and node.customer_id else c.anchor)].update(c.channels)
        closed: dict[str, list[float]] = defaultdict(list)
        for c in convs:
            if c.status == Status.CLOSED and c.closed_at is not None:
                closed[c.channels[0] if c.channels else ""].append(
                    (c.closed_at - c.created_at).total_seconds()
                )
        n = len(convs)
        return Metrics(
            customers=len(owners),
            multi_channel_share=(sum(1 for ch in owners.values() if len(ch) > 1) / len(owners))
            if owners
            else 0.0,
            conversations=n,
            resumed=sum(1 for c in convs if c.resumed_count > 0),
            channel_switches=sum(c.channel_switches for c in convs),
            escalation_rate=(sum(1 for c in convs if c.escalation_reason) / n) if n else 0.0,
            median_time_to_close_s={ch: statistics.median(v) for ch, v in sorted(closed.items())},
        )


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def _sealed(conv: Conversation, seals: Mapping[str, datetime], caller: Caller | None = None) -> bool:
    """Sealed by its anchor's seal (an earlier holder's conversation, hidden from everyone), or,
    for `caller`, by the seal of the identifier the caller holds: a recycled number's new holder
    sees nothing from before the reissue, wherever it hangs."""
    before = seals.get(conv.anchor)
    if before is not None and conv.created_at < before:
        return True
    held = seals.get(caller.identifier) if caller is not None else None
    return held is not None and conv.created_at < held


def _encode_token(conv: Conversation) -> str:
    return f"{conv.updated_at.isoformat()}|{conv.id}"


def _decode_token(token: str) -> tuple[datetime, str]:
    try:
        at, _, cid = token.partition("|")
        when = datetime.fromisoformat(at)
        if when.tzinfo is None:  # every token we hand out carries its UTC offset
            raise ValueError(at)
        return when.astimezone(UTC), cid
    except (ValueError, OverflowError) as e:  # OverflowError: out of range once in UTC
        raise InvalidArgument("page_token", "not a token from a previous page") from e
