"""Session policy: lifecycle timings, carry-over and channel-handoff rules; `Settings` loads it with
the graph's settings from one TOML file."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from identity_graph.config import ConfigError, GraphConfig, from_table, read_toml

# Which channel reaches an identifier of a type, and which types a channel's code can go to.
CHANNEL_OF_TYPE = {"web_cookie": "web", "phone": "sms", "whatsapp": "whatsapp", "email": "email"}
SENDABLE_TYPES = {"sms": "phone", "whatsapp": "whatsapp", "email": "email"}


@dataclass(frozen=True)
class HandoffRule:
    """Suggest `channel` for `purpose` when the flow or topic matches (empty matches any)."""

    channel: str
    purpose: str
    reason: str
    message: str
    flows: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    from_channels: tuple[str, ...] = ()


DEFAULT_HANDOFF_RULES: tuple[HandoffRule, ...] = (
    HandoffRule(
        "whatsapp",
        "purchase_support",
        "WhatsApp suits purchase support: quick replies, photos and payment links",
        "Would you like to finish your purchase on WhatsApp?",
        flows=("order", "purchase", "checkout"),
        from_channels=("web", "sms"),
    ),
    HandoffRule(
        "sms",
        "delivery_updates",
        "SMS is best for short delivery updates on the go",
        "Would you like to continue by SMS for delivery updates?",
        flows=("delivery", "return", "order_tracking"),
        from_channels=("web", "whatsapp"),
    ),
    HandoffRule(
        "web",
        "product_detail",
        "the web chat shows product details, sizes and comparisons",
        "Shall we continue on our website, where I can show you the full specifications?",
        topics=("product", "dimensions", "comparison", "specifications"),
        from_channels=("sms", "whatsapp"),
    ),
)


@dataclass(frozen=True)
class SessionPolicy:
    """Lifecycle timings, carry-over, handoff rules and channel addresses. Disclosure is decided
    by the graph's one level (`GraphConfig.disclosure_level`), so sessions and identity agree."""

    idle_timeout: timedelta = timedelta(minutes=30)
    close_after: timedelta = timedelta(hours=24)
    """An inactive conversation closes this long after its last activity."""
    resume_window: timedelta = timedelta(hours=72)
    carry_over: tuple[str, ...] = ("topic", "slots")
    """Context fields a new conversation inherits from the customer's last one it may see."""
    recent_turns: int = 20
    handoff_ttl: timedelta = timedelta(minutes=30)
    step_up_ttl: timedelta = timedelta(minutes=10)
    step_up_max_attempts: int = 5
    """Codes compared per step-up; counted in the store, so parallel guesses gain nothing."""
    step_up_attempts_per_caller: int = 10
    """Wrong step-up codes a caller may try per `attempt_window`, over all its step-ups."""
    step_up_attempts_per_target: int = 10
    """Wrong step-up codes tried per `attempt_window` against codes sent to one identifier."""
    step_up_starts_per_conversation: int = 3
    """Step-ups (codes sent) per conversation per `attempt_window`."""
    step_up_starts_per_target: int = 5
    """Step-ups (codes sent) to one identifier per `attempt_window`."""
    handoff_failures_per_caller: int = 5
    """Handoff redemptions that fail, per redeeming identifier per `attempt_window`."""
    handoff_failures_global: int = 200
    """Failed handoff redemptions per `attempt_window` over all callers (spraying from many
    numbers); when reached, redemption pauses for everyone until the window ends."""
    attempt_window: timedelta = timedelta(minutes=15)
    handoff_link_token_bytes: int = 16
    """Random bytes in the token a handoff link carries (16 bytes = 128 bits)."""
    # Input caps: a longer value gets INVALID_ARGUMENT naming the field (text counts characters).
    max_turn_text: int = 4000
    max_topic: int = 200
    max_intent: int = 200
    max_slots: int = 100
    max_slot_name: int = 100
    max_slot_value: int = 1000
    max_flow: int = 200
    """Longest state flow or step name."""
    max_state_bytes: int = 64 * 1024
    """State data, serialised as JSON (UTF-8): what every reader of the conversation receives."""
    max_reason: int = 500
    handoff_rules: tuple[HandoffRule, ...] = DEFAULT_HANDOFF_RULES
    business_numbers: dict[str, str] = field(
        default_factory=lambda: {"whatsapp": "15550100000", "sms": "+15550100000"}
    )
    web_chat_url: str = "https://shop.example.com/chat"


@dataclass(frozen=True)
class Settings:
    """Everything a deployment sets, from one TOML file: `[graph]` (linking thresholds, guardrails,
    the disclosure level, trusted sources) and `[session]` (timings, caps, handoff rules, business
    numbers, chat URL). `config.example.toml` lists every key with its default."""

    graph: GraphConfig = field(default_factory=GraphConfig)
    session: SessionPolicy = field(default_factory=SessionPolicy)

    @classmethod
    def from_file(cls, path: str | Path) -> Settings:
        """Reads and checks the whole file.

        Raises:
            ConfigError: unreadable, or a key unknown or badly typed; the message names the key
                (`session.handoff_ttl: expected a duration ...`).
        """
        data = read_toml(path)
        unknown = sorted(set(data) - {"graph", "session"})
        if unknown:
            raise ConfigError(f"{unknown[0]}: unknown section (known: graph, session)")
        return cls(
            from_table(GraphConfig, data.get("graph", {}), "graph"),
            from_table(SessionPolicy, data.get("session", {}), "session"),
        )
