"""`Neo4jPrivacyStore`: suppression and audit nodes in the graph store's Neo4j database, on its driver.

Graph model (beside `identity_graph.store.neo4j` and `session.store.neo4j`):

    (:Suppressed {hash, at})          hash unique: a peppered SHA-256 of an erased key, never the key
    (:AuditRecord {id, action, actor, at, subject, detail})
        id unique; index on at. `subject` is a peppered hash, `detail` JSON text without
        personal data. Times are DateTime values in UTC.

Example query:

    // erasures of the last week, newest first
    MATCH (a:AuditRecord {action: 'erasure'})
    WHERE a.at >= datetime() - duration('P7D')
    RETURN a.at, a.actor, a.detail ORDER BY a.at DESC
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, LiteralString

import pyarrow as pa
from neo4j import ManagedTransaction
from neo4j import time as neo4j_time

from identity_graph.errors import StoreError
from identity_graph.store.neo4j_database import Neo4jDatabase
from privacy.store.base import AuditRecord, PrivacyStore, audit_table

SCHEMA: tuple[LiteralString, ...] = (
    "CREATE CONSTRAINT pv_suppressed_hash IF NOT EXISTS FOR (s:Suppressed) REQUIRE s.hash IS UNIQUE",
    "CREATE CONSTRAINT pv_audit_id IF NOT EXISTS FOR (a:AuditRecord) REQUIRE a.id IS UNIQUE",
    "CREATE INDEX pv_audit_at IF NOT EXISTS FOR (a:AuditRecord) ON (a.at)",
)

_SUPPRESS: LiteralString = """
UNWIND $hashes AS h
MERGE (s:Suppressed {hash: h})
ON CREATE SET s.at = $at, s.new = true
WITH s, coalesce(s.new, false) AS fresh
REMOVE s.new
RETURN count(CASE WHEN fresh THEN 1 END) AS n
"""

_ALL_SUPPRESSED: LiteralString = "MATCH (s:Suppressed) RETURN s.hash AS hash"
_SUPPRESSED_COUNT: LiteralString = "MATCH (s:Suppressed) RETURN count(s) AS n"  # the count store

_APPEND_AUDIT: LiteralString = "CREATE (a:AuditRecord) SET a = $props"

_AUDIT: LiteralString = """
MATCH (a:AuditRecord)
WHERE ($start IS NULL OR a.at >= $start) AND ($end IS NULL OR a.at < $end)
  AND (size($actions) = 0 OR a.action IN $actions)
  AND ($after_at IS NULL OR a.at > $after_at OR (a.at = $after_at AND a.id > $after_id))
RETURN a {.*} AS a ORDER BY a.at, a.id LIMIT $limit
"""

_EXPORT_AUDIT: LiteralString = "MATCH (a:AuditRecord) RETURN a {.*} AS a ORDER BY a.at, a.id"


def _db_time(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _native(value: Any) -> datetime:
    if isinstance(value, neo4j_time.DateTime):
        value = value.to_native()
    if not isinstance(value, datetime):
        raise StoreError("neo4j privacy store: a required time property is missing")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _record(p: dict[str, Any]) -> AuditRecord:
    return AuditRecord(p["id"], p["action"], p["actor"], _native(p["at"]), p.get("subject") or "",
                       json.loads(p.get("detail") or "{}"))


class Neo4jPrivacyStore(PrivacyStore):
    """Privacy nodes in the graph store's Neo4j database; see the module docstring."""

    name = "neo4j"

    def __init__(self, database: Neo4jDatabase, pepper: str | None = None) -> None:
        super().__init__(pepper)
        self.database = database
        database.ensure_schema(SCHEMA)

    def _read(self, query: LiteralString, **params: Any) -> list[Any]:
        return self.database.read(query, **params)

    def _write(self, work: Callable[[ManagedTransaction], Any]) -> Any:
        return self.database.write(work)

    def _suppress(self, hashes: Sequence[str], at: datetime) -> int:
        return int(self._write(lambda tx: tx.run(_SUPPRESS, hashes=list(hashes), at=_db_time(at))
                               .single(strict=True)["n"]))

    def _all_suppressed(self) -> list[str]:
        return [r["hash"] for r in self._read(_ALL_SUPPRESSED)]

    def _suppressed_count(self) -> int:
        return int(self._read(_SUPPRESSED_COUNT)[0]["n"])

    def _append_audit(self, record: AuditRecord) -> None:
        r = record
        props = {"id": r.id, "action": r.action, "actor": r.actor, "at": _db_time(r.at),
                 "subject": r.subject, "detail": r.detail_json()}
        self._write(lambda tx: tx.run(_APPEND_AUDIT, props=props).consume())

    def _audit(self, start: datetime | None, end: datetime | None, actions: Sequence[str],
               after: tuple[datetime, str] | None, limit: int) -> list[AuditRecord]:
        records = self._read(
            _AUDIT, start=_db_time(start), end=_db_time(end), actions=list(actions),
            after_at=None if after is None else _db_time(after[0]),
            after_id="" if after is None else after[1], limit=limit,
        )
        return [_record(r["a"]) for r in records]

    def _export_audit(self) -> pa.Table:
        return audit_table([_record(r["a"]) for r in self._read(_EXPORT_AUDIT)])


__all__ = ["SCHEMA", "Neo4jPrivacyStore"]
