"""Plain records that cross the store boundary: identifiers, observations, links, customers, events."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Any


def utcnow() -> datetime:
    return datetime.now(UTC)


def stable_id(*parts: object) -> str:
    """A short deterministic id, so that replaying the same evidence writes nothing new."""
    h = hashlib.blake2b(digest_size=12)
    for p in parts:
        h.update(b"\x1f" + str("" if p is None else p).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


class LinkKind(IntEnum):
    """Link kinds, ordered by strength: a bottleneck path compares them with `<`."""

    POSSIBLE = 1
    PROBABLE = 2
    OBSERVED = 3
    EQUIVALENT = 4
    VERIFIED = 5

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def merges(self) -> bool:
        """Only `possible` links leave customers apart (DESIGN.md, "Links")."""
        return self is not LinkKind.POSSIBLE

    @classmethod
    def parse(cls, label: str) -> LinkKind:
        kind = _LINK_KINDS.get(label)  # the stored form: a dict hit, not an enum lookup
        if kind is not None:
            return kind
        try:
            return cls[label.strip().upper()]
        except (KeyError, AttributeError) as e:
            from identity_graph.errors import InvalidArgument

            raise InvalidArgument("kind", f"unknown link kind {label!r}") from e


_LINK_KINDS: dict[str, LinkKind] = {k.name.lower(): k for k in LinkKind}

MERGING_KINDS: tuple[LinkKind, ...] = tuple(k for k in LinkKind if k.merges)

ATTRIBUTES: tuple[str, ...] = (
    "first_name",
    "last_name",
    "date_of_birth",
    "street",
    "city",
    "postcode",
    "country",
)


@dataclass(frozen=True, slots=True)
class Observation:
    """One attribute value seen with an identifier, with when and where it was seen."""

    key: str
    attribute: str
    value: str
    source: str
    channel: str = ""
    observed_at: datetime = field(default_factory=utcnow)

    @property
    def id(self) -> str:
        return stable_id(self.key, self.attribute, self.value, self.source, self.channel,
                         self.observed_at.isoformat())


@dataclass(frozen=True, slots=True)
class AttributeMatch:
    """One part of a candidate lookup: an observation of `attribute` equal to `value`, or
    starting with it when `prefix` (a blocking rule on `substr(col, 1, n)`)."""

    attribute: str
    value: str
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class IdentifierUpsert:
    """An identifier seen at `seen_at`, with the attributes observed alongside it."""

    key: str
    type: str
    value: str
    seen_at: datetime = field(default_factory=utcnow)
    observations: tuple[Observation, ...] = ()


@dataclass(frozen=True, slots=True)
class IdentifierNode:
    key: str
    type: str
    value: str
    first_seen: datetime
    last_seen: datetime
    customer_id: str | None = None
    generic: bool = False


class JsonMapping(Mapping[str, Any]):
    """A JSON object kept as its text until it is read.

    The nightly relink carries a comparisons JSON on every scored pair from the scores to the
    store (hundreds of thousands at 1M identifiers) and reads almost none of them; parsing each
    to a dict and writing it back cost more than the rules themselves.
    """

    __slots__ = ("_text", "_value")

    def __init__(self, text: str) -> None:
        self._text = text
        self._value: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        return self._text

    def _parsed(self) -> dict[str, Any]:
        if self._value is None:
            self._value = json.loads(self._text)
        return self._value

    def __getitem__(self, name: str) -> Any:
        return self._parsed()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._parsed())

    def __len__(self) -> int:
        return len(self._parsed())

    def __repr__(self) -> str:
        return f"JsonMapping({self._text!r})"


@dataclass(frozen=True, slots=True)
class Link:
    """An undirected link between two identifier keys (`a < b`), with its evidence.

    Links are never edited; a removal is recorded in `removed_at`/`removed_by`/`removal_reason`.
    `claimant` is the end that asserted the pair (the identifier the message came in through, or
    the ingested source record); empty means unknown, read as "both ends claimed" (links written
    before claimants were kept). It matters for `observed` links only (`identity_graph.paths`).
    """

    a: str
    b: str
    kind: LinkKind
    source: str = ""
    channel: str = ""
    event_id: str = ""
    model_version: str = ""
    probability: float | None = None
    match_weight: float | None = None
    comparisons: Mapping[str, Any] | None = None
    created_at: datetime = field(default_factory=utcnow)
    actor: str = ""
    removed_at: datetime | None = None
    removed_by: str = ""
    removal_reason: str = ""
    claimant: str = ""
    revision: int = 0
    """0 for the first link of this evidence; n when the same evidence links the pair again after
    n removals (`GraphStore.revise`), so a re-link is a new active link, never a no-op."""

    def __post_init__(self) -> None:
        if self.a > self.b:
            a, b = self.b, self.a
            object.__setattr__(self, "a", a)
            object.__setattr__(self, "b", b)

    @property
    def id(self) -> str:
        parts: tuple[str, ...] = (self.a, self.b, self.kind.label, self.source, self.event_id,
                                  self.model_version)
        # A known claimant is part of the evidence (two people claiming each other are two
        # links); links without one keep the ids they were written with.
        if self.claimant:
            parts = (*parts, self.claimant)
        return stable_id(*parts, f"revision {self.revision}") if self.revision else stable_id(*parts)

    @property
    def active(self) -> bool:
        return self.removed_at is None

    def other(self, key: str) -> str:
        return self.b if key == self.a else self.a

    def comparisons_json(self) -> str | None:
        if isinstance(self.comparisons, JsonMapping):
            return self.comparisons.text
        return None if self.comparisons is None else json.dumps(self.comparisons, sort_keys=True)


class ConstraintKind(StrEnum):
    """A person's decision about a pair of identifiers (DESIGN "people's decisions")."""

    CANNOT_LINK = "cannot_link"
    """Two people: no link between them is made, and no customer holds both."""
    MUST_LINK = "must_link"
    """One person: the link is a fixed edge that no rule and no relink undoes."""

    @classmethod
    def parse(cls, label: str) -> ConstraintKind:
        try:
            return cls(label.strip().lower())
        except (ValueError, AttributeError) as e:
            from identity_graph.errors import InvalidArgument

            raise InvalidArgument("kind", f"unknown constraint kind {label!r}") from e


@dataclass(frozen=True, slots=True)
class Constraint:
    """A decision by a person about the pair `a < b`, with its audit.

    A cannot-link holds between customers, not only between the pair: no component may contain
    both `a` and `b`. A must-link names the link it fixes (`link_id`). `origin` says what made it
    (`unlink`, `split`, `link`, `review`). Never edited; a withdrawal is recorded.
    """

    kind: ConstraintKind
    a: str
    b: str
    actor: str
    reason: str = ""
    origin: str = ""
    link_id: str = ""
    created_at: datetime = field(default_factory=utcnow)
    withdrawn_at: datetime | None = None
    withdrawn_by: str = ""
    withdrawal_reason: str = ""

    def __post_init__(self) -> None:
        if self.a > self.b:
            a, b = self.b, self.a
            object.__setattr__(self, "a", a)
            object.__setattr__(self, "b", b)

    @property
    def id(self) -> str:
        return "con_" + stable_id(self.kind.value, self.a, self.b, self.created_at.isoformat())

    @property
    def active(self) -> bool:
        return self.withdrawn_at is None

    @property
    def pair(self) -> tuple[str, str]:
        return (self.a, self.b)


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Component:
    """A unified customer: its id and the identifier keys in it."""

    customer_id: str | None
    members: frozenset[str]


@dataclass(frozen=True, slots=True)
class Event:
    """An entry of the ordered event log. `seq` is 0 until the store assigns it."""

    type: str
    payload: Mapping[str, Any]
    customer_id: str = ""
    at: datetime = field(default_factory=utcnow)
    seq: int = 0


@dataclass(slots=True)
class ChangeSet:
    """Everything one operation writes. A store applies a change set in one transaction."""

    identifiers: list[IdentifierUpsert] = field(default_factory=list)
    links_added: list[Link] = field(default_factory=list)
    links_removed: list[tuple[str, datetime, str, str]] = field(default_factory=list)
    """(link id, removed at, removed by, reason)"""
    customers_created: list[Customer] = field(default_factory=list)
    assignments: dict[str, str] = field(default_factory=dict)
    """identifier key -> customer id"""
    aliases: dict[str, str] = field(default_factory=dict)
    """retired customer id -> surviving customer id"""
    generic: dict[str, bool] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    blocking: dict[str, list[tuple[str, str]]] | None = None
    """identifier key -> its complete blocking-key rows (rule, digest), replacing the stored ones
    (`identity_graph.blocking`); None: not computed, so observations written with it leave the
    store's blocking index stale (rebuilt before it is used again)."""
    constraints_added: list[Constraint] = field(default_factory=list)
    constraints_withdrawn: list[tuple[str, datetime, str, str]] = field(default_factory=list)
    """(constraint id, withdrawn at, withdrawn by, reason)"""

    def __bool__(self) -> bool:
        return any((self.identifiers, self.links_added, self.links_removed, self.customers_created,
                    self.assignments, self.aliases, self.generic, self.events,
                    self.constraints_added, self.constraints_withdrawn))


@dataclass(frozen=True, slots=True)
class DeleteCounts:
    identifiers: int = 0
    observations: int = 0
    links: int = 0
    events: int = 0
