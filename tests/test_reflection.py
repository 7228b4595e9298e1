"""Reflection v1 and v1alpha with the proto comments, through a real server: Python's reflection
clients on both versions, and grpcurl (installed from the Go module proxy by scripts/go_tools.sh)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection_pb2 as rpb
from grpc_reflection.v1alpha import reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from identity_graph.engine import IdentityGraph
from identity_graph.store import open_store
from server import BackgroundServer

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 30.0
V1_METHOD = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    store = open_store(str(tmp_path_factory.mktemp("reflection") / "g.db"))
    srv = BackgroundServer(IdentityGraph(store), timeout_s=TIMEOUT)
    try:
        yield srv
    finally:
        srv.stop()
        store.close()


@pytest.fixture
def channel(server: BackgroundServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        grpc.channel_ready_future(ch).result(TIMEOUT)
        yield ch


def _ask(channel: grpc.Channel, version: str, **request: str) -> rpb.ServerReflectionResponse:
    """One reflection request over v1 or v1alpha (the same messages on the wire)."""
    if version == "v1alpha":
        call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo
    else:
        call = channel.stream_stream(V1_METHOD,
                                     request_serializer=rpb.ServerReflectionRequest.SerializeToString,
                                     response_deserializer=rpb.ServerReflectionResponse.FromString)
    (resp,) = list(call(iter([rpb.ServerReflectionRequest(**request)]), timeout=TIMEOUT))
    return resp


def _comments(resp: rpb.ServerReflectionResponse) -> str:
    files = [descriptor_pb2.FileDescriptorProto.FromString(b)
             for b in resp.file_descriptor_response.file_descriptor_proto]
    return "\n".join(loc.leading_comments + loc.trailing_comments
                     for f in files for loc in f.source_code_info.location)


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_both_versions_list_services_and_serve_comments(channel: grpc.Channel, version: str) -> None:
    listed = _ask(channel, version, list_services="")
    names = {s.name for s in listed.list_services_response.service}
    assert {"identity.v1.IdentityService", "session.v1.SessionService", "identity.v1.AdminService",
            "identity.v1.BatchService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection"} <= names

    method = _ask(channel, version, file_containing_symbol="identity.v1.IdentityService.Resolve")
    assert method.WhichOneof("message_response") == "file_descriptor_response"
    text = _comments(method)
    assert "web_cookie" in text and '"otp"' in text  # Identifier.type and Proof.kind values
    session = _comments(_ask(channel, version, file_containing_symbol="session.v1.Caller.channel"))
    assert "web | sms | whatsapp | email | agent" in session

    missing = _ask(channel, version, file_containing_symbol="identity.v1.NoSuchThing")
    assert missing.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


def test_python_reflection_client_resolves_a_method(channel: grpc.Channel) -> None:
    """grpcio-reflection's own client (v1alpha) builds a pool from the server and finds a method."""
    pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
    method = pool.FindMethodByName("identity.v1.IdentityService.Resolve")
    assert method.input_type.full_name == "identity.v1.ResolveRequest"
    assert pool.FindMessageTypeByName("grpc.health.v1.HealthCheckRequest").fields_by_name["service"]


def _grpcurl(go_bin: Path, port: int, *args: str, flags: tuple[str, ...] = ()) -> str:
    out = subprocess.run([str(go_bin / "grpcurl"), "-plaintext", *flags, f"127.0.0.1:{port}", *args],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_grpcurl_describes_with_comments(go_bin: Path, server: BackgroundServer) -> None:
    port = server.port
    services = _grpcurl(go_bin, port, "list")
    assert "grpc.reflection.v1.ServerReflection" in services
    resolve = _grpcurl(go_bin, port, "describe", "identity.v1.IdentityService.Resolve")
    assert "is a method" in resolve and "// Recognises the customer" in resolve
    ident = _grpcurl(go_bin, port, "describe", "identity.v1.Identifier")
    assert "web_cookie, account_id, device_id, source_record" in ident
    proof = _grpcurl(go_bin, port, "describe", "identity.v1.Proof")
    assert '"login"' in proof and '"otp"' in proof and '"handoff"' in proof
    caller = _grpcurl(go_bin, port, "describe", "session.v1.Caller")
    assert "web | sms | whatsapp | email | agent" in caller
    verified = _grpcurl(go_bin, port, "describe", "identity.v1.LinkKind.LINK_KIND_VERIFIED")
    assert "is an enum value" in verified and "Proof at one moment" in verified
    # and the descriptors are good enough to call the API with JSON
    body = json.dumps({"channel": "web", "identifiers": [{"type": "email", "value": "Ann@Example.com"}]})
    resp = json.loads(_grpcurl(go_bin, port, "identity.v1.IdentityService/Resolve", flags=("-d", body)))
    assert resp["identifiers"] == [{"type": "email", "value": "ann@example.com"}]


def test_the_shipped_protoset_works_without_reflection(go_bin: Path, server: BackgroundServer) -> None:
    protoset = ROOT / "stubs" / "descriptor_set.binpb"
    out = subprocess.run([str(go_bin / "grpcurl"), "-protoset", str(protoset), "describe",
                          "session.v1.StartOrResumeResponse"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "a resumable conversation exists that the caller may not see yet" in out.stdout
