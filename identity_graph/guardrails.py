"""The guardrails' primitives (DESIGN.md, "The customer"): each rule's test, written once.

`identity_graph.rules.decide` applies them to a region of the graph; nothing else decides
whether a link is made. The one similarity measure for "clearly different people" is
`Similarity` (names compared loosely, birth dates exactly), configured by
`GraphConfig.name_similarity`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from difflib import SequenceMatcher

from identity_graph.model import Observation


@dataclass(frozen=True, slots=True)
class Violation:
    """A link that was not made (or made weaker), or an identifier that was set apart, and why.

    `kind`: blocked | limit | generic | junk | chain | suppressed. `other` is the link's other
    end, when the violation is about a link."""

    kind: str
    key: str
    reason: str
    other: str = ""


def type_of(key: str) -> str:
    return key.partition(":")[0]


def limit_violation(limits: Mapping[str, int], *counts: Mapping[str, int]) -> str | None:
    """The first per-type limit that the identifiers counted in `counts` (type -> n, summed:
    the two sides of a would-be merge) exceed, as a reason; None when within limits."""
    for type_, limit in sorted(limits.items()):
        n = sum(c.get(type_, 0) for c in counts)
        if n > limit:
            return f"a customer may hold at most {limit} {type_} identifiers ({n} would)"
    return None


PERSON_ATTRIBUTES = ("first_name", "last_name", "date_of_birth")
"""What a person says about who they are, compared when a shared identifier is used."""


@dataclass(frozen=True, slots=True)
class Similarity:
    """The one measure of "the same person" between two self-descriptions.

    Names fit when equal, when one is a prefix of the other ("Bob" / "Bobby"), or when their
    `difflib` ratio is at least `name_threshold`; birth dates fit only when equal.
    """

    name_threshold: float = 0.8
    identifying: tuple[str, ...] = ()
    """Attributes that identify one person (declared of kind `code`: a national ID). Two sides
    that share a value of one are not clearly different, whatever their names say: family
    members share a surname and an address, never such a number."""

    def names_fit(self, a: str, b: str) -> bool:
        if a == b or a.startswith(b) or b.startswith(a):
            return True
        return SequenceMatcher(None, a, b).ratio() >= self.name_threshold

    def clearly_different(self, x: Profile, y: Profile) -> bool:
        """Both sides name a person, and no first name nor birth date of one fits the other:
        two members of a household, or two strangers joined by a weak edge.

        A name entered the other way round (first name in the surname field and back, a common
        entry error) fits: family members share a surname, never each other's first name as
        their surname, so this does not let a household through."""
        if not (x.first_names and y.first_names and x.birth_dates and y.birth_dates):
            return False
        if x.birth_dates & y.birth_dates or x.codes & y.codes:
            return False
        if any(self.names_fit(a, b) for a in x.first_names for b in y.first_names):
            return False
        return not any(self.names_fit(fa, lb) and self.names_fit(la, fb)
                       for fa, la in x.full_names for fb, lb in y.full_names)

    def two_people(self, x: Mapping[str, str | None], y: Mapping[str, str | None]) -> bool:
        """Two sightings of one value that are two people: first names that do not fit, and
        birth dates that differ or are unknown (a family phone, a shop's email)."""
        a, b = (x.get("first_name") or "").strip().lower(), (y.get("first_name") or "").strip().lower()
        if not (a and b) or self.names_fit(a, b):
            return False
        da, db = (x.get("date_of_birth") or "").strip(), (y.get("date_of_birth") or "").strip()
        return not (da and db and da == db)

    def contradicts(self, x: Mapping[str, str | None], y: Mapping[str, str | None]) -> bool:
        """Whether two self-descriptions name different people: a name or the birth date that
        both give and that disagree."""
        for name in PERSON_ATTRIBUTES:
            a, b = (x.get(name) or "").strip().lower(), (y.get(name) or "").strip().lower()
            if a and b and (a != b if name == "date_of_birth" else not self.names_fit(a, b)):
                return True
        return False

    def people_among(self, descriptions: Iterable[Mapping[str, str | None]], enough: int) -> int:
        """How many mutually contradicting people `descriptions` show, counted up to `enough`
        (greedy: each one that contradicts every person found so far is another person)."""
        people: list[Mapping[str, str | None]] = []
        for d in descriptions:
            if any((d.get(a) or "").strip() for a in PERSON_ATTRIBUTES) and all(
                self.contradicts(d, p) for p in people
            ):
                people.append(d)
                if len(people) >= enough:
                    break
        return len(people)


@dataclass(frozen=True, slots=True)
class Profile:
    """The first names and birth dates seen across one side of a would-be merge.

    Only descriptions that give both count: one with a first name and no birth date ("Ann")
    fits anyone of that name, and would otherwise let a chain through it join clearly
    different people (Ann born 1971 -- "Ann" -- Raj born 1984)."""

    first_names: frozenset[str]
    birth_dates: frozenset[str]
    full_names: frozenset[tuple[str, str]] = frozenset()
    """(first name, last name) of each description that gives both"""
    codes: frozenset[tuple[str, str]] = frozenset()
    """(attribute, value) of the identifying attributes the descriptions give"""

    @classmethod
    def of(cls, descriptions: Iterable[Mapping[str, str | None]],
           identifying: Iterable[str] = ()) -> Profile:
        names, dobs, full, codes = set(), set(), set(), set()
        identifying = tuple(identifying)
        for d in descriptions:
            for a in identifying:
                if (v := (d.get(a) or "").strip()):
                    codes.add((a, v))
            fn = (d.get("first_name") or "").strip().lower()
            dob = (d.get("date_of_birth") or "").strip()
            if fn and dob:
                names.add(fn)
                if (ln := (d.get("last_name") or "").strip().lower()):
                    full.add((fn, ln))
                dobs.add(dob)
        return cls(frozenset(names), frozenset(dobs), frozenset(full), frozenset(codes))


DEFAULT_SIMILARITY = Similarity()


def contradicts(x: Mapping[str, str | None], y: Mapping[str, str | None]) -> bool:
    """`Similarity.contradicts` with the default threshold (sessions compare a caller with a
    conversation's participant)."""
    return DEFAULT_SIMILARITY.contradicts(x, y)


def sightings(observations: Iterable[Observation]) -> list[dict[str, str]]:
    """The self-descriptions in an identifier's own observations, one per sighting (one source
    at one moment): a family phone shows two, a junk value many."""
    by: dict[tuple, dict[str, str]] = {}
    for o in observations:
        if o.attribute in PERSON_ATTRIBUTES and o.value:
            by.setdefault((o.source, o.channel, o.observed_at), {})[o.attribute] = o.value
    return list(by.values())
