"""Conversation records: status, context, state with a version, turns, handoffs, step-ups, consents."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from identity_graph.model import utcnow


class Status(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    ESCALATED = "escalated"
    CLOSED = "closed"


class Role(StrEnum):
    CUSTOMER = "customer"
    BOT = "bot"
    AGENT = "agent"


@dataclass(frozen=True, slots=True)
class Context:
    """What the conversation is about: topic, intent and the slots filled so far."""

    topic: str = ""
    intent: str = ""
    slots: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class State:
    """Where an open flow stands (a return, an order): flow, step and its data."""

    flow: str = ""
    step: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Turn:
    conversation_id: str
    seq: int
    role: Role
    channel: str
    identifier: str
    """The identifier key the turn came in through (or went out to)."""
    text: str
    intent: str = ""
    topic: str = ""
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class Conversation:
    """A conversation hangs off the identifier it came in through (`anchor`).

    `version` counts context and state updates; every update names the version it read.
    """

    id: str
    anchor: str
    status: Status
    channels: tuple[str, ...]
    context: Context
    state: State
    version: int
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None
    escalation_reason: str = ""
    carried_from: str = ""
    resumed_count: int = 0
    turn_count: int = 0
    last_channel: str = ""
    channel_switches: int = 0
    participant: Mapping[str, str] = field(default_factory=dict)
    """Who started it, as they presented themselves (first_name, last_name, date_of_birth; empty
    when they did not say): a shared (generic) identifier discloses it only to someone who
    presents no contradicting profile (DESIGN.md, "Assurance and disclosure")."""


@dataclass(frozen=True, slots=True)
class Handoff:
    """A single-use, expiring code that moves a conversation to another channel."""

    code_hash: str
    conversation_id: str
    channel: str
    created_at: datetime
    expires_at: datetime
    redeemed_at: datetime | None = None
    redeemed_by: str = ""
    link_hash: str = ""
    """The hash of the long token its deep link carries; redeems it like the code."""


@dataclass(frozen=True, slots=True)
class StepUp:
    """A one-time code sent to a known channel of `target`, proving control of it when returned."""

    id: str
    requester: str
    target: str
    code_hash: str
    channel: str
    created_at: datetime
    expires_at: datetime
    attempts: int = 0
    completed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Consent:
    """One consent decision for an identifier, channel and purpose; the newest one counts."""

    identifier: str
    channel: str
    purpose: str
    granted: bool
    source: str
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A message for a channel sender (step-up codes, handoff links); tests read the outbox."""

    id: str
    channel: str
    recipient: str
    text: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ErasedConversations:
    """What `ConversationStore.erase_for` removed or blanked, per kind."""

    conversations: int = 0
    turns_redacted: int = 0
    outbox: int = 0


@dataclass(frozen=True, slots=True)
class ConversationHistory:
    """Everything the conversation store holds of some identifiers (`export_for`): their
    conversations (newest first), each with all its turns, and their consents (oldest first)."""

    conversations: list[tuple[Conversation, list[Turn]]]
    consents: list[Consent]
