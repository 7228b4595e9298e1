"""`DuckDBPrivacyStore`: suppression and audit tables in the graph store's DuckDB file, on its connection."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa

from identity_graph.model import Event
from identity_graph.privacy_store.base import AuditRecord, PrivacyStore
from identity_graph.store.duckdb import DuckDBStore, _exec, _fetch, _utc

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS suppressed (
        hash VARCHAR PRIMARY KEY,
        "at" TIMESTAMPTZ NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS audit_log (
        id VARCHAR PRIMARY KEY,
        action VARCHAR NOT NULL,
        actor VARCHAR NOT NULL,
        "at" TIMESTAMPTZ NOT NULL,
        subject VARCHAR NOT NULL,
        detail VARCHAR NOT NULL)""",
    'CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log ("at")',
)

_AUDIT_COLS = 'id, action, actor, "at", subject, detail'
_EVENT_COLS = 'seq, type, customer_id, "at", payload'
# Events that name a needle (JSON text of a key or customer id) or belong to a customer id.
_MENTIONING = (
    "customer_id IN ? OR seq IN (SELECT e.seq FROM events e "
    "JOIN (SELECT unnest(?::VARCHAR[]) AS n) x ON contains(e.payload, x.n))"
)
"""Parameters: the customer ids, then the needles."""


_ERASED = pa.schema([("seq", pa.int64()), ("payload", pa.string()), ("customer_id", pa.string())])


def _event(row: Sequence[Any]) -> Event:
    seq, type_, customer_id, at, payload = row
    return Event(type=type_, payload=json.loads(payload), customer_id=customer_id or "",
                 at=_utc(at), seq=seq)  # type: ignore[arg-type]


def _record(row: Sequence[Any]) -> AuditRecord:
    id_, action, actor, at, subject, detail = row
    return AuditRecord(id_, action, actor, _utc(at), subject, json.loads(detail))  # type: ignore[arg-type]


class DuckDBPrivacyStore(PrivacyStore):
    """Privacy tables beside the graph and conversation tables, in the same DuckDB database.

    Uses the graph store's connection and lock on purpose (one writer per DuckDB file): writes to
    graph tables (`events`, `customers`, `aliases`) go through `DuckDBStore._graph_write()`, so
    its read cache is emptied; writes to other tables through `_transaction()`.
    """

    name = "duckdb"

    def __init__(self, graph: DuckDBStore, pepper: str | None = None) -> None:
        super().__init__(pepper)
        self.graph = graph
        with graph._transaction() as con:
            for stmt in _SCHEMA:
                _exec(con, stmt)

    def _suppress(self, hashes: Sequence[str], at: datetime) -> int:
        with self.graph._transaction() as con:
            rows = _fetch(con, 'INSERT INTO suppressed (hash, "at") SELECT unnest(?::VARCHAR[]), ? '
                               "ON CONFLICT (hash) DO NOTHING RETURNING hash",
                          [list(hashes), _utc(at)])
        return len(rows)

    def _all_suppressed(self) -> list[str]:
        return [h for (h,) in self.graph._rows("SELECT hash FROM suppressed")]

    def _append_audit(self, record: AuditRecord) -> None:
        r = record
        with self.graph._transaction() as con:
            _exec(con, f"INSERT INTO audit_log ({_AUDIT_COLS}) VALUES (?, ?, ?, ?, ?, ?)",
                  [r.id, r.action, r.actor, _utc(r.at), r.subject, r.detail_json()])

    def _audit(self, start: datetime | None, end: datetime | None, actions: Sequence[str],
               after: tuple[datetime, str] | None, limit: int) -> list[AuditRecord]:
        sql = f"SELECT {_AUDIT_COLS} FROM audit_log WHERE true"
        params: list[Any] = []
        if start is not None:
            sql += ' AND "at" >= ?'
            params.append(_utc(start))
        if end is not None:
            sql += ' AND "at" < ?'
            params.append(_utc(end))
        if actions:
            sql += " AND action IN ?"
            params.append(list(actions))
        if after is not None:
            sql += ' AND ("at" > ? OR ("at" = ? AND id > ?))'
            params += [_utc(after[0]), _utc(after[0]), after[1]]
        sql += ' ORDER BY "at", id LIMIT ?'
        params.append(limit)
        return [_record(r) for r in self.graph._rows(sql, params)]

    def _audit_events(self, types: Sequence[str], start: datetime | None, end: datetime | None,
                      after: tuple[datetime, int] | None, limit: int) -> list[Event]:
        sql = f"SELECT {_EVENT_COLS} FROM events WHERE type IN ?"
        params: list[Any] = [list(types)]
        if start is not None:
            sql += ' AND "at" >= ?'
            params.append(_utc(start))
        if end is not None:
            sql += ' AND "at" < ?'
            params.append(_utc(end))
        if after is not None:
            sql += ' AND ("at" > ? OR ("at" = ? AND seq > ?))'
            params += [_utc(after[0]), _utc(after[0]), after[1]]
        sql += ' ORDER BY "at", seq LIMIT ?'
        params.append(limit)
        return [_event(r) for r in self.graph._rows(sql, params)]

    def _events_mentioning(self, needles: Sequence[str], customer_ids: Sequence[str]) -> list[Event]:
        rows = self.graph._rows(f"SELECT {_EVENT_COLS} FROM events WHERE {_MENTIONING} ORDER BY seq",
                                [list(customer_ids), list(needles)])
        return [_event(r) for r in rows]

    def _erase_events(self, needles: Sequence[str], customer_ids: Sequence[str],
                      rewrite: Callable[[str], str]) -> int:
        ids = list(customer_ids)
        with self.graph._graph_write() as con:
            found = _fetch(con, f"SELECT seq, payload, customer_id FROM events WHERE {_MENTIONING}",
                           [ids, list(needles)])
            if not found:
                return 0
            rows = [{"seq": seq, "payload": rewrite(payload),
                     "customer_id": "" if customer_id in customer_ids else customer_id}
                    for seq, payload, customer_id in found]
            with self.graph._staged(con, "_stage_erased", pa.Table.from_pylist(rows, _ERASED)):
                _exec(con, "UPDATE events SET payload = s.payload, customer_id = s.customer_id "
                           "FROM _stage_erased s WHERE events.seq = s.seq")
        return len(rows)

    def _delete_outbox(self, recipients: Sequence[str]) -> int:
        with self.graph._transaction() as con:
            rows = _fetch(con, "DELETE FROM outbox WHERE recipient IN ? RETURNING id", [list(recipients)])
        return len(rows)

    def _redact_turns(self, identifiers: Sequence[str]) -> int:
        with self.graph._transaction() as con:
            rows = _fetch(con, "UPDATE turns SET identifier = '', text = '' WHERE identifier IN ? "
                               "RETURNING seq", [list(identifiers)])
        return len(rows)

    def _delete_customers(self, customer_ids: Sequence[str]) -> tuple[int, int]:
        ids = list(customer_ids)
        with self.graph._graph_write() as con:
            aliases = _fetch(con, "DELETE FROM aliases WHERE alias IN ? OR customer_id IN ? "
                                  "RETURNING alias", [ids, ids])
            customers = _fetch(con, "DELETE FROM customers WHERE id IN ? RETURNING id", [ids])
        return len(customers), len(aliases)

    def _export_audit(self) -> pa.Table:
        with self.graph._locked() as con:
            return con.sql(f"SELECT {_AUDIT_COLS} FROM audit_log ORDER BY \"at\", id").to_arrow_table()


__all__ = ["DuckDBPrivacyStore"]
