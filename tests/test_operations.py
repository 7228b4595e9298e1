"""Operational truth: a second server cannot share a taken port, and a store that goes away gives
fast UNAVAILABLE and NOT_SERVING, then serves again when it is back, without a restart."""

from __future__ import annotations

import contextlib
import gc
import os
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from identity_graph.engine import IdentityGraph
from identity_graph.store import open_store
from identity_graph.store.neo4j import Neo4jStore
from identity_graph.store.neo4j_database import CONNECT_TIMEOUT_S, RETRY_TIME_S
from server import SERVICE_NAMES, BackgroundServer
from stubs.identity.v1 import identity_pb2 as ipb
from stubs.identity.v1 import identity_pb2_grpc as ipb_grpc
from stubs.session.v1 import session_pb2 as spb
from stubs.session.v1 import session_pb2_grpc as spb_grpc

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60.0
# A call to a store that went away fails within the driver's connect and retry bounds (plus the
# backoff's jitter); the driver's defaults made it about a minute.
FAST_S = CONNECT_TIMEOUT_S + RETRY_TIME_S + 4.0
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "IDENTITY_SUPPRESSION_PEPPER": "test-pepper"}


# ---- one server per port ------------------------------------------------------------------------


def test_a_second_server_on_a_taken_port_exits_with_a_clear_error(tmp_path: Path) -> None:
    port = _free_port()
    address = f"127.0.0.1:{port}"
    first = subprocess.Popen(
        [sys.executable, str(ROOT / "server.py"), "--db", str(tmp_path / "a.db"), "--address", address],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(), cwd=tmp_path,
    )  # fmt: skip
    try:
        with grpc.insecure_channel(address) as channel:
            grpc.channel_ready_future(channel).result(TIMEOUT)
            stub = ipb_grpc.IdentityServiceStub(channel)
            before = stub.Resolve(ipb.ResolveRequest(channel="web", identifiers=[ipb.Identifier(
                type="web_cookie", value="one")]), timeout=TIMEOUT).customer_id  # fmt: skip
            second = subprocess.run(
                [sys.executable, str(ROOT / "server.py"), "--db", str(tmp_path / "b.db"), "--address",
                 address],
                capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=120,
            )  # fmt: skip
            assert second.returncode == 2, second.stderr
            assert f"identity-server: error: could not bind {address}: the port is in use" in second.stderr
            # Every call still reaches the first server's database: the same customer each time.
            for _ in range(20):
                again = stub.Resolve(ipb.ResolveRequest(channel="web", identifiers=[ipb.Identifier(
                    type="web_cookie", value="one")]), timeout=TIMEOUT).customer_id  # fmt: skip
                assert again == before
    finally:
        first.terminate()
        first.wait(30)


# ---- the store goes away --------------------------------------------------------------------------


class Proxy:
    """A TCP forwarder in front of the test session's Neo4j: `stop` takes the network path away
    (listener and every open connection), `start` brings it back on the same port."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = _free_port()
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        with self.lock:
            socks, self.sockets = self.sockets, []
            listener, self.listener = self.listener, None
        for s in [*socks, *([listener] if listener else [])]:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self.lock:
                if self.listener is not listener:
                    client.close()
                    server.close()
                    return
                self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            src.close()  # each socket is the source of exactly one pump


def _health(channel: grpc.Channel) -> dict[str, int]:
    stub = health_pb2_grpc.HealthStub(channel)
    return {
        name: stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=TIMEOUT).status
        for name in ("", *SERVICE_NAMES)
    }


def _until(condition: object, seconds: float) -> float:
    """Polls `condition()` until true; returns the seconds it took (fails after `seconds`)."""
    began = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert time.monotonic() - began < seconds, "condition not reached"
        time.sleep(0.1)
    return time.monotonic() - began


def _resolve(stub: ipb_grpc.IdentityServiceStub, value: str) -> tuple[grpc.StatusCode, str, float]:
    began = time.monotonic()
    try:
        stub.Resolve(ipb.ResolveRequest(channel="web", identifiers=[ipb.Identifier(
            type="web_cookie", value=value)]), timeout=TIMEOUT)  # fmt: skip
        code, details = grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        code, details = e.code(), e.details() or ""
    return code, details, time.monotonic() - began


@pytest.fixture
def neo4j_behind_proxy(neo4j_server) -> Iterator[tuple[Proxy, Neo4jStore]]:  # type: ignore[no-untyped-def]
    host, _, port = neo4j_server.uri.rpartition("/")[2].partition(":")
    proxy = Proxy((host, int(port)))
    proxy.start()
    store = open_store(neo4j_uri=f"bolt://127.0.0.1:{proxy.port}", neo4j_user=neo4j_server.user,
                       neo4j_password=neo4j_server.password)
    try:
        yield proxy, store
    finally:
        proxy.stop()
        proxy.start()
        store.clear()
        store.close()
        proxy.stop()
        # The driver forgets (without closing) the sockets of connections that died with the
        # network path; collect them here, so their ResourceWarning does not land in a later test.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


def test_neo4j_going_away_gives_fast_unavailable_and_not_serving_then_recovers(
    neo4j_behind_proxy: tuple[Proxy, Neo4jStore],
) -> None:
    proxy, store = neo4j_behind_proxy
    srv = BackgroundServer(IdentityGraph(store), housekeeping_interval_s=None, store_check_interval_s=0.2,
                           timeout_s=TIMEOUT)  # fmt: skip
    channel = grpc.insecure_channel(f"127.0.0.1:{srv.port}")
    try:
        stub = ipb_grpc.IdentityServiceStub(channel)
        sessions = spb_grpc.SessionServiceStub(channel)
        assert _resolve(stub, "before")[0] is grpc.StatusCode.OK
        assert set(_health(channel).values()) == {SERVING}

        proxy.stop()
        for value in ("down-1", "down-2"):
            code, details, took = _resolve(stub, value)
            assert code is grpc.StatusCode.UNAVAILABLE and "unavailable" in details, (code, details)
            assert took < FAST_S, took
        began = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            sessions.StartOrResume(spb.StartOrResumeRequest(channel="web", identifiers=[ipb.Identifier(
                type="web_cookie", value="down-3")]), timeout=TIMEOUT)  # fmt: skip
        assert info.value.code() is grpc.StatusCode.UNAVAILABLE
        assert time.monotonic() - began < FAST_S
        _until(lambda: set(_health(channel).values()) == {NOT_SERVING}, FAST_S * 2)

        proxy.start()  # the store is back: no restart, the driver reconnects
        _until(lambda: set(_health(channel).values()) == {SERVING}, FAST_S * 2)
        assert _resolve(stub, "after")[0] is grpc.StatusCode.OK
    finally:
        channel.close()
        srv.stop()


def test_the_embedded_store_closed_under_the_server_gives_unavailable_and_not_serving(tmp_path: Path) -> None:
    """The SQLite store lives in the server's process: no network lies between them, so it cannot
    become unreachable and come back. What can fail is the database itself; a closed connection
    stands for that here. Calls get UNAVAILABLE at once and health says NOT_SERVING (there is no
    recovery without a restart: the process would have to open the file again)."""
    store = open_store(str(tmp_path / "graph.db"))
    srv = BackgroundServer(IdentityGraph(store), housekeeping_interval_s=None, store_check_interval_s=0.2,
                           timeout_s=TIMEOUT)  # fmt: skip
    channel = grpc.insecure_channel(f"127.0.0.1:{srv.port}")
    try:
        stub = ipb_grpc.IdentityServiceStub(channel)
        assert _resolve(stub, "before")[0] is grpc.StatusCode.OK
        store.close()
        code, details, took = _resolve(stub, "after")
        assert code is grpc.StatusCode.UNAVAILABLE and took < 2.0, (code, details, took)
        _until(lambda: set(_health(channel).values()) == {NOT_SERVING}, 10.0)
    finally:
        channel.close()
        srv.stop()
