"""`SQLitePrivacyStore`: suppression and audit tables in the `SQLiteDatabase` beside the graph
(schema: `identity_graph.store.sqlite_schema`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa

from identity_graph.store.sqlite import SQLiteDatabase, from_us, in_list, time_page, to_us
from identity_graph.store.sqlite_schema import columns
from privacy.store.base import AUDIT, AuditRecord, PrivacyStore

_AUDIT_COLS = columns("audit_log")


def _record(row: Sequence[Any]) -> AuditRecord:
    id_, action, actor, at, subject, detail = row
    return AuditRecord(id_, action, actor, from_us(at), subject, json.loads(detail))  # type: ignore[arg-type]


class SQLitePrivacyStore(PrivacyStore):
    """Privacy tables in the database's one file; writes join the caller's transaction when one
    is open."""

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
        sql, params = time_page(start, end, after, "id")
        if actions:
            cond, p = in_list("action", actions)
            sql += f" AND {cond}"
            params += p
        sql = f"SELECT {_AUDIT_COLS} FROM audit_log WHERE true{sql} ORDER BY at, id LIMIT ?"
        params.append(limit)
        return [_record(r) for r in self._rows(sql, params)]

    def _export_audit(self) -> pa.Table:
        rows = self._rows(f"SELECT {_AUDIT_COLS} FROM audit_log ORDER BY at, id")
        cols = list(zip(*rows, strict=True)) if rows else [() for _ in AUDIT.names]
        return pa.Table.from_arrays([
            pa.array(values, pa.int64()).cast(f.type) if pa.types.is_timestamp(f.type)
            else pa.array(values, f.type)
            for f, values in zip(AUDIT, cols, strict=True)
        ], schema=AUDIT)


__all__ = ["SQLitePrivacyStore"]
