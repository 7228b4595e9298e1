"""`SQLitePrivacyStore`: suppression and audit tables in the `SQLiteDatabase` beside the graph
(schema: `identity_graph.store.sqlite_schema`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa

from identity_graph.model import Event
from identity_graph.store.sqlite import SQLiteDatabase, event_from_row, from_us, in_list, to_us
from identity_graph.store.sqlite_schema import columns
from privacy.store.base import AUDIT, AuditRecord, PrivacyStore

_AUDIT_COLS = columns("audit_log")
_EVENT_COLS = columns("events")
# Events that belong to one of the customer ids (first parameter, a JSON array) or whose payload
# contains one of the needles (second parameter, a JSON array of JSON texts).
_MENTIONING = (
    "customer_id IN (SELECT value FROM json_each(?)) OR EXISTS "
    "(SELECT 1 FROM json_each(?) n WHERE instr(events.payload, n.value) > 0)"
)


def _record(row: Sequence[Any]) -> AuditRecord:
    id_, action, actor, at, subject, detail = row
    return AuditRecord(id_, action, actor, from_us(at), subject, json.loads(detail))  # type: ignore[arg-type]


class SQLitePrivacyStore(PrivacyStore):
    """Privacy tables in the database's one file; erasure steps write the graph's and the
    conversations' tables there too, inside the caller's transaction when one is open."""

    name = "sqlite"

    def __init__(self, database: SQLiteDatabase, pepper: str | None = None) -> None:
        super().__init__(pepper)
        self.database = database

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.database.rows(sql, params)

    def _suppress(self, hashes: Sequence[str], at: datetime) -> int:
        with self.database.transaction() as con:
            rows = con.execute('INSERT INTO suppressed (hash, at) SELECT value, ? FROM json_each(?) '
                               "WHERE true ON CONFLICT (hash) DO NOTHING RETURNING hash",
                               [to_us(at), json.dumps(list(hashes))]).fetchall()
        return len(rows)

    def _all_suppressed(self) -> list[str]:
        return [h for (h,) in self._rows("SELECT hash FROM suppressed")]

    def _suppressed_count(self) -> int:
        [(n,)] = self._rows("SELECT count(*) FROM suppressed")
        return int(n)

    def _append_audit(self, record: AuditRecord) -> None:
        r = record
        with self.database.transaction() as con:
            con.execute(f"INSERT INTO audit_log ({_AUDIT_COLS}) VALUES (?, ?, ?, ?, ?, ?)",
                        [r.id, r.action, r.actor, to_us(r.at), r.subject, r.detail_json()])

    def _audit(self, start: datetime | None, end: datetime | None, actions: Sequence[str],
               after: tuple[datetime, str] | None, limit: int) -> list[AuditRecord]:
        sql = f"SELECT {_AUDIT_COLS} FROM audit_log WHERE true"
        params: list[Any] = []
        if start is not None:
            sql += " AND at >= ?"
            params.append(to_us(start))
        if end is not None:
            sql += " AND at < ?"
            params.append(to_us(end))
        if actions:
            cond, p = in_list("action", actions)
            sql += f" AND {cond}"
            params += p
        if after is not None:
            sql += " AND (at > ? OR (at = ? AND id > ?))"
            params += [to_us(after[0]), to_us(after[0]), after[1]]
        sql += " ORDER BY at, id LIMIT ?"
        params.append(limit)
        return [_record(r) for r in self._rows(sql, params)]

    def _audit_events(self, types: Sequence[str], start: datetime | None, end: datetime | None,
                      after: tuple[datetime, int] | None, limit: int) -> list[Event]:
        cond, params = in_list("type", types)
        sql = f"SELECT {_EVENT_COLS} FROM events WHERE {cond}"
        if start is not None:
            sql += " AND at >= ?"
            params.append(to_us(start))
        if end is not None:
            sql += " AND at < ?"
            params.append(to_us(end))
        if after is not None:
            sql += " AND (at > ? OR (at = ? AND seq > ?))"
            params += [to_us(after[0]), to_us(after[0]), after[1]]
        sql += " ORDER BY at, seq LIMIT ?"
        params.append(limit)
        return [event_from_row(r) for r in self._rows(sql, params)]

    def _events_mentioning(self, needles: Sequence[str], customer_ids: Sequence[str]) -> list[Event]:
        rows = self._rows(f"SELECT {_EVENT_COLS} FROM events WHERE {_MENTIONING} ORDER BY seq",
                          [json.dumps(list(customer_ids)), json.dumps(list(needles))])
        return [event_from_row(r) for r in rows]

    def _erase_events(self, needles: Sequence[str], customer_ids: Sequence[str],
                      rewrite: Callable[[str], str]) -> int:
        ids = set(customer_ids)
        with self.database.transaction() as con:
            found = con.execute(f"SELECT seq, payload, customer_id FROM events WHERE {_MENTIONING}",
                                [json.dumps(sorted(ids)), json.dumps(list(needles))]).fetchall()
            con.executemany("UPDATE events SET payload = ?, customer_id = ? WHERE seq = ?", [
                (rewrite(payload), "" if customer_id in ids else customer_id, seq)
                for seq, payload, customer_id in found
            ])
        return len(found)

    def _delete_outbox(self, recipients: Sequence[str]) -> int:
        cond, params = in_list("recipient", recipients)
        with self.database.transaction() as con:
            return con.execute(f"DELETE FROM outbox WHERE {cond}", params).rowcount

    def _redact_turns(self, identifiers: Sequence[str]) -> int:
        cond, params = in_list("identifier", identifiers)
        with self.database.transaction() as con:
            return con.execute(f"UPDATE turns SET identifier = '', text = '' WHERE {cond}",
                               params).rowcount

    def _delete_customers(self, customer_ids: Sequence[str]) -> tuple[int, int]:
        ids = json.dumps(list(customer_ids))
        with self.database.transaction() as con:
            aliases = con.execute("DELETE FROM aliases WHERE alias IN (SELECT value FROM json_each(?)) "
                                  "OR customer_id IN (SELECT value FROM json_each(?))",
                                  [ids, ids]).rowcount
            customers = con.execute("DELETE FROM customers WHERE id IN "
                                    "(SELECT value FROM json_each(?))", [ids]).rowcount
        return customers, aliases

    def _export_audit(self) -> pa.Table:
        rows = self._rows(f"SELECT {_AUDIT_COLS} FROM audit_log ORDER BY at, id")
        cols = list(zip(*rows, strict=True)) if rows else [() for _ in AUDIT.names]
        return pa.Table.from_arrays([
            pa.array(values, pa.int64()).cast(f.type) if pa.types.is_timestamp(f.type)
            else pa.array(values, f.type)
            for f, values in zip(AUDIT, cols, strict=True)
        ], schema=AUDIT)


__all__ = ["SQLitePrivacyStore"]
