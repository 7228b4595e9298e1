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
from identity_graph.model import Event
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

_EVENT_FIELDS: LiteralString = """
RETURN e.seq AS seq, e.type AS type, e.customer_id AS customer_id, e.at AS at, e.payload AS payload
"""

_AUDIT_EVENTS: LiteralString = """
MATCH (e:Event)
WHERE e.type IN $types
  AND ($start IS NULL OR e.at >= $start) AND ($end IS NULL OR e.at < $end)
  AND ($after_at IS NULL OR e.at > $after_at OR (e.at = $after_at AND e.seq > $after_seq))
WITH e ORDER BY e.at, e.seq LIMIT $limit
""" + _EVENT_FIELDS

_MENTIONING: LiteralString = """
MATCH (e:Event)
WHERE e.customer_id IN $ids OR any(n IN $needles WHERE e.payload CONTAINS n)
"""

_EVENTS_MENTIONING: LiteralString = _MENTIONING + "WITH e ORDER BY e.seq\n" + _EVENT_FIELDS

# Found and locked (`SET x = x`) in one statement, rewritten by seq in the next.
_LOCK_MENTIONING: LiteralString = _MENTIONING + """
SET e.payload = e.payload
RETURN e.seq AS seq, e.payload AS payload
"""

_REWRITE_EVENTS: LiteralString = """
UNWIND $rows AS row
MATCH (e:Event {seq: row.seq})
SET e.payload = row.payload,
    e.customer_id = CASE WHEN e.customer_id IN $ids THEN '' ELSE e.customer_id END
"""

_DELETE_OUTBOX: LiteralString = """
UNWIND $recipients AS r
MATCH (m:OutboxMessage {recipient: r})
DETACH DELETE m
RETURN count(*) AS n
"""

_REDACT_TURNS: LiteralString = """
MATCH (t:Turn)
WHERE t.identifier IN $keys
SET t.identifier = '', t.text = ''
RETURN count(t) AS n
"""

_DELETE_ALIASES: LiteralString = """
MATCH (a:Alias)
WHERE a.alias IN $ids OR a.customer_id IN $ids
DETACH DELETE a
RETURN count(*) AS n
"""

_DELETE_CUSTOMERS: LiteralString = """
UNWIND $ids AS id
MATCH (c:Customer {id: id})
DETACH DELETE c
RETURN count(*) AS n
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


def _event(r: Any) -> Event:
    return Event(type=r["type"], payload=json.loads(r["payload"]) if r["payload"] else {},
                 customer_id=r["customer_id"] or "", at=_native(r["at"]), seq=r["seq"])


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

    def _count(self, query: LiteralString, **params: Any) -> int:
        return int(self._write(lambda tx: tx.run(query, **params).single(strict=True)["n"]))

    def _suppress(self, hashes: Sequence[str], at: datetime) -> int:
        return self._count(_SUPPRESS, hashes=list(hashes), at=_db_time(at))

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

    def _audit_events(self, types: Sequence[str], start: datetime | None, end: datetime | None,
                      after: tuple[datetime, int] | None, limit: int) -> list[Event]:
        records = self._read(
            _AUDIT_EVENTS, types=list(types), start=_db_time(start), end=_db_time(end),
            after_at=None if after is None else _db_time(after[0]),
            after_seq=0 if after is None else after[1], limit=limit,
        )
        return [_event(r) for r in records]

    def _events_mentioning(self, needles: Sequence[str], customer_ids: Sequence[str]) -> list[Event]:
        records = self._read(_EVENTS_MENTIONING, needles=list(needles), ids=list(customer_ids))
        return [_event(r) for r in records]

    def _erase_events(self, needles: Sequence[str], customer_ids: Sequence[str],
                      rewrite: Callable[[str], str]) -> int:
        ids = list(customer_ids)

        def work(tx: ManagedTransaction) -> int:
            found = list(tx.run(_LOCK_MENTIONING, needles=list(needles), ids=ids))
            rows = [{"seq": r["seq"], "payload": rewrite(r["payload"] or "{}")} for r in found]
            if rows:
                tx.run(_REWRITE_EVENTS, rows=rows, ids=ids).consume()
            return len(rows)

        return int(self._write(work))

    def _delete_outbox(self, recipients: Sequence[str]) -> int:
        return self._count(_DELETE_OUTBOX, recipients=list(recipients))

    def _redact_turns(self, identifiers: Sequence[str]) -> int:
        return self._count(_REDACT_TURNS, keys=list(identifiers))

    def _delete_customers(self, customer_ids: Sequence[str]) -> tuple[int, int]:
        ids = list(customer_ids)

        def work(tx: ManagedTransaction) -> tuple[int, int]:
            aliases = tx.run(_DELETE_ALIASES, ids=ids).single(strict=True)["n"]
            customers = tx.run(_DELETE_CUSTOMERS, ids=ids).single(strict=True)["n"]
            return int(customers), int(aliases)

        return self._write(work)

    def _export_audit(self) -> pa.Table:
        return audit_table([_record(r["a"]) for r in self._read(_EXPORT_AUDIT)])


__all__ = ["SCHEMA", "Neo4jPrivacyStore"]
