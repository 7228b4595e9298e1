"""What the server's log tells an operator: the "listening" line names the model loaded, and an
access-log line of a failed call carries the status message the caller got."""

from __future__ import annotations

import json
import queue
from pathlib import Path

import grpc

from identity_graph.matching.model import STARTER_MODEL_PATH, load_model
from stubs.identity.v1 import identity_pb2 as ipb
from stubs.identity.v1 import identity_pb2_grpc as ipb_grpc
from tests.test_security import _listening, _spawn, _stop


def _access_line(lines: queue.Queue[str], method: str) -> dict:
    while True:
        line = lines.get(timeout=30)
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("msg") == "rpc" and record["method"].endswith(method):
                return record


def test_listening_names_the_model_and_error_lines_carry_the_message(tmp_path: Path) -> None:
    server, lines = _spawn(["--model", str(STARTER_MODEL_PATH)], tmp_path)
    try:
        listening = _listening(server, lines)
        assert listening["model"] == load_model(STARTER_MODEL_PATH).version
        with grpc.insecure_channel(f"127.0.0.1:{listening['port']}") as channel:
            stub = ipb_grpc.IdentityServiceStub(channel)
            try:
                stub.Resolve(ipb.ResolveRequest(channel="web", identifiers=[
                    ipb.Identifier(type="phone", value="not a phone")]), timeout=30)
                raise AssertionError("a bad phone was accepted")
            except grpc.RpcError as e:
                assert e.code() is grpc.StatusCode.INVALID_ARGUMENT
                told = e.details()
            failed = _access_line(lines, "/Resolve")
            assert failed["code"] == "INVALID_ARGUMENT" and failed["message"] == told and told
            stub.Resolve(ipb.ResolveRequest(channel="web", identifiers=[
                ipb.Identifier(type="email", value="ok@example.com")]), timeout=30)
            ok = _access_line(lines, "/Resolve")
            assert ok["code"] == "OK" and "message" not in ok
    finally:
        assert _stop(server) == 0


def test_listening_without_a_model_says_so(tmp_path: Path) -> None:
    server, lines = _spawn([], tmp_path)
    try:
        assert _listening(server, lines)["model"] is None
    finally:
        assert _stop(server) == 0
