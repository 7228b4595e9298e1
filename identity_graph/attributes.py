"""Attribute observations: validated and put in the one form that storage, blocking and Splink share."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from identity_graph.errors import InvalidArgument

MAX_ATTRIBUTE_LENGTH = 200
MAX_ATTRIBUTES = 32
LOWER_CASED = ("first_name", "last_name", "street", "city", "country")
UPPER_CASED = ("postcode",)
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d")


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


def clean_attribute(name: str, value: object) -> str:
    """One attribute's canonical value ('' when blank). Idempotent."""
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
    if name == "date_of_birth":
        return parse_date(text)
    if name in LOWER_CASED:
        return text.lower()
    if name in UPPER_CASED:
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
