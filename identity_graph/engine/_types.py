"""The engine's requests and results, and what it needs from a match model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from identity_graph.guardrails import Violation
from identity_graph.model import (
    AttributeMatch,
    ChangeSet,
    Constraint,
    Event,
    IdentifierNode,
    Link,
    LinkKind,
    Observation,
)

MAX_IDENTIFIERS_PER_CALL = 20
PROOF_KINDS = ("login", "otp", "handoff")
CANDIDATE_LOOKUP_LIMIT = 500
CHANNEL_OF_TYPE = {"web_cookie": "web", "phone": "sms", "whatsapp": "whatsapp", "email": "email"}
SUPPRESSED_REASON = "an erased identifier is not recorded again"


class Scorer(Protocol):
    """What the engine needs from a match model (`identity_graph.matching.OnlineScorer`)."""

    @property
    def version(self) -> str: ...

    def blocking_keys(self, record: Mapping[str, Any]) -> list[tuple[str, str]]: ...

    def blocking_lookups(self, record: Mapping[str, Any]) -> list[list[AttributeMatch]]: ...

    def score(self, record: Mapping[str, Any], candidates: Sequence[Mapping[str, Any]]) -> list[Any]: ...


def waterfall(score: Any) -> dict[str, Any]:
    """A pair score's evidence as stored on a link: the prior and each comparison's bits."""
    return {
        "prior_match_weight": score.prior_match_weight,
        "comparisons": [{"name": c.comparison, "level": c.level, "bits": c.bits} for c in score.comparisons],
    }


# ---- requests and results -------------------------------------------------------------------


@dataclass(frozen=True)
class Proof:
    """Proof, at this moment, that the caller controls `identifier` (a key, normalised or not)."""

    kind: str
    identifier: str
    reference: str = ""


@dataclass(frozen=True)
class ResolveRequest:
    """What one channel message presents. The first identifier is the one it came in through."""

    channel: str
    identifiers: Sequence[tuple[str, str]]
    attributes: Mapping[str, str] = field(default_factory=dict)
    proof: Proof | None = None
    source: str = ""
    event_id: str = ""
    actor: str = ""


@dataclass(frozen=True)
class ResolveResult:
    customer_id: str | None
    is_new: bool
    identifiers: list[str]
    links: list[Link]
    violations: list[Violation]
    assurance: dict[str, LinkKind | None]
    merged: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ChangeResult:
    links: list[Link]
    violations: list[Violation]
    customer_ids: list[str]
    events: list[Event]


@dataclass(frozen=True)
class ReviewResult(ChangeResult):
    """A review decision's outcome, with the constraint it recorded."""

    constraint: Constraint | None = None


@dataclass(frozen=True)
class CustomerView:
    customer_id: str
    created_at: datetime
    aliases: list[str]
    identifiers: list[IdentifierNode]
    observations: list[Observation]
    links: list[Link]

    @property
    def channels(self) -> list[str]:
        """Channels that can reach the customer (by identifier type) or that evidence came from."""
        seen = {CHANNEL_OF_TYPE[n.type] for n in self.identifiers if n.type in CHANNEL_OF_TYPE}
        seen |= {o.channel for o in self.observations if o.channel}
        seen |= {lk.channel for lk in self.links if lk.channel}
        return sorted(seen)


@dataclass(frozen=True)
class Explanation:
    a: str
    b: str
    path: list[Link]
    assurance: LinkKind | None
    same_customer: bool


@dataclass(frozen=True)
class SplitPart:
    customer_id: str
    members: list[str]
    is_new: bool


@dataclass(frozen=True)
class SplitPlan:
    original: str
    parts: list[SplitPart]
    cut: list[Link]
    changes: ChangeSet


@dataclass(frozen=True)
class UnlinkResult(ChangeResult):
    """An unlink's outcome, with the customers of its two ends afterwards as `parts` (two when it
    splits one, the leaving one `is_new`), so that the conversations moving with it are known."""

    parts: list[SplitPart] = field(default_factory=list)
