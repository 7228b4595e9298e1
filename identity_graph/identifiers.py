"""Identifier types and their normalisers: `(type, normalised value)`, keyed `type:value`."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import idna
import phonenumbers

from identity_graph.errors import InvalidIdentifier

Normaliser = Callable[[str], str]

MAX_VALUE_LENGTH = 256
_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_DOMAIN_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_EMAIL_LOCAL = re.compile(r"^[^\s@\"(),:;<>\[\\\]]{1,64}$")


@dataclass(frozen=True, order=True, slots=True)
class Identifier:
    """A normalised identifier. Build one with `IdentifierTypes.parse` or `.make`, not directly."""

    type: str
    value: str

    @property
    def key(self) -> str:
        return f"{self.type}:{self.value}"

    def __str__(self) -> str:
        return self.key


def _printable(value: str, field: str) -> str:
    value = unicodedata.normalize("NFC", value).strip()
    if not value:
        raise InvalidIdentifier(field, "must not be empty")
    if len(value) > MAX_VALUE_LENGTH:
        raise InvalidIdentifier(field, f"longer than {MAX_VALUE_LENGTH} characters")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in value):
        raise InvalidIdentifier(field, "contains control or unassigned characters")
    return value


def _ascii_domain(domain: str) -> str:
    """The domain as A-labels under UTS #46 / IDNA 2008 (the `idna` package, non-transitional).

    Python's own `idna` codec is IDNA 2003, which folds `ß` to `ss` (and `ς` to `σ`, drops ZWJ),
    so `straße.de` and `strasse.de` would be one domain; they are two. Plain LDH labels pass
    unchanged (checked by `_DOMAIN_LABEL`); labels with non-ASCII letters, and `xn--` labels,
    are checked and encoded by `idna`.
    """
    mapped = idna.uts46_remap(domain, std3_rules=False, transitional=False)
    return ".".join(
        label if label.isascii() and not label.startswith("xn--") else idna.alabel(label).decode("ascii")
        for label in mapped.rstrip(".").split(".")
    )


def normalise_email(raw: str, field: str = "email") -> str:
    """Trimmed, lower-cased, domain in IDNA 2008 A-label (punycode) form (see `_ascii_domain`)."""
    value = _printable(raw, field).lower()
    local, sep, domain = value.rpartition("@")
    if not sep or not local or not domain:
        raise InvalidIdentifier(field, "an email needs one local part, '@' and a domain")
    if not _EMAIL_LOCAL.match(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        raise InvalidIdentifier(field, "the local part of the email is not valid")
    try:
        ascii_domain = _ascii_domain(domain.rstrip("."))
    except (UnicodeError, ValueError) as e:  # idna.IDNAError is a UnicodeError
        raise InvalidIdentifier(field, "the email domain is not a valid internationalised name") from e
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.match(label) for label in labels):
        raise InvalidIdentifier(field, "the email domain must be a dotted host name")
    if labels[-1].isdigit():
        raise InvalidIdentifier(field, "the email domain must not end in a number")
    return f"{local}@{ascii_domain}"


def normalise_phone(raw: str, default_region: str = "US", field: str = "phone") -> str:
    """E.164, parsed by `phonenumbers` with `default_region` for national numbers."""
    value = _printable(raw, field)
    if value.lower().startswith("whatsapp:"):
        value = value[len("whatsapp:") :].strip()
    try:
        number = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException as e:
        raise InvalidIdentifier(field, f"not a phone number ({e._msg})") from e
    if not phonenumbers.is_possible_number(number):
        raise InvalidIdentifier(field, "not a possible phone number for its region")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_opaque(raw: str, field: str) -> str:
    """Opaque ids (cookies, accounts, devices) are case-sensitive: only trimmed and NFC-folded."""
    value = _printable(raw, field)
    if any(c.isspace() for c in value):
        raise InvalidIdentifier(field, "must not contain white space")
    return value


def normalise_source_record(raw: str, field: str = "source_record") -> str:
    """`<source>/<id>`: the source is lower-cased, the id kept as given."""
    value = _printable(raw, field)
    source, sep, record_id = value.partition("/")
    source, record_id = source.strip().lower(), record_id.strip()
    if not sep or not source or not record_id:
        raise InvalidIdentifier(field, "a source record is '<source>/<id>'")
    if not _TYPE_NAME.match(source.replace("-", "_")):
        raise InvalidIdentifier(field, "the source must be a short lower-case name")
    return f"{source}/{record_id}"


class IdentifierTypes:
    """The registry of identifier types of one deployment, with its default phone region."""

    BUILT_IN = ("email", "phone", "whatsapp", "web_cookie", "account_id", "device_id", "source_record")

    def __init__(self, default_region: str = "US") -> None:
        if default_region.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise InvalidIdentifier("default_region", f"unknown region {default_region!r}")
        self.default_region = default_region.upper()
        self._normalisers: dict[str, Normaliser] = {}
        region = self.default_region
        self._normalisers["email"] = normalise_email
        self._normalisers["phone"] = lambda v: normalise_phone(v, region, "phone")
        self._normalisers["whatsapp"] = lambda v: normalise_phone(v, region, "whatsapp")
        for name in ("web_cookie", "account_id", "device_id"):
            self._normalisers[name] = lambda v, _n=name: normalise_opaque(v, _n)
        self._normalisers["source_record"] = normalise_source_record

    def register(self, name: str, normaliser: Normaliser | None = None) -> None:
        """Adds a custom type. The normaliser must be idempotent and raise only InvalidIdentifier."""
        if not _TYPE_NAME.match(name):
            raise InvalidIdentifier("type", "a type name is lower-case letters, digits and '_'")
        if name in self._normalisers:
            raise InvalidIdentifier("type", f"type {name!r} is already registered")
        self._normalisers[name] = normaliser or (lambda v: normalise_opaque(v, name))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._normalisers)

    def make(self, type_: str, raw_value: str) -> Identifier:
        """Normalises `raw_value` as `type_`.

        Raises:
            InvalidIdentifier: unknown type, or a value that does not normalise.
        """
        if not isinstance(type_, str) or type_ not in self._normalisers:
            raise InvalidIdentifier("type", f"unknown identifier type {type_!r}")
        if not isinstance(raw_value, str):
            raise InvalidIdentifier(type_, "the value must be a string")
        value = self._normalisers[type_](raw_value)
        if len(value) > MAX_VALUE_LENGTH:
            raise InvalidIdentifier(type_, f"longer than {MAX_VALUE_LENGTH} characters")
        return Identifier(type_, value)

    def parse(self, key: str) -> Identifier:
        """Parses and normalises a `type:value` key."""
        if not isinstance(key, str):
            raise InvalidIdentifier("key", "an identifier key is a 'type:value' string")
        type_, sep, value = key.partition(":")
        if not sep:
            raise InvalidIdentifier("key", "an identifier key is 'type:value'")
        return self.make(type_.strip().lower(), value)

    def equivalents(self, identifier: Identifier) -> list[Identifier]:
        """Identifiers that name the same address by definition (WhatsApp id ≡ phone)."""
        if identifier.type == "whatsapp":
            return [Identifier("phone", identifier.value)]
        if identifier.type == "phone":
            return [Identifier("whatsapp", identifier.value)]
        return []


DEFAULT_TYPES = IdentifierTypes()

__all__ = [
    "DEFAULT_TYPES",
    "Identifier",
    "IdentifierTypes",
    "normalise_email",
    "normalise_opaque",
    "normalise_phone",
    "normalise_source_record",
]
