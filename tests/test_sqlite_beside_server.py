"""The embedded SQLite file while `identity-server` holds it: `identity-batch export` and the
relink's snapshot read it in one read transaction (WAL), never blocked by a writer and never
seeing its uncommitted rows."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from batch.quality import load_synthetic
from batch.relink import relink
from identity_graph.store import open_store
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
