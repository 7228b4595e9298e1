"""SQLite-only behaviour of `SQLiteStore`: durability on disk, reopening, pragmas, bulk speed, the schema."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from identity_graph.errors import StoreError
from identity_graph.model import (
    ChangeSet,
    Customer,
    Event,
    IdentifierUpsert,
    Link,
    LinkKind,
    Observation,
)
from identity_graph.store import open_store
from identity_graph.store.sqlite import SQLiteStore
from identity_graph.store.tables import TABLES

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2024, 1, 1, tzinfo=UTC)
A, B = "email:a@example.com", "phone:+15551234567"


def _changes() -> ChangeSet:
    return ChangeSet(
        identifiers=[IdentifierUpsert(A, "email", "a@example.com", T0,
                                      (Observation(A, "first_name", "Ann", "crm", "web", T0),)),
                     IdentifierUpsert(B, "phone", "+15551234567", T0)],
        links_added=[Link(A, B, LinkKind.VERIFIED, source="otp", created_at=T0, actor="test")],
        customers_created=[Customer("cus_1", T0)],
        assignments={A: "cus_1", B: "cus_1"},
        events=[Event("customer.created", {"id": "cus_1"}, "cus_1", T0)],
    )


def _assert_written(store: SQLiteStore) -> None:
    assert set(store.get_identifiers([A, B])) == {A, B}
    assert [o.value for o in store.observations([A])] == ["Ann"]
    assert [lk.kind for lk in store.links([A])] == [LinkKind.VERIFIED]
    assert store.members("cus_1") == [A, B]
    assert [(e.seq, e.payload) for e in store.events()] == [(1, {"id": "cus_1"})]


def test_reopen_after_close_keeps_data(tmp_path: Path):
    path = str(tmp_path / "identity.db")
    with SQLiteStore(path) as store:
        store.apply(_changes())
    with SQLiteStore(path) as store:  # the schema statements are harmless on an existing file
        _assert_written(store)
        assert store.apply(ChangeSet(events=[Event("next", {})])) == [2]


def test_data_survives_sigkill_after_apply_returned(tmp_path: Path):
    path = tmp_path / "identity.db"
    script = textwrap.dedent("""
        import sys, time
        sys.path.insert(0, sys.argv[2])
        from tests.test_store_sqlite import _changes
        from identity_graph.store.sqlite import SQLiteStore
        store = SQLiteStore(sys.argv[1])
        store.apply(_changes())
        print("ok", flush=True)
        time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script, str(path), str(ROOT)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = proc.stdout.readline().strip()
        assert line == "ok", proc.stderr.read() if line == "" else line
        # the commit is in the write-ahead log only: no checkpoint has run yet
        assert Path(f"{path}-wal").stat().st_size > 0
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    with SQLiteStore(str(path)) as store:
        _assert_written(store)


def test_in_memory_store_and_open_store():
    store = open_store()
    try:
        assert isinstance(store, SQLiteStore) and store.path == ":memory:"
        store.apply(_changes())
        _assert_written(store)
    finally:
        store.close()


def test_closed_store_raises_store_error(tmp_path: Path):
    store = SQLiteStore(str(tmp_path / "g.db"))
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError):
        store.get_identifier(A)
    with pytest.raises(StoreError):
        store.apply(_changes())


def test_database_errors_are_wrapped_and_roll_back(tmp_path: Path):
    with SQLiteStore(str(tmp_path / "g.db")) as store:
        store.apply(_changes())
        bad = _changes()
        bad.events.append(Event("x", {}))
        # NOT NULL created_at: SQLite rejects it after the identifiers were written
        bad.links_added.append(Link(A, "email:new@example.com", LinkKind.OBSERVED,
                                    created_at=None))  # type: ignore[arg-type]
        with pytest.raises(StoreError) as info:
            store.apply(bad)
        assert isinstance(info.value.__cause__, sqlite3.Error)
        assert [e.seq for e in store.events()] == [1]
        assert store.links(["email:new@example.com"]) == []
        # the connection is usable after the rollback
        assert store.apply(ChangeSet(events=[Event("next", {})])) == [2]


def test_schema_has_the_tables_and_indexes(tmp_path: Path):
    path = str(tmp_path / "g.db")
    SQLiteStore(path).close()
    con = sqlite3.connect(path)
    try:
        for name, schema in TABLES.items():
            cols = [r[1] for r in con.execute(f"PRAGMA table_info({name})")]
            assert cols == schema.names, name
        indexes = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"links_a", "links_b", "observations_key", "observations_attribute_value_key",
                "identifiers_customer"} <= indexes
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        # one file for everything online: graph, conversations, privacy
        assert {"conversations", "turns", "consents", "handoffs", "step_ups", "suppressed",
                "audit_log"} <= tables
    finally:
        con.close()


def test_pragmas_wal_normal_secure_delete(tmp_path: Path):
    with SQLiteStore(str(tmp_path / "g.db")) as store:
        store.apply(_changes())
        rows = store.database.rows
        assert rows("PRAGMA journal_mode") == [("wal",)]
        assert rows("PRAGMA synchronous") == [(1,)]  # NORMAL
        assert rows("PRAGMA secure_delete") == [(1,)]


def test_link_kind_is_stored_as_its_lower_case_label(tmp_path: Path):
    path = str(tmp_path / "g.db")
    with SQLiteStore(path) as store:
        store.apply(_changes())
    con = sqlite3.connect(path)
    try:
        assert con.execute("SELECT kind FROM links").fetchall() == [("verified",)]
    finally:
        con.close()


def test_load_into_a_second_fresh_store(tmp_path: Path):
    with SQLiteStore(str(tmp_path / "one.db")) as one:
        one.apply(_changes())
        one.export_parquet(tmp_path / "export")
        expected = {n: t.to_pylist() for n, t in one.export_tables().items()}
    with SQLiteStore(str(tmp_path / "two.db")) as two:
        two.load_parquet(tmp_path / "export")
        assert {n: t.to_pylist() for n, t in two.export_tables().items()} == expected
        _assert_written(two)
        # loading the same rows again conflicts, and the whole load rolls back
        with pytest.raises(StoreError):
            two.load_parquet(tmp_path / "export")
        assert {n: t.to_pylist() for n, t in two.export_tables().items()} == expected


def test_a_large_change_set_is_written_set_wise(tmp_path: Path):
    n = 20_000
    ids = [IdentifierUpsert(f"web_cookie:c{i}", "web_cookie", f"c{i}", T0 + timedelta(seconds=i),
                            (Observation(f"web_cookie:c{i}", "city", f"city{i % 50}", "web", "", T0),))
           for i in range(n)]
    links = [Link(f"web_cookie:c{i}", f"web_cookie:c{i + 1}", LinkKind.OBSERVED, created_at=T0)
             for i in range(n - 1)]
    with SQLiteStore(str(tmp_path / "big.db")) as store:
        started = time.perf_counter()
        store.apply(ChangeSet(identifiers=ids, links_added=links,
                              events=[Event("bulk", {"i": i}) for i in range(1000)]))
        elapsed = time.perf_counter() - started
        tables = store.export_tables()
        assert (tables["identifiers"].num_rows, tables["observations"].num_rows,
                tables["links"].num_rows, tables["events"].num_rows) == (n, n, n - 1, 1000)
        assert len(store.keys_by_attribute("city", ["city7"], limit=10_000)) == n // 50
        assert len(store.links(["web_cookie:c500"])) == 2
    assert elapsed < 10, elapsed


def test_a_file_from_before_claimants_is_migrated_in_place(tmp_path: Path):
    """An existing links table gets the `claimant` column on open; its links read as claimed by
    both ends (empty claimant), the safe reading."""
    path = str(tmp_path / "old.db")
    con = sqlite3.connect(path)
    con.execute(
        "CREATE TABLE links (link_id TEXT NOT NULL PRIMARY KEY, a TEXT NOT NULL, b TEXT NOT NULL, "
        "kind TEXT NOT NULL, source TEXT, channel TEXT, event_id TEXT, model_version TEXT, "
        "probability REAL, match_weight REAL, comparisons TEXT, created_at INTEGER NOT NULL, "
        "actor TEXT, removed_at INTEGER, removed_by TEXT, removal_reason TEXT)"
    )
    con.execute("INSERT INTO links VALUES ('l1', 'phone:+15551234567', 'web_cookie:c1', 'observed', "
                "'web', 'web', '', '', NULL, NULL, NULL, 1700000000000000, 'web', NULL, '', '')")
    con.commit()
    con.close()
    with open_store(path) as store:
        [old] = store.links(["web_cookie:c1"])
        assert old.kind is LinkKind.OBSERVED and old.claimant == ""
        new = Link("web_cookie:c2", "phone:+15551234567", LinkKind.OBSERVED, claimant="web_cookie:c2")
        store.apply(ChangeSet(links_added=[new]))
        phone = "phone:+15551234567"
        assert {lk.other(phone): lk.claimant for lk in store.links([phone])} == {
            "web_cookie:c1": "", "web_cookie:c2": "web_cookie:c2"}

def test_a_file_that_is_not_sqlite_is_a_store_error(tmp_path: Path):
    path = tmp_path / "old.duckdb"
    path.write_bytes(b"\x00" * 8 + b"DUCK" + b"\x01" * 4096)  # e.g. the DuckDB file of an older version
    with pytest.raises(StoreError, match="not a database"):
        open_store(str(path))
    assert path.read_bytes()[8:12] == b"DUCK"  # left as it was
