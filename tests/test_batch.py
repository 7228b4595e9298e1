"""identity-batch: ingest, relink (both backends), zero churn, dry run, kill-and-rerun, export, quality."""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import networkx as nx
import pytest

from batch.components import labels
from batch.export import export
from batch.ingest import Mapping_, ingest
from batch.quality import evaluate_store, load_synthetic, pairwise_scores, true_labels
from batch.relink import RelinkOptions, relink
from batch.report import render_html, write_report
from identity_graph.components import assign_ids_by_overlap
from identity_graph.config import GraphConfig
from identity_graph.matching.model import STARTER_MODEL_PATH
from identity_graph.store import open_store

ROOT = Path(__file__).resolve().parent.parent
STARTER = str(STARTER_MODEL_PATH)


def _opts(**kw) -> RelinkOptions:
    kw.setdefault("model_path", STARTER)
    kw.setdefault("progress", False)
    kw.setdefault("charts", False)
    kw.setdefault("models_dir", None)
    kw.setdefault("threshold_from_labels", False)  # these tests steer with GraphConfig's threshold
    return RelinkOptions(**kw)


def _state(store) -> dict:
    t = store.export_tables()
    ids = t["identifiers"]
    links = t["links"]
    return {
        "assign": dict(zip(ids.column("key").to_pylist(), ids.column("customer_id").to_pylist(),
                           strict=True)),
        "links": sorted(lid for lid, rem in zip(links.column("link_id").to_pylist(),
                                                links.column("removed_at").to_pylist(), strict=True)
                        if rem is None),
        "events": t["events"].num_rows,
        "event_types": Counter(t["events"].column("type").to_pylist()),
    }


def _partition(assign: dict) -> set[frozenset]:
    groups: dict = {}
    for k, c in assign.items():
        groups.setdefault(c, set()).add(k)
    return {frozenset(g) for g in groups.values()}


# ---- components ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_components_match_networkx(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randrange(1, 400)
    m = rng.randrange(0, 2 * n)
    left = [rng.randrange(n) for _ in range(m)]
    right = [rng.randrange(n) for _ in range(m)]
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(zip(left, right, strict=True))
    expected = {frozenset(c) for c in nx.connected_components(g)}
    lab = [int(x) for x in labels(n, left, right)]
    got: dict[int, set[int]] = {}
    for i, x in enumerate(lab):
        got.setdefault(x, set()).add(i)
    assert {frozenset(v) for v in got.values()} == expected
    assert all(x == min(got[x]) for x in lab)  # labelled by the smallest node


def _reference_overlap(comps, previous, created):
    """The nightly id policy read literally: repeatedly give the (component, id) pair with the
    largest overlap (ties: older id, smaller id, component with the smaller key) its id."""
    ids: dict[int, str] = {}
    free = {c for c in previous.values() if c}
    while True:
        best = None
        for i, comp in enumerate(comps):
            if i in ids:
                continue
            for cid in free:
                n = sum(1 for k in comp if previous.get(k) == cid)
                if n:
                    cand = (-n, created[cid], cid, min(comp), i)
                    best = cand if best is None or cand < best else best
        if best is None:
            return ids
        ids[best[4]] = best[2]
        free.discard(best[2])


@pytest.mark.parametrize("seed", range(20))
def test_assign_ids_agrees_with_reference_policy(seed: int) -> None:
    rng = random.Random(seed)
    keys = [f"k{i:03d}" for i in range(rng.randrange(2, 40))]
    old = [f"cus_{i}" for i in range(rng.randrange(1, 6))]
    previous = {k: rng.choice([*old, None]) for k in keys}
    comp = [rng.randrange(len(keys) // 2 + 1) for _ in keys]
    members: dict[int, set[str]] = {}
    for k, c in zip(keys, comp, strict=True):
        members.setdefault(c, set()).add(k)
    comps = [frozenset(m) for m in members.values()]
    created = {c: datetime(2024, 1, 1 + i, tzinfo=UTC) for i, c in enumerate(old)}
    mine = assign_ids_by_overlap(comps, previous, created, new_id=iter(f"new{i}" for i in range(99)).__next__)
    ref = _reference_overlap(comps, previous, created)
    for i, got in enumerate(mine.ids):
        assert got == ref.get(i, got) and (i in ref or got.startswith("new"))
    assert len(set(mine.ids)) == len(comps)


# ---- ingest ----------------------------------------------------------------------------------


def _write_csv(path: Path, rows: list[dict]) -> None:
    cols = ["source", "record_id", "email", "phone", "first_name", "last_name", "date_of_birth",
            "postcode", "loyalty"]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, cols)
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in cols})


ROWS = [
    {"source": "crm", "record_id": "1", "email": "Ann.Lee@Example.com", "phone": "(212) 555-0101",
     "first_name": "Ann", "last_name": "Lee", "date_of_birth": "1980-02-03", "loyalty": "gold"},
    {"source": "crm", "record_id": "2", "email": "bob@example.com", "phone": "not a phone",
     "first_name": "Bob"},
    {"source": "orders", "record_id": "A9", "email": "ann.lee@example.com",
     "date_of_birth": "31/02/1980"},
    {"source": "orders", "record_id": "A10", "email": "test@test.com", "first_name": "Cy",
     "postcode": "sw1a 1aa"},
    {"source": "", "record_id": "3", "email": "dan@example.com"},
]


def test_ingest_loads_rejects_and_is_idempotent(store, tmp_path: Path) -> None:
    src = tmp_path / "crm.csv"
    _write_csv(src, ROWS)
    mapping = Mapping_(attributes={"first_name": "first_name", "last_name": "last_name",
                                   "date_of_birth": "date_of_birth", "postcode": "postcode",
                                   "loyalty": "loyalty_tier"})
    result = ingest(store, src, mapping, progress=False)
    assert (result.rows, result.loaded, result.rejected, result.values_dropped) == (5, 4, 1, 3)
    assert result.rows_with_bad_values == 2 and result.reject_rate == 3 / 5
    assert result.too_many_rejects
    with open(result.rejects_file, newline="") as f:
        rejects = list(csv.DictReader(f))
    reasons = {r["_line"]: (r["_action"], r["_reason"]) for r in rejects}
    # a bad value is dropped from its row; the rest of the row loads
    assert reasons["2"][0] == "value dropped" and "phone" in reasons["2"][1]
    assert reasons["3"][0] == "value dropped" and "date_of_birth" in reasons["3"][1]
    assert {o.attribute for o in store.observations(["source_record:crm/2"])} == {"first_name"}
    assert {lk.other("source_record:crm/2") for lk in store.links(["source_record:crm/2"])} == {
        "email:bob@example.com"}
    assert store.links(["source_record:orders/A9"]), "the row with a bad date still loads its email"
    assert reasons["4"] == ("value dropped", "email: blocked value email:test@test.com was not loaded")
    assert reasons["5"][0] == "row rejected" and "source" in reasons["5"][1]
    rec = "source_record:crm/1"
    links = store.links([rec])
    assert {lk.other(rec) for lk in links} == {"email:ann.lee@example.com", "phone:+12125550101"}
    assert all(lk.kind.label == "observed" and lk.source == "crm" for lk in links)
    assert all(lk.claimant == rec for lk in links)  # the record asserted the pairs
    obs = {o.attribute: o.value for o in store.observations([rec])}
    assert obs == {"first_name": "ann", "last_name": "lee", "date_of_birth": "1980-02-03",
                   "loyalty_tier": "gold"}
    assert store.get_identifier("source_record:orders/a10") is None
    assert store.get_identifier("source_record:orders/A10") is not None
    assert store.get_identifier("email:test@test.com") is None
    before = store.export_tables()
    again = ingest(store, src, mapping, progress=False)
    assert again.links_new == 0
    after = store.export_tables()
    for name in before:
        assert before[name].equals(after[name]), name


def test_ingest_from_a_trusted_source_links_verified(tmp_path: Path) -> None:
    src = tmp_path / "accounts.csv"
    _write_csv(src, [{"source": "accounts", "record_id": "u1", "email": "v@example.com"},
                     {"source": "crm", "record_id": "c1", "email": "w@example.com"}])
    with open_store(str(tmp_path / "g.db")) as store:
        ingest(store, src, Mapping_(identifiers={"email": "email"}),
               config=GraphConfig(trusted_sources=("accounts",)), progress=False)
        [trusted] = store.links(["source_record:accounts/u1"])
        [claimed] = store.links(["source_record:crm/c1"])
        assert trusted.kind.label == "verified" and claimed.kind.label == "observed"


def test_ingest_parquet_with_flags_mapping(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "shop.parquet"
    pq.write_table(pa.table({"id": ["7", "8"], "mail": ["x@example.com", "y@example.com"],
                             "dob": ["03/02/1980", "1990-01-01"]}), path)
    m = Mapping_(source="shop", record_id_column="id", identifiers={"mail": "email"},
                 attributes={"dob": "date_of_birth"}, date_formats=["%d/%m/%Y"])
    with open_store(str(tmp_path / "g.db")) as store:
        r = ingest(store, path, m, progress=False)
        assert (r.loaded, r.rejected, r.links_new) == (2, 0, 2)
        assert [o.value for o in store.observations(["source_record:shop/7"])] == ["1980-02-03"]


# ---- relink ----------------------------------------------------------------------------------


def test_relink_on_generated_data(store, tmp_path: Path) -> None:
    data = load_synthetic(store, 150, seed=11)
    truth, household = true_labels(data)
    res = relink(store, options=_opts())
    rep = res.report
    state = _state(store)
    assert all(state["assign"].values()), "every identifier belongs to a customer"
    customers = set(state["assign"].values())
    assert rep["counts"]["customers"] == len(customers)
    assert store.customers(customers).keys() == customers
    # batch links carry their evidence
    batch = [lk for lk in store.links(list(state["assign"])) if lk.source == "batch"]
    assert batch and {lk.model_version for lk in batch} == {"starter-synthetic-20240601"}
    assert all(lk.actor == "identity-batch" and lk.probability is not None for lk in batch)
    assert {lk.kind.label for lk in batch} <= {"probable", "possible"}
    assert rep["counts"]["batch_links_by_kind"].get("probable", 0) > 50
    # blocked values never link; the junk phone stays alone
    for k, c in state["assign"].items():
        if GraphConfig().is_blocked(k):
            assert [x for x, y in state["assign"].items() if y == c] == [k]
    # the same customers as a pure function: a probable link joins only one customer
    for lk in batch:
        if lk.kind.label == "probable" and not store.get_identifier(lk.a).generic \
                and not store.get_identifier(lk.b).generic:
            assert state["assign"][lk.a] == state["assign"][lk.b]
    assert state["event_types"]["customer_created"] == len(customers)
    assert state["event_types"]["relink"] == 1
    q = evaluate_store(store, truth, household)
    assert q["precision"] >= 0.9 and q["recall"] >= 0.4, q

    # zero churn: the same model on unchanged data changes nothing at all
    again = relink(store, options=_opts())
    assert _state(store) == state
    c = again.report["counts"]
    assert (c["links_added"], c["links_removed"], c["assignments_changed"], c["merges"],
            c["splits"], c["customers_created"]) == (0, 0, 0, 0, 0, 0)


def test_relink_merges_splits_and_replaces_old_versions(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "g.db")) as store:
        load_synthetic(store, 120, seed=5)
        strict = GraphConfig(link_threshold=0.9999, review_threshold=0.9)
        relink(store, strict, _opts())
        first = _state(store)
        res = relink(store, GraphConfig(), _opts())
        second = _state(store)
        assert res.report["counts"]["merges"] > 0
        merges = [e for e in store.events(0, 100_000) if e.type == "merge"]
        assert merges
        for e in merges:  # retired ids resolve to the survivor
            for r in e.payload["retired"]:
                assert store.canonical_customer_id(r) == e.payload["survivor"]
        # old ids survive where customers were unchanged
        same = [k for k in first["assign"] if first["assign"][k] == second["assign"][k]]
        assert len(same) > 0.7 * len(first["assign"])
        # back to strict: the links of the looser run are removed, merged customers split
        res3 = relink(store, strict, _opts())
        assert res3.report["counts"]["links_removed"] > 0
        assert res3.report["counts"]["splits"] > 0
        assert _partition(_state(store)["assign"]) == _partition(first["assign"])


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "g.db")) as store:
        load_synthetic(store, 60, seed=3)
        before = store.export_tables()
        res = relink(store, options=_opts(dry_run=True, charts=True, samples=3))
        after = store.export_tables()
        for name in before:
            assert before[name].equals(after[name]), name
        assert res.report["run"]["dry_run"] and res.report["counts"]["units_to_write"] > 0
        assert res.report["apply"]["batches"] == 0


def test_report_is_self_contained(tmp_path: Path) -> None:
    with open_store(":memory:") as store:
        load_synthetic(store, 60, seed=4, labels_out=tmp_path / "labels.parquet")
        res = relink(store, options=_opts(charts=True, labels_path=str(tmp_path / "labels.parquet")))
    rep = res.report
    assert {"identifiers", "pairs_scored", "batch_links_by_kind"} <= set(rep["counts"])
    assert rep["quality"]["precision"] > 0 and "household_false_pairs" in rep["quality"]
    assert "match_weights" in rep["charts"] and "waterfall" in rep["charts"]
    assert sum(h["customers"] for h in rep["cluster_sizes"]["histogram"]) == rep["counts"]["customers"]
    json_path, html_path = write_report(rep, tmp_path / "reports")
    page = html_path.read_text()
    assert "<svg" in page and "vegaEmbed" in page and "<script src=" not in page
    json.loads(json_path.read_text())
    assert render_html(rep) == page


@pytest.mark.slow
def test_killed_relink_converges(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    with open_store(str(db)) as store:
        load_synthetic(store, 300, seed=9)
        relink(store, GraphConfig(link_threshold=0.9999, review_threshold=0.9), _opts())
        preexisting = _state(store)["assign"]
    copy = tmp_path / "copy.db"
    shutil.copy(db, copy)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    base = [sys.executable, "-m", "batch.cli", "relink", "--model", STARTER, "--quiet",
            "--no-charts", "--batch-size", "50", "--report-dir", str(tmp_path / "r")]
    killed = subprocess.run([*base, "--db", str(db), "--fail-after-batches", "2"], env=env,
                            capture_output=True, text=True, cwd=tmp_path)
    assert killed.returncode == -9, killed.stderr
    with open_store(str(db)) as store:
        partial = _state(store)
    # some batches were written, the run's closing "relink" event was not
    assert partial["event_types"]["relink"] == 1 and partial["assign"] != preexisting
    for path in (db, copy):
        done = subprocess.run([*base, "--db", str(path)], env=env, capture_output=True, text=True,
                              cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    with open_store(str(db)) as a, open_store(str(copy)) as b:
        sa, sb = _state(a), _state(b)
    assert _partition(sa["assign"]) == _partition(sb["assign"])
    assert sa["assign"] == sb["assign"]  # the same ids, preexisting customers' included
    assert sa["links"] == sb["links"]
    for t in ("merge", "split", "alias", "customer_created"):
        assert sa["event_types"][t] == sb["event_types"][t], t


# ---- export ----------------------------------------------------------------------------------


def test_export_tables_query_with_duckdb(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "g.db")) as store:
        load_synthetic(store, 50, seed=2)
        relink(store, options=_opts())
        counts = export(store, tmp_path / "out", progress=False)
    out = tmp_path / "out"
    con = duckdb.connect()

    def cols(name: str) -> list[str]:
        return [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM '{out / name}.parquet'").fetchall()]

    assert {"key", "type", "value", "customer_id", "first_seen", "last_seen", "generic"} <= set(
        cols("identifiers"))
    assert {"a", "b", "kind", "probability", "match_weight", "model_version", "created_at",
            "active"} <= set(cols("links"))
    assert {"customer_id", "size", "channels", "created_at", "aliases"} <= set(cols("customers"))
    assert {"seq", "type", "customer_id", "at", "payload"} <= set(cols("events"))
    [(n_customers, total)] = con.execute(
        f"SELECT count(*), sum(size) FROM '{out}/customers.parquet'").fetchall()
    assert total == counts["identifiers"] and n_customers == counts["customers"]
    [(probable,)] = con.execute(
        f"SELECT count(*) FROM '{out}/links.parquet' WHERE kind = 'probable' AND active "
        "AND model_version IS NOT NULL").fetchall()
    assert probable > 0


# ---- quality ---------------------------------------------------------------------------------


def test_pairwise_scores() -> None:
    truth = {"a": "1", "b": "1", "c": "2", "d": "2", "e": None}
    pred = {"a": "x", "b": "x", "c": "x", "d": "y", "e": "x"}
    q = pairwise_scores(pred, truth, {"a": "h", "b": "h", "c": "h", "d": "h"})
    assert (q["true_pairs"], q["predicted_pairs"], q["true_positive_pairs"]) == (2, 3, 1)
    assert q["precision"] == pytest.approx(1 / 3, abs=1e-6) and q["recall"] == 0.5
    assert q["household_false_pairs"] == 2


@pytest.mark.slow
def test_quality_floor(tmp_path: Path) -> None:
    """Pairwise quality of the starter model on 800 generated customers (~4.3k identifiers).

    Floors sit just under what this build measured (see the run report), to catch regressions.
    """
    with open_store(":memory:") as store:
        data = load_synthetic(store, 800, seed=21)
        relink(store, options=_opts())
        truth, household = true_labels(data)
        q = evaluate_store(store, truth, household)
    # measured: precision 0.993, recall 0.450, F1 0.619, 37 household false pairs
    assert q["precision"] >= 0.97, q
    assert q["recall"] >= 0.42, q
    assert q["f1"] >= 0.58, q
    assert q["household_false_pairs"] <= 100, q


def test_db_flag_wins_over_neo4j_uri_in_the_environment(tmp_path: Path) -> None:
    """`--db FILE` means that file even when the shell exports NEO4J_URI (here: nothing listens
    there, so using it would fail); both flags at once is refused."""
    db = tmp_path / "g.db"
    with open_store(str(db)) as store:
        load_synthetic(store, 5, seed=3)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NEO4J_URI": "bolt://127.0.0.1:9"}
    cmd = [sys.executable, "-m", "batch.cli", "export", "--quiet"]
    ok = subprocess.run([*cmd, "--db", str(db), "--out", str(tmp_path / "out")], env=env,
                        capture_output=True, text=True, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    exported = duckdb.sql(f"SELECT count(*) FROM '{tmp_path / 'out' / 'identifiers.parquet'}'")
    assert exported.fetchall()[0][0] > 0
    both = subprocess.run([*cmd, "--db", str(db), "--neo4j-uri", "bolt://127.0.0.1:9", "--out",
                           str(tmp_path / "out2")], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert both.returncode == 2 and "not both" in both.stderr
