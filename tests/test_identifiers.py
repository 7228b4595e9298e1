"""Identifier normalisation: examples, typed errors, and hypothesis properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from identity_graph.errors import InvalidIdentifier
from identity_graph.identifiers import DEFAULT_TYPES, IdentifierTypes


@pytest.mark.parametrize(
    ("type_", "raw", "expected"),
    [
        ("email", "  Bob.Smith@Example.COM ", "bob.smith@example.com"),
        ("email", "anna@Bücher.de", "anna@xn--bcher-kva.de"),
        ("email", "anna@xn--bcher-kva.de", "anna@xn--bcher-kva.de"),
        ("email", "user@Straße.de", "user@xn--strae-oqa.de"),
        ("email", "user@STRASSE.de", "user@strasse.de"),
        ("email", "user@ｅｘａｍｐｌｅ．com", "user@example.com"),  # UTS #46 maps full-width forms
        ("phone", "(555) 123-4567", "+15551234567"),
        ("phone", "+1 555 123 4567", "+15551234567"),
        ("phone", "+44 7700 900123", "+447700900123"),
        ("whatsapp", "whatsapp:+44 7700 900123", "+447700900123"),
        ("whatsapp", "5551234567", "+15551234567"),
        ("web_cookie", "  c-8f3a ", "c-8f3a"),
        ("account_id", "Acct-42", "Acct-42"),
        ("source_record", "CRM/00123", "crm/00123"),
    ],
)
def test_normalises_examples(type_: str, raw: str, expected: str) -> None:
    ident = DEFAULT_TYPES.make(type_, raw)
    assert ident.value == expected
    assert ident.key == f"{type_}:{expected}"


@pytest.mark.parametrize(
    ("type_", "raw", "field"),
    [
        ("email", "no-at-sign", "email"),
        ("email", "a@b", "email"),
        ("email", "a@@b.com", "email"),
        ("email", "", "email"),
        ("phone", "hello", "phone"),
        ("phone", "12", "phone"),
        ("whatsapp", "+1", "whatsapp"),
        ("web_cookie", "a b", "web_cookie"),
        ("source_record", "crm", "source_record"),
        ("pager", "123", "type"),
    ],
)
def test_invalid_input_names_the_field(type_: str, raw: str, field: str) -> None:
    with pytest.raises(InvalidIdentifier) as err:
        DEFAULT_TYPES.make(type_, raw)
    assert err.value.field == field
    assert err.value.reason


def test_sharp_s_domains_stay_distinct() -> None:
    """IDNA 2008 / UTS #46 (non-transitional): `straße.de` is not `strasse.de` (IDNA 2003 folded
    ß to ss, making two people's addresses one identifier)."""
    sharp = DEFAULT_TYPES.make("email", "user@straße.de")
    plain = DEFAULT_TYPES.make("email", "user@strasse.de")
    assert sharp != plain
    assert sharp.key == "email:user@xn--strae-oqa.de"
    assert DEFAULT_TYPES.make("email", "user@xn--strae-oqa.de") == sharp
    final_sigma = DEFAULT_TYPES.make("email", "x@σόλος.gr")
    assert final_sigma != DEFAULT_TYPES.make("email", "x@σόλοσ.gr")


@pytest.mark.parametrize("raw", ["x@☃.net", "x@xn--n3h.net", "x@xn--zz.de", "x@ab_c.com"])
def test_domains_idna_2008_disallows_are_invalid(raw: str) -> None:
    """Symbols were valid IDNA 2003 and are not IDNA 2008; a broken A-label is no domain."""
    with pytest.raises(InvalidIdentifier) as err:
        DEFAULT_TYPES.make("email", raw)
    assert err.value.field == "email"


def test_default_region_is_configurable() -> None:
    uk = IdentifierTypes(default_region="GB")
    assert uk.make("phone", "07700 900123").value == "+447700900123"
    with pytest.raises(InvalidIdentifier):  # not a possible US number
        DEFAULT_TYPES.make("phone", "07700 900123")
    with pytest.raises(InvalidIdentifier):
        IdentifierTypes(default_region="XX")


def test_custom_types_register_with_their_normaliser() -> None:
    types = IdentifierTypes()
    types.register("loyalty_card", lambda v: v.strip().upper())
    assert types.make("loyalty_card", " ab12 ").key == "loyalty_card:AB12"
    assert types.parse("loyalty_card:ab12").value == "AB12"
    with pytest.raises(InvalidIdentifier):
        types.register("loyalty_card")
    with pytest.raises(InvalidIdentifier):
        types.register("Bad Name")


def test_parse_key_and_equivalents() -> None:
    ident = DEFAULT_TYPES.parse("whatsapp:+15551234567")
    assert [e.key for e in DEFAULT_TYPES.equivalents(ident)] == ["phone:+15551234567"]
    with pytest.raises(InvalidIdentifier):
        DEFAULT_TYPES.parse("no-colon")


phone_like = st.text(alphabet="0123456789 +-()./x", min_size=0, max_size=24)
email_like = st.builds(
    lambda local, domain, tld: f"{local}@{domain}.{tld}",
    st.text(min_size=0, max_size=12),
    st.text(min_size=0, max_size=12),
    st.sampled_from(["com", "de", "CO.UK", "xn--p1ai", "рф", "1"]),
)


@settings(max_examples=400, deadline=None)
@given(type_=st.sampled_from(DEFAULT_TYPES.names), raw=st.one_of(st.text(max_size=40), phone_like,
                                                                  email_like))
def test_normalisation_is_idempotent_and_raises_only_invalid_identifier(type_: str, raw: str) -> None:
    try:
        once = DEFAULT_TYPES.make(type_, raw)
    except InvalidIdentifier as e:
        assert e.field in (type_, "type")
        return
    assert DEFAULT_TYPES.make(type_, once.value) == once
    assert DEFAULT_TYPES.parse(once.key) == once
