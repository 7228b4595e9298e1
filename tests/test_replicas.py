"""Several `identity-server` processes on one database (README, "Several servers on one
database"), on both backends, through real server processes and real stubs: overlapping writes
spread over three replicas end in the graph a serial run would leave (recomputed from the stored
links), lose no acknowledged write, and leave a gap-free event log that a stream on another
replica delivers in order; the same with one replica SIGKILLed mid-run; a handoff code redeemed
on two replicas at once succeeds once; `--workers N` shares one port, and only its own workers
can join it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from replica_cluster import (
    ROOT,
    Replica,
    Workload,
    check_graph,
    cluster,
    database_args,
    ident,
    lost_writes,
)

from identity_graph.store import open_store
from identity_graph.store.base import GraphStore
from session.store import conversation_store_for
from stubs.identity.v1 import admin_pb2 as apb
from stubs.identity.v1 import admin_pb2_grpc as apb_grpc
from stubs.identity.v1 import identity_pb2 as ipb
from stubs.identity.v1 import identity_pb2_grpc as ipb_grpc
from stubs.session.v1 import session_pb2 as spb

CALLS = 2000


@pytest.fixture
def db(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[list[str], dict[str, str], GraphStore]]:
    """Server arguments for one empty database of `backend`, and a store on it for the checks."""
    if backend == "sqlite":
        args, env = database_args("sqlite", tmp_path / "identity.db")
        store = open_store(str(tmp_path / "identity.db"))
    else:
        neo4j = request.getfixturevalue("neo4j_server")
        args, env = database_args("neo4j", tmp_path, neo4j)
        store = open_store(neo4j_uri=neo4j.uri, neo4j_user=neo4j.user, neo4j_password=neo4j.password)
        store.clear()
    try:
        yield args, env, store
    finally:
        if backend == "neo4j":
            store.clear()
        store.close()


class EventWatch:
    """A WatchEvents stream on one replica, collecting every event it is sent."""

    def __init__(self, replica: Replica) -> None:
        self.seqs: list[int] = []
        self.changed = threading.Condition()
        self._call = replica.identity.WatchEvents(ipb.WatchEventsRequest(from_seq=0))  # type: ignore[union-attr]
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for ev in self._call:
                with self.changed:
                    self.seqs.append(ev.seq)
                    self.changed.notify_all()
        except grpc.RpcError:
            pass  # cancelled at the end

    def wait_for(self, seq: int, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: bool(self.seqs) and self.seqs[-1] >= seq, timeout)

    def close(self) -> None:
        self._call.cancel()
        self._thread.join(timeout=10)


def _run_and_check(
    replicas: list[Replica], store: GraphStore, calls: int, kill: Replica | None = None
) -> None:
    watch = EventWatch(replicas[-1])  # the stream is on a replica that writes a third of the calls
    try:
        work = Workload(replicas, calls)
        killer = None
        if kill is not None:

            def kill_halfway() -> None:
                work.halfway.wait()  # after half the calls were answered, not after a guessed time
                kill.kill()

            killer = threading.Thread(target=kill_halfway)
            killer.start()
        ack = work.run()
        if killer is not None:
            killer.join()
            assert not kill.alive  # type: ignore[union-attr]
        assert not ack.failures, ack.failures[:5]
        assert ack.calls == calls and ack.refused < calls // 4
        check = check_graph(store)
        assert not check.problems, check.problems[:5]
        assert check.identifiers > 50 and check.components > 1
        assert not lost_writes(ack, store, conversation_store_for(store))
        # Every event reached the stream on another replica, in order, without a gap, within the
        # poll interval (1 s) after the last write: its writes were pushed to it by nobody.
        last = store.database.last_seq()
        assert last > calls // 2
        assert watch.wait_for(last, timeout=30), (len(watch.seqs), last)
        assert watch.seqs[:last] == list(range(1, last + 1))
    finally:
        watch.close()


def test_three_replicas_stay_one_graph_with_one_killed_mid_run(db) -> None:
    """2,000 calls over three replicas; halfway through, one of them is SIGKILLed and its calls
    go to the others: everything acknowledged is there and the graph is whole."""
    args, env, store = db
    with cluster(3, args, env) as replicas:
        _run_and_check(replicas, store, CALLS, kill=replicas[0])


@pytest.mark.slow
def test_three_replicas_write_one_database_as_one_server_would(db) -> None:
    """The same 2,000 calls with every replica up to the end."""
    args, env, store = db
    with cluster(3, args, env) as replicas:
        _run_and_check(replicas, store, CALLS)


def test_a_handoff_code_redeemed_on_two_replicas_at_once_succeeds_once(db) -> None:
    args, env, _store = db
    with cluster(2, args, env) as (a, b):
        web = a.session.StartOrResume(
            spb.StartOrResumeRequest(  # type: ignore[union-attr]
                channel="web", identifiers=[ident("web_cookie:ho-1")]
            ),
            timeout=30,
        )
        caller = spb.Caller(channel="web", identifier=ident("web_cookie:ho-1"))
        tries = 2
        wins = 0
        for n in range(tries):  # a few rounds: one round can serialise by luck
            ticket = a.session.CreateHandoff(
                spb.CreateHandoffRequest(  # type: ignore[union-attr]
                    conversation_id=web.conversation.conversation_id, caller=caller, channel="sms"
                ),
                timeout=30,
            )
            barrier = threading.Barrier(2)
            outcomes: list[str] = []

            def redeem(r: Replica, phone: str) -> None:
                req = spb.RedeemHandoffRequest(code=ticket.code, channel="sms", identifiers=[ident(phone)])  # noqa: B023
                barrier.wait()  # noqa: B023
                try:
                    r.session.RedeemHandoff(req, timeout=30)  # type: ignore[union-attr]
                    outcomes.append("ok")  # noqa: B023
                except grpc.RpcError as e:
                    outcomes.append(e.code().name)  # type: ignore[attr-defined]  # noqa: B023

            threads = [
                threading.Thread(target=redeem, args=(r, f"phone:+1415666{n}{i:03d}"))
                for i, r in enumerate((a, b))
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(outcomes).count("ok") == 1, outcomes
            assert all(o in ("ok", "NOT_FOUND", "FAILED_PRECONDITION", "PERMISSION_DENIED") for o in outcomes)
            wins += 1
        assert wins == tries


def test_an_erasure_on_one_replica_is_honoured_by_another_at_once(db) -> None:
    """The suppression list is cached per replica: a Resolve on B right after Forget returned on
    A must not record the erased identifier again (the copy is checked against the list's size)."""
    args, env, store = db
    with cluster(2, args, env) as (a, b):
        keys = ["web_cookie:er-1", "email:erased@example.com"]
        for r in (a, b):  # both replicas have read (and cached) the suppression list already
            r.identity.Resolve(ipb.ResolveRequest(channel="web", identifiers=[ident(k) for k in keys]),  # type: ignore[union-attr]
                               timeout=30)
        admin = apb_grpc.AdminServiceStub(a.channel)
        admin.Forget(apb.ForgetRequest(identifier=ident(keys[1]), scope=apb.FORGET_SCOPE_CUSTOMER,
                                       reason="test", actor="test"),
                     timeout=60)
        again = b.identity.Resolve(ipb.ResolveRequest(channel="web", identifiers=[ident(k) for k in keys]),  # type: ignore[union-attr]
                                   timeout=30)
        assert not again.customer_id and [v.kind for v in again.violations] == ["suppressed", "suppressed"]
        assert store.get_identifiers(keys) == {}


# ---- identity-server --workers N -----------------------------------------------------------------


def _port_of(proc: subprocess.Popen[str], msg: str, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"server exited ({proc.poll()})")
        if line.startswith("{") and json.loads(line).get("msg") == msg:
            return int(json.loads(line)["port"])
    raise AssertionError(f"no {msg!r} line")


def test_workers_share_one_port_that_an_unrelated_server_cannot_take(tmp_path: Path) -> None:
    args, env = database_args("sqlite", tmp_path / "identity.db")
    server = [sys.executable, str(ROOT / "server.py"), *args, "--housekeeping-interval", "0"]
    parent = subprocess.Popen(
        [*server, "--address", "127.0.0.1:0", "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        port = _port_of(parent, "workers")
        for _ in range(2):  # each worker says it listens on the reserved port
            assert _port_of(parent, "listening") == port
        seen = set()
        for _ in range(10):  # new connections, spread by the kernel over the two workers
            with grpc.insecure_channel(
                f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
            ) as ch:
                res = ipb_grpc.IdentityServiceStub(ch).Resolve(
                    ipb.ResolveRequest(channel="web", identifiers=[ident("web_cookie:w1")]), timeout=30
                )
                seen.add(res.customer_id)
        assert len(seen) == 1 and seen != {""}  # two processes, one database: one customer
        # An unrelated server (no --workers) on that port fails, and so does another --workers one.
        for extra in ([], ["--workers", "2"]):
            other = subprocess.run(
                [*server, "--address", f"127.0.0.1:{port}", *extra],
                capture_output=True,
                text=True,
                env=env,
                cwd=ROOT,
                timeout=120,
            )
            assert other.returncode == 2 and "could not bind" in other.stderr
        with socket.socket() as s, pytest.raises(OSError):  # and so does any other program
            s.bind(("127.0.0.1", port))
    finally:
        parent.terminate()
        assert parent.wait(timeout=60) == 0
        assert parent.stdout is not None
        parent.stdout.close()
