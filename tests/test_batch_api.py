"""BatchService.Relink inside the server: the single writer of an embedded store keeps serving."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import grpc
import pytest

from batch.quality import load_synthetic
from identity_graph.engine import IdentityGraph
from identity_graph.matching.model import STARTER_MODEL_PATH
from identity_graph.store.base import GraphStore
from server import BackgroundServer
from stubs.identity.v1 import batch_pb2, batch_pb2_grpc
from stubs.identity.v1 import identity_pb2 as ipb
from stubs.identity.v1 import identity_pb2_grpc as ipb_grpc

TIMEOUT = 120.0


def test_relink_runs_inside_the_server_while_resolve_keeps_answering(
    store: GraphStore, tmp_path: Path
) -> None:
    data = load_synthetic(store, 150, seed=3)
    known = [k for k in sorted(data.labels) if k.startswith(("email:", "phone:"))][:50]
    graph = IdentityGraph(store)
    with BackgroundServer(graph, access_log_enabled=False, timeout_s=TIMEOUT) as srv:
        channel = grpc.insecure_channel(f"127.0.0.1:{srv.port}")
        identity = ipb_grpc.IdentityServiceStub(channel)
        batch = batch_pb2_grpc.BatchServiceStub(channel)
        answered: list[str] = []
        failures: list[BaseException] = []
        done = threading.Event()

        def resolve_loop() -> None:
            i = 0
            while not done.is_set():
                type_, _, value = known[i % len(known)].partition(":")
                try:
                    r = identity.Resolve(
                        ipb.ResolveRequest(
                            channel="sms", identifiers=[ipb.Identifier(type=type_, value=value)]
                        ),
                        timeout=10,
                    )
                    answered.append(r.customer_id)
                except grpc.RpcError as e:  # pragma: no cover - the assertion below reports it
                    failures.append(e)
                i += 1

        worker = threading.Thread(target=resolve_loop)
        worker.start()
        try:
            request = batch_pb2.RelinkRequest(
                model_path=str(STARTER_MODEL_PATH), report_dir=str(tmp_path / "reports"), seed=1
            )
            steps = list(batch.Relink(request, timeout=TIMEOUT))
        finally:
            done.set()
            worker.join(30)
        assert [s.step for s in steps][:6] == ["snapshot", "model", "predict", "cluster", "plan", "apply"]
        final = steps[-1]
        assert final.step == "done" and "relink" in final.summary.lower()
        report = json.loads(final.report_json)
        assert report["model"]["version"].startswith("starter")
        assert Path(final.report_html_path).is_file()
        assert not failures and len(answered) > 0 and all(answered)
        # Every identifier now belongs to a customer. Units that online calls touched during the
        # run were left for the next one; after that, a run on unchanged data changes nothing.
        assert all(n.customer_id for n in store.get_identifiers(known).values())
        list(batch.Relink(request, timeout=TIMEOUT))
        again = json.loads(list(batch.Relink(request, timeout=TIMEOUT))[-1].report_json)
        c = again["counts"]
        assert (c["links_added"], c["links_removed"], c["assignments_changed"], c["merges"], c["splits"]) == (
            0,
            0,
            0,
            0,
            0,
        )
        with pytest.raises(grpc.RpcError) as err:
            list(batch.Relink(batch_pb2.RelinkRequest(model_path="/no/such/model.json"), timeout=TIMEOUT))
        assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        channel.close()
