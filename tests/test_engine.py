"""The identity engine on both backends: linking, guardrails, stable ids, splits, events."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from identity_graph.config import GraphConfig
from identity_graph.engine import IdentityGraph, Proof, ResolveRequest
from identity_graph.errors import FailedPrecondition, InvalidArgument, NotFound
from identity_graph.model import LinkKind
from identity_graph.writelock import read_consistently


class Clock:
    """A clock that moves one second per reading, so that 'older' is well defined."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def graph(store) -> IdentityGraph:
    counter = itertools.count(1)
    return IdentityGraph(store, clock=Clock(), id_factory=lambda: f"cus_{next(counter):04d}")


ALICE = {"first_name": "Alice", "last_name": "Smith", "date_of_birth": "1980-01-01"}
BOB = {"first_name": "Bob", "last_name": "Smith", "date_of_birth": "2010-05-05"}


def web(cookie: str, *others: tuple[str, str], attrs: dict | None = None, proof: Proof | None = None):
    return ResolveRequest("web", [("web_cookie", cookie), *others], attrs or {}, proof)


def test_first_contact_creates_a_customer_and_repeat_contact_finds_it(graph: IdentityGraph) -> None:
    first = graph.resolve(web("c1", ("email", "A@X.com")))
    assert first.is_new and first.customer_id == "cus_0001"
    assert [(lk.a, lk.b, lk.kind) for lk in first.links] == [
        ("email:a@x.com", "web_cookie:c1", LinkKind.OBSERVED)
    ]
    again = graph.resolve(ResolveRequest("web", [("email", "a@x.com")]))
    assert not again.is_new and again.customer_id == first.customer_id and again.links == []
    assert again.assurance == {"email:a@x.com": LinkKind.VERIFIED, "web_cookie:c1": LinkKind.OBSERVED}


def test_whatsapp_is_equivalent_to_the_same_phone(graph: IdentityGraph) -> None:
    sms = graph.resolve(ResolveRequest("sms", [("phone", "(555) 123-4567")]))
    wa = graph.resolve(ResolveRequest("whatsapp", [("whatsapp", "+1 555 123 4567")]))
    assert wa.customer_id == sms.customer_id
    assert [lk.kind for lk in wa.links] == [LinkKind.EQUIVALENT]
    assert wa.assurance["phone:+15551234567"] is LinkKind.EQUIVALENT


def test_proof_makes_a_verified_link(graph: IdentityGraph) -> None:
    r = graph.resolve(web("c1", ("account_id", "acct-1"), proof=Proof("login", "account_id:acct-1")))
    assert [lk.kind for lk in r.links] == [LinkKind.VERIFIED]
    with pytest.raises(InvalidArgument) as err:
        graph.resolve(web("c1", proof=Proof("login", "account_id:other")))
    assert err.value.field == "proof.identifier"


def test_merge_keeps_the_older_id_and_the_other_becomes_an_alias(graph: IdentityGraph) -> None:
    old = graph.resolve(web("c1", ("email", "a@x.com"))).customer_id
    young = graph.resolve(ResolveRequest("sms", [("phone", "+15551234567")])).customer_id
    merged = graph.resolve(web("c2", ("email", "a@x.com"), ("phone", "+15551234567")))
    assert merged.customer_id == old and merged.merged == [young]
    assert graph.customers.id_of(young) == old
    assert graph.store.aliases_of(old) == [young]
    view = graph.customers.get(young)
    assert view.customer_id == old
    assert {n.key for n in view.identifiers} == {
        "web_cookie:c1",
        "web_cookie:c2",
        "email:a@x.com",
        "phone:+15551234567",
    }
    kinds = [e.type for e in graph.events.read()]
    assert "merge" in kinds and "alias" in kinds
    seqs = [e.seq for e in graph.events.read()]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_blocked_values_link_nothing(graph: IdentityGraph) -> None:
    r = graph.resolve(web("c1", ("email", "test@test.com"), ("phone", "0000000000")))
    assert r.links == []
    assert {(v.kind, v.key) for v in r.violations} == {
        ("blocked", "email:test@test.com"),
        ("blocked", "phone:+10000000000"),
    }
    assert graph.store.get_identifier("email:test@test.com") is None
    other = graph.resolve(web("c2", ("email", "test@test.com")))
    assert other.customer_id != r.customer_id


def test_per_type_limit_stops_the_link_and_records_why(store) -> None:
    graph = IdentityGraph(store, GraphConfig(limits={"email": 2}), clock=Clock())
    graph.resolve(web("c1", ("email", "a@x.com"), ("email", "b@x.com")))
    r = graph.resolve(web("c1", ("email", "c@x.com")))
    assert [v.kind for v in r.violations] == ["limit"]
    assert "at most 2 email" in r.violations[0].reason
    assert (
        graph.store.get_identifier("email:c@x.com").customer_id != r.customer_id
        or len(graph.store.members(r.customer_id)) == 3
    )
    assert sorted(graph.store.members(graph.customers.id_of("web_cookie:c1"))) == [
        "email:a@x.com",
        "email:b@x.com",
        "web_cookie:c1",
    ]
    assert any(e.type == "violation" for e in graph.events.read())


def test_family_phone_is_set_apart_and_does_not_merge(graph: IdentityGraph) -> None:
    alice = graph.resolve(web("ca", ("email", "alice@x.com"), ("phone", "+15557654321"), attrs=ALICE))
    bob = graph.resolve(web("cb", ("email", "bob@x.com"), ("phone", "+15557654321"), attrs=BOB))
    assert bob.customer_id != alice.customer_id
    assert [(v.kind, v.key) for v in bob.violations] == [("generic", "phone:+15557654321")]
    assert graph.store.get_identifier("phone:+15557654321").generic
    assert graph.customers.id_of("email:alice@x.com") == alice.customer_id
    assert graph.customers.id_of("email:bob@x.com") == bob.customer_id
    # The phone keeps its links for Explain, but no path passes through it.
    assert graph.customers.explain("email:alice@x.com", "email:bob@x.com").path == []
    assert graph.customers.explain("email:alice@x.com", "email:bob@x.com").assurance is None
    assert len(graph.store.links(["phone:+15557654321"])) == 2


def test_lookalike_on_a_new_phone_is_recognised_but_not_trusted(graph: IdentityGraph) -> None:
    victim = graph.resolve(web("cv", ("email", "v@x.com"), attrs=ALICE)).customer_id
    graph.links.add(
        "phone:+15550001111",
        "email:v@x.com",
        LinkKind.PROBABLE,
        source="splink",
        actor="test",
        probability=0.995,
        match_weight=7.6,
        model_version="m1",
    )
    r = graph.resolve(ResolveRequest("sms", [("phone", "+15550001111")]))
    assert r.customer_id == victim
    assert r.assurance["email:v@x.com"] is LinkKind.PROBABLE
    assert r.assurance["web_cookie:cv"] is LinkKind.PROBABLE
    assert all(
        k < graph.config.disclosure_level for key, k in r.assurance.items() if key != "phone:+15550001111"
    )


def test_bottleneck_path_prefers_strong_links_over_short_ones(graph: IdentityGraph) -> None:
    for a, b, kind in [
        ("email:a@x.com", "phone:+15551230001", LinkKind.PROBABLE),
        ("email:a@x.com", "web_cookie:k1", LinkKind.VERIFIED),
        ("web_cookie:k1", "account_id:u1", LinkKind.OBSERVED),
        ("account_id:u1", "phone:+15551230001", LinkKind.VERIFIED),
    ]:
        graph.links.add(
            a, b, kind, source="t", actor="t", probability=0.999 if kind == LinkKind.PROBABLE else None,
            claimant=b if kind == LinkKind.OBSERVED else "",
        )
    ex = graph.customers.explain("email:a@x.com", "phone:+15551230001")
    assert ex.assurance is LinkKind.OBSERVED and len(ex.path) == 3 and ex.same_customer


def test_split_previews_then_keeps_the_id_with_the_verified_side(graph: IdentityGraph) -> None:
    r = graph.resolve(web("c1", ("account_id", "u1"), proof=Proof("login", "account_id:u1")))
    graph.resolve(web("c1", ("email", "old-owner@x.com")))
    graph.resolve(ResolveRequest("sms", [("phone", "+15551112222")]))
    graph.links.add("email:old-owner@x.com", "phone:+15551112222", LinkKind.OBSERVED, source="t", actor="t")
    cid = r.customer_id
    assert len(graph.store.members(cid)) == 4
    before = len(graph.events.read())
    plan = graph.links.preview_split(cut=[("email:old-owner@x.com", "phone:+15551112222")], actor="ops")
    assert len(graph.events.read()) == before  # a preview writes nothing
    assert graph.customers.id_of("phone:+15551112222") == cid
    kept = next(p for p in plan.parts if not p.is_new)
    assert kept.customer_id == cid and "account_id:u1" in kept.members
    done = graph.links.split(cut=[("email:old-owner@x.com", "phone:+15551112222")], actor="ops")
    assert [p.members for p in done.parts] == [p.members for p in plan.parts]
    assert graph.customers.id_of("phone:+15551112222") != cid
    assert graph.customers.id_of("account_id:u1") == cid
    assert any(e.type == "split" for e in graph.events.read(before))
    with pytest.raises(FailedPrecondition):
        graph.links.preview_split(detach=["web_cookie:c1", "phone:+15551112222"])


def test_unlink_of_a_recycled_number_moves_it_out(graph: IdentityGraph) -> None:
    owner = graph.resolve(web("c1")).customer_id  # the cookie is older, so it keeps the id
    graph.resolve(web("c1", ("phone", "+15553334444")))
    graph.links.remove("web_cookie:c1", "phone:+15553334444", actor="ops", reason="number recycled")
    assert graph.customers.id_of("web_cookie:c1") == owner
    assert graph.customers.id_of("phone:+15553334444") != owner
    removed = graph.store.links(["phone:+15553334444"], include_removed=True)
    assert len(removed) == 1 and removed[0].removed_by == "ops"
    with pytest.raises(NotFound):
        graph.links.remove("web_cookie:c1", "phone:+15553334444", actor="ops")


def test_bad_input_names_the_field(graph: IdentityGraph) -> None:
    with pytest.raises(InvalidArgument) as err:
        graph.resolve(ResolveRequest("web", [("web_cookie", "ok"), ("phone", "not a phone")]))
    assert err.value.field == "identifiers[1].value"
    with pytest.raises(InvalidArgument) as err:
        graph.resolve(ResolveRequest("web", [("web_cookie", "ok")], {"date_of_birth": "31/12/1980"}))
    assert err.value.field == "attributes.date_of_birth"
    with pytest.raises(InvalidArgument):
        graph.resolve(ResolveRequest("web", []))
    assert graph.events.read() == []  # nothing was written by rejected calls


MARIA = {
    "first_name": "Maria",
    "last_name": "Lopez",
    "date_of_birth": "1988-03-14",
    "street": "12 High Street",
    "postcode": "SW1A 1AA",
    "city": "London",
}


@pytest.fixture
def scored(store) -> IdentityGraph:
    from identity_graph.matching import OnlineScorer, load_starter_model

    return IdentityGraph(store, clock=Clock(), scorer=OnlineScorer(load_starter_model()))


def test_candidate_lookups_find_every_record_that_shares_a_blocking_key(scored: IdentityGraph) -> None:
    """Splink pairs two records when any blocking rule gives them the same key; the online path
    must find all of those through the store's lookups (a superset it then checks)."""
    from batch.quality import load_synthetic

    load_synthetic(scored.store, 80, seed=11)
    scorer = scored.scorer
    assert scorer is not None
    keys = scored.store.export_tables()["identifiers"].column("key").to_pylist()
    records = scored.resolve.candidate_records(keys)
    blocking = {k: set(scorer.blocking_keys({**records[k], "unique_id": k})) for k in keys}
    with_keys = [k for k in keys if blocking[k]]
    assert len(with_keys) > 100
    checked = 0
    for k in with_keys[::3]:
        expected = {o for o in with_keys if o != k and blocking[o] & blocking[k]}
        found = set()
        for conditions in scorer.blocking_lookups({**records[k], "unique_id": k}):
            found.update(scored.store.keys_matching(conditions, limit=10_000))
        assert expected <= found, (k, sorted(expected - found)[:5])
        checked += len(expected)
    assert checked > 50  # the synthetic people do share names, birth dates and postcodes


def test_probabilistic_link_from_attributes_is_recognised_not_trusted(scored: IdentityGraph) -> None:
    first = scored.resolve(ResolveRequest("web", [("web_cookie", "c1")], MARIA))
    typo = scored.resolve(
        ResolveRequest("sms", [("phone", "+447700900123")], {**MARIA, "first_name": "Marja"})
    )
    assert typo.customer_id == first.customer_id
    [link] = typo.links
    assert link.kind is LinkKind.PROBABLE and link.probability >= 0.99
    assert link.model_version == scored.scorer.version
    bits = sum(c["bits"] for c in link.comparisons["comparisons"])
    assert abs(link.comparisons["prior_match_weight"] + bits - link.match_weight) < 1e-9
    assert typo.assurance["web_cookie:c1"] is LinkKind.PROBABLE


def test_household_member_with_same_surname_and_address_is_not_linked(scored: IdentityGraph) -> None:
    parent = scored.resolve(ResolveRequest("web", [("web_cookie", "c1")], MARIA))
    child = scored.resolve(
        ResolveRequest(
            "sms",
            [("phone", "+447700900124")],
            {**MARIA, "first_name": "Pedro", "date_of_birth": "2012-06-01"},
        )
    )
    assert child.customer_id != parent.customer_id
    assert all(lk.kind is not LinkKind.PROBABLE for lk in child.links)


# ---- reads beside writes (WriteLock) ----------------------------------------------------------


def test_a_read_that_overlaps_a_write_runs_again(graph: IdentityGraph) -> None:
    graph.resolve(web("r1", ("email", "r1@x.io")))
    cid = graph.customers.id_of("email:r1@x.io")
    tracker = graph.store.writes
    runs: list[list[str]] = []

    def read() -> list[str]:
        if not runs:  # another thread writes while this read is under way
            t = threading.Thread(target=graph.resolve, args=(web("r1", ("phone", "+15550001111")),))
            t.start()
            t.join(10)
        runs.append(graph.store.members(cid))
        return runs[-1]

    before = tracker.retries
    assert "phone:+15550001111" in read_consistently(tracker, graph.write_lock, read)
    assert len(runs) == 2 and tracker.retries == before + 1


def test_a_read_waits_for_a_write_under_way(graph: IdentityGraph) -> None:
    graph.resolve(web("w1"))
    entered, release = threading.Event(), threading.Event()

    def write() -> None:
        # As an engine write does: under the lock, with a store write under way (held open here).
        with graph.write_lock, graph.store.writes.writing():
            entered.set()
            release.wait(10)
            graph.resolve(web("w1", ("email", "w1@x.io")))  # the lock is re-entrant

    writer = threading.Thread(target=write)
    writer.start()
    assert entered.wait(10)
    seen: list[str] = []
    reader = threading.Thread(
        target=lambda: seen.extend(n.key for n in graph.customers.get("web_cookie:w1").identifiers))
    reader.start()
    time.sleep(0.3)
    assert reader.is_alive() and not seen  # it does not read the half-written customer
    release.set()
    writer.join(10)
    reader.join(10)
    assert "email:w1@x.io" in seen


def test_get_customer_never_sees_half_a_split_or_merge(graph: IdentityGraph) -> None:
    graph.resolve(web("h1", ("email", "h@x.io"), ("phone", "+15550002222")))
    done = threading.Event()
    torn: list[tuple[str, list[tuple[str, str | None]]]] = []
    reads = [0]

    def read() -> None:
        while not done.is_set():
            view = graph.customers.get("email:h@x.io")
            reads[0] += 1
            owners = [(n.key, n.customer_id) for n in view.identifiers]
            if any(c != view.customer_id for _, c in owners):
                torn.append((view.customer_id, owners))

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        for i in range(15):
            graph.links.split(detach=["phone:+15550002222"], actor="test")
            # a person's split is a cannot-link; a person's link of the same pair supersedes it
            graph.links.add("web_cookie:h1", "phone:+15550002222", LinkKind.OBSERVED, source=f"t{i}",
                            actor="test", by_person=True)
    finally:
        done.set()
        for t in readers:
            t.join(30)
    assert reads[0] > 10
    assert torn == []


def test_customer_members_reads_id_and_members_of_one_moment(graph: IdentityGraph) -> None:
    graph.resolve(web("m1", ("email", "m1@x.io")))
    cid, members = graph.customers.members("email:m1@x.io")
    assert cid == graph.customers.id_of("web_cookie:m1") and members == ["email:m1@x.io", "web_cookie:m1"]
    assert graph.customers.members(cid) == (cid, members)
    with pytest.raises(NotFound):
        graph.customers.members("email:nobody@x.io")


def test_customer_subgraph_is_what_the_separate_reads_return(graph: IdentityGraph) -> None:
    graph.resolve(web("s1", ("email", "s1@x.io"), ("phone", "+15550003333")))
    graph.resolve(ResolveRequest("sms", [("phone", "+15550003333"), ("email", "s2@x.io")]))
    graph.resolve(ResolveRequest("web", [("web_cookie", "s9"), ("email", "s9@x.io")]))
    # a weak link out of the customer, a removed link, a generic member
    graph.links.add("email:s1@x.io", "email:s9@x.io", LinkKind.POSSIBLE, source="t", actor="t",
                    probability=0.6)
    graph.links.add("web_cookie:s1", "email:s2@x.io", LinkKind.OBSERVED, source="t", actor="t")
    graph.links.remove("web_cookie:s1", "email:s2@x.io", actor="t")
    graph.links.set_generic("phone:+15550003333", True, actor="t")
    store = graph.store
    cids = {graph.customers.id_of(k) for k in ("email:s1@x.io", "email:s9@x.io", "phone:+15550003333")}
    assert len(cids) >= 2
    for cid in cids:
        members = store.members(cid)
        links = store.links(members)
        ends = set(members) | {lk.a for lk in links} | {lk.b for lk in links}
        got = store.customer_subgraph(cid)
        assert got == (members, links, store.get_identifiers(ends)), cid
        assert any(lk.kind is LinkKind.POSSIBLE for lk in got[1]) or cid not in {
            graph.customers.id_of("email:s1@x.io"), graph.customers.id_of("email:s9@x.io")}
    assert store.customer_subgraph("cus_nobody") == ([], [], {})
    for key in ("email:s1@x.io", "phone:+15550003333", "email:s9@x.io", "web_cookie:s1"):
        node = store.get_identifier(key)
        assert node is not None
        assert store.identifier_subgraph(key) == (node, store.customer_subgraph(node.customer_id)), key
    assert store.identifier_subgraph("email:nobody@x.io") == (None, ([], [], {}))
