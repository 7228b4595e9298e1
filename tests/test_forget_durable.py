"""Forget on disk, on both backends: one transaction (a process killed in the middle leaves
everything as it was, and running Forget again erases it all), and the erased values gone from the
database's files afterwards (SQLite file, WAL and shared memory; Neo4j's store and log files)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from identity_graph.engine import IdentityGraph, ResolveRequest
from identity_graph.model import ChangeSet, Event
from identity_graph.store.base import GraphStore
from privacy.service import Privacy
from privacy.store import privacy_store_for
from session.model import OutboxMessage
from session.service import Caller, Sessions
from session.store import conversation_store_for

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 60

EMAIL = ("email", "wilhelmina.ravensgate@quorvale.example")
PHONE = ("phone", "+14155550177")
SECRETS = {
    "first_name": "Wilhelmina",
    "last_name": "Ravensgatezz",
    "street": "41 Thistlebrook Close",
    "city": "Quorvalehurst",
}
TURN = "Please send the invoice for order 55123 to Thistlebrook Close"


@dataclass
class World:
    graph: IdentityGraph
    sessions: Sessions
    privacy: Privacy


def world(store: GraphStore) -> World:
    graph = IdentityGraph(store)
    sessions = Sessions(graph, conversation_store_for(store))
    return World(graph, sessions, Privacy(graph, sessions.store, privacy_store_for(store)))


def build(w: World) -> list[str]:
    """A customer with attributes, links, a conversation, a consent and an outbox message;
    returns the values that Forget must take off the disk."""
    w.graph.resolve(ResolveRequest("web", [EMAIL, PHONE], SECRETS, source="web"))
    started = w.sessions.start_or_resume("sms", [PHONE])
    w.sessions.append_turn(started.view.conversation.id, Caller("sms", f"phone:{PHONE[1]}"),
                           "customer", TURN)
    w.sessions.record_consent(PHONE, "sms", "delivery_updates", True, "web form")
    w.sessions.store.outbox_put(OutboxMessage("msg_wil", "email", EMAIL[1], "Code 123456",
                                              datetime.now(UTC)))
    return [EMAIL[1], PHONE[1], *SECRETS.values(), TURN]


def held(store: GraphStore) -> dict[str, Any]:
    """What the store holds of the customer, read through the public API."""
    w = world(store)
    key = f"email:{EMAIL[1]}"
    node = store.get_identifier(key)
    return {
        "node": node is not None,
        "observations": len(store.observations([key, f"phone:{PHONE[1]}"])),
        "conversations": len(w.sessions.store.by_anchors([f"phone:{PHONE[1]}"])),
        "suppressed": w.privacy.store.is_suppressed(key),
        "consents": len(w.sessions.store.consents([f"phone:{PHONE[1]}"])),
    }


_CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from identity_graph.store import open_store
    from tests.test_forget_durable import world
    barrier = Path(sys.argv[2])
    email = sys.argv[3]
    if sys.argv[4] == "sqlite":
        store = open_store(sys.argv[5])
    else:
        store = open_store(neo4j_uri=sys.argv[5], neo4j_user=sys.argv[6], neo4j_password=sys.argv[7])
    w = world(store)
    real = store.delete_identifiers

    def delete_then_stall(keys):
        out = real(keys)  # the identifiers are deleted inside Forget's transaction ...
        barrier.write_text("deleted")
        time.sleep(600)  # ... and here the parent kills this process
        return out

    store.delete_identifiers = delete_then_stall
    w.privacy.forget("email", email, "customer", actor="test", reason="erasure")
    print("finished", flush=True)  # never reached
""")


def _target(store: GraphStore, request: pytest.FixtureRequest) -> list[str]:
    if store.name == "sqlite":
        return ["sqlite", store.database.path]  # type: ignore[attr-defined]
    server = request.getfixturevalue("neo4j_server")
    return ["neo4j", server.uri, server.user, server.password]


def test_forget_killed_in_the_middle_changes_nothing_and_a_rerun_erases_all(
        store: GraphStore, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    w = world(store)
    values = build(w)
    before = held(store)
    assert before == {"node": True, "observations": 4, "conversations": 1, "suppressed": False,
                      "consents": 1}
    barrier = tmp_path / "barrier"
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(ROOT), str(barrier), EMAIL[1], *_target(store, request)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    try:
        deadline = datetime.now(UTC).timestamp() + TIMEOUT_S
        while not barrier.exists():  # the child's signal that it is inside the transaction
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert datetime.now(UTC).timestamp() < deadline, "the child never reached the barrier"
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.05)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=TIMEOUT_S) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        out = proc.stdout.read() if proc.stdout else ""
        for pipe in (proc.stdout, proc.stderr):
            if pipe:
                pipe.close()
    assert "finished" not in out
    # Nothing of the half-done erasure stuck: not the deletes, not the suppression entry.
    assert held(store) == before
    # Running it again erases everything.
    result = world(store).privacy.forget("email", EMAIL[1], "customer", actor="test")
    assert result.counts["identifiers"] == 2
    assert held(store) == {"node": False, "observations": 0, "conversations": 0,
                           "suppressed": True, "consents": 0}
    from tests.test_privacy import scan

    assert scan(store, values) == []


def _grep(paths: list[Path], values: list[str]) -> list[str]:
    hits = []
    for path in paths:
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # a log file pruned meanwhile
            continue
        hits.extend(f"{path.name}: {v!r}" for v in values if v.encode() in data)
    return hits


def test_erased_values_are_gone_from_the_sqlite_files(tmp_path: Path) -> None:
    from identity_graph.store import open_store

    db = tmp_path / "identity.db"
    with open_store(str(db)) as store:
        w = world(store)
        values = build(w)
        # the values are on disk before (in the file or its write-ahead log) ...
        files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
        assert sorted(_grep([p for p in files if p.exists()], values[:1])) != []
        w.privacy.forget("email", EMAIL[1], "customer", actor="test")
        # ... and nowhere in the database, its WAL or its shared memory after Forget (which
        # checkpoints), while the store is still open
        assert _grep([p for p in files if p.exists()], values) == []
        assert Path(f"{db}-wal").stat().st_size == 0  # truncated by the checkpoint
        store.apply(ChangeSet(events=[Event("after", {"n": 1})]))
    assert _grep([p for p in files if p.exists()], values) == []


def test_erased_values_leave_the_neo4j_transaction_logs(request: pytest.FixtureRequest) -> None:
    """After Forget, once the log has rotated past it and a checkpoint ran (periodic on
    Community: `scripts/neo4j.sh` sets 10 s; Forget calls `db.checkpoint()` where it exists),
    retention (1 file) prunes the logs that held the values."""
    server = request.getfixturevalue("neo4j_server")
    assert server.state is not None, "set NEO4J_STATE_DIR to the state directory of $NEO4J_URI"
    logs = server.state / "data" / "transactions" / "neo4j"
    from identity_graph.store import open_store

    store = open_store(neo4j_uri=server.uri, neo4j_user=server.user, neo4j_password=server.password)
    try:
        store.clear()
        w = world(store)
        values = build(w)
        long_values = [v for v in values if len(v) > 40]  # short strings are stored encoded
        assert _grep(sorted(logs.glob("neostore.transaction.db.*")), long_values) != []
        w.privacy.forget("email", EMAIL[1], "customer", actor="test")
        filler = [Event("filler", {"pad": "x" * 40_000}) for _ in range(30)]  # ~1.2 MB of log
        deadline = datetime.now(UTC).timestamp() + 120
        while _grep(sorted(logs.glob("neostore.transaction.db.*")), values):
            assert datetime.now(UTC).timestamp() < deadline, "the logs kept the erased values"
            store.apply(ChangeSet(events=filler))  # rotates the log; a checkpoint then prunes
        assert _grep(sorted(logs.glob("*")), values) == []
    finally:
        store.clear()
        store.close()
