"""Neo4j-only behaviour of `Neo4jStore`, against a real server: schema, concurrency, bulk, Cypher."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from neo4j import GraphDatabase

from identity_graph.model import (
    ChangeSet,
    Customer,
    Event,
    IdentifierUpsert,
    Link,
    LinkKind,
    Observation,
    stable_id,
)
from identity_graph.store import neo4j as neo4j_module
from identity_graph.store import open_store
from identity_graph.store.neo4j import CONSTRAINTS, INDEXES, Neo4jStore
from identity_graph.store.tables import TABLES

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def graph(neo4j_server) -> Iterator[Neo4jStore]:
    s = open_store(neo4j_uri=neo4j_server.uri, neo4j_user=neo4j_server.user,
                   neo4j_password=neo4j_server.password)
    s.clear()
    try:
        yield s
    finally:
        s.clear()
        s.close()


@pytest.fixture
def cypher(neo4j_server):
    """Runs read-only Cypher on the server through its own driver; returns the records."""
    driver = GraphDatabase.driver(neo4j_server.uri, auth=(neo4j_server.user, neo4j_server.password))

    def run(query, **params):
        return driver.execute_query(query, params, database_="neo4j").records

    try:
        yield run
    finally:
        driver.close()


def _schema(cypher) -> tuple[dict[str, dict], dict[str, dict]]:
    constraints = {r["name"]: dict(r) for r in cypher("SHOW CONSTRAINTS")}
    indexes = {r["name"]: dict(r) for r in cypher("SHOW INDEXES")}
    return constraints, indexes


def test_constraints_and_indexes_exist_after_construction(graph, cypher):
    constraints, indexes = _schema(cypher)
    assert set(CONSTRAINTS) <= set(constraints)
    assert set(INDEXES) <= set(indexes)
    assert constraints["ig_identifier_key"]["type"] == "UNIQUENESS"
    assert constraints["ig_identifier_key"]["labelsOrTypes"] == ["Identifier"]
    assert constraints["ig_identifier_key"]["properties"] == ["key"]
    assert constraints["ig_link_id"]["type"] == "RELATIONSHIP_UNIQUENESS"
    assert constraints["ig_link_id"]["labelsOrTypes"] == ["LINK"]
    assert indexes["ig_observation_attribute_value"]["properties"] == ["attribute", "value"]
    assert indexes["ig_identifier_customer"]["properties"] == ["customer_id"]
    assert all(indexes[name]["state"] == "ONLINE" for name in (*CONSTRAINTS, *INDEXES))


def test_constructing_twice_is_harmless(graph, neo4j_server, cypher):
    graph.upsert_identifiers([IdentifierUpsert("email:a@x.com", "email", "a@x.com", T0)])
    before = _schema(cypher)
    again = open_store(neo4j_uri=neo4j_server.uri, neo4j_user=neo4j_server.user,
                   neo4j_password=neo4j_server.password)
    try:
        assert _schema(cypher) == before
        assert again.get_identifier("email:a@x.com") is not None
    finally:
        again.close()
    assert graph.get_identifier("email:a@x.com") is not None


def test_two_clients_upserting_the_same_new_key_create_one_node(graph, neo4j_server, cypher):
    rounds = 25
    clients = [open_store(neo4j_uri=neo4j_server.uri, neo4j_user=neo4j_server.user,
                   neo4j_password=neo4j_server.password)
               for _ in range(2)]
    barrier = threading.Barrier(len(clients))
    seqs: list[list[int]] = [[] for _ in clients]
    errors: list[BaseException] = []

    def client(n: int) -> None:
        try:
            for i in range(rounds):
                key = f"email:race{i}@x.com"
                seen = T0 + timedelta(minutes=n)
                obs = Observation(key, "last_name", "Race", "crm", "web", T0)
                barrier.wait(timeout=30)
                seqs[n].extend(clients[n].apply(ChangeSet(
                    identifiers=[IdentifierUpsert(key, "email", f"race{i}@x.com", seen, (obs,))],
                    links_added=[Link(key, "phone:+15550000000", LinkKind.OBSERVED,
                                      source="web", created_at=T0)],
                    events=[Event("upsert", {"key": key, "client": n}, at=seen)],
                )))
        except BaseException as e:
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for c in clients:
        c.close()
    assert not errors, errors

    rows = cypher("MATCH (n:Identifier) WHERE n.key STARTS WITH 'email:race' "
                  "OPTIONAL MATCH (n)-[:OBSERVED_WITH]->(o:Observation) "
                  "OPTIONAL MATCH (n)-[l:LINK]-() "
                  "RETURN n.key AS key, count(DISTINCT o) AS obs, count(DISTINCT l) AS links")
    assert len(rows) == rounds
    assert all(r["obs"] == 1 and r["links"] == 1 for r in rows)
    assert cypher("MATCH (n:Identifier) RETURN n.key AS key, count(*) AS n ORDER BY n DESC "
                  "LIMIT 1")[0]["n"] == 1
    node = graph.get_identifier("email:race0@x.com")
    assert node is not None
    assert (node.first_seen, node.last_seen) == (T0, T0 + timedelta(minutes=1))
    # Both clients' events got distinct, gap-free, increasing seqs from the counter node.
    for own in seqs:
        assert own == sorted(own)
    assert sorted(seqs[0] + seqs[1]) == list(range(1, 2 * rounds + 1))
    assert [e.seq for e in graph.events(0, 1000)] == list(range(1, 2 * rounds + 1))


def _bulk_tables(n_links: int) -> dict[str, pa.Table]:
    keys = [f"account_id:{i:07d}" for i in range(n_links + 1)]
    created = [T0 + timedelta(seconds=i) for i in range(n_links)]
    kinds = [LinkKind(1 + i % 5).label for i in range(n_links)]
    links = {
        "link_id": [stable_id("bulk", i) for i in range(n_links)],
        "a": keys[:-1],
        "b": keys[1:],
        "kind": kinds,
        "source": ["bulk"] * n_links,
        "channel": [""] * n_links,
        "event_id": [f"ev{i}" for i in range(n_links)],
        "model_version": [""] * n_links,
        "probability": [0.995 if k == "probable" else None for k in kinds],
        "match_weight": [7.5 if k == "probable" else None for k in kinds],
        "comparisons": [None] * n_links,
        "created_at": created,
        "actor": ["loader"] * n_links,
        "removed_at": [None] * n_links,
        "removed_by": [""] * n_links,
        "removal_reason": [""] * n_links,
        "claimant": [""] * n_links,
        "revision": [0] * n_links,
    }
    identifiers = {
        "key": keys,
        "type": ["account_id"] * len(keys),
        "value": [k.split(":", 1)[1] for k in keys],
        "first_seen": [T0] * len(keys),
        "last_seen": [T0] * len(keys),
        "customer_id": ["cus_bulk"] * len(keys),
        "generic": [False] * len(keys),
    }
    empty = {name: pa.table({c: [] for c in schema.names}, schema=schema)
             for name, schema in TABLES.items()}
    return {
        **empty,
        "identifiers": pa.table(identifiers, schema=TABLES["identifiers"]),
        "links": pa.table(links, schema=TABLES["links"]),
        "customers": pa.table({"id": ["cus_bulk"], "created_at": [T0]}, schema=TABLES["customers"]),
    }


@pytest.mark.slow
def test_bulk_load_of_50k_links(graph, tmp_path: Path, cypher):
    n = 50_000
    src = tmp_path / "bulk"
    src.mkdir()
    for name, table in _bulk_tables(n).items():
        pq.write_table(table, src / f"{name}.parquet")

    started = time.perf_counter()
    counts = graph.load_parquet(src)
    elapsed = time.perf_counter() - started
    print(f"\nneo4j load_parquet: {n} links + {n + 1} identifiers in {elapsed:.1f} s "
          f"= {n / elapsed:,.0f} links/s")
    assert counts["links"] == n

    assert cypher("MATCH ()-[l:LINK]->() RETURN count(l) AS n")[0]["n"] == n
    assert cypher("MATCH (n:Identifier) RETURN count(n) AS n")[0]["n"] == n + 1
    assert len(graph.members("cus_bulk")) == n + 1
    middle = graph.links(["account_id:0025000"])
    assert [(lk.a, lk.b) for lk in middle] == [("account_id:0024999", "account_id:0025000"),
                                                ("account_id:0025000", "account_id:0025001")]

    started = time.perf_counter()
    exported = graph.export_tables()
    print(f"neo4j export_tables: {sum(t.num_rows for t in exported.values())} rows "
          f"in {time.perf_counter() - started:.1f} s")
    assert exported["links"].num_rows == n
    assert exported["links"].column("link_id").to_pylist() == sorted(
        exported["links"].column("link_id").to_pylist())


@pytest.mark.slow
def test_apply_of_50k_links_in_one_transaction(graph, cypher):
    n = 50_000
    keys = [f"device_id:{i:07d}" for i in range(n + 1)]
    changes = ChangeSet(
        identifiers=[IdentifierUpsert(k, "device_id", k.split(":", 1)[1], T0) for k in keys],
        links_added=[Link(keys[i], keys[i + 1], LinkKind.OBSERVED, source="bulk",
                          event_id=f"ev{i}", created_at=T0) for i in range(n)],
        events=[Event("bulk", {"links": n})],
    )
    started = time.perf_counter()
    seqs = graph.apply(changes)
    elapsed = time.perf_counter() - started
    print(f"\nneo4j apply: {n} links + {n + 1} identifiers in one transaction in {elapsed:.1f} s "
          f"= {n / elapsed:,.0f} links/s")
    assert seqs == [1]
    assert cypher("MATCH ()-[l:LINK]->() RETURN count(l) AS n")[0]["n"] == n
    # Applying the same change set again writes no new link or identifier.
    graph.apply(ChangeSet(links_added=changes.links_added[:1000]))
    assert cypher("MATCH ()-[l:LINK]->() RETURN count(l) AS n")[0]["n"] == n


def _docstring_queries() -> dict[str, str]:
    """The example queries of the module docstring, by their `//` comment."""
    doc = neo4j_module.__doc__ or ""
    text = doc.split("Example queries:", 1)[1]
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("//"):
            current = line[2:].strip()
            out[current] = []
        elif line and current is not None:
            out[current].append(line)
    return {name: "\n".join(lines) for name, lines in out.items()}


def test_the_docstring_cypher_examples_run(graph, cypher):
    queries = _docstring_queries()
    assert len(queries) == 3
    keys = ["email:ann@x.com", "phone:+15551234567", "whatsapp:+15551234567", "web_cookie:c1"]
    graph.apply(ChangeSet(
        identifiers=[
            IdentifierUpsert(k, k.split(":")[0], k.split(":", 1)[1], T0,
                             (Observation(k, "last_name", "Smith", "crm", "", T0),)
                             if k.startswith("email") else ())
            for k in keys
        ],
        links_added=[
            Link(keys[0], keys[1], LinkKind.VERIFIED, source="otp", created_at=T0),
            Link(keys[1], keys[2], LinkKind.EQUIVALENT, source="rule", created_at=T0),
            Link(keys[0], keys[3], LinkKind.POSSIBLE, source="splink", probability=0.9,
                 created_at=T0),
        ],
        customers_created=[Customer("cus_ann", T0)],
        assignments={k: "cus_ann" for k in keys[:3]},
    ))
    params = {"customer_id": "cus_ann", "name": "Smith", "a": keys[0], "b": keys[2]}
    results = {}
    for name, query in queries.items():
        wanted = set(re.findall(r"\$(\w+)", query))
        results[name] = cypher(query, **{p: params[p] for p in wanted})

    links = results["the active links inside a customer, with their evidence"]
    assert {(r["a.key"], r["l.kind"], r["b.key"]) for r in links} == {
        (keys[0], "verified", keys[1]), (keys[1], "equivalent", keys[2])}
    named = results["identifiers observed with a last name, and their customers"]
    assert [(r["i.key"], r["i.customer_id"]) for r in named] == [(keys[0], "cus_ann")]
    path = results["a shortest chain of active, merging links between two identifiers"]
    assert [(r["keys"], r["kinds"]) for r in path] == [(keys[:3], ["verified", "equivalent"])]


def test_dates_come_back_as_python_utc_datetimes(graph):
    graph.apply(ChangeSet(
        identifiers=[IdentifierUpsert("email:a@x.com", "email", "a@x.com",
                                      datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC))],
        customers_created=[Customer("cus_1", T0)],
        events=[Event("created", {"n": 1}, "cus_1", at=T0)],
    ))
    node = graph.get_identifier("email:a@x.com")
    assert node is not None
    assert type(node.first_seen) is datetime
    assert node.first_seen == datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
    assert node.first_seen.utcoffset() == timedelta(0)
    assert type(graph.customers(["cus_1"])["cus_1"].created_at) is datetime
    assert type(graph.events()[0].at) is datetime


@pytest.mark.parametrize("at", [
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 58, 500000, tzinfo=UTC),
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(2024, 2, 29, 23, 59, 59, 1, tzinfo=timezone(timedelta(hours=-5))),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
])
def test_times_round_trip_exactly_as_neo4j_datetimes(graph, cypher, at):
    """Times cross Bolt as epoch microseconds; the server holds real DateTime values."""
    graph.upsert_identifiers([IdentifierUpsert("email:a@x.com", "email", "a@x.com", at)])
    node = graph.get_identifier("email:a@x.com")
    assert node is not None
    assert node.first_seen == at
    assert node.first_seen.tzinfo is UTC
    stored = cypher("MATCH (n:Identifier {key: 'email:a@x.com'}) RETURN n.first_seen AS t")[0]["t"]
    assert stored.to_native() == at
    exported = graph.export_tables()["identifiers"].column("first_seen").to_pylist()
    assert exported == [at]


def test_links_to_unknown_identifiers_are_kept_but_not_listed_as_identifiers(graph, cypher):
    graph.add_links([Link("email:a@x.com", "email:b@x.com", LinkKind.OBSERVED, created_at=T0)])
    assert graph.get_identifiers(["email:a@x.com", "email:b@x.com"]) == {}
    assert len(graph.links(["email:a@x.com"])) == 1
    assert graph.export_tables()["identifiers"].num_rows == 0
    counts = graph.delete_identifiers(["email:a@x.com"])
    assert (counts.identifiers, counts.links) == (0, 1)
    # The other placeholder, now without links, is gone too.
    assert cypher("MATCH (n) RETURN count(n) AS n")[0]["n"] == 0
