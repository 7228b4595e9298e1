"""The embedded SQLite file while `identity-server` holds it: `identity-batch export` and the
relink's snapshot read it in one read transaction (WAL), never blocked by a writer and never
seeing its uncommitted rows."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import pyarrow.parquet as pq

from batch.quality import load_synthetic
from batch.relink import relink
from identity_graph.store import open_store
from stubs.identity.v1 import identity_pb2 as ipb
from stubs.identity.v1 import identity_pb2_grpc as ipb_grpc
from tests.test_batch import STARTER, _opts
from tests.test_security import _env, _listening, _spawn, _stop

ROOT = Path(__file__).resolve().parent.parent
GHOST = "email:uncommitted@example.com"


def test_export_and_relink_snapshot_while_the_server_holds_the_file(tmp_path: Path) -> None:
    db = tmp_path / "identity.db"
    with open_store(str(db)) as store:
        load_synthetic(store, 40, seed=2)
        expected = store.export_tables()["identifiers"].num_rows
    server, lines = _spawn([], tmp_path)  # opens ./identity.db in tmp_path
    writer = sqlite3.connect(db, isolation_level=None, timeout=30)
    try:
        _listening(server, lines)
        # Another writer in the middle of a transaction: it holds the file's write lock.
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO identifiers (key, type, value, first_seen, last_seen) "
                       "VALUES (?, 'email', 'uncommitted@example.com', 0, 0)", [GHOST])
        out = tmp_path / "out"
        done = subprocess.run(
            [sys.executable, "-m", "batch.cli", "export", "--db", str(db), "--out", str(out), "--quiet"],
            env={**_env(), "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, cwd=tmp_path,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        keys = pq.read_table(out / "identifiers.parquet").column("key").to_pylist()
        assert len(keys) == expected and GHOST not in keys
        # The relink's snapshot (a dry run writes nothing) in this process, beside both.
        with open_store(str(db)) as store:
            res = relink(store, options=_opts(dry_run=True, model_path=STARTER))
            assert res.report["counts"]["identifiers"] == expected
            assert store.get_identifier(GHOST) is None
        writer.execute("COMMIT")
        with open_store(str(db)) as store:
            assert store.get_identifier(GHOST) is not None
    finally:
        if writer.in_transaction:
            writer.execute("ROLLBACK")
        writer.close()
        assert _stop(server) == 0


def test_export_is_one_consistent_read_while_the_server_writes(tmp_path: Path) -> None:
    """Exports taken while Resolve calls keep adding identifiers, links and customers: each is one
    point in time (every link's ends and every identifier's customer are in the same export) and
    sees every write that finished before it started, none that began after it ended."""
    server, lines = _spawn([], tmp_path)
    written: list[int] = []  # identifiers written by calls that returned, in order
    failures: list[BaseException] = []
    stop = threading.Event()
    started = threading.Event()
    try:
        port = _listening(server, lines)["port"]
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = ipb_grpc.IdentityServiceStub(channel)

        def writer_loop() -> None:
            i = 0
            while not stop.is_set():
                try:
                    stub.Resolve(ipb.ResolveRequest(channel="web", source="shop", identifiers=[
                        ipb.Identifier(type="email", value=f"person{i}@example.com"),
                        ipb.Identifier(type="account_id", value=f"acct-{i}")]), timeout=30)
                except grpc.RpcError as e:  # reported by the assertion below
                    failures.append(e)
                    return
                i += 1
                written.append(2 * i)
                started.set()

        worker = threading.Thread(target=writer_loop)
        worker.start()
        assert started.wait(60), "no Resolve call returned"
        seen = []
        for n in range(3):
            before = written[-1]
            out = tmp_path / f"out{n}"
            done = subprocess.run(
                [sys.executable, "-m", "batch.cli", "export", "--db", str(tmp_path / "identity.db"),
                 "--out", str(out), "--quiet"],
                env={**_env(), "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, cwd=tmp_path,
                timeout=120)
            after = written[-1]
            assert done.returncode == 0, done.stderr
            keys = set(pq.read_table(out / "identifiers.parquet").column("key").to_pylist())
            customers = set(pq.read_table(out / "customers.parquet").column("customer_id").to_pylist())
            owners = set(pq.read_table(out / "identifiers.parquet").column("customer_id").to_pylist())
            links = pq.read_table(out / "links.parquet").to_pylist()
            assert before <= len(keys) <= after + 2, (before, len(keys), after)
            assert {e for lk in links for e in (lk["a"], lk["b"])} <= keys
            assert owners - {None} <= customers
            seen.append(len(keys))
        stop.set()
        worker.join(60)
        assert not failures, failures
        assert seen == sorted(seen) and seen[-1] > seen[0], seen  # the server wrote meanwhile
        channel.close()
    finally:
        stop.set()
        assert _stop(server) == 0
