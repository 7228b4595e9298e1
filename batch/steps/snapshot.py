"""Step 1, snapshot: a consistent copy of the graph in a private DuckDB database.

On SQLite the copy is read in one read transaction (WAL: beside a running server); on Neo4j it
is repeated until the event log did not move while it was read (`Database.snapshot`).
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
from tqdm import tqdm

from batch.steps.progress import progress_bar
from batch.steps.types import RelinkOptions, Snapshot
from identity_graph.model import utcnow
from identity_graph.store.base import GraphStore
from identity_graph.store.database import SnapshotScope

__all__ = ["read_tables", "snapshot", "snapshot_of"]


_SNAPSHOT_SQL = {
    "identifiers": "SELECT key, type, value, first_seen, last_seen, customer_id, generic "
                   "FROM identifiers",
    "observations": "SELECT key, attribute, value, source, channel, observed_at FROM observations",
    "links": "SELECT link_id, a, b, kind, source, model_version, probability, match_weight, "
             "revision FROM links WHERE removed_at IS NULL",
    "customers": "SELECT id, created_at FROM customers",
    "aliases": "SELECT alias, customer_id FROM aliases",
    # kinds that ingest mappings declared for custom attributes (batch.ingest.KINDS_EVENT)
    "declared_kinds": "SELECT seq, payload FROM events WHERE type = 'attribute_kinds'",
    # refusals already in the event log: each is written once, not again every night
    "logged_violations": "SELECT seq, payload FROM events WHERE type = 'violation'",
    # people's decisions, withdrawn ones too (batch.people), and when earlier runs wrote
    "constraints": "SELECT constraint_id, kind, a, b, origin, link_id, created_at, withdrawn_at "
                   "FROM constraints",
    "relinks": "SELECT seq, at FROM events WHERE type = 'relink'",
}
_EVENTS_OF = {"declared_kinds": "attribute_kinds", "logged_violations": "violation", "relinks": "relink"}


def read_tables(store: GraphStore, progress: bool) -> tuple[dict[str, pa.Table], int]:
    """The tables the relink needs, consistent with each other, and the last event seq: one read
    transaction on SQLite (WAL: beside a running server), re-read until stable on Neo4j."""
    columns: dict[str, set[str]] = {}
    for name, sql in _SNAPSHOT_SQL.items():
        table = "events" if name in _EVENTS_OF else name
        columns.setdefault(table, set()).update(_columns_of(sql))
    columns["events"].add("type")
    columns["links"].add("removed_at")
    scope = SnapshotScope({t: tuple(sorted(c)) for t, c in columns.items()},
                          frozenset(_EVENTS_OF.values()))
    with store.database.snapshot(scope) as snap:
        tables, last_seq = snap.tables, snap.last_seq
    out = {}
    for name, sql in _SNAPSHOT_SQL.items():
        cols = _columns_of(sql)
        if name in _EVENTS_OF:
            t = tables["events"].filter(pa.compute.equal(tables["events"]["type"], _EVENTS_OF[name]))
        else:
            t = tables[name]
        if name == "links":
            t = t.filter(pa.compute.is_null(t["removed_at"]))
        out[name] = t.select(cols)
    return out, last_seq


def _columns_of(sql: str) -> list[str]:
    return sql.split("SELECT ", 1)[1].split(" FROM")[0].split(", ")


def snapshot(store: GraphStore, options: RelinkOptions) -> Snapshot:
    """Step 1: a consistent copy of the graph in a private DuckDB database."""
    bar = progress_bar("snapshot", len(_SNAPSHOT_SQL) + 1, options.progress, "table")
    taken_at = utcnow()
    tables, last_seq = read_tables(store, options.progress)
    bar.update(1)
    snap = snapshot_of(tables, last_seq, taken_at, store.name, options, bar)
    bar.close()
    return snap


def snapshot_of(tables: dict[str, pa.Table], last_seq: int, taken_at: datetime, backend: str,
                options: RelinkOptions, bar: tqdm | None = None) -> Snapshot:
    """The snapshot's tables (as `read_tables` gives them) in a private DuckDB database."""
    path = None
    if options.work_dir:
        Path(options.work_dir).mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(suffix=".duckdb", dir=options.work_dir)
        os.close(fd)
        os.remove(path)
    snap = Snapshot(duckdb.connect(path or ":memory:"), last_seq, taken_at, backend, path)
    snap.run("SET TimeZone = 'UTC'")
    for name, table in tables.items():
        snap.con.register(f"_in_{name}", table)
        snap.run(f"CREATE TABLE {name} AS SELECT * FROM _in_{name}")
        snap.con.unregister(f"_in_{name}")
        if bar is not None:
            bar.update(1)
    return snap
