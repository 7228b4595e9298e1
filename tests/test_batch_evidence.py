"""Why, for every batch link: the relink keeps each probable/possible link's waterfall (comparison
levels and bits), the same as the online scorer's for the pair, so Explain (gRPC and
`identity-batch explain`) and `links.comparisons` show it, on both backends, while a server runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import grpc
import pytest

from batch.cli import main as batch_main
from batch.quality import load_synthetic
from batch.relink import build_records, relink, snapshot
from identity_graph.engine import IdentityGraph, waterfall
from identity_graph.matching.model import load_model
from identity_graph.matching.scorer import OnlineScorer
from server import BackgroundServer
from stubs.identity.v1 import identity_pb2 as ipb
from stubs.identity.v1 import identity_pb2_grpc as ipb_grpc
from tests.test_batch import STARTER, _opts

COMPARED = ["first_name", "last_name", "date_of_birth", "address"]  # the starter model's


def _store_args(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> list[str]:
    if backend == "sqlite":
        return ["--db", str(tmp_path / "identity.db")]
    server = request.getfixturevalue("neo4j_server")
    return ["--neo4j-uri", server.uri, "--neo4j-user", server.user, "--neo4j-password", server.password]


def _ident(key: str) -> ipb.Identifier:
    type_, _, value = key.partition(":")
    return ipb.Identifier(type=type_, value=value)


def test_every_batch_link_carries_its_waterfall(store, backend: str, tmp_path: Path,
                                                request: pytest.FixtureRequest, capsys) -> None:
    load_synthetic(store, 120, seed=21)
    relink(store, options=_opts())
    links = [r for r in store.export_tables()["links"].to_pylist()
             if r["source"] == "batch" and r["removed_at"] is None]
    assert links and {r["kind"] for r in links} <= {"probable", "possible"}
    for r in links:
        w = json.loads(r["comparisons"])
        assert [c["name"] for c in w["comparisons"]] == COMPARED
        total = w["prior_match_weight"] + sum(c["bits"] for c in w["comparisons"])
        assert math.isclose(total, r["match_weight"], abs_tol=1e-6), r

    # The same levels and bits as the online scorer gives the same pair of records.
    snap = snapshot(store, _opts())
    try:
        build_records(snap)
        sample = links[:25]
        keys = sorted({k for r in sample for k in (r["a"], r["b"])})
        cur = snap.con.execute("SELECT * FROM records WHERE unique_id IN (SELECT unnest(?::VARCHAR[]))",
                               [keys])
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        snap.close()
    records = {row["unique_id"]: row for row in rows}
    scorer = OnlineScorer(load_model(STARTER))
    for r in sample:
        online = waterfall(scorer.score_pair(records[r["a"]], records[r["b"]]))
        batch = json.loads(r["comparisons"])
        assert [c["level"] for c in batch["comparisons"]] == [c["level"] for c in online["comparisons"]]
        for got, want in zip(batch["comparisons"], online["comparisons"], strict=True):
            assert math.isclose(got["bits"], want["bits"], abs_tol=1e-9), (r["a"], r["b"], got, want)
        assert math.isclose(batch["prior_match_weight"], online["prior_match_weight"], abs_tol=1e-12)

    # Explain over gRPC and `identity-batch explain`, while a server serves this store.
    probable = next(r for r in links if r["kind"] == "probable")
    a, b = probable["a"], probable["b"]
    with BackgroundServer(IdentityGraph(store), access_log_enabled=False) as srv:
        with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as channel:
            reply = ipb_grpc.IdentityServiceStub(channel).Explain(
                ipb.ExplainRequest(a=_ident(a), b=_ident(b)), timeout=60)
        batch_links = [lk for lk in reply.path if lk.source == "batch"]
        assert batch_links, reply
        for lk in batch_links:
            assert [c.name for c in lk.comparisons] == ["prior", *COMPARED]
            assert all(c.level for c in lk.comparisons[1:])
            assert math.isclose(sum(c.bits for c in lk.comparisons), lk.match_weight, abs_tol=1e-6)

        args = _store_args(backend, tmp_path, request)
        assert batch_main(["explain", a, b, *args]) == 0
        text = capsys.readouterr().out
        assert "prior" in text and all(name in text for name in COMPARED), text
        assert batch_main(["explain", a, b, *args, "--json"]) == 0
        explained = json.loads(capsys.readouterr().out)
    steps = [s for s in explained["path"] if s["source"] == "batch"]
    assert steps and all(s["waterfall"]["comparisons"] for s in steps)
    stored = {(r["a"], r["b"]): json.loads(r["comparisons"]) for r in links}
    for s in steps:  # each step shows the evidence stored on its link
        assert s["waterfall"]["comparisons"] == stored[(s["a"], s["b"])]["comparisons"]
    levels = {c["level"] for s in steps for c in s["waterfall"]["comparisons"]}
    assert any(len(level) > 10 for level in levels), levels  # long labels exist in this model
    assert all(level in text for level in levels), (levels, text)  # and the text shows them whole
