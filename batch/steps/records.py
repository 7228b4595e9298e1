"""The snapshot's `records` table: one Splink record per identifier, and each column's kind."""

from __future__ import annotations

import json
from collections.abc import Sequence

from batch.steps.types import Snapshot
from identity_graph.attributes import BUILTIN_KINDS, Kind
from identity_graph.records import record_columns_from, records_sql

__all__ = ["attribute_kinds", "build_records", "record_columns"]


def record_columns(snap: Snapshot) -> list[str]:
    """The built-in attributes (NULL where never observed: the model then leaves them out and
    says so) and every other attribute observed in the graph that can be a record column."""
    return record_columns_from(a for (a,) in snap.con.execute(
        "SELECT DISTINCT attribute FROM observations WHERE value <> ''").fetchall())


def attribute_kinds(snap: Snapshot, columns: Sequence[str]) -> dict[str, Kind]:
    """Each record column's kind: declared at ingest (latest declaration wins), else built-in,
    else text."""
    declared: dict[str, str] = {}
    for (payload,) in snap.con.execute("SELECT payload FROM declared_kinds ORDER BY seq").fetchall():
        try:
            declared.update(json.loads(payload).get("kinds", {}))
        except (ValueError, AttributeError):
            continue
    out = {}
    for c in columns:
        try:
            out[c] = Kind(declared[c]) if c in declared else BUILTIN_KINDS.get(c, Kind.TEXT)
        except ValueError:
            out[c] = BUILTIN_KINDS.get(c, Kind.TEXT)
    return out


def build_records(snap: Snapshot) -> int:
    """One Splink record per identifier that carries attributes, with a column for EVERY
    attribute the graph holds (`identity_graph.records.records_sql`, the SQL the Spark engine and
    the online engine run too). Returns the number of records."""
    snap.run(f"CREATE OR REPLACE TABLE records AS {records_sql(record_columns(snap), 'duckdb')}")
    return int(snap.scalar("SELECT count(*) FROM records"))
