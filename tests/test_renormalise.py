"""`identity-batch renormalise`: keys an older normaliser stored, found and given their current form."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from batch.cli import main
from batch.renormalise import renormalise
from identity_graph.engine import IdentityGraph
from identity_graph.identifiers import IdentifierTypes
from identity_graph.model import ChangeSet, IdentifierUpsert, Link, LinkKind
from identity_graph.store import open_store

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _legacy(store, key: str, partner: str) -> None:
    """Writes `key` as an older normaliser would have, linked into `partner`'s customer."""
    type_, value = key.split(":", 1)
    cid = store.get_identifier(partner).customer_id
    store.apply(ChangeSet(
        identifiers=[IdentifierUpsert(key, type_, value, T0)],
        links_added=[Link(key, partner, LinkKind.OBSERVED, source="crm", created_at=T0, actor="old")],
        assignments={key: cid},
    ))


def _graph(store) -> IdentityGraph:
    g = IdentityGraph(store)
    g.links.add("phone:+15551230001", "email:ann@example.com", LinkKind.VERIFIED, source="t", actor="t")
    g.links.add("phone:+15551230002", "email:bob@example.com", LinkKind.VERIFIED, source="t", actor="t")
    return g


def test_renormalise_finds_applies_and_is_idempotent(store) -> None:
    _graph(store)
    ann = store.get_identifier("phone:+15551230001").customer_id
    bob = store.get_identifier("phone:+15551230002").customer_id
    _legacy(store, "email:Ann.Work@Example.com", "phone:+15551230001")  # before lower-casing
    _legacy(store, "email:x@xn--n3h.net", "phone:+15551230001")  # IDNA 2003 allowed ☃
    _legacy(store, "email:BOB@example.com", "phone:+15551230001")  # current form is Bob's
    before = store.export_tables()

    dry = renormalise(store, dry_run=True)
    assert dry.changed == [("email:Ann.Work@Example.com", "email:ann.work@example.com"),
                           ("email:BOB@example.com", "email:bob@example.com")]
    assert [k for k, _ in dry.invalid] == ["email:x@xn--n3h.net"]
    assert [(a, b) for a, b, _ in dry.skipped] == [("email:BOB@example.com", "email:bob@example.com")]
    assert bob in dry.skipped[0][2] and dry.applied == []
    after_dry = store.export_tables()
    assert {n: t.num_rows for n, t in after_dry.items()} == {n: t.num_rows for n, t in before.items()}

    done = renormalise(store, dry_run=False)
    assert done.applied == [("email:Ann.Work@Example.com", "email:ann.work@example.com")]
    new = store.get_identifier("email:ann.work@example.com")
    assert new is not None and new.customer_id == ann
    assert store.get_identifier("email:Ann.Work@Example.com").customer_id == ann  # nothing moved
    kinds = {lk.kind for lk in store.links(["email:ann.work@example.com"])}
    assert kinds == {LinkKind.EQUIVALENT}
    assert store.get_identifier("email:bob@example.com").customer_id == bob  # no merge behind a flag
    # the current form now resolves to Ann, as a caller presenting it again would see
    assert IdentityGraph(store).customers.id_of("email:ANN.WORK@example.com") == ann

    rows = {n: t.num_rows for n, t in store.export_tables().items()}
    again = renormalise(store, dry_run=False)
    assert again.applied == []
    assert again.done == [("email:Ann.Work@Example.com", "email:ann.work@example.com")]
    assert {n: t.num_rows for n, t in store.export_tables().items()} == rows  # nothing more written


def test_a_changed_custom_normaliser_is_found(store) -> None:
    _graph(store)
    _legacy(store, "loyalty:ab-12", "phone:+15551230002")
    types = IdentifierTypes()
    types.register("loyalty", lambda v: v.strip().upper())
    out = renormalise(store, types=types, dry_run=False)
    assert out.applied == [("loyalty:ab-12", "loyalty:AB-12")]
    assert store.get_identifier("loyalty:AB-12").customer_id == store.get_identifier(
        "phone:+15551230002").customer_id


def test_cli_dry_run_reports_and_writes_nothing(tmp_path: Path, capsys) -> None:
    db = str(tmp_path / "g.db")
    with open_store(db) as store:
        _graph(store)
        _legacy(store, "email:Ann.Work@Example.com", "phone:+15551230001")
    assert main(["renormalise", "--db", db, "--dry-run", "--quiet", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["changed"] == [{"stored": "email:Ann.Work@Example.com",
                                  "current": "email:ann.work@example.com"}]
    assert report["applied"] == []
    assert main(["renormalise", "--db", db, "--quiet"]) == 0
    assert "got its current form email:ann.work@example.com" in capsys.readouterr().out
    with open_store(db) as store:
        assert store.get_identifier("email:ann.work@example.com") is not None


def test_a_current_form_beyond_a_per_type_limit_is_left_for_an_operator(store) -> None:
    """The customer rules decide whether the `equivalent` link may be made: five emails already
    (the stale one among them), so a sixth is refused with the rules' own reason."""
    g = IdentityGraph(store)
    for i in range(4):
        g.links.add("phone:+15551230001", f"email:ann{i}@example.com", LinkKind.VERIFIED, source="t",
                    actor="t")
    _legacy(store, "email:Ann.Work@Example.com", "phone:+15551230001")
    out = renormalise(store, dry_run=False)
    assert [(a, b) for a, b, _ in out.skipped] == [("email:Ann.Work@Example.com",
                                                    "email:ann.work@example.com")]
    assert "at most 5 email identifiers (6 would)" in out.skipped[0][2]
    assert out.applied == [] and store.get_identifier("email:ann.work@example.com") is None
