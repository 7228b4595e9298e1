"""A non-Python caller: the Go client in examples/go, built by scripts/go_example.sh (stubs from
protoc-gen-go and protoc-gen-go-grpc off the Go module proxy), run against a real server on
loopback on each backend: Resolve, StartOrResume on web, resume by SMS."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from identity_graph.engine import IdentityGraph
from identity_graph.store.base import GraphStore
from server import BackgroundServer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def go_example(go_bin: Path) -> Path:
    out = subprocess.run(["bash", str(ROOT / "scripts" / "go_example.sh")], capture_output=True, text=True,
                         timeout=1800)
    assert out.returncode == 0, out.stderr
    binary = Path(out.stdout.strip().splitlines()[-1])
    assert binary.parent == go_bin and binary.exists()
    return binary


def test_go_client_resolves_starts_on_web_and_resumes_on_sms(go_example: Path, store: GraphStore) -> None:
    graph = IdentityGraph(store)
    srv = BackgroundServer(graph, timeout_s=30.0)
    try:
        out = subprocess.run([str(go_example), "-addr", f"127.0.0.1:{srv.port}", "-suffix", store.name],
                             capture_output=True, text=True, timeout=120)
    finally:
        srv.stop()
    assert out.returncode == 0, out.stderr
    steps = {s["step"]: s for s in map(json.loads, out.stdout.splitlines())}
    assert steps["resolve"]["is_new"] and steps["resolve"]["email"] == f"ana.{store.name}@example.com"
    assert steps["web"]["resumed"] is False
    sms = steps["sms"]
    assert sms["resumed"] and sms["resumed_from_channel"] == "web"
    assert sms["conversation_id"] == steps["web"]["conversation_id"]
    assert sms["customer_id"] == steps["resolve"]["customer_id"]
    assert (sms["flow"], sms["state_step"]) == ("order", "choose_delivery")
    # what the Go client wrote is in the store, as the Python side reads it
    assert graph.customers.id_of("phone:+14155550188") == steps["resolve"]["customer_id"]
