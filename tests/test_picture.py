"""Pictures and explanations for analysts: `batch.picture` on both backends, drawn in a real browser."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import networkx as nx
import pytest

from batch.cli import main as batch_main
from batch.picture import customer_graph, render, whole_graph, write
from identity_graph.errors import InvalidArgument, NotFound
from identity_graph.model import ChangeSet, Customer, IdentifierUpsert, Link, LinkKind
from tests.browser import dump_dom, screenshot

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
CUS, OTHER = "cus_picture000000000001", "cus_picture000000000002"
MEMBERS = ("email:ann@example.com", "phone:+15551230001", "whatsapp:+15551230001", "web_cookie:c1")
FAMILY_PHONE = "phone:+15559990000"  # generic: shared with another customer
STRANGER = "email:bob@example.com"


def _up(key: str) -> IdentifierUpsert:
    type_, _, value = key.partition(":")
    return IdentifierUpsert(key, type_, value, T0)


def _load(store) -> list[Link]:
    links = [
        Link(MEMBERS[1], MEMBERS[2], LinkKind.EQUIVALENT, source="equivalence", created_at=T0),
        Link(MEMBERS[0], MEMBERS[3], LinkKind.OBSERVED, source="web", channel="web", event_id="ev1",
             created_at=T0),
        Link(MEMBERS[0], MEMBERS[1], LinkKind.PROBABLE, source="batch", model_version="m1", probability=0.995,
             match_weight=7.6, created_at=T0,
             comparisons={"prior_match_weight": -9.1,
                          "comparisons": [{"name": "first_name", "level": "exact", "bits": 8.2},
                                          {"name": "date_of_birth", "level": "exact", "bits": 8.5}]}),
        Link(MEMBERS[1], FAMILY_PHONE, LinkKind.OBSERVED, source="crm", created_at=T0),
        Link(FAMILY_PHONE, STRANGER, LinkKind.OBSERVED, source="crm", created_at=T0),
    ]
    store.apply(ChangeSet(
        identifiers=[_up(k) for k in (*MEMBERS, FAMILY_PHONE, STRANGER)], links_added=links,
        customers_created=[Customer(CUS, T0), Customer(OTHER, T0)],
        assignments={**dict.fromkeys(MEMBERS, CUS), STRANGER: OTHER}, generic={FAMILY_PHONE: True}))
    return links


def test_customer_graph_has_members_links_and_marks_generic(store) -> None:
    links = _load(store)
    by_id = customer_graph(store, CUS)
    by_key = customer_graph(store, "phone:(555) 123-0001")  # any identifier, normalised like the API
    for g in (by_id, by_key):
        assert g.graph["customer_id"] == CUS
        assert set(g.nodes) == {*MEMBERS, FAMILY_PHONE}  # the stranger is two steps away: not drawn
        assert {k for k, d in g.nodes(data=True) if d["member"]} == set(MEMBERS)
        assert g.nodes[FAMILY_PHONE]["generic"] is True
        assert not any(d["generic"] for k, d in g.nodes(data=True) if k != FAMILY_PHONE)
        assert sorted(k for _, _, k in g.edges(keys=True)) == sorted(lk.id for lk in links[:4])
    probable = next(d for _, _, d in by_id.edges(data=True) if d["kind"] == "probable")
    assert probable["match_weight"] == pytest.approx(7.6) and probable["model_version"] == "m1"
    with pytest.raises(NotFound):
        customer_graph(store, "email:nobody@example.com")
    with pytest.raises(NotFound):
        customer_graph(store, FAMILY_PHONE)  # generic: belongs to no customer
    with pytest.raises(InvalidArgument):
        customer_graph(store, "not-a-key")


def test_whole_graph_filters_and_graphml_round_trip(store, tmp_path: Path) -> None:
    _load(store)
    everything = whole_graph(store)
    assert everything.number_of_nodes() == 6 and everything.number_of_edges() == 5
    observed = whole_graph(store, kinds=["observed"], types=["email", "phone", "web_cookie"])
    assert {d["kind"] for _, _, d in observed.edges(data=True)} == {"observed"}
    assert observed.number_of_edges() == 3 and "whatsapp:+15551230001" not in observed
    back = nx.read_graphml(write(everything, "graphml", tmp_path / "all.graphml"), force_multigraph=True)
    assert set(back.nodes) == set(everything.nodes)
    assert back.number_of_edges() == 5
    assert back.nodes[FAMILY_PHONE]["generic"] is True
    assert sorted(d["kind"] for _, _, d in back.edges(data=True)) == sorted(
        d["kind"] for _, _, d in everything.edges(data=True))


def test_dot_names_every_node_and_edge(store) -> None:
    _load(store)
    dot = render(customer_graph(store, CUS), "dot")
    assert dot.startswith("graph ") and dot.rstrip().endswith("}")
    for key in (*MEMBERS, FAMILY_PHONE):
        assert f'"{key}" [' in dot
    assert len(re.findall(r" -- ", dot)) == 4
    assert 'xlabel="generic"' in dot and '"probable 7.6 bits"' in dot


def test_html_is_self_contained_and_draws_every_node_in_chromium(tmp_path: Path, store) -> None:
    _load(store)
    g = customer_graph(store, CUS)
    page = write(g, "html", tmp_path / "customer.html")
    text = page.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), "the page must not load anything"
    dom = dump_dom(page)
    assert f'data-drawn-nodes="{g.number_of_nodes()}"' in dom
    assert f'data-drawn-edges="{g.number_of_edges()}"' in dom
    drawn = set(re.findall(r'<circle [^>]*data-key="([^"]+)"', dom))
    assert drawn == set(g.nodes)
    assert re.search(r'<circle class="node generic outside"[^>]*data-key="phone:\+15559990000"', dom)
    png = screenshot(page, tmp_path / "customer.png")
    assert png.stat().st_size > 10_000  # a drawn graph, not an empty page


def test_json_in_the_page_cannot_close_its_script(tmp_path: Path, store) -> None:
    """An identifier value is user data; `</script>` in it must not end the data early."""
    key = "web_cookie:</script><script>document.title='pwned'</script>"
    store.apply(ChangeSet(identifiers=[_up(key)], customers_created=[Customer(CUS, T0)],
                          assignments={key: CUS}))
    page = write(customer_graph(store, CUS), "html", tmp_path / "x.html")
    dom = dump_dom(page)
    assert re.search(rf"<head>.*<title>customer {CUS}</title>", dom, flags=re.S)  # no injected script ran
    assert "<\\/script><script>document.title" in dom  # kept as data, escaped
    assert 'data-drawn-nodes="1"' in dom


def test_cli_explain_and_graph_on_the_embedded_store(tmp_path: Path, capsys) -> None:
    from identity_graph.store import open_store

    db = str(tmp_path / "graph.db")
    with open_store(db) as store:
        _load(store)
    assert batch_main(["explain", MEMBERS[0], MEMBERS[2], "--db", db]) == 0
    text = capsys.readouterr().out
    assert "the same customer" in text and "—probable→" in text and "—equivalent→" in text
    assert "date_of_birth" in text and "+8.50" in text and "prior" in text
    assert batch_main(["explain", MEMBERS[0], STRANGER, "--db", db, "--json"]) == 0
    apart = json.loads(capsys.readouterr().out)
    assert apart["same_customer"] is False and apart["path"] == []  # a generic phone carries no path
    out = tmp_path / "c.dot"
    assert batch_main(["graph", "whatsapp:+1 555 123 0001", "--db", db, "--format", "dot",
                       "--out", str(out), "--quiet"]) == 0
    assert out.read_text().count(" -- ") == 4
    assert batch_main(["graph", "--db", db]) == 2  # neither a subject nor --all
    assert batch_main(["graph", "email:nobody@example.com", "--db", db]) == 2
    assert "no identifier email:nobody@example.com" in capsys.readouterr().err


def test_copy_to_neo4j_copies_everything_and_refuses_a_full_target(tmp_path: Path, neo4j_server,
                                                                   capsys) -> None:
    from identity_graph.store import open_store

    db = str(tmp_path / "graph.db")
    with open_store(db) as source:
        _load(source)
        expected = {name: t.num_rows for name, t in source.export_tables().items()}
        expected_keys = sorted(source.export_tables()["links"].column("link_id").to_pylist())
    target = open_store(neo4j_uri=neo4j_server.uri, neo4j_user=neo4j_server.user,
                        neo4j_password=neo4j_server.password)
    target.clear()
    args = ["copy", "--db", db, "--to-neo4j", neo4j_server.uri, "--to-user", neo4j_server.user,
            "--to-password", neo4j_server.password, "--quiet"]
    try:
        assert batch_main(args) == 0
        copied = target.export_tables()
        assert {name: t.num_rows for name, t in copied.items()} == expected
        assert sorted(copied["links"].column("link_id").to_pylist()) == expected_keys
        assert customer_graph(target, CUS).number_of_edges() == 4
        assert batch_main(args) == 2  # not empty any more
        assert "pass --replace" in capsys.readouterr().err
        assert batch_main([*args, "--replace"]) == 0
        assert target.export_tables()["identifiers"].num_rows == expected["identifiers"]
    finally:
        target.clear()
        target.close()
