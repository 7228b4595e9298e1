"""The `GraphStore` contract: every test runs on each backend through the `store` fixture."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import networkx as nx
import pyarrow.parquet as pq
import pytest

from identity_graph.errors import StoreError
from identity_graph.model import (
    AttributeMatch,
    ChangeSet,
    Constraint,
    ConstraintKind,
    Customer,
    DeleteCounts,
    Event,
    IdentifierUpsert,
    Link,
    LinkKind,
    Observation,
)
from identity_graph.paths import bottleneck
from identity_graph.store.base import GraphStore
from identity_graph.store.database import SnapshotScope
from identity_graph.store.tables import TABLES

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
VER, EQU, OBS, PRO, POS = (LinkKind.VERIFIED, LinkKind.EQUIVALENT, LinkKind.OBSERVED, LinkKind.PROBABLE,
                 LinkKind.POSSIBLE)
SORT_KEYS = {"identifiers": "key", "observations": "id", "links": "link_id", "customers": "id",
             "aliases": "alias", "events": "seq", "constraints": "constraint_id"}


# ---- helpers ---------------------------------------------------------------------------------

def up(key: str, at: datetime = T0, observations: tuple[Observation, ...] = ()) -> IdentifierUpsert:
    type_, _, value = key.partition(":")
    return IdentifierUpsert(key, type_, value, at, observations)


def obs(key: str, attribute: str, value: str, source: str = "crm", channel: str = "web",
        at: datetime = T0) -> Observation:
    return Observation(key, attribute, value, source, channel, at)


def link(a: str, b: str, kind: LinkKind, **evidence) -> Link:
    """A link with test evidence; an observed one is claimed by `b` unless said otherwise, so it
    counts as observed walked from `a` and as probable walked from `b`."""
    if kind is LinkKind.OBSERVED:
        evidence.setdefault("claimant", b)
    evidence.setdefault("source", "test")
    evidence.setdefault("created_at", T0)
    return Link(a, b, kind, **evidence)


def build(store: GraphStore, edges: list[tuple[str, str, LinkKind]],
          nodes: tuple[str, ...] = (), generic: tuple[str, ...] = ()) -> list[Link]:
    """Creates the identifiers of `edges` and `nodes`, the links, and marks `generic` ones."""
    keys = sorted({k for a, b, _ in edges for k in (a, b)} | set(nodes) | set(generic))
    links = [link(a, b, kind) for a, b, kind in edges]
    store.apply(ChangeSet(identifiers=[up(k) for k in keys], links_added=links,
                          generic=dict.fromkeys(generic, True)))
    return links


def is_utc(value: datetime | None) -> bool:
    return value is not None and value.tzinfo is not None and value.utcoffset() == timedelta(0)


def snapshot(store: GraphStore) -> dict[str, list[dict]]:
    """Every table as sorted rows, for comparing whole stores."""
    return {name: table.sort_by(SORT_KEYS[name]).to_pylist()
            for name, table in store.export_tables().items()}


def path_is_valid(path: list[Link], a: str, b: str) -> bool:
    node = a
    for lk in path:
        if node not in (lk.a, lk.b):
            return False
        node = lk.other(node)
    return node == b


# ---- identifiers and observations ------------------------------------------------------------

def test_upsert_creates_and_is_idempotent(store):
    record = up("email:ann@example.com", T0, (obs("email:ann@example.com", "first_name", "Ann"),))
    store.upsert_identifiers([record])
    before = snapshot(store)
    store.upsert_identifiers([record])
    store.upsert_identifiers([record, record])

    node = store.get_identifier("email:ann@example.com")
    assert node is not None
    assert (node.key, node.type, node.value) == ("email:ann@example.com", "email", "ann@example.com")
    assert node.first_seen == node.last_seen == T0
    assert is_utc(node.first_seen) and is_utc(node.last_seen)
    assert node.customer_id is None and node.generic is False
    assert snapshot(store) == before
    assert len(before["identifiers"]) == 1 and len(before["observations"]) == 1
    assert store.get_identifier("email:nobody@example.com") is None
    assert store.get_identifiers([]) == {}


def test_first_and_last_seen_only_widen(store):
    key = "phone:+15551234567"
    store.upsert_identifiers([up(key, T0)])
    store.upsert_identifiers([up(key, T0 + timedelta(days=2))])
    store.upsert_identifiers([up(key, T0 - timedelta(days=3))])
    store.upsert_identifiers([up(key, T0 + timedelta(days=1))])  # inside: changes nothing
    # type and value of an existing identifier are never rewritten by an upsert
    store.upsert_identifiers([IdentifierUpsert(key, "phone", "something else", T0)])
    node = store.get_identifier(key)
    assert node.first_seen == T0 - timedelta(days=3)
    assert node.last_seen == T0 + timedelta(days=2)
    assert node.value == "+15551234567"


def test_one_change_set_with_the_same_key_twice_widens_both_ends(store):
    key = "device_id:d1"
    store.upsert_identifiers([up(key, T0 + timedelta(hours=5)), up(key, T0),
                              up(key, T0 + timedelta(hours=1))])
    node = store.get_identifier(key)
    assert (node.first_seen, node.last_seen) == (T0, T0 + timedelta(hours=5))
    assert len(store.export_tables()["identifiers"]) == 1


def test_seen_times_in_other_zones_come_back_as_utc(store):
    plus2 = datetime(2024, 6, 1, 16, 0, tzinfo=timezone(timedelta(hours=2)))
    store.upsert_identifiers([up("account_id:acc-1", plus2)])
    node = store.get_identifier("account_id:acc-1")
    assert node.first_seen == datetime(2024, 6, 1, 14, 0, tzinfo=UTC)
    assert is_utc(node.first_seen)


def test_observations_keep_provenance_and_are_deduplicated(store):
    key = "email:bob@example.com"
    crm = obs(key, "first_name", "Bob", source="crm", channel="", at=T0)
    web = obs(key, "first_name", "Robert", source="webform", channel="web", at=T0 + timedelta(hours=1))
    city = obs(key, "city", "Leeds", source="webform", channel="web", at=T0 + timedelta(hours=1))
    store.upsert_identifiers([up(key, T0, (crm, web))])
    store.upsert_identifiers([up(key, T0 + timedelta(hours=1), (web, city, city))])  # web, city twice
    other = "phone:+447700900123"
    store.upsert_identifiers([up(other, T0, (obs(other, "first_name", "Bob", source="sms"),))])

    got = store.observations([key])
    assert got == sorted([crm, web, city], key=lambda o: (o.key, o.observed_at, o.attribute))
    assert all(is_utc(o.observed_at) for o in got)
    assert {o.source for o in got} == {"crm", "webform"}
    assert len(store.observations([key, other])) == 4
    assert store.observations(["email:unknown@example.com"]) == []


def test_generic_flag_can_be_set_and_cleared(store):
    store.upsert_identifiers([up("phone:+15550000001")])
    store.apply(ChangeSet(generic={"phone:+15550000001": True, "phone:+19999999999": True}))
    assert store.get_identifier("phone:+15550000001").generic is True
    assert store.get_identifier("phone:+19999999999") is None  # a flag creates nothing
    store.apply(ChangeSet(generic={"phone:+15550000001": False}))
    assert store.get_identifier("phone:+15550000001").generic is False


def test_randomised_upserts_match_a_reference_model(store):
    rng = random.Random(20240101)
    keys = [f"web_cookie:c{i}" for i in range(4)]
    seen: dict[str, tuple[datetime, datetime]] = {}
    observed: dict[str, set[Observation]] = {k: set() for k in keys}
    for _ in range(12):
        batch = []
        for _ in range(rng.randint(1, 4)):
            key = rng.choice(keys)
            at = T0 + timedelta(minutes=rng.randint(-10_000, 10_000))
            obs_ = tuple(obs(key, rng.choice(["first_name", "city"]), rng.choice(["A", "B", "C"]),
                             source=rng.choice(["crm", "web"]), at=T0 + timedelta(hours=rng.randint(0, 3)))
                         for _ in range(rng.randint(0, 2)))
            batch.append(up(key, at, obs_))
            lo, hi = seen.get(key, (at, at))
            seen[key] = (min(lo, at), max(hi, at))
            observed[key].update(obs_)
        store.upsert_identifiers(batch)
    nodes = store.get_identifiers(keys)
    assert set(nodes) == set(seen)
    for key, (lo, hi) in seen.items():
        assert (nodes[key].first_seen, nodes[key].last_seen) == (lo, hi)
        assert set(store.observations([key])) == observed[key]
        assert len(store.observations([key])) == len(observed[key])


# ---- links -----------------------------------------------------------------------------------

def test_link_evidence_round_trips(store):
    a, b = "email:ann@example.com", "phone:+15551234567"
    store.upsert_identifiers([up(a), up(b)])
    full = Link(
        b, a, LinkKind.PROBABLE, source="splink", channel="batch", event_id="evt-7",
        model_version="model-2024-05", probability=0.9934, match_weight=7.25,
        comparisons={"first_name": 3, "dob": {"level": "exact", "tf": 0.01}, "address": None},
        created_at=T0 + timedelta(microseconds=123456), actor="relink-job",
    )
    assert full.a == a  # the model orders the ends
    store.add_links([full])

    [got] = store.links([a])
    assert got == full
    assert got.kind is LinkKind.PROBABLE
    assert dict(got.comparisons) == {"first_name": 3, "dob": {"level": "exact", "tf": 0.01},
                                     "address": None}
    assert is_utc(got.created_at) and got.active
    assert store.links_by_id([full.id]) == [full]
    assert store.links([a, b]) == [full]  # a link between two asked keys comes once
    assert store.links_by_id(["no-such-link"]) == []

    plain = link(a, "web_cookie:ck1", LinkKind.OBSERVED, event_id="evt-8")
    store.upsert_identifiers([up("web_cookie:ck1")])
    store.add_links([plain])
    [got_plain] = store.links(["web_cookie:ck1"])
    assert got_plain == plain
    assert got_plain.probability is None and got_plain.match_weight is None
    assert got_plain.comparisons is None


def test_adding_a_link_again_keeps_the_first_record(store):
    a, b = "email:a@example.com", "email:b@example.com"
    store.upsert_identifiers([up(a), up(b)])
    first = link(a, b, OBS, actor="first", event_id="e1")
    store.add_links([first])
    again = link(a, b, OBS, actor="second", event_id="e1", created_at=T0 + timedelta(days=1))
    assert again.id == first.id
    store.add_links([again])
    assert store.links([a]) == [first]
    other_evidence = link(a, b, OBS, event_id="e2")
    store.add_links([other_evidence])
    assert sorted(lk.event_id for lk in store.links([a])) == ["e1", "e2"]


def test_every_link_kind_round_trips(store):
    keys = [f"device_id:k{i}" for i in range(len(LinkKind) + 1)]
    links = [link(keys[i], keys[i + 1], kind) for i, kind in enumerate(LinkKind)]
    store.apply(ChangeSet(identifiers=[up(k) for k in keys], links_added=links))
    assert sorted(store.links(keys), key=lambda lk: lk.a) == sorted(links, key=lambda lk: lk.a)


def test_removing_a_link_is_recorded(store):
    a, b, c = "email:a@example.com", "email:b@example.com", "email:c@example.com"
    ab, bc = build(store, [(a, b, VER), (b, c, OBS)])
    at = T0 + timedelta(days=1)
    store.remove_links([ab.id], actor="analyst-1", reason="wrong person", at=at)

    assert store.links([a]) == []
    assert store.links([b]) == [bc]
    [removed] = store.links([a], include_removed=True)
    assert removed.id == ab.id and not removed.active
    assert (removed.removed_at, removed.removed_by, removed.removal_reason) == (
        at, "analyst-1", "wrong person")
    assert is_utc(removed.removed_at)
    assert store.links_by_id([ab.id]) == [removed]
    # the evidence is unchanged by the removal
    assert (removed.kind, removed.source, removed.created_at) == (ab.kind, ab.source, ab.created_at)

    # removing again, or removing an unknown link, changes nothing
    before = snapshot(store)
    store.remove_links([ab.id], actor="analyst-2", reason="again", at=at + timedelta(days=1))
    store.remove_links(["no-such-link"], actor="analyst-2")
    assert snapshot(store) == before
    assert store.component(a).members == {a}


def test_link_added_and_removed_in_one_change_set(store):
    a, b = "email:a@example.com", "email:b@example.com"
    lk = link(a, b, PRO, probability=0.995)
    store.apply(ChangeSet(identifiers=[up(a), up(b)], links_added=[lk],
                          links_removed=[(lk.id, T0, "job", "superseded")]))
    assert store.links([a]) == []
    [got] = store.links([a], include_removed=True)
    assert got.removed_by == "job" and got.removal_reason == "superseded"


def test_neighbours_are_ordered_strongest_first_then_by_key(store):
    c = "email:centre@example.com"
    edges = [(c, "phone:+15550000001", PRO), (c, "phone:+15550000003", VER), (c, "phone:+15550000002", VER),
             (c, "phone:+15550000004", POS), (c, "phone:+15550000005", OBS), (c, "phone:+15550000006", EQU)]
    links = build(store, edges)
    gone = link(c, "phone:+15550000007", VER)
    store.upsert_identifiers([up("phone:+15550000007")])
    store.add_links([gone])
    store.remove_links([gone.id], actor="test")

    got = store.neighbours(c)
    assert [k for k, _ in got] == ["phone:+15550000002", "phone:+15550000003", "phone:+15550000006",
                                   "phone:+15550000005", "phone:+15550000001", "phone:+15550000004"]
    assert [lk.kind for _, lk in got] == [VER, VER, EQU, OBS, PRO, POS]
    assert {lk.id for _, lk in got} == {lk.id for lk in links}
    assert [k for k, _ in store.neighbours(c, kinds=[PRO, POS])] == [
        "phone:+15550000001", "phone:+15550000004"]
    assert store.neighbours("phone:+15550000004") == [(c, links[3])]


# ---- components and paths --------------------------------------------------------------------

def test_component_follows_merging_kinds_only(store):
    a, b, c, d, e = (f"email:{x}@example.com" for x in "abcde")
    build(store, [(a, b, VER), (b, c, PRO), (c, d, POS), (d, e, OBS)])
    assert store.component(a).members == {a, b, c}
    assert store.component(d).members == {d, e}
    assert store.component("email:nobody@example.com").members == frozenset()
    assert store.component("email:nobody@example.com").customer_id is None


def test_generic_identifiers_stop_traversal(store):
    a, b = "email:alice@example.com", "email:bob@example.com"
    family = "phone:+15550001111"
    build(store, [(a, family, OBS), (family, b, OBS)], generic=(family,))
    assert store.component(a).members == {a}
    assert store.component(b).members == {b}
    assert store.component(family).members == {family}
    # a path may end at a generic identifier, but never pass through one
    assert [lk.kind for lk in store.bottleneck_path(a, family)] == [OBS]
    assert store.bottleneck_path(a, b) is None


def test_component_carries_the_customer_id(store):
    a, b = "email:a@example.com", "email:b@example.com"
    build(store, [(a, b, VER)])
    store.apply(ChangeSet(customers_created=[Customer("cus_1", T0)], assignments={a: "cus_1", b: "cus_1"}))
    comp = store.component(b)
    assert comp.customer_id == "cus_1" and comp.members == {a, b}


def test_bottleneck_path_prefers_the_strongest_weakest_link(store):
    a, b = "email:start@example.com", "phone:+15551230000"
    x, y, z = "device_id:x", "device_id:y", "account_id:z"
    build(store, [
        (a, b, PRO),                                     # short, but only probable
        (a, x, VER), (x, y, OBS), (y, z, EQU), (z, b, VER),    # long, weakest link observed
    ])
    path = store.bottleneck_path(a, b)
    assert path_is_valid(path, a, b)
    assert [lk.kind for lk in path] == [VER, OBS, EQU, VER]
    assert min(lk.kind for lk in path) == OBS

    # break the strong path: the probable shortcut is the best there is
    store.remove_links([next(lk.id for lk in store.links([y]) if lk.kind == EQU)], actor="test")
    path = store.bottleneck_path(a, b)
    assert [lk.kind for lk in path] == [PRO]

    assert store.bottleneck_path(a, a) == []
    assert store.bottleneck_path("email:nobody@example.com", a) is None


def test_bottleneck_path_is_none_when_disconnected(store):
    a, b, c, d = "email:a@example.com", "email:b@example.com", "email:c@example.com", "email:d@example.com"
    build(store, [(a, b, VER), (c, d, VER)])
    assert store.bottleneck_path(a, d) is None
    assert store.bottleneck_path(a, "email:nobody@example.com") is None


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_graphs_match_networkx(store, seed):
    """Components and bottleneck widths against a networkx reference (Splink's cc_testing idea)."""
    rng = random.Random(seed)
    nodes = [f"device_id:n{i:02d}" for i in range(18)]
    edges = {}
    for _ in range(26):
        a, b = rng.sample(nodes, 2)
        edges[tuple(sorted((a, b)))] = rng.choice(list(LinkKind))
    generic = tuple(rng.sample(nodes, 2))
    build(store, [(a, b, k) for (a, b), k in edges.items()], nodes=tuple(nodes), generic=generic)

    merging = nx.Graph()
    merging.add_nodes_from(n for n in nodes if n not in generic)
    merging.add_edges_from((a, b) for (a, b), k in edges.items()
                           if k.merges and a not in generic and b not in generic)
    for n in nodes:
        expected = {n} if n in generic else nx.node_connected_component(merging, n)
        assert store.component(n).members == expected, n

    def steps() -> Iterator[tuple[str, str, LinkKind]]:
        """Each link in both directions, with what it counts as: an observed link walked from
        its claimant (`y`, see `link`) counts as probable."""
        for (x, y), kind in edges.items():
            yield x, y, kind
            yield y, x, PRO if kind is OBS else kind

    def width(a: str, b: str) -> int | None:
        """The best bottleneck: the strongest k at which a reaches b without passing through a
        generic identifier (a generic end is fine)."""
        for k in sorted(LinkKind, reverse=True):
            g = nx.DiGraph()
            g.add_nodes_from([a, b])
            g.add_edges_from((x, y) for x, y, kind in steps() if kind >= k)
            g.remove_nodes_from([n for n in generic if n not in (a, b)])
            if nx.has_path(g, a, b):
                return int(k)
        return None

    for a, b in [tuple(rng.sample(nodes, 2)) for _ in range(12)]:
        path = store.bottleneck_path(a, b)
        expected = width(a, b)
        if expected is None:
            assert path is None, (a, b)
            continue
        assert path is not None and path_is_valid(path, a, b), (a, b)
        assert int(bottleneck(path, a)) == expected, (a, b)
        inner = [n for lk in path for n in (lk.a, lk.b)]
        assert not set(inner) & set(generic) - {a, b}


# ---- customers, aliases, events ---------------------------------------------------------------

def test_customers_aliases_and_canonical_ids(store):
    a, b = "email:a@example.com", "email:b@example.com"
    build(store, [(a, b, VER)])
    store.apply(ChangeSet(
        customers_created=[Customer("cus_1", T0), Customer("cus_2", T0 + timedelta(hours=1)),
                           Customer("cus_3", T0 + timedelta(hours=2))],
        assignments={a: "cus_1", b: "cus_2"},
    ))
    customers = store.customers(["cus_1", "cus_2", "cus_3", "cus_missing"])
    assert set(customers) == {"cus_1", "cus_2", "cus_3"}
    assert customers["cus_2"].created_at == T0 + timedelta(hours=1)
    assert is_utc(customers["cus_1"].created_at)
    assert store.members("cus_1") == [a] and store.members("cus_2") == [b]

    # creating a customer again keeps its first record
    store.apply(ChangeSet(customers_created=[Customer("cus_1", T0 + timedelta(days=9))]))
    assert store.customers(["cus_1"])["cus_1"].created_at == T0

    # merge: cus_2 -> cus_1, and a chain cus_3 -> cus_2 -> cus_1
    store.apply(ChangeSet(aliases={"cus_2": "cus_1", "cus_3": "cus_2"}, assignments={b: "cus_1"}))
    assert store.canonical_customer_id("cus_1") == "cus_1"
    assert store.canonical_customer_id("cus_2") == "cus_1"
    assert store.canonical_customer_id("cus_3") == "cus_1"
    assert store.canonical_customer_id("cus_never") is None
    assert store.members("cus_1") == [a, b] and store.members("cus_2") == []

    # an alias is an upsert: re-pointing replaces the target
    store.apply(ChangeSet(aliases={"cus_3": "cus_1"}))
    assert store.canonical_customer_id("cus_3") == "cus_1"
    rows = store.export_tables()["aliases"].sort_by("alias").to_pylist()
    assert rows == [{"alias": "cus_2", "customer_id": "cus_1"},
                    {"alias": "cus_3", "customer_id": "cus_1"}]


def test_aliases_of_follows_chains(store):
    store.apply(ChangeSet(
        customers_created=[Customer(f"cus_{i}", T0) for i in range(1, 5)],
        aliases={"cus_2": "cus_1", "cus_3": "cus_2", "cus_4": "cus_3"},
    ))
    assert store.aliases_of("cus_1") == ["cus_2", "cus_3", "cus_4"]
    assert store.aliases_of("cus_3") == ["cus_4"]
    assert store.aliases_of("cus_4") == []


def test_events_get_increasing_seqs_and_read_from_a_seq(store):
    first = store.apply(ChangeSet(events=[
        Event("link.added", {"a": "email:a@example.com", "n": 1}, customer_id="cus_1", at=T0),
        Event("customer.merged", {"into": "cus_1", "from": ["cus_2"]}, at=T0 + timedelta(seconds=1)),
    ]))
    assert first == [1, 2]
    second = store.apply(ChangeSet(events=[Event("x", {"i": i}, at=T0) for i in range(5)]))
    assert second == [3, 4, 5, 6, 7]
    assert store.apply(ChangeSet(identifiers=[up("email:z@example.com")])) == []

    events = store.events()
    assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6, 7]
    assert events[0] == Event("link.added", {"a": "email:a@example.com", "n": 1},
                              customer_id="cus_1", at=T0, seq=1)
    assert events[1].payload == {"into": "cus_1", "from": ["cus_2"]}
    assert all(is_utc(e.at) for e in events)
    assert [e.seq for e in store.events(from_seq=2)] == [3, 4, 5, 6, 7]
    assert [e.seq for e in store.events(from_seq=2, limit=2)] == [3, 4]
    assert [e.payload["i"] for e in store.events(from_seq=5)] == [3, 4]
    assert store.events(from_seq=7) == []


def test_customers_of_gives_each_existing_keys_customer(store):
    build(store, [("email:a@example.com", "phone:+15550001", LinkKind.VERIFIED)], nodes=("cookie:c1",))
    store.apply(ChangeSet(customers_created=[Customer("cus_1", T0)],
                          assignments={"email:a@example.com": "cus_1", "phone:+15550001": "cus_1"}))
    got = store.customers_of(["phone:+15550001", "email:a@example.com", "cookie:c1", "email:none@x.org"])
    assert got == {"email:a@example.com": "cus_1", "phone:+15550001": "cus_1", "cookie:c1": None}
    assert got == {k: n.customer_id for k, n in store.get_identifiers(got).items()}
    assert store.customers_of([]) == {}


def test_a_scoped_snapshot_reads_only_its_columns_and_event_types(store):
    """The relink's snapshot (`SnapshotScope`) is the whole snapshot cut down: same rows, only
    the named columns, only events of the named types, and the same last seq."""
    build(store, [("email:a@example.com", "phone:+15550001", LinkKind.VERIFIED)])
    store.apply(ChangeSet(events=[Event("relink", {"n": 1}, at=T0), Event("x", {"i": 1}, at=T0),
                                  Event("violation", {"kind": "limit"}, at=T0)]))
    scope = SnapshotScope({"identifiers": ("key", "customer_id"), "events": ("seq", "type")},
                          frozenset({"relink", "violation", "absent"}))
    with store.database.snapshot() as whole, store.database.snapshot(scope) as part:
        assert part.last_seq == whole.last_seq == 3
    assert set(part.tables) == {"identifiers", "events"}
    assert part.tables["identifiers"].column_names == ["key", "customer_id"]
    assert sorted(part.tables["identifiers"].column("key").to_pylist()) == \
        sorted(whole.tables["identifiers"].column("key").to_pylist())
    assert sorted(part.tables["events"].to_pylist(), key=lambda r: r["seq"]) == \
        [{"seq": 1, "type": "relink"}, {"seq": 3, "type": "violation"}]
    none = SnapshotScope({"events": ("seq",)}, frozenset())
    with store.database.snapshot(none) as empty:
        assert empty.tables["events"].num_rows == 0


def test_concurrent_event_appends_get_unique_gap_free_seqs(store):
    barrier = threading.Barrier(4)
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            barrier.wait()
            for i in range(4):
                seqs = store.apply(ChangeSet(events=[Event("t", {"t": t, "i": i, "j": j}) for j in range(2)]))
                results.append(seqs)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert sorted(s for seqs in results for s in seqs) == list(range(1, 33))
    assert all(seqs[1] == seqs[0] + 1 for seqs in results)
    assert [e.seq for e in store.events()] == list(range(1, 33))


# ---- lookups, deletion, bulk ------------------------------------------------------------------

def test_keys_by_attribute(store):
    a, b, c, d = "email:a@example.com", "email:b@example.com", "phone:+15550000001", "email:d@example.com"
    store.upsert_identifiers([
        up(a, observations=(obs(a, "first_name", "Ann"), obs(a, "first_name", "Ann", source="web"))),
        up(b, observations=(obs(b, "first_name", "Ann"),)),
        up(c, observations=(obs(c, "first_name", "Bob"),)),
        up(d, observations=(obs(d, "last_name", "Ann"),)),
    ])
    assert store.keys_by_attribute("first_name", ["Ann"]) == [a, b]
    assert store.keys_by_attribute("first_name", ["Ann", "Bob", "Zed"]) == [a, b, c]
    assert store.keys_by_attribute("last_name", ["Ann"]) == [d]
    assert store.keys_by_attribute("city", ["Ann"]) == []
    assert store.keys_by_attribute("first_name", []) == []
    limited = store.keys_by_attribute("first_name", ["Ann", "Bob"], limit=2)
    assert len(limited) == 2 and set(limited) <= {a, b, c}


def test_keys_matching_intersects_exact_and_prefix_parts(store):
    ann, ann2, bob, dee, eve = (f"email:{n}@example.com" for n in ("ann", "ann2", "bob", "dee", "eve"))
    store.upsert_identifiers([
        up(ann, observations=(obs(ann, "last_name", "davis"), obs(ann, "date_of_birth", "1985-03-02"))),
        # the two parts on different observations of one identifier still match
        up(ann2, observations=(obs(ann2, "last_name", "davis"),
                               obs(ann2, "date_of_birth", "1985-11-30", source="crm"))),
        up(bob, observations=(obs(bob, "last_name", "davis"), obs(bob, "date_of_birth", "1986-03-02"))),
        up(dee, observations=(obs(dee, "first_name", "davis"), obs(dee, "date_of_birth", "1985-01-01"))),
        # a value that starts like the prefix in another attribute does not count
        up(eve, observations=(obs(eve, "last_name", "davis"), obs(eve, "postcode", "1985 AB"))),
    ])
    rule = [AttributeMatch("last_name", "davis"), AttributeMatch("date_of_birth", "1985", prefix=True)]
    assert store.keys_matching(rule) == sorted([ann, ann2])
    assert store.keys_matching(list(reversed(rule))) == sorted([ann, ann2])
    davises = sorted([ann, ann2, bob, eve])
    assert store.keys_matching([AttributeMatch("last_name", "davis")]) == davises
    assert store.keys_matching([AttributeMatch("date_of_birth", "1985-0", prefix=True)]) == [ann, dee]
    assert store.keys_matching([AttributeMatch("last_name", "davis")], limit=2) == davises[:2]
    assert store.keys_matching([AttributeMatch("last_name", "Davis")]) == []  # exact, as stored
    assert store.keys_matching([AttributeMatch("last_name", "davis"), AttributeMatch("city", "x")]) == []
    assert store.keys_matching([]) == []
    # With `enough`, a superset once few keys are left, for the caller to check.
    loose = store.keys_matching(rule, enough=10)
    assert {ann, ann2} <= set(loose) <= set(davises) | {ann, ann2, dee}
    assert store.keys_matching(rule, enough=0) == sorted([ann, ann2])
    # Text that looks like a pattern or a query is matched literally.
    assert store.keys_matching([AttributeMatch("date_of_birth", "%", prefix=True)]) == []
    assert store.keys_matching([AttributeMatch("last_name", "' OR 1=1 --")]) == []


def test_delete_identifiers_removes_nodes_observations_and_links(store):
    a, b, c, d = "email:a@example.com", "email:b@example.com", "email:c@example.com", "email:d@example.com"
    store.upsert_identifiers([
        up(a, observations=(obs(a, "first_name", "Ann"), obs(a, "city", "Leeds"))),
        up(b, observations=(obs(b, "first_name", "Bea"),)),
    ])
    ab, bc, ad = build(store, [(a, b, VER), (b, c, OBS), (a, d, PRO)])
    store.remove_links([ad.id], actor="test")
    store.apply(ChangeSet(events=[Event("x", {"k": a})]))

    counts = store.delete_identifiers([a, "email:never@example.com"])
    assert counts == DeleteCounts(identifiers=1, observations=2, links=2, events=0)
    assert store.get_identifier(a) is None
    assert store.observations([a]) == []
    assert store.links([a], include_removed=True) == []
    assert store.links_by_id([ab.id, ad.id]) == []
    assert set(store.get_identifiers([b, c, d])) == {b, c, d}
    assert store.links([b]) == [bc]
    assert [o.value for o in store.observations([b])] == ["Bea"]
    assert len(store.events()) == 1
    assert store.keys_by_attribute("first_name", ["Ann"]) == []

    assert store.delete_identifiers([a]) == DeleteCounts()
    store.upsert_identifiers([up(a, T0 + timedelta(days=5))])  # comes back fresh
    assert store.get_identifier(a).first_seen == T0 + timedelta(days=5)
    assert store.links([a]) == []


def _rich_graph(store: GraphStore) -> None:
    a, b, c = "email:a@example.com", "phone:+15551234567", "whatsapp:+15551234567"
    store.apply(ChangeSet(
        identifiers=[up(a, T0, (obs(a, "first_name", "Ann"), obs(a, "postcode", "LS1 1AA"))),
                     up(b, T0 + timedelta(hours=1)), up(c, T0 - timedelta(hours=1))],
        links_added=[
            link(a, b, PRO, model_version="m1", probability=0.995, match_weight=8.5,
                 comparisons={"first_name": 2}, actor="relink", channel="batch", event_id="run-1"),
            link(b, c, EQU, actor="ingest"),
            link(a, c, POS, model_version="m1", probability=0.85, match_weight=2.0),
        ],
        customers_created=[Customer("cus_1", T0), Customer("cus_0", T0 - timedelta(days=1))],
        assignments={a: "cus_1", b: "cus_1", c: "cus_1"},
        aliases={"cus_0": "cus_1"},
        generic={c: False},
        events=[Event("customer.created", {"id": "cus_1"}, "cus_1", T0),
                Event("alias.added", {"alias": "cus_0"}, "cus_1", T0)],
    ))
    possible = next(lk for lk in store.links([a]) if lk.kind == POS)
    store.remove_links([possible.id], actor="analyst", reason="not the same", at=T0 + timedelta(days=1))
    apart = Constraint(ConstraintKind.CANNOT_LINK, c, a, actor="analyst", reason="not the same",
                       origin="review", created_at=T0 + timedelta(days=1))
    store.apply(ChangeSet(constraints_added=[apart]))


def test_events_between_mentioning_and_erased(store):
    a = "email:ann@example.com"
    store.apply(ChangeSet(events=[
        Event("merge", {"into": "cus_1", "from": ["cus_2"], "actor": "svc"}, "cus_1", T0),
        Event("link.added", {"a": a, "actor": "ann@example.com"}, "cus_3", T0 + timedelta(seconds=1)),
        Event("split", {"from": "cus_3"}, "cus_3", T0 + timedelta(seconds=1)),
        Event("merge", {"into": "cus_9"}, "cus_9", T0 + timedelta(seconds=2)),
    ]))
    assert [e.seq for e in store.events_between(["merge", "split"])] == [1, 3, 4]
    assert [e.seq for e in store.events_between(["merge"], start=T0 + timedelta(seconds=1))] == [4]
    assert [e.seq for e in store.events_between(["merge", "split"], end=T0 + timedelta(seconds=2))] == [1, 3]
    assert [e.seq for e in store.events_between(["merge", "split"], after=(T0, 1), limit=1)] == [3]
    assert store.events_between([]) == []
    assert [e.seq for e in store.events_mentioning([a], ["cus_1"])] == [1, 2]
    assert store.events_mentioning([]) == []

    assert store.erase_event_payloads([a], ["cus_3"]) == 2
    events = {e.seq: e for e in store.events()}
    assert events[2].payload == {"erased": True} and events[2].customer_id == ""  # actor named ann
    assert events[3].payload == {"erased": True} and events[3].type == "split"
    assert events[1].payload["actor"] == "svc" and events[4].customer_id == "cus_9"
    assert store.erase_event_payloads([]) == 0


def test_delete_customers_takes_their_aliases(store):
    store.apply(ChangeSet(
        customers_created=[Customer(f"cus_{i}", T0) for i in range(1, 5)],
        aliases={"cus_2": "cus_1", "cus_4": "cus_3"},
    ))
    assert store.delete_customers(["cus_1", "cus_2", "cus_1", ""]) == (2, 1)
    assert set(store.customers([f"cus_{i}" for i in range(1, 5)])) == {"cus_3", "cus_4"}
    assert store.aliases_of("cus_1") == [] and store.aliases_of("cus_3") == ["cus_4"]
    assert store.delete_customers([]) == (0, 0)


def test_export_then_load_gives_equal_tables(store, tmp_path: Path):
    _rich_graph(store)
    before = snapshot(store)
    tables = store.export_tables()
    for name, schema in TABLES.items():
        assert tables[name].schema == schema
    assert {n: len(rows) for n, rows in before.items()} == {
        "identifiers": 3, "observations": 2, "links": 3, "customers": 2, "aliases": 1, "events": 2,
        "constraints": 1}

    counts = store.export_parquet(tmp_path / "export")
    assert counts == {n: len(rows) for n, rows in before.items()}
    store.clear()
    assert all(len(rows) == 0 for rows in snapshot(store).values())
    assert store.load_parquet(tmp_path / "export") == counts
    assert snapshot(store) == before

    # the loaded store behaves like the original
    assert store.canonical_customer_id("cus_0") == "cus_1"
    assert store.component("email:a@example.com").members == {
        "email:a@example.com", "phone:+15551234567", "whatsapp:+15551234567"}
    assert [e.seq for e in store.events()] == [1, 2]
    assert store.apply(ChangeSet(events=[Event("next", {})])) == [3]


def test_clear_removes_everything(store):
    _rich_graph(store)
    store.clear()
    assert all(len(rows) == 0 for rows in snapshot(store).values())
    assert store.apply(ChangeSet(events=[Event("again", {})])) == [1]


# ---- atomicity and concurrency -----------------------------------------------------------------

@pytest.mark.parametrize("failure", ["unserialisable_payload", "customer_without_id"])
def test_apply_is_atomic(store, failure):
    _rich_graph(store)
    before = snapshot(store)
    a, new = "email:a@example.com", "email:new@example.com"
    existing = store.links([a])[0]
    bad = (Event("broken", {"value": object()}) if failure == "unserialisable_payload"
           else Event("fine", {"ok": True}))
    customers = [Customer("cus_9", T0)]
    if failure == "customer_without_id":
        customers.append(Customer(None, T0))  # type: ignore[arg-type]
    changes = ChangeSet(
        identifiers=[up(new, T0, (obs(new, "first_name", "Neo"),)), up(a, T0 - timedelta(days=30))],
        links_added=[link(a, new, VER)],
        links_removed=[(existing.id, T0, "test", "should not stick")],
        customers_created=customers,
        assignments={new: "cus_9", a: "cus_9"},
        aliases={"cus_1": "cus_9"},
        generic={a: True},
        events=[Event("first", {"ok": 1}), bad],
    )
    with pytest.raises(StoreError):
        store.apply(changes)
    assert snapshot(store) == before
    assert store.get_identifier(new) is None
    # the failed change set used up no sequence numbers
    assert store.apply(ChangeSet(events=[Event("after", {})])) == [3]


def test_concurrent_upserts_of_one_new_identifier_create_one(store):
    key = "email:race@example.com"
    n = 8
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            record = up(key, T0 + timedelta(hours=i),
                        (obs(key, "first_name", f"N{i}", source=f"thread-{i}"),))
            barrier.wait()
            store.upsert_identifiers([record])
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    identifiers = store.export_tables()["identifiers"].to_pylist()
    assert [r["key"] for r in identifiers] == [key]
    node = store.get_identifier(key)
    assert (node.first_seen, node.last_seen) == (T0, T0 + timedelta(hours=n - 1))
    assert sorted(o.source for o in store.observations([key])) == [f"thread-{i}" for i in range(n)]


def test_concurrent_mixed_writes_and_reads(store):
    """Threads link disjoint pairs while others read: nothing is lost, no call fails."""
    n = 6
    barrier = threading.Barrier(n * 2)
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            a, b = f"device_id:w{i}a", f"device_id:w{i}b"
            barrier.wait()
            store.apply(ChangeSet(identifiers=[up(a), up(b), up("email:shared@example.com")],
                                  links_added=[link(a, b, OBS), link(a, "email:shared@example.com", POS)]))
        except BaseException as e:  # reported below
            errors.append(e)

    def reader(i: int) -> None:
        try:
            barrier.wait()
            for _ in range(5):
                store.links([f"device_id:w{i}a", "email:shared@example.com"])
                store.get_identifiers([f"device_id:w{i}b"])
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=f, args=(i,)) for i in range(n) for f in (writer, reader)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert len(store.links(["email:shared@example.com"])) == n
    for i in range(n):
        assert store.component(f"device_id:w{i}a").members == {f"device_id:w{i}a", f"device_id:w{i}b"}


def test_links_keep_their_claimant_and_links_without_one_read_as_unknown(store, tmp_path: Path):
    cookie, phone, email = "web_cookie:c1", "phone:+15551234567", "email:old@example.com"
    typed = link(cookie, phone, OBS, claimant=cookie)
    legacy = Link(cookie, email, OBS, source="old", created_at=T0)  # written before claimants
    store.apply(ChangeSet(identifiers=[up(k) for k in (cookie, phone, email)], links_added=[typed, legacy],
                          customers_created=[Customer("cus_1", T0)],
                          assignments=dict.fromkeys((cookie, phone, email), "cus_1")))
    assert {lk.other(cookie): lk.claimant for lk in store.links([cookie])} == {phone: cookie, email: ""}
    _, links, _ = store.customer_subgraph("cus_1")
    assert {lk.other(cookie): lk.claimant for lk in links} == {phone: cookie, email: ""}
    exported = store.export_tables()["links"].to_pylist()
    assert {r["a"] if r["b"] == cookie else r["b"]: r["claimant"] or "" for r in exported} == {
        phone: cookie, email: ""}
    # A parquet export from before claimants (no column) loads, and its links have none.
    store.export_parquet(tmp_path / "old")
    old = pq.read_table(tmp_path / "old" / "links.parquet").drop_columns(["claimant"])
    pq.write_table(old, tmp_path / "old" / "links.parquet")
    store.clear()
    store.load_parquet(tmp_path / "old")
    assert {lk.claimant for lk in store.links([cookie])} == {""}


# ---- people's decisions (constraints) and the review queue --------------------------------------

def test_constraints_are_kept_withdrawn_with_audit_and_erased_with_their_identifiers(store):
    a, b, c = "email:a@example.com", "phone:+15551234567", "email:c@example.com"
    store.upsert_identifiers([up(a), up(b), up(c)])
    apart = Constraint(ConstraintKind.CANNOT_LINK, b, a, actor="agent:kim", reason="two people",
                       origin="unlink", created_at=T0)
    fixed = Constraint(ConstraintKind.MUST_LINK, a, c, actor="analyst:lee", reason="checked",
                       origin="review", link_id="lnk1", created_at=T0 + timedelta(seconds=1))
    store.apply(ChangeSet(constraints_added=[apart, fixed]))
    store.apply(ChangeSet(constraints_added=[apart]))  # the same decision twice is one
    assert (apart.a, apart.b) == (a, b), "ends are kept sorted"
    assert store.constraints([a]) == [apart, fixed]
    assert store.constraints([b]) == [apart] and store.constraints(None) == [apart, fixed]
    assert store.constraints([]) == []
    assert store.constraints_by_id([fixed.id, "con_x"]) == {fixed.id: fixed}
    later = T0 + timedelta(days=1)
    store.apply(ChangeSet(constraints_withdrawn=[(apart.id, later, "analyst:lee", "same after all")]))
    store.apply(ChangeSet(constraints_withdrawn=[(apart.id, later + timedelta(days=1), "x", "again")]))
    assert store.constraints([b]) == []
    [gone] = store.constraints([b], include_withdrawn=True)
    assert (gone.withdrawn_at, gone.withdrawn_by, gone.withdrawal_reason) == (
        later, "analyst:lee", "same after all"), "a withdrawal is recorded once, never edited"
    table = store.export_tables()["constraints"]
    assert sorted(table.column("kind").to_pylist()) == ["cannot_link", "must_link"]
    store.delete_identifiers([c])
    assert store.constraints(None, include_withdrawn=True) == [gone]


def test_active_links_of_kind_pages_by_age_or_score(store):
    keys = [f"email:p{i}@example.com" for i in range(5)]
    store.upsert_identifiers([up(k) for k in keys])
    probs = [0.85, 0.95, 0.81, 0.9]
    store.add_links([link(keys[i], keys[i + 1], POS, probability=p, model_version="m1",
                          created_at=T0 + timedelta(minutes=i)) for i, p in enumerate(probs)]
                    + [link(keys[0], keys[4], PRO, probability=0.999)])
    oldest, total = store.active_links_of_kind(POS, limit=2)
    assert total == 4 and [lk.probability for lk in oldest] == [0.85, 0.95]
    page2, _ = store.active_links_of_kind(POS, limit=2, offset=2)
    assert [lk.probability for lk in page2] == [0.81, 0.9]
    best, _ = store.active_links_of_kind(POS, by_score=True, limit=3)
    assert [lk.probability for lk in best] == [0.95, 0.9, 0.85]
    store.remove_links([best[0].id], actor="analyst", reason="rejected")
    assert store.active_links_of_kind(POS, by_score=True, limit=10)[1] == 3
