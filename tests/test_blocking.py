"""The blocking-key index (issue 12 item 4): one row per identifier and rule, kept on write,
rebuilt when the model changes, and probed once per rule for a new identifier's candidates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from identity_graph.blocking import BlockingIndex
from identity_graph.engine import IdentityGraph, ResolveRequest
from identity_graph.model import IdentifierUpsert, Observation
from identity_graph.store import GraphStore

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class Renamed:
    """The starter model under another version: what the index sees when the model changes."""

    def __init__(self, scorer, version: str) -> None:
        self._scorer = scorer
        self.version = version

    def blocking_keys(self, record):
        return self._scorer.blocking_keys(record)


@pytest.fixture
def scorer():
    from identity_graph.matching import OnlineScorer, load_starter_model

    return OnlineScorer(load_starter_model())


def person(key: str, first: str, last: str, dob: str, postcode: str, at: datetime = T0) -> IdentifierUpsert:
    values = {"first_name": first, "last_name": last, "date_of_birth": dob, "postcode": postcode}
    return IdentifierUpsert(key, key.split(":")[0], key.split(":", 1)[1], at, tuple(
        Observation(key, name, value, "crm", "crm", at) for name, value in values.items()))


def expected_candidates(store: GraphStore, index: BlockingIndex, keys: list[str]) -> dict[str, set[str]]:
    """Per key, every other key sharing a blocking key with it, computed from the observations."""
    rows = index.rows(store.observations(keys))
    digests = {k: {d for _, d in rows.get(k, [])} for k in keys}
    return {k: {o for o in keys if o != k and digests[o] & digests[k]} for k in keys}


def probe(store: GraphStore, index: BlockingIndex, key: str) -> set[str]:
    rows = index.rows(store.observations([key])).get(key, [])
    found = store.blocking_candidates(rows, limit=10_000)
    assert found is not None, "the index should be complete"
    return set(found) - {key}


def test_rows_are_kept_on_write_and_probed_per_rule(store: GraphStore, scorer) -> None:
    index = BlockingIndex(scorer)
    store.use_blocking(index)
    assert store.blocking_version() == index.version
    store.upsert_identifiers([
        person("email:ann@x.org", "ann", "smith", "1980-01-02", "SW1A 1AA"),
        person("email:bob@x.org", "bob", "smith", "1980-05-06", "N1 9GU"),  # surname + birth year
        person("email:cid@x.org", "cid", "jones", "1990-01-01", "SW1A 1AA"),  # postcode
        person("email:dan@x.org", "dan", "brown", "1970-03-03", "E1 6AN"),  # nothing shared
    ])
    assert probe(store, index, "email:ann@x.org") == {"email:bob@x.org", "email:cid@x.org"}
    assert probe(store, index, "email:dan@x.org") == set()
    # a later observation changes dan's record (most frequent value; ties: the latest): he moves
    # to ann's postcode, and the rows follow on that write
    later = datetime(2026, 2, 1, tzinfo=UTC)
    store.upsert_identifiers([IdentifierUpsert("email:dan@x.org", "email", "dan@x.org", later, tuple(
        Observation("email:dan@x.org", "postcode", "SW1A 1AA", "crm", "crm", later + i * (later - T0))
        for i in range(2)))])
    assert probe(store, index, "email:dan@x.org") == {"email:ann@x.org", "email:cid@x.org"}
    # the probe keeps the smallest keys per rule (the postcode's third, dan, is cut)
    rows = index.rows(store.observations(["email:ann@x.org"]))["email:ann@x.org"]
    assert store.blocking_candidates(rows, limit=2) == [
        "email:ann@x.org", "email:bob@x.org", "email:cid@x.org"]


def test_model_change_rebuilds_and_foreign_writes_leave_it_stale(store: GraphStore, scorer) -> None:
    from batch.quality import load_synthetic

    load_synthetic(store, 60, seed=5)  # no index kept yet: loaded without one
    assert store.blocking_version() is None
    old = BlockingIndex(Renamed(scorer, "old-model"))
    store.use_blocking(old)
    assert store.blocking_version() == old.version
    keys = store.export_tables()["identifiers"].column("key").to_pylist()
    new = BlockingIndex(scorer)
    store.use_blocking(new)  # another model: rebuilt
    assert store.blocking_version() == new.version
    expected = expected_candidates(store, new, keys)
    assert sum(map(len, expected.values())) > 50
    for k in keys[::4]:
        assert probe(store, new, k) == expected[k], k
    # a writer that does not keep the index (another process without the model) marks it stale
    store.use_blocking(None)
    store.upsert_identifiers([person("email:new@x.org", "ann", "smith", "1980-01-02", "SW1A 1AA")])
    store.blocking = new  # this process still has the model, but the rows are not complete
    assert store.blocking_candidates(new.probes({"postcode": "SW1A 1AA"}), 10) is None
    store.use_blocking(new)
    assert store.blocking_version() == new.version
    assert probe(store, new, "email:new@x.org") == expected_candidates(
        store, new, [*keys, "email:new@x.org"])["email:new@x.org"]


def test_forget_takes_the_rows_and_resolve_uses_the_index(store: GraphStore, scorer) -> None:
    graph = IdentityGraph(store, scorer=scorer)  # the engine keeps the store's index
    assert store.blocking is not None and store.blocking_version() == store.blocking.version
    maria = {"first_name": "maria", "last_name": "garcia", "date_of_birth": "1985-03-12",
             "postcode": "SW1A 1AA"}
    first = graph.resolve(ResolveRequest("web", [("web_cookie", "c1")], maria))
    typo = {**maria, "first_name": "marja"}
    second = graph.resolve(ResolveRequest("sms", [("phone", "+447700900123")], typo))
    assert second.customer_id == first.customer_id  # found by the index, scored, linked
    index = store.blocking
    assert probe(store, index, "web_cookie:c1") == {"phone:+447700900123"}
    store.delete_identifiers(["phone:+447700900123"])
    assert probe(store, index, "web_cookie:c1") == set()
