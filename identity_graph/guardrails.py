"""Guardrails that keep one person's customer from swallowing another's (DESIGN.md, "The customer")."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from difflib import SequenceMatcher

from identity_graph.model import Observation


@dataclass(frozen=True, slots=True)
class Violation:
    """A link that was not made, or an identifier that was set apart, and why."""

    kind: str  # "blocked" | "limit" | "generic"
    key: str
    reason: str


def type_of(key: str) -> str:
    return key.partition(":")[0]


def limit_violation(members: Iterable[str], limits: Mapping[str, int]) -> str | None:
    """The first per-type limit that `members` exceed, as a reason; None when within limits."""
    counts = Counter(type_of(k) for k in members)
    for type_, limit in sorted(limits.items()):
        if counts.get(type_, 0) > limit:
            return f"a customer may hold at most {limit} {type_} identifiers ({counts[type_]} would)"
    return None


@dataclass(frozen=True, slots=True)
class Profile:
    """The first names and birth dates seen across one side of a would-be merge."""

    first_names: frozenset[str]
    birth_dates: frozenset[str]

    @classmethod
    def of(cls, observations: Iterable[Observation]) -> Profile:
        names, dobs = set(), set()
        for o in observations:
            if o.attribute == "first_name" and o.value.strip():
                names.add(o.value.strip().lower())
            elif o.attribute == "date_of_birth" and o.value.strip():
                dobs.add(o.value.strip())
        return cls(frozenset(names), frozenset(dobs))


def _similar_names(a: str, b: str) -> bool:
    if a == b or a.startswith(b) or b.startswith(a):
        return True
    return SequenceMatcher(None, a, b).ratio() >= 0.8


def clearly_different(x: Profile, y: Profile) -> bool:
    """Both sides name a person, and no first name nor birth date of one fits the other.

    This is the household case: a shared phone or email between two family members.
    """
    if not (x.first_names and y.first_names and x.birth_dates and y.birth_dates):
        return False
    if x.birth_dates & y.birth_dates:
        return False
    return not any(_similar_names(a, b) for a in x.first_names for b in y.first_names)


PERSON_ATTRIBUTES = ("first_name", "last_name", "date_of_birth")
"""What a person says about who they are, compared when a shared identifier is used."""


def contradicts(x: Mapping[str, str], y: Mapping[str, str]) -> bool:
    """Whether two self-descriptions name different people: a name or the birth date that both
    give and that disagree (names compared loosely: "Bob" fits "Bobby")."""
    for name in PERSON_ATTRIBUTES:
        a, b = (x.get(name) or "").strip().lower(), (y.get(name) or "").strip().lower()
        if a and b and (a != b if name == "date_of_birth" else not _similar_names(a, b)):
            return True
    return False
