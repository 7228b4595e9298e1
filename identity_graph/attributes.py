"""Attribute observations: validated and put in the one form that storage, blocking and Splink share."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from enum import StrEnum

from identity_graph.errors import InvalidArgument

MAX_ATTRIBUTE_LENGTH = 200
MAX_ATTRIBUTES = 32
LOWER_CASED = ("first_name", "last_name", "street", "city", "country")
UPPER_CASED = ("postcode",)
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d")


class Kind(StrEnum):
    """What an attribute holds, which decides how it is cleaned and compared (DESIGN "Matching
    model"): built-in attributes have one by default, custom ones are declared at ingest."""

    PERSON_NAME = "person_name"
    DATE = "date"
    CODE = "code"
    """An identifying number or code (national id, customer number): typos, no fuzziness."""
    ADDRESS = "address"
    """A street line; compared together with postcode and city as one address."""
    POSTCODE = "postcode"
    CITY = "city"
    TEXT = "text"
    EXACT = "exact"
    """Agreement or not, nothing in between (a country, a state, a gender)."""


BUILTIN_KINDS: dict[str, Kind] = {
    "first_name": Kind.PERSON_NAME,
    "last_name": Kind.PERSON_NAME,
    "date_of_birth": Kind.DATE,
    "street": Kind.ADDRESS,
    "city": Kind.CITY,
    "postcode": Kind.POSTCODE,
    "country": Kind.EXACT,
}


def parse_kind(value: object, field: str = "kind") -> Kind:
    """A declared kind.

    Raises:
        InvalidArgument: not one of `Kind`'s values.
    """
    try:
        return Kind(str(value))
    except ValueError:
        raise InvalidArgument(field, f"unknown kind {str(value)[:40]!r}; one of "
                              f"{', '.join(k.value for k in Kind)}") from None


def parse_date(value: str, field: str = "date_of_birth") -> str:
    """An ISO date (YYYY-MM-DD) from the few unambiguous forms we accept.

    Raises:
        InvalidArgument: not a date, or a date in the future or before 1900.
    """
    for fmt in DATE_FORMATS:
        try:
            parsed = datetime.strptime(value, fmt).date()
        except ValueError:
            continue
        if not date(1900, 1, 1) <= parsed <= date.today():
            raise InvalidArgument(f"attributes.{field}", "must be between 1900-01-01 and today")
        return parsed.isoformat()
    raise InvalidArgument(f"attributes.{field}", "must be a date as YYYY-MM-DD")


def clean_attribute(name: str, value: object, kind: Kind | None = None) -> str:
    """One attribute's canonical value ('' when blank). Idempotent.

    `kind` (default: the built-in attribute's kind, if any) decides the canonical form: dates
    as ISO, names, streets, cities and text lower-cased, postcodes and codes upper-cased.
    """
    if not isinstance(name, str) or not name or len(name) > 64 or not name.isidentifier():
        raise InvalidArgument("attributes", f"bad attribute name {str(name)[:64]!r}")
    if not isinstance(value, str):
        raise InvalidArgument(f"attributes.{name}", "must be a string")
    if any(ord(c) < 32 for c in value):
        raise InvalidArgument(f"attributes.{name}", "contains control characters")
    text = " ".join(value.split())
    if len(text) > MAX_ATTRIBUTE_LENGTH:
        raise InvalidArgument(f"attributes.{name}", f"longer than {MAX_ATTRIBUTE_LENGTH} characters")
    if not text:
        return ""
    kind = kind or BUILTIN_KINDS.get(name)
    if kind is Kind.DATE:
        return parse_date(text, name)
    if name in LOWER_CASED or kind in (Kind.PERSON_NAME, Kind.ADDRESS, Kind.CITY, Kind.TEXT):
        return text.lower()
    if name in UPPER_CASED or kind in (Kind.POSTCODE, Kind.CODE):
        return text.upper()
    return text


def clean_attributes(attributes: Mapping[str, object]) -> dict[str, str]:
    """Validated, canonical attributes, blanks dropped.

    Raises:
        InvalidArgument: names the attribute and the reason.
    """
    if len(attributes) > MAX_ATTRIBUTES:
        raise InvalidArgument("attributes", f"at most {MAX_ATTRIBUTES} attributes")
    out = {}
    for name, value in attributes.items():
        cleaned = clean_attribute(name, value)
        if cleaned:
            out[name] = cleaned
    return out
