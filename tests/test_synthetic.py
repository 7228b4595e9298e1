"""The synthetic generator: deterministic, with households, junk values and ground truth."""

from __future__ import annotations

from collections import Counter

import pytest

from identity_graph.identifiers import DEFAULT_TYPES
from identity_graph.synthetic import (
    JUNK_EMAILS,
    SPLINK_COLUMNS,
    SyntheticData,
    generate,
    household_pairs,
    records_for_splink,
    true_pairs,
)


@pytest.fixture(scope="module")
def data() -> SyntheticData:
    return generate(3000, seed=5)


def test_same_seed_same_data_other_seed_other_data(data: SyntheticData) -> None:
    again = generate(3000, seed=5)
    assert again.identifiers == data.identifiers
    assert again.observations == data.observations
    assert again.events == data.events
    assert again.source_rows == data.source_rows
    assert records_for_splink(again) == records_for_splink(data)
    other = generate(3000, seed=6)
    assert other.identifiers != data.identifiers


def test_every_identifier_has_a_truth_label(data: SyntheticData) -> None:
    customer_ids = {c["customer_id"] for c in data.customers}
    assert len(customer_ids) == 3000
    assert set(data.labels) == {i["key"] for i in data.identifiers}
    for ident in data.identifiers:
        assert ident["customers"] and set(ident["customers"]) <= customer_ids
        if len(ident["customers"]) == 1:
            assert data.labels[ident["key"]] == ident["customers"][0]
        else:
            assert data.labels[ident["key"]] is None and ident["generic"]
    types = Counter(i["type"] for i in data.identifiers)
    for t in ("email", "phone", "whatsapp", "web_cookie", "account_id", "device_id", "source_record"):
        assert types[t] > 0, t


def test_households_share_surname_and_address_but_not_first_name_or_birth_date(data):
    customers = {c["customer_id"]: c for c in data.customers}
    multi = [h for h in data.households if len(h["members"]) > 1]
    assert len(multi) > 300
    same_surname = 0
    for h in multi:
        members = [customers[m] for m in h["members"]]
        assert len({(m["street"], m["postcode"], m["city"]) for m in members}) == 1
        assert len({m["first_name"] for m in members}) == len(members)
        same_surname += members[0]["last_name"] == members[1]["last_name"]
    assert same_surname > 0.7 * len(multi)
    family_phones = [h["family_phone"] for h in multi if h["family_phone"]]
    assert len(family_phones) > 50
    for key in family_phones:
        assert data.labels[key] is None  # shared by the family: a generic identifier
    records = records_for_splink(data)
    assert len(household_pairs(records)) > 1000


def test_junk_values_are_shared_by_unrelated_people(data: SyntheticData) -> None:
    junk = {i["key"]: i for i in data.identifiers}
    shared = [junk[f"email:{e}"] for e in JUNK_EMAILS if f"email:{e}" in junk]
    shared.append(junk["phone:+10000000000"])
    assert all(len(i["customers"]) >= 2 for i in shared)
    raw_junk_phones = {o["raw_value"] for o in data.observations if o["identifier"] == "phone:+10000000000"}
    assert raw_junk_phones == {"0000000000"}


def test_raw_values_are_noisy_and_normalise_to_their_keys(data: SyntheticData) -> None:
    raws = [o for o in data.observations if o["identifier"].split(":")[0] in ("email", "phone")]
    assert any("(" in o["raw_value"] for o in raws)  # "(415) 234-5678"
    assert any(o["raw_value"].startswith("+1 ") for o in raws)  # "+1 415 234 5678"
    assert any(o["raw_value"] != o["raw_value"].strip() for o in raws)  # " BOB@X.COM "
    assert any(o["raw_value"].strip().isupper() and "@" in o["raw_value"] for o in raws)
    for o in raws[:3000]:
        type_ = o["identifier"].partition(":")[0]
        assert DEFAULT_TYPES.make(type_, o["raw_value"]).key == o["identifier"], o
    for ident in data.identifiers:
        if ident["type"] == "whatsapp":  # the customer's own mobile, in E.164
            assert ident["value"].startswith("+")
            assert data.labels[f"phone:{ident['value']}"] == ident["customer_id"]


def test_observations_are_noisy(data: SyntheticData) -> None:
    customers = {c["customer_id"]: c for c in data.customers}
    nick = typo_or_missing = 0
    for o in data.observations:
        owner = data.labels.get(o["identifier"])
        if owner is None or o["first_name"] is None:
            typo_or_missing += o["first_name"] is None
            continue
        nick += o["first_name"] in ("Bob", "Bill", "Liz", "Kate", "Mike", "Jim", "Tom")
        typo_or_missing += o["first_name"].lower() != customers[owner]["first_name"].lower()
    assert nick > 20
    assert typo_or_missing > 200


def test_events_and_source_rows(data: SyntheticData) -> None:
    channels = Counter(e["channel"] for e in data.events)
    assert {"web_form", "sms", "whatsapp", "email", "login"} <= set(channels)
    owners = {i["key"]: i["customers"] for i in data.identifiers}
    for e in data.events:
        assert e["identifiers"] and e["customer_id"]
        for ident in e["identifiers"]:
            key = DEFAULT_TYPES.make(ident["type"], ident["value"]).key
            assert e["customer_id"] in owners[key]
    web = [e for e in data.events if e["channel"] == "web_form"]
    assert any({i["type"] for i in e["identifiers"]} >= {"web_cookie", "email", "phone"} for e in web)
    assert all(len(e["identifiers"]) == 1 for e in data.events if e["channel"] == "sms")
    assert data.source_rows
    row = data.source_rows[0]
    assert {"source", "record_id", "email", "phone", *SPLINK_COLUMNS, "customer_id"} <= set(row)
    assert data.labels[f"source_record:{row['source']}/{row['record_id']}"] == row["customer_id"]


def test_records_for_splink_shape(data: SyntheticData) -> None:
    records = records_for_splink(data)
    assert {"unique_id", *SPLINK_COLUMNS, "cluster", "household"} == set(records[0])
    assert len({r["unique_id"] for r in records}) == len(records)
    assert all(any(r[c] is not None for c in SPLINK_COLUMNS) for r in records)
    assert all(r["first_name"] is None or r["first_name"] == r["first_name"].lower() for r in records)
    pairs = true_pairs(records, 500, seed=1)
    assert len(pairs) == 500
    by_id = {r["unique_id"]: r for r in records}
    assert all(by_id[a]["cluster"] == by_id[b]["cluster"] for a, b in pairs)
