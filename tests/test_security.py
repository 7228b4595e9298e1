"""Security through a real server: bearer tokens and scopes on every service, open health and
reflection, TLS and mutual TLS with certificates made here, the non-loopback rule, and per-caller
rate limits."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import os
import queue
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from identity_graph.api import auth
from identity_graph.api.auth import (
    ADMIN,
    IDENTITY_READ,
    IDENTITY_WRITE,
    PUBLIC,
    SCOPES,
    SESSION_READ,
    SESSION_WRITE,
    InsecureBindError,
    TokenConfigError,
    TokenStore,
    check_bind,
    hash_token,
    is_loopback_address,
    issue_token,
    required_scope,
    revoke_token,
)
from identity_graph.api.ratelimit import RateLimiter
from identity_graph.engine import IdentityGraph, ResolveRequest
from identity_graph.store.base import GraphStore
from server import BackgroundServer, TlsConfig, create_server, reload_tokens
from stubs.identity.v1 import batch_pb2, batch_pb2_grpc, identity_pb2, identity_pb2_grpc, review_pb2
from stubs.identity.v1 import identity_pb2 as ipb
from stubs.session.v1 import session_pb2, session_pb2_grpc
from stubs.session.v1 import session_pb2 as spb

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 30.0
CALLERS = {
    "reader": (IDENTITY_READ, SESSION_READ),
    "writer": (IDENTITY_WRITE, SESSION_WRITE),
    "admin": (ADMIN,),
    "crm": (IDENTITY_READ, IDENTITY_WRITE, SESSION_READ, SESSION_WRITE),
}


# ---- fixtures -------------------------------------------------------------------------------


@dataclass
class Tokens:
    path: Path
    by_name: dict[str, str]

    def store(self) -> TokenStore:
        return TokenStore.from_file(self.path)

    def md(self, name: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.by_name[name]}"),)


@pytest.fixture
def tokens(tmp_path: Path) -> Tokens:
    path = tmp_path / "tokens.json"
    return Tokens(path, {name: issue_token(path, name, scopes) for name, scopes in CALLERS.items()})


@dataclass
class Client:
    channel: grpc.Channel
    identity: identity_pb2_grpc.IdentityServiceStub
    session: session_pb2_grpc.SessionServiceStub
    batch: batch_pb2_grpc.BatchServiceStub
    health: health_pb2_grpc.HealthStub

    @classmethod
    def over(cls, channel: grpc.Channel) -> Client:
        return cls(
            channel,
            identity_pb2_grpc.IdentityServiceStub(channel),
            session_pb2_grpc.SessionServiceStub(channel),
            batch_pb2_grpc.BatchServiceStub(channel),
            health_pb2_grpc.HealthStub(channel),
        )


@pytest.fixture
def duck_graph(tmp_path: Path) -> Iterator[IdentityGraph]:
    from identity_graph.store import open_store

    store = open_store(str(tmp_path / "identity.db"))
    try:
        yield IdentityGraph(store)
    finally:
        store.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., tuple[BackgroundServer, Client]]]:
    """Starts BackgroundServers (plain-text client channels) and stops them after the test."""
    running: list[tuple[BackgroundServer, grpc.Channel]] = []

    def start(graph: IdentityGraph, **options: Any) -> tuple[BackgroundServer, Client]:
        srv = BackgroundServer(graph, timeout_s=TIMEOUT, poll_interval_s=0.02, **options)
        channel = grpc.insecure_channel(f"127.0.0.1:{srv.port}")
        running.append((srv, channel))
        grpc.channel_ready_future(channel).result(TIMEOUT)
        return srv, Client.over(channel)

    yield start
    for srv, channel in running:
        channel.close()
        srv.stop()


def ident(key: str) -> ipb.Identifier:
    type_, _, value = key.partition(":")
    return ipb.Identifier(type=type_, value=value)


def code_of(call: Callable[[], Any]) -> grpc.StatusCode:
    try:
        result = call()
        if hasattr(result, "__next__"):  # a server stream: the status comes with the first read
            next(result)
            result.cancel()
    except grpc.RpcError as e:
        return e.code()
    return grpc.StatusCode.OK


def resolve_req(n: int | str = 1) -> ipb.ResolveRequest:
    return ipb.ResolveRequest(
        channel="web", identifiers=[ident(f"web_cookie:c{n}"), ident(f"email:u{n}@x.io")]
    )


# ---- the scope table ------------------------------------------------------------------------


def test_scope_table_covers_every_rpc_of_every_served_service() -> None:
    for module in (identity_pb2, session_pb2, batch_pb2, review_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for m in service.methods:
                assert required_scope(f"/{service.full_name}/{m.name}") in SCOPES, m.full_name


def test_scope_table_reads_writes_admin_and_fail_closed() -> None:
    ids, ses = "/identity.v1.IdentityService/", "/session.v1.SessionService/"
    expected = {
        IDENTITY_WRITE: [ids + m for m in ("Resolve", "Link", "Unlink", "SetGeneric")],
        IDENTITY_READ: [ids + m for m in ("GetCustomer", "Explain", "WatchEvents", "PreviewSplit")],
        SESSION_READ: [
            ses + m
            for m in ("GetConversation", "ListConversations", "GetConsents", "GetMetrics", "SuggestHandoff")
        ],
        SESSION_WRITE: [
            ses + m for m in ("StartOrResume", "AppendTurn", "Close", "RecordConsent", "Escalate")
        ],
        ADMIN: [
            ids + "Split",
            ses + "RecycleIdentifier",
            "/identity.v1.BatchService/Relink",
            "/identity.v1.AdminService/Erase",
            "/identity.v1.AdminService/Export",
        ],
        PUBLIC: [
            "/grpc.health.v1.Health/Check",
            "/grpc.health.v1.Health/Watch",
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        ],
    }
    for scope, methods in expected.items():
        for method in methods:
            assert required_scope(method) == scope, method
    for unknown in ("/identity.v1.IdentityService/Nope", "/other.v1.Thing/Get", "/*", "", "Resolve"):
        assert required_scope(unknown) is None, unknown


# ---- authentication and scopes through a real server, both backends -------------------------


def test_missing_or_bad_token_is_unauthenticated_on_every_service(
    store: GraphStore, tokens: Tokens, serve: Callable[..., tuple[BackgroundServer, Client]]
) -> None:
    _, c = serve(IdentityGraph(store), auth=tokens.store())
    good = tokens.by_name["crm"]
    calls: dict[str, Callable[[Any], Any]] = {
        "Resolve": lambda md: c.identity.Resolve(resolve_req(), timeout=TIMEOUT, metadata=md),
        "GetCustomer": lambda md: c.identity.GetCustomer(
            ipb.GetCustomerRequest(customer_id="cus_x"), timeout=TIMEOUT, metadata=md
        ),
        "WatchEvents": lambda md: c.identity.WatchEvents(
            ipb.WatchEventsRequest(from_seq=0), timeout=TIMEOUT, metadata=md
        ),
        "GetMetrics": lambda md: c.session.GetMetrics(spb.GetMetricsRequest(), timeout=TIMEOUT, metadata=md),
        "StartOrResume": lambda md: c.session.StartOrResume(
            spb.StartOrResumeRequest(channel="web", identifiers=[ident("web_cookie:s")]),
            timeout=TIMEOUT,
            metadata=md,
        ),
        "Relink": lambda md: c.batch.Relink(batch_pb2.RelinkRequest(), timeout=TIMEOUT, metadata=md),
    }
    bad = [
        None,
        (("authorization", "Bearer igt_not-a-real-token"),),
        (("authorization", f"Basic {good}"),),
        (("authorization", good),),
        (("authorization", "Bearer "),),
        (("authorization", f"Bearer {good}x"),),
        (("authorization", f"Bearer {good}"), ("authorization", f"Bearer {good}")),
        (("x-api-key", good),),
    ]
    for name, call in calls.items():
        for md in bad:
            assert code_of(lambda call=call, md=md: call(md)) == grpc.StatusCode.UNAUTHENTICATED, (name, md)
    with pytest.raises(grpc.RpcError) as info:
        c.identity.Resolve(resolve_req(), timeout=TIMEOUT)
    assert info.value.details() == "missing bearer token"
    assert good not in (info.value.details() or "")
    # nothing was written by the refused calls
    assert (
        code_of(
            lambda: c.identity.GetCustomer(
                ipb.GetCustomerRequest(identifier=ident("web_cookie:c1")),
                timeout=TIMEOUT,
                metadata=tokens.md("crm"),
            )
        )
        == grpc.StatusCode.NOT_FOUND
    )


def test_scopes_grant_reads_writes_and_admin(
    store: GraphStore, tokens: Tokens, serve: Callable[..., tuple[BackgroundServer, Client]]
) -> None:
    _, c = serve(IdentityGraph(store), auth=tokens.store())
    md = tokens.md
    OK, DENIED = grpc.StatusCode.OK, grpc.StatusCode.PERMISSION_DENIED

    # identity: write with identity.write, read with identity.read, Split needs admin
    assert (
        code_of(lambda: c.identity.Resolve(resolve_req(), timeout=TIMEOUT, metadata=md("reader"))) == DENIED
    )
    created = c.identity.Resolve(resolve_req(), timeout=TIMEOUT, metadata=md("writer"))
    get = ipb.GetCustomerRequest(customer_id=created.customer_id)
    assert c.identity.GetCustomer(get, timeout=TIMEOUT, metadata=md("reader")).customer.customer_id
    assert code_of(lambda: c.identity.GetCustomer(get, timeout=TIMEOUT, metadata=md("writer"))) == DENIED
    assert code_of(lambda: c.identity.GetCustomer(get, timeout=TIMEOUT, metadata=md("admin"))) == DENIED
    stream = c.identity.WatchEvents(
        ipb.WatchEventsRequest(from_seq=0), timeout=TIMEOUT, metadata=md("reader")
    )
    assert next(stream).seq >= 1
    stream.cancel()
    watch = ipb.WatchEventsRequest(from_seq=0)
    assert code_of(lambda: c.identity.WatchEvents(watch, timeout=TIMEOUT, metadata=md("writer"))) == DENIED
    split = ipb.SplitRequest(detach=[ident("email:u1@x.io")], actor="ops")
    assert code_of(lambda: c.identity.PreviewSplit(split, timeout=TIMEOUT, metadata=md("reader"))) == OK
    assert code_of(lambda: c.identity.Split(split, timeout=TIMEOUT, metadata=md("crm"))) == DENIED
    assert code_of(lambda: c.identity.Split(split, timeout=TIMEOUT, metadata=md("admin"))) == OK

    # session: reads with session.read, the rest with session.write, RecycleIdentifier with admin
    start = spb.StartOrResumeRequest(channel="web", identifiers=[ident("web_cookie:c1")])
    assert code_of(lambda: c.session.StartOrResume(start, timeout=TIMEOUT, metadata=md("reader"))) == DENIED
    assert c.session.StartOrResume(start, timeout=TIMEOUT, metadata=md("writer")).conversation.conversation_id
    metrics = spb.GetMetricsRequest()
    assert code_of(lambda: c.session.GetMetrics(metrics, timeout=TIMEOUT, metadata=md("reader"))) == OK
    assert code_of(lambda: c.session.GetMetrics(metrics, timeout=TIMEOUT, metadata=md("writer"))) == DENIED
    recycle = spb.RecycleIdentifierRequest(identifier=ident("web_cookie:c1"), actor="ops", reason="test")
    assert (
        code_of(lambda: c.session.RecycleIdentifier(recycle, timeout=TIMEOUT, metadata=md("crm"))) == DENIED
    )
    assert code_of(lambda: c.session.RecycleIdentifier(recycle, timeout=TIMEOUT, metadata=md("admin"))) == OK

    # batch: admin only; with admin the request itself is judged (a missing model file)
    relink = batch_pb2.RelinkRequest(model_path="/no/such/model.json")
    assert code_of(lambda: c.batch.Relink(relink, timeout=TIMEOUT, metadata=md("crm"))) == DENIED
    assert (
        code_of(lambda: c.batch.Relink(relink, timeout=TIMEOUT, metadata=md("admin")))
        == grpc.StatusCode.INVALID_ARGUMENT
    )


def test_methods_outside_the_table_are_denied(
    duck_graph: IdentityGraph, tokens: Tokens, serve: Callable[..., tuple[BackgroundServer, Client]]
) -> None:
    _, c = serve(duck_graph, auth=tokens.store())

    def call(method: str, name: str | None) -> grpc.StatusCode:
        rpc = c.channel.unary_unary(method)
        metadata = tokens.md(name) if name else None
        return code_of(lambda: rpc(b"", timeout=TIMEOUT, metadata=metadata))

    for name in ("crm", "admin"):
        assert call("/identity.v1.IdentityService/DropEverything", name) == grpc.StatusCode.PERMISSION_DENIED
        assert call("/other.v1.Secret/Get", name) == grpc.StatusCode.PERMISSION_DENIED
    assert call("/other.v1.Secret/Get", None) == grpc.StatusCode.UNAUTHENTICATED
    # the future AdminService is admin's: past auth, it is simply not implemented yet
    assert call("/identity.v1.AdminService/Erase", "crm") == grpc.StatusCode.PERMISSION_DENIED
    assert call("/identity.v1.AdminService/Erase", "admin") == grpc.StatusCode.UNIMPLEMENTED


def test_health_and_reflection_need_no_token(
    duck_graph: IdentityGraph, tokens: Tokens, serve: Callable[..., tuple[BackgroundServer, Client]]
) -> None:
    _, c = serve(duck_graph, auth=tokens.store(), rate_limit=RateLimiter(1, 1))
    for _ in range(5):  # not rate limited either
        resp = c.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT)
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
    refl = reflection_pb2_grpc.ServerReflectionStub(c.channel)
    answers = list(
        refl.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=TIMEOUT
        )
    )
    names = {s.name for s in answers[0].list_services_response.service}
    assert {"identity.v1.IdentityService", "session.v1.SessionService", "identity.v1.BatchService"} <= names


def _access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.fields for r in caplog.records if r.name == "identity_server.access"]  # type: ignore[attr-defined]


def test_access_log_names_the_caller_even_under_concurrency(
    duck_graph: IdentityGraph,
    tokens: Tokens,
    serve: Callable[..., tuple[BackgroundServer, Client]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, c = serve(duck_graph, auth=tokens.store())
    caplog.set_level(logging.INFO, logger="identity_server.access")

    def as_writer(i: int) -> None:
        c.identity.Resolve(resolve_req(i), timeout=TIMEOUT, metadata=tokens.md("writer"))

    def as_reader(i: int) -> None:
        c.session.GetMetrics(spb.GetMetricsRequest(), timeout=TIMEOUT, metadata=tokens.md("reader"))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: (as_writer if i % 2 else as_reader)(i), range(40)))
    assert (
        code_of(lambda: c.identity.Resolve(resolve_req(), timeout=TIMEOUT)) == grpc.StatusCode.UNAUTHENTICATED
    )
    assert (
        code_of(lambda: c.identity.Resolve(resolve_req(), timeout=TIMEOUT, metadata=tokens.md("reader")))
        == grpc.StatusCode.PERMISSION_DENIED
    )

    lines = _access_lines(caplog)
    ok = [f for f in lines if f["code"] == "OK"]
    assert len(ok) == 40
    for f in ok:
        expected = "writer" if f["method"].endswith("/Resolve") else "reader"
        assert f["caller"] == expected, f
    refused = [f for f in lines if f["code"] != "OK"]
    assert {(f["code"], f["caller"]) for f in refused} == {
        ("UNAUTHENTICATED", None),
        ("PERMISSION_DENIED", "reader"),
    }
    assert all(f["peer"] and f["method"] == "/identity.v1.IdentityService/Resolve" for f in refused)


def test_engine_code_sees_the_caller_in_its_worker_thread(
    duck_graph: IdentityGraph, tokens: Tokens, serve: Callable[..., tuple[BackgroundServer, Client]]
) -> None:
    seen: list[tuple[str, str | None, str]] = []
    real = duck_graph.resolve

    class Spying:
        """Stands in for `duck_graph.resolve`, noting who calls which of its entries, where."""

        def _seen(self, name: str) -> None:
            seen.append((name, auth.current_caller.get(), threading.current_thread().name))

        def __call__(self, req: ResolveRequest) -> Any:
            self._seen("resolve")
            return real(req)

        def without_waiting(self, req: ResolveRequest) -> Any:
            self._seen("resolve.without_waiting")
            return real.without_waiting(req)

    # a known identifier is read on the event loop (`resolve.without_waiting`); a write (the
    # first call: a new identifier) is handed to a worker thread (`resolve`)
    duck_graph.resolve = Spying()  # type: ignore[assignment]
    _, c = serve(duck_graph, auth=tokens.store())
    c.identity.Resolve(resolve_req(), timeout=TIMEOUT, metadata=tokens.md("crm"))
    c.identity.Resolve(resolve_req(), timeout=TIMEOUT, metadata=tokens.md("writer"))
    assert [(name, caller) for name, caller, _ in seen] == [
        ("resolve.without_waiting", "crm"), ("resolve", "crm"), ("resolve.without_waiting", "writer")]
    assert all(thread != "identity-server" for name, _, thread in seen if name == "resolve")  # a worker
    assert auth.current_caller.get() is None  # nothing leaks into this thread


def test_links_record_the_authenticated_caller_not_the_typed_actor(
    store: GraphStore, tokens: Tokens, serve: Callable[..., tuple[BackgroundServer, Client]]
) -> None:
    """With auth on, `actor` in a request cannot sign a write with another name: the link keeps
    the caller's name (Link, Resolve, StartOrResume); with auth off the typed actor is recorded."""
    _, c = serve(IdentityGraph(store), auth=tokens.store())
    crm = tokens.md("crm")
    c.identity.Link(
        ipb.LinkRequest(a=ident("web_cookie:a1"), b=ident("email:a1@x.io"), kind=ipb.LINK_KIND_OBSERVED,
                        source="form", actor="admin"),
        timeout=TIMEOUT, metadata=crm,
    )  # fmt: skip
    c.identity.Resolve(
        ipb.ResolveRequest(channel="web", identifiers=[ident("web_cookie:a2"), ident("email:a2@x.io")],
                           actor="admin"),
        timeout=TIMEOUT, metadata=crm,
    )  # fmt: skip
    c.session.StartOrResume(
        spb.StartOrResumeRequest(channel="web", identifiers=[ident("web_cookie:a3"), ident("email:a3@x.io")],
                                 actor="admin"),
        timeout=TIMEOUT, metadata=crm,
    )  # fmt: skip
    links = store.links(["web_cookie:a1", "web_cookie:a2", "web_cookie:a3"])
    assert len(links) == 3 and {lk.actor for lk in links} == {"crm"}

    _, open_ = serve(IdentityGraph(store))
    open_.identity.Link(
        ipb.LinkRequest(a=ident("web_cookie:b1"), b=ident("email:b1@x.io"), kind=ipb.LINK_KIND_OBSERVED,
                        source="form", actor="ops-jane"),
        timeout=TIMEOUT,
    )  # fmt: skip
    assert [lk.actor for lk in store.links(["web_cookie:b1"])] == ["ops-jane"]


def test_auth_off_by_default_keeps_todays_behaviour(
    duck_graph: IdentityGraph, serve: Callable[..., tuple[BackgroundServer, Client]]
) -> None:
    _, c = serve(duck_graph)
    assert c.identity.Resolve(resolve_req(), timeout=TIMEOUT).customer_id


# ---- the tokens file ------------------------------------------------------------------------


def test_tokens_file_keeps_only_hashes(tokens: Tokens) -> None:
    text = tokens.path.read_text()
    for name, token in tokens.by_name.items():
        assert token.startswith("igt_") and len(token) >= 40
        assert token not in text
        assert token.removeprefix("igt_") not in text
        assert hash_token(token) in text
        entry = tokens.store().authenticate(token)
        assert entry is not None and entry.name == name and entry.scopes == frozenset(CALLERS[name])
    assert stat.S_IMODE(tokens.path.stat().st_mode) == 0o600
    store = tokens.store()
    assert store.authenticate("igt_guess") is None
    assert store.authenticate("") is None
    assert "digest" not in repr(store.entries[0])


def test_issue_rotate_revoke(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    first = issue_token(path, "crm", ["identity.read"])
    with pytest.raises(TokenConfigError, match="already has a token"):
        issue_token(path, "crm", ["identity.read"])
    second = issue_token(path, "crm", ["identity.read", "session.read"], replace=True)
    store = TokenStore.from_file(path)
    assert store.authenticate(first) is None
    assert store.authenticate(second).scopes == {"identity.read", "session.read"}  # type: ignore[union-attr]
    with pytest.raises(TokenConfigError, match="unknown scopes"):
        issue_token(path, "x", ["identity.readwrite"])
    with pytest.raises(TokenConfigError, match="name"):
        issue_token(path, "bad name", ["admin"])
    assert revoke_token(path, "crm") and not revoke_token(path, "crm")
    assert len(TokenStore.from_file(path)) == 0


def test_toml_file_env_var_and_bad_configs(tmp_path: Path) -> None:
    toml_path = tmp_path / "tokens.toml"
    t1 = issue_token(toml_path, "crm", ["identity.read"], rate=5, burst=10)
    assert t1 not in toml_path.read_text() and "[[tokens]]" in toml_path.read_text()
    t2 = auth.new_token()
    env = {
        "IDENTITY_TOKENS": json.dumps(
            [{"name": "bot", "sha256": hash_token(t2), "scopes": ["session.write"]}]
        )
    }
    both = TokenStore.load(toml_path, env)
    assert both is not None and {e.name for e in both.entries} == {"crm", "bot"}
    assert both.authenticate(t1).name == "crm" and both.authenticate(t2).name == "bot"  # type: ignore[union-attr]
    assert both.rate_overrides() == {"crm": (5.0, 10.0)}
    assert TokenStore.load(None, {}) is None
    assert len(TokenStore.load(None, {"IDENTITY_TOKENS": "[]"}) or ()) == 0  # configured, nobody admitted

    h = hash_token(t2)
    for doc, message in [
        ([{"name": "a", "token": t2, "sha256": h, "scopes": []}], "plaintext"),
        ([{"name": "a", "sha256": "abc", "scopes": []}], "sha256"),
        ([{"name": "a", "sha256": h, "scopes": ["root"]}], "unknown scopes"),
        (
            [{"name": "a", "sha256": h, "scopes": []}, {"name": "a", "sha256": "0" * 64, "scopes": []}],
            "unique",
        ),
        ([{"name": "a", "sha256": h, "scopes": []}, {"name": "b", "sha256": h, "scopes": []}], "share"),
        ([{"name": "a", "sha256": h, "scopes": [], "rate": -1}], "rate"),
        ({"tokens": "nope"}, "list"),
    ]:
        with pytest.raises(TokenConfigError, match=message):
            TokenStore.from_json(json.dumps(doc))
    with pytest.raises(TokenConfigError, match="IDENTITY_TOKENS"):
        TokenStore.load(None, {"IDENTITY_TOKENS": "{not json"})
    with pytest.raises(TokenConfigError, match="cannot read"):
        TokenStore.from_file(tmp_path / "missing.json")
    with pytest.raises(TokenConfigError, match="unique"):
        TokenStore.load(
            toml_path, {"IDENTITY_TOKENS": json.dumps([{"name": "crm", "sha256": h, "scopes": []}])}
        )


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("NEO4J_", "IDENTITY_TOKENS"))}


def test_issue_token_cli_prints_the_token_once(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    for argv in (
        [sys.executable, "-m", "identity_graph.api.auth", "issue", "--name", "crm"],
        [sys.executable, str(ROOT / "server.py"), "issue-token", "--name", "bot"],
    ):
        out = subprocess.run(
            [*argv, "--scopes", "identity.read,session.read", "--tokens-file", str(path)],
            capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=120,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        token = out.stdout.strip()
        assert token.startswith("igt_") and "\n" not in token and token not in out.stderr
        assert token not in path.read_text()
        assert TokenStore.from_file(path).authenticate(token) is not None
    listing = subprocess.run(
        [sys.executable, "-m", "identity_graph.api.auth", "list", "--tokens-file", str(path)],
        capture_output=True, text=True, env=_env(), timeout=120,
    )  # fmt: skip
    assert listing.returncode == 0 and "crm\tidentity.read,session.read" in listing.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "identity_graph.api.auth", "issue", "--name", "x", "--scopes", "root",
         "--tokens-file", str(path)],
        capture_output=True, text=True, env=_env(), timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2 and "unknown scopes" in bad.stderr and not bad.stdout


# ---- TLS and mutual TLS ---------------------------------------------------------------------


@dataclass
class Pki:
    ca: bytes
    server_cert: bytes
    server_key: bytes
    client_cert: bytes
    client_key: bytes
    other_ca: bytes
    rogue_cert: bytes  # a client cert signed by other_ca
    rogue_key: bytes
    billing_cert: bytes  # a second client cert from the trusted CA, common name "billing"
    billing_key: bytes


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    signer = issuer[1] if issuer else key
    return builder.sign(signer, hashes.SHA256())


@pytest.fixture(scope="module")
def pki() -> Pki:
    def pem(c: x509.Certificate) -> bytes:
        return c.public_bytes(serialization.Encoding.PEM)

    ca_key, other_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _cert("test CA", ca_key, None, ca=True)
    other = _cert("other CA", other_key, None, ca=True)
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(4)]
    server = _cert("identity-server", keys[0], (ca, ca_key), server=True)
    client = _cert("crm", keys[1], (ca, ca_key))
    rogue = _cert("rogue", keys[2], (other, other_key))
    billing = _cert("billing", keys[3], (ca, ca_key))
    return Pki(
        pem(ca), pem(server), _pem_key(keys[0]), pem(client), _pem_key(keys[1]),
        pem(other), pem(rogue), _pem_key(keys[2]), pem(billing), _pem_key(keys[3]),
    )  # fmt: skip


def _secure_code(
    port: int, creds: grpc.ChannelCredentials, md: Any, host: str = "127.0.0.1"
) -> grpc.StatusCode:
    with grpc.secure_channel(f"{host}:{port}", creds) as channel:
        stub = identity_pb2_grpc.IdentityServiceStub(channel)
        return code_of(lambda: stub.Resolve(resolve_req(host), timeout=10, metadata=md))


def _plain_code(port: int, md: Any) -> grpc.StatusCode:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = identity_pb2_grpc.IdentityServiceStub(channel)
        return code_of(lambda: stub.Resolve(resolve_req("plain"), timeout=10, metadata=md))


def test_tls_serves_secure_channels_and_refuses_plain_text(
    duck_graph: IdentityGraph, tokens: Tokens, pki: Pki
) -> None:
    tls = TlsConfig(pki.server_cert, pki.server_key)
    with BackgroundServer(duck_graph, auth=tokens.store(), tls=tls, timeout_s=TIMEOUT) as srv:
        trusted = grpc.ssl_channel_credentials(root_certificates=pki.ca)
        assert _secure_code(srv.port, trusted, tokens.md("writer")) == grpc.StatusCode.OK
        assert _secure_code(srv.port, trusted, tokens.md("writer"), host="localhost") == grpc.StatusCode.OK
        assert _secure_code(srv.port, trusted, None) == grpc.StatusCode.UNAUTHENTICATED
        assert _plain_code(srv.port, tokens.md("writer")) == grpc.StatusCode.UNAVAILABLE
        untrusted = grpc.ssl_channel_credentials(root_certificates=pki.other_ca)
        assert _secure_code(srv.port, untrusted, tokens.md("writer")) == grpc.StatusCode.UNAVAILABLE
        with grpc.secure_channel(f"127.0.0.1:{srv.port}", trusted) as channel:  # health stays open
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_mutual_tls_requires_a_client_certificate_from_the_ca(
    duck_graph: IdentityGraph, tokens: Tokens, pki: Pki
) -> None:
    tls = TlsConfig(pki.server_cert, pki.server_key, client_ca=pki.ca)
    with BackgroundServer(duck_graph, auth=tokens.store(), tls=tls, timeout_s=TIMEOUT) as srv:
        md = tokens.md("writer")
        no_cert = grpc.ssl_channel_credentials(root_certificates=pki.ca)
        assert _secure_code(srv.port, no_cert, md) == grpc.StatusCode.UNAVAILABLE
        rogue = grpc.ssl_channel_credentials(pki.ca, pki.rogue_key, pki.rogue_cert)
        assert _secure_code(srv.port, rogue, md) == grpc.StatusCode.UNAVAILABLE
        good = grpc.ssl_channel_credentials(pki.ca, pki.client_key, pki.client_cert)
        assert _secure_code(srv.port, good, md) == grpc.StatusCode.OK
        assert _secure_code(srv.port, good, None) == grpc.StatusCode.UNAUTHENTICATED  # a cert is not a token
        assert _plain_code(srv.port, md) == grpc.StatusCode.UNAVAILABLE


def test_a_token_bound_to_a_client_certificate_needs_that_certificate(
    duck_graph: IdentityGraph, tmp_path: Path, pki: Pki
) -> None:
    path = tmp_path / "bound.json"
    bound = issue_token(path, "crm", (IDENTITY_WRITE,), cert_cn="crm")
    free = issue_token(path, "ops", (IDENTITY_WRITE,))
    entries = json.loads(path.read_text())["tokens"]
    assert {e["name"]: e.get("cert_cn") for e in entries} == {"crm": "crm", "ops": None}
    bound_md = (("authorization", f"Bearer {bound}"),)
    free_md = (("authorization", f"Bearer {free}"),)
    crm = grpc.ssl_channel_credentials(pki.ca, pki.client_key, pki.client_cert)
    billing = grpc.ssl_channel_credentials(pki.ca, pki.billing_key, pki.billing_cert)
    mutual = TlsConfig(pki.server_cert, pki.server_key, client_ca=pki.ca)
    with BackgroundServer(duck_graph, auth=TokenStore.from_file(path), tls=mutual, timeout_s=TIMEOUT) as srv:
        assert _secure_code(srv.port, crm, bound_md) == grpc.StatusCode.OK
        # the token alone, with another trusted certificate, is refused
        assert _secure_code(srv.port, billing, bound_md) == grpc.StatusCode.UNAUTHENTICATED
        assert _secure_code(srv.port, billing, free_md) == grpc.StatusCode.OK  # unbound tokens as before
    one_way = TlsConfig(pki.server_cert, pki.server_key)  # TLS without client certificates
    with BackgroundServer(duck_graph, auth=TokenStore.from_file(path), tls=one_way, timeout_s=TIMEOUT) as srv:
        trusted = grpc.ssl_channel_credentials(root_certificates=pki.ca)
        assert _secure_code(srv.port, trusted, bound_md) == grpc.StatusCode.UNAUTHENTICATED
        assert _secure_code(srv.port, trusted, free_md) == grpc.StatusCode.OK
    with pytest.raises(TokenConfigError, match="cert_cn"):
        TokenStore.from_json(json.dumps([{**entries[0], "cert_cn": 7}]))


# ---- the non-loopback rule ------------------------------------------------------------------


def test_loopback_addresses() -> None:
    for a in ("127.0.0.1:50051", "127.8.9.1:1", "localhost:0", "LOCALHOST:1", "[::1]:50051", "unix:/tmp/s"):
        assert is_loopback_address(a), a
    for a in (
        "0.0.0.0:0",
        "[::]:50051",
        ":50051",
        "10.0.0.5:1",
        "example.com:443",
        "[2001:db8::1]:1",
        "myhost",
    ):
        assert not is_loopback_address(a), a
    assert check_bind("127.0.0.1:0", auth=False, tls=False) == []
    assert check_bind("0.0.0.0:0", auth=True, tls=True) == []
    with pytest.raises(InsecureBindError, match=r"without token auth .* and TLS"):
        check_bind("0.0.0.0:0", auth=False, tls=False)
    with pytest.raises(InsecureBindError, match="without TLS"):
        check_bind("0.0.0.0:0", auth=True, tls=False)
    assert len(check_bind("0.0.0.0:0", auth=False, tls=False, force=True)) == 2


def test_create_server_refuses_non_loopback_without_auth(duck_graph: IdentityGraph) -> None:
    async def build() -> None:
        await create_server("0.0.0.0:0", duck_graph, housekeeping_interval_s=None)

    import asyncio

    with pytest.raises(InsecureBindError):
        asyncio.run(build())


def _spawn(args: list[str], cwd: Path) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "server.py"), "--db", str(cwd / "identity.db"), "--grace", "2", *args],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=_env(), cwd=cwd,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    proc.reader = reader  # type: ignore[attr-defined]
    return proc, lines


def _listening(proc: subprocess.Popen[str], lines: queue.Queue[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            assert proc.poll() is None, "server exited early"
            continue
        if line.startswith("{") and json.loads(line).get("msg") == "listening":
            return json.loads(line)
    raise AssertionError("server did not report listening")


def _stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.reader.join(10)  # type: ignore[attr-defined]
        assert proc.stderr is not None
        proc.stderr.close()


def test_non_loopback_bind_needs_auth_and_tls_or_force(tmp_path: Path, tokens: Tokens, pki: Pki) -> None:
    for extra, missing in (([], "without token auth"), (["--tokens-file", str(tokens.path)], "without TLS")):
        proc = subprocess.run(
            [sys.executable, str(ROOT / "server.py"), "--address", "0.0.0.0:0", "--db",
             str(tmp_path / "identity.db"), *extra],
            capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        assert "refusing to bind non-loopback address 0.0.0.0:0" in proc.stderr
        assert missing in proc.stderr and "--allow-insecure-non-loopback" in proc.stderr
        assert not (tmp_path / "identity.db").exists()  # refused before opening the store

    forced, lines = _spawn(["--address", "0.0.0.0:0", "--allow-insecure-non-loopback"], tmp_path)
    try:
        info = _listening(forced, lines)
        assert info["auth"] == "off" and info["tls"] == "off"
        with grpc.insecure_channel(f"127.0.0.1:{info['port']}") as channel:
            stub = identity_pb2_grpc.IdentityServiceStub(channel)
            assert stub.Resolve(resolve_req(), timeout=TIMEOUT).customer_id
    finally:
        assert _stop(forced) == 0

    files = {name: tmp_path / f"{name}.pem" for name in ("cert", "key", "ca")}
    files["cert"].write_bytes(pki.server_cert)
    files["key"].write_bytes(pki.server_key)
    files["ca"].write_bytes(pki.ca)
    args = ["--address", "0.0.0.0:0", "--tokens-file", str(tokens.path), "--tls-cert", str(files["cert"]),
            "--tls-key", str(files["key"]), "--rate-limit", "100"]  # fmt: skip
    secure, lines = _spawn(args, tmp_path)
    try:
        info = _listening(secure, lines)
        assert info["auth"] == f"{len(CALLERS)} callers" and info["tls"] == "on"
        creds = grpc.ssl_channel_credentials(root_certificates=pki.ca)
        assert _secure_code(info["port"], creds, tokens.md("writer")) == grpc.StatusCode.OK
        assert _secure_code(info["port"], creds, None) == grpc.StatusCode.UNAUTHENTICATED
    finally:
        assert _stop(secure) == 0


def test_bad_security_flags_exit_with_a_message(tmp_path: Path) -> None:
    for args, message in (
        (["--tls-cert", "x.pem"], "--tls-cert and --tls-key go together"),
        (["--tls-client-ca", "ca.pem"], "--tls-client-ca needs"),
        (["--tls-cert", "x.pem", "--tls-key", "y.pem"], "cannot read TLS file"),
        (["--tokens-file", str(tmp_path / "none.json")], "cannot read tokens file"),
    ):
        proc = subprocess.run(
            [sys.executable, str(ROOT / "server.py"), "--db", str(tmp_path / "g.db"), *args],
            capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)


# ---- rate limiting --------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_refills_per_caller() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2, 3, overrides={"big": (10, 20), "slow": (0.5, None)}, clock=clock)
    assert limiter.limits("slow") == (0.5, 3)  # an override without a burst keeps the default burst
    assert [limiter.acquire("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.acquire("a") == pytest.approx(0.5)
    assert limiter.acquire("b") == 0  # another caller has its own bucket
    clock.now += 0.25
    assert limiter.acquire("a") == pytest.approx(0.25)
    clock.now += 0.25
    assert limiter.acquire("a") == 0
    clock.now += 100
    assert [limiter.acquire("a") for _ in range(4)][-1] > 0  # refills only up to the burst
    assert all(limiter.acquire("big") == 0 for _ in range(20)) and limiter.acquire("big") > 0
    assert [limiter.acquire("slow") for _ in range(4)] == [0, 0, 0, pytest.approx(2.0)]
    assert RateLimiter(0.5).limits("x") == (0.5, 1) and RateLimiter(7).limits("x") == (7, 7)  # max(1, rate)
    only = RateLimiter(None, overrides={"slow": (1, 1)}, clock=clock)
    assert all(only.acquire("free") == 0 for _ in range(1000))
    assert only.acquire("slow") == 0 and only.acquire("slow") > 0
    with pytest.raises(ValueError):
        RateLimiter(0)
    with pytest.raises(ValueError):
        RateLimiter(1, 0.5)


def test_token_bucket_is_thread_safe() -> None:
    limiter = RateLimiter(0.001, 500)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: limiter.acquire("a"), range(2000)))
    assert sum(1 for r in results if r == 0) == 500


def test_token_buckets_stay_bounded_while_every_caller_is_active() -> None:
    """Many callers, none of them rested (so no bucket can be pruned as full): memory stays at the
    cap, the least recently seen caller is forgotten first, and a caller that keeps calling keeps
    its (empty) bucket, so it stays limited."""
    clock = FakeClock()
    limiter = RateLimiter(0.001, 1, clock=clock, max_buckets=100)
    assert limiter.acquire("steady") == 0
    for i in range(10_000):
        assert limiter.acquire(f"caller-{i}") == 0
        if i % 50 == 0:
            assert limiter.acquire("steady") > 0  # seen again: never the least recent
        assert len(limiter) <= 100
    assert len(limiter) == 100
    assert limiter.acquire("caller-9999") > 0  # recent callers are still limited
    assert limiter.acquire("caller-0") == 0  # long forgotten: a new bucket
    with pytest.raises(ValueError):
        RateLimiter(1, max_buckets=0)


def test_rate_limit_answers_resource_exhausted_with_retry_info(
    store: GraphStore, tokens: Tokens, serve: Callable[..., tuple[BackgroundServer, Client]]
) -> None:
    # slow enough that the calls of the burst (Neo4j takes a while) refill less than one token
    rate = 0.25
    _, c = serve(IdentityGraph(store), auth=tokens.store(), rate_limit=RateLimiter(rate, 3))
    writer, reader = tokens.md("writer"), tokens.md("reader")
    for i in range(3):
        c.identity.Resolve(resolve_req(i), timeout=TIMEOUT, metadata=writer)
    with pytest.raises(grpc.RpcError) as info:
        c.identity.Resolve(resolve_req(9), timeout=TIMEOUT, metadata=writer)
    err = info.value
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "rate limit exceeded for 'writer'; retry after" in (err.details() or "")
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None and status.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry)
    delay = retry.retry_delay.ToTimedelta().total_seconds()
    assert 0 < delay <= 1 / rate
    trailers = dict(err.trailing_metadata() or ())  # type: ignore[attr-defined]
    assert int(trailers["retry-after-ms"]) == round(delay * 1000)

    # another caller has its own bucket
    get = ipb.GetCustomerRequest(identifier=ident("web_cookie:c0"))
    for _ in range(3):
        assert c.identity.GetCustomer(get, timeout=TIMEOUT, metadata=reader).customer.customer_id
    # the limited caller gets in again once the bucket has refilled as told
    time.sleep(delay + 0.05)
    assert c.identity.Resolve(resolve_req(9), timeout=TIMEOUT, metadata=writer).customer_id


def test_rate_limit_without_auth_is_per_peer(
    duck_graph: IdentityGraph, serve: Callable[..., tuple[BackgroundServer, Client]]
) -> None:
    _, c = serve(duck_graph, rate_limit=RateLimiter(0.5, 2))
    stream_req = ipb.WatchEventsRequest(from_seq=0)
    assert code_of(lambda: c.identity.Resolve(resolve_req(), timeout=TIMEOUT)) == grpc.StatusCode.OK
    assert code_of(lambda: c.identity.WatchEvents(stream_req, timeout=TIMEOUT)) == grpc.StatusCode.OK
    assert (
        code_of(lambda: c.identity.WatchEvents(stream_req, timeout=TIMEOUT))
        == grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    with pytest.raises(grpc.RpcError) as info:
        c.identity.Resolve(resolve_req(), timeout=TIMEOUT)
    assert "rate limit exceeded for this peer" in (info.value.details() or "")


def test_sighup_reloads_tokens_and_an_invalid_file_keeps_the_old_set(tmp_path: Path, tokens: Tokens) -> None:
    proc, lines = _spawn(["--tokens-file", str(tokens.path)], tmp_path)
    seen: list[str] = []

    def wait_for(check: Any, what: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            while not lines.empty():
                seen.append(lines.get_nowait())
            if check():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; server said: {seen[-5:]}")

    try:
        port = _listening(proc, lines)["port"]
        assert _plain_code(port, tokens.md("writer")) == grpc.StatusCode.OK
        assert revoke_token(tokens.path, "writer")
        late = issue_token(tokens.path, "late", (IDENTITY_WRITE,))
        late_md = (("authorization", f"Bearer {late}"),)
        assert _plain_code(port, late_md) == grpc.StatusCode.UNAUTHENTICATED  # not before SIGHUP

        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: _plain_code(port, tokens.md("writer")) == grpc.StatusCode.UNAUTHENTICATED,
                 "the revoked token to be refused")
        assert _plain_code(port, late_md) == grpc.StatusCode.OK
        assert _plain_code(port, tokens.md("crm")) == grpc.StatusCode.OK

        tokens.path.write_text("{not json")
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: any("tokens not reloaded" in line for line in seen), "the reload error")
        assert _plain_code(port, late_md) == grpc.StatusCode.OK  # the previous set stays
        assert _plain_code(port, None) == grpc.StatusCode.UNAUTHENTICATED
    finally:
        assert _stop(proc) == 0


def test_reload_tokens_refuses_a_server_built_without_auth(duck_graph: IdentityGraph, tokens: Tokens) -> None:
    import asyncio

    async def go() -> None:
        server, _ = await create_server("127.0.0.1:0", duck_graph, housekeeping_interval_s=None)
        try:
            with pytest.raises(ValueError, match="without auth"):
                reload_tokens(server, tokens.store())
        finally:
            await server.stop(None)

    asyncio.run(go())
