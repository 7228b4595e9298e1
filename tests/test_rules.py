"""`identity_graph.rules.decide` on its own (plain data in, decision out), and the one way an
identifier's record is built, online and in the batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from batch.relink import RelinkOptions, build_records, snapshot
from identity_graph.config import GraphConfig
from identity_graph.engine import IdentityGraph
from identity_graph.guardrails import Similarity
from identity_graph.model import ChangeSet, IdentifierUpsert, Link, LinkKind, Observation
from identity_graph.records import record_of
from identity_graph.rules import Region, Rules, decide

T = datetime(2026, 2, 1, tzinfo=UTC)
RULES = Rules.of(GraphConfig())


def person(fn: str, dob: str = "", ln: str = "") -> dict[str, str]:
    return {"first_name": fn, "date_of_birth": dob, "last_name": ln}


def observed(a: str, b: str) -> Link:
    return Link(a, b, LinkKind.OBSERVED, source="t", created_at=T)


def test_every_refusal_has_a_violation_with_its_reason() -> None:
    proposals = [observed("email:test@test.com", "source_record:crm/1"),
                 *(observed("phone:+12025550100", f"email:e{i}@x.example") for i in range(7))]
    d = decide(Region(keys=[]), proposals, RULES, policy="overlap")
    refused = {(lk.a, lk.b): v for lk, v in d.refused}
    assert refused[("email:test@test.com", "source_record:crm/1")].kind == "blocked"
    limits = [v for v in refused.values() if v.kind == "limit"]
    assert len(limits) == 2 and all("at most 5 email" in v.reason for v in limits)
    assert len(d.made) + len(d.refused) == len(proposals)
    assert {(v.kind, v.key) for _, v in d.refused} <= {(v.kind, v.key) for v in d.violations}


def test_many_household_bridges_are_all_set_apart_and_nothing_is_dropped() -> None:
    """Each bridge found re-opens the pass; the fifth and later ones are found too (the old engine
    stopped after four passes and dropped the remaining proposals silently)."""
    records, proposals = {}, []
    people = [("Alice", "1980-01-01"), ("Bob", "2010-05-05"), ("Carol", "1955-03-03"),
              ("Dmitri", "1999-09-09"), ("Esther", "1944-04-04"), ("Farid", "2001-12-12"),
              ("Gwen", "1977-07-07")]
    for i, (fn, dob) in enumerate(people):
        rec = f"source_record:crm/{i}"
        records[rec] = person(fn, dob)
        if i:  # each adjacent pair of people shares a phone
            proposals.append(observed(rec, f"phone:+120255501{i:02d}"))
            proposals.append(observed(f"source_record:crm/{i - 1}", f"phone:+120255501{i:02d}"))
    d = decide(Region(keys=list(records), records=records), proposals, RULES)
    assert sorted(d.generic) == sorted(f"phone:+120255501{i:02d}" for i in range(1, 7))
    assert len(d.made) == len(proposals) and not d.refused
    owners = d.assignment()
    assert len({owners[f"source_record:crm/{i}"] for i in range(7)}) == 7


def test_a_probable_link_between_clearly_different_people_is_kept_as_possible() -> None:
    records = {"source_record:crm/1": person("Alice", "1980-01-01"),
               "source_record:crm/2": person("Bob", "2010-05-05")}
    lk = Link("source_record:crm/1", "source_record:crm/2", LinkKind.PROBABLE, source="batch",
              probability=0.995, created_at=T)
    d = decide(Region(keys=list(records), records=records), [lk], RULES)
    assert [m.kind for m in d.made] == [LinkKind.POSSIBLE]
    assert [v.kind for v in d.violations] == ["chain"]
    assert len(d.components) == 2


def test_a_name_entered_the_other_way_round_is_not_a_different_person() -> None:
    """First and last name swapped (and a typo) is one person; a household member is not."""
    records = {"source_record:crm/1": person("Emily", "1978-05-27", "Berry"),
               "source_record:crm/2": person("Berry", "1938-01-01", "Emiily"),
               "source_record:crm/3": person("Tom", "2001-02-03", "Berry")}
    links = [Link("source_record:crm/1", f"source_record:crm/{i}", LinkKind.PROBABLE, source="batch",
                  probability=0.995, created_at=T) for i in (2, 3)]
    d = decide(Region(keys=list(records), records=records), links, RULES)
    assert [(m.b, m.kind) for m in d.made] == [("source_record:crm/2", LinkKind.PROBABLE),
                                               ("source_record:crm/3", LinkKind.POSSIBLE)]
    assert [(v.kind, v.key) for v in d.violations] == [("chain", "source_record:crm/3")]


def test_a_shared_identifying_number_is_one_person_whatever_the_names_say() -> None:
    """Declared identifying attributes (kind `code`) overrule names and birth dates that
    disagree; without the declaration the same link is only possible."""
    records = {"source_record:crm/1": {**person("Madison", "1934-10-24", "Weller"), "national_id": "6281502"},
               "source_record:crm/2": {**person("Emmet", "1927-05-16", "Weller"), "national_id": "6281502"},
               "source_record:crm/3": {**person("Emmet", "1927-05-16", "Weller"), "national_id": "7000001"}}
    links = [Link("source_record:crm/1", f"source_record:crm/{i}", LinkKind.PROBABLE, source="batch",
                  probability=0.995, created_at=T) for i in (2, 3)]
    ids = Rules(RULES.is_blocked, RULES.limits, Similarity(identifying=("national_id",)))
    d = decide(Region(keys=list(records), records=records), links[:1], ids)
    assert [m.kind for m in d.made] == [LinkKind.PROBABLE] and not d.violations
    d = decide(Region(keys=list(records), records=records), links[1:], ids)
    assert [m.kind for m in d.made] == [LinkKind.POSSIBLE]
    d = decide(Region(keys=list(records), records=records), links[:1], RULES)
    assert [m.kind for m in d.made] == [LinkKind.POSSIBLE]


def test_junk_needs_several_people_and_the_similarity_is_configurable() -> None:
    records = {f"source_record:crm/{i}": person(fn, "1990-01-01")
               for i, fn in enumerate(["Jon", "John", "Johnny"])}
    proposals = [observed(k, "email:a@a.com") for k in records]
    same = decide(Region(keys=list(records), records=records), proposals, RULES)
    assert not same.generic and len(same.components) == 1  # one person, spelt three ways
    strict = Rules(RULES.is_blocked, RULES.limits, Similarity(name_threshold=0.99), 3)
    records["source_record:crm/1"] = person("Ivan", "1990-01-01")
    records["source_record:crm/2"] = person("Olga", "1990-01-01")
    d = decide(Region(keys=list(records), records=records), proposals, strict)
    assert d.generic == {"email:a@a.com": True}
    assert [v.kind for v in d.violations] == ["junk"]


def test_online_and_batch_build_the_same_record_from_the_same_observations(store, tmp_path) -> None:
    key = "source_record:crm/9"
    obs = [("first_name", "Ann", 0), ("first_name", "Anne", 1), ("first_name", "Ann", 2),
           ("first_name", "Anna", 3), ("last_name", "Lee", 0), ("last_name", "Li", 5),
           ("city", "Leeds", 1), ("city", "York", 2)]
    observations = tuple(Observation(key, a, v, "crm", "", T + timedelta(days=d)) for a, v, d in obs)
    store.apply(ChangeSet(identifiers=[IdentifierUpsert(key, "source_record", "crm/9", T, observations)]))
    online = IdentityGraph(store).resolve.candidate_records([key])[key]
    snap = snapshot(store, RelinkOptions(progress=False))
    try:
        build_records(snap)
        cols = [c[0] for c in snap.con.execute("SELECT * FROM records LIMIT 0").description]
        [row] = snap.con.execute("SELECT * FROM records WHERE unique_id = ?", [key]).fetchall()
    finally:
        snap.close()
    batch = {c: v for c, v in zip(cols, row, strict=True) if c != "unique_id" and v is not None}
    expected = {"first_name": "Ann", "last_name": "Li", "city": "York"}  # most often, then latest
    assert record_of(observations) == expected
    assert {k: v for k, v in online.items() if v is not None} == expected == batch
