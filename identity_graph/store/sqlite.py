"""The embedded default: `SQLiteDatabase` (one file, e.g. `identity.db`) and `SQLiteStore`, its graph.

SQLite answers the point reads and small commits of the online path in microseconds (a keyed read
~9 µs, a one-row upsert and commit ~22 µs here, against ~0.8 ms and ~3.4 ms in DuckDB). The file
runs in WAL mode, so readers never block the writer or each other: the nightly relink and
`identity-batch export` read a consistent snapshot while a server writes.

Durability: `synchronous=NORMAL` in WAL mode. A committed transaction survives a crash of the
process at any point; after a power loss or an OS crash the last transactions committed before
the next checkpoint may be lost (the file itself stays consistent). `secure_delete=ON` overwrites
deleted content with zeros, and `checkpoint()` (run after every erasure) moves the WAL into the
file and truncates it, so erased values leave the disk.

Connections: one writer connection behind a lock, used by the thread inside `transaction()`;
every other thread reads on a connection of its own (WAL readers run in parallel and see the
last commit). `":memory:"` has one connection for everything.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pyarrow as pa

from identity_graph.errors import StoreError
from identity_graph.model import (
    ChangeSet,
    Constraint,
    ConstraintKind,
    Customer,
    DeleteCounts,
    Event,
    IdentifierNode,
    Link,
    LinkKind,
    Observation,
)
from identity_graph.store import sqlite_schema
from identity_graph.store.base import GraphStore
from identity_graph.store.database import Database, Snapshot, SnapshotScope
from identity_graph.store.tables import TABLES

T = TypeVar("T")

BUSY_TIMEOUT_S = 30.0
"""How long a write waits for another process's write transaction before failing."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def to_us(value: datetime | None) -> int | None:
    """Epoch microseconds of a datetime (a naive one is taken as UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // _US


def from_us(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + timedelta(microseconds=value)


def in_list(column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    """`column IN (...)` for any number of values: one parameter (a JSON array), so no limit on
    host parameters and one cached statement per query."""
    if len(values) == 1:
        return f"{column} = ?", [values[0]]
    return f"{column} IN (SELECT value FROM json_each(?))", [json.dumps(list(values))]


def time_page(start: datetime | None, end: datetime | None, after: tuple[datetime, Any] | None,
              tiebreak: str) -> tuple[str, list[Any]]:
    """` AND ...` conditions for one page of a log in (`at`, `tiebreak`) order: from `start`
    (inclusive) to `end` (exclusive), after the last row of the previous page (keyset paging)."""
    sql, params = "", []
    if start is not None:
        sql += " AND at >= ?"
        params.append(to_us(start))
    if end is not None:
        sql += " AND at < ?"
        params.append(to_us(end))
    if after is not None:
        sql += f" AND (at > ? OR (at = ? AND {tiebreak} > ?))"
        params += [to_us(after[0]), to_us(after[0]), after[1]]
    return sql, params


WRITER_CACHE_KIB = 65_536
"""The writer connection's page cache (`PRAGMA cache_size`, in KiB)."""


class SQLiteDatabase(Database):
    """One SQLite file with every online table; see the module docstring."""

    name = "sqlite"
    bulk_batch = 50_000

    def __init__(self, path: str = ":memory:") -> None:
        super().__init__()
        self.path = path
        self._memory = path == ":memory:" or path.startswith("file::memory:")
        # A file's readers have connections of their own (WAL: never blocked by the writer); an
        # in-memory database reads on the writer's connection, behind its lock.
        self.inline_reads = not self._memory
        self._lock = threading.RLock()
        self._owner: int | None = None
        self._depth = 0
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        self._con = self._connect()
        # The one writer gets a larger page cache than SQLite's 2 MB: a relink's batch of 50k
        # assignments updates the identifiers table and its customer index at random places,
        # and at 1M identifiers that ran 25 % faster with 64 MB (BENCHMARKS, issue 10). The
        # readers keep the default; there are several of them.
        self._con.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
        if not self._memory:
            self._con.execute("PRAGMA journal_mode=WAL").fetchall()
        if sqlite_schema.missing(self._con):  # a new (or older) file; else no write lock is taken
            with self.transaction() as con:
                sqlite_schema.ensure(con)
        self._graph: SQLiteStore | None = None

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                              timeout=BUSY_TIMEOUT_S)
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute("PRAGMA secure_delete=ON")
        return con

    # ---- transactions and reads --------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The writer connection inside a transaction (`BEGIN IMMEDIATE`: the file's write lock
        is taken at once, so two processes never deadlock upgrading a read). Nested use on the
        same thread is a savepoint within it."""
        with self._lock:
            con = self._writer()
            depth = self._depth
            con.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT s{depth}")
            self._depth, self._owner = depth + 1, threading.get_ident()
            try:
                with self.writes.writing():
                    yield con
                    con.execute("COMMIT" if depth == 0 else f"RELEASE s{depth}")
            except BaseException:
                if depth == 0:
                    if con.in_transaction:
                        con.execute("ROLLBACK")
                else:
                    con.execute(f"ROLLBACK TO s{depth}")
                    con.execute(f"RELEASE s{depth}")
                raise
            finally:
                self._depth = depth
                if depth == 0:
                    self._owner = None

    def atomically(self, work: Callable[[], T]) -> T:
        """`work()` in one `transaction()`; a failure to begin or commit it (the file locked by
        another process past the busy timeout, a full disk) is a `StoreError`."""
        try:
            return self.run_transaction(work)
        except sqlite3.Error as e:  # the stores wrap their own statements' errors
            raise StoreError(f"sqlite: transaction failed: {type(e).__name__}") from e

    def in_transaction(self) -> bool:
        """Whether this thread is inside `transaction()`."""
        return self._owner == threading.get_ident()

    def lock_region(self, names: Sequence[str]) -> None:
        """Nothing more to take: `transaction()` began with `BEGIN IMMEDIATE`, which holds the
        file's one write lock (every process on the host waits for it) until the commit."""
        if not self.in_transaction():
            raise RuntimeError("lock_region needs an open transaction()")

    def is_transient(self, error: BaseException) -> bool:
        """The file stayed locked (busy) longer than the busy timeout: try again."""
        seen: BaseException | None = error
        while seen is not None:
            if isinstance(seen, sqlite3.OperationalError) and (
                    "locked" in str(seen) or "busy" in str(seen)):
                return True
            seen = seen.__cause__
        return False

    def _writer(self) -> sqlite3.Connection:
        if self._closed:
            raise sqlite3.ProgrammingError("the database is closed")
        return self._con

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Runs a read. Inside this thread's transaction it sees that transaction's writes;
        elsewhere it runs on the thread's own reader connection and sees the last commit."""
        if self._memory or self.in_transaction():
            with self._lock:
                return self._writer().execute(sql, params).fetchall()
        return self._reader().execute(sql, params).fetchall()

    def _reader(self) -> sqlite3.Connection:
        con: sqlite3.Connection | None = getattr(self._local, "reader", None)
        if con is None:
            if self._closed:
                raise sqlite3.ProgrammingError("the database is closed")
            con = self._connect()
            con.execute("PRAGMA query_only=ON")
            with self._readers_lock:
                self._readers.append(con)
            self._local.reader = con
        return con

    # ---- bulk --------------------------------------------------------------------------------

    @contextmanager
    def snapshot(self, scope: SnapshotScope | None = None) -> Iterator[Snapshot]:
        """Every graph table (or `scope`) in one read transaction (WAL: writers carry on)."""
        if self._memory:
            with self._lock:
                yield self._read_snapshot(self._writer(), scope)
            return
        con = self._connect()
        try:
            con.execute("PRAGMA query_only=ON")
            con.execute("BEGIN")
            try:
                yield self._read_snapshot(con, scope)
            finally:
                con.execute("COMMIT")
        finally:
            con.close()

    @staticmethod
    def _read_snapshot(con: sqlite3.Connection, scope: SnapshotScope | None) -> Snapshot:
        if scope is None:
            tables = {name: read_table(con, name) for name in TABLES}
        else:
            types = sorted(scope.event_types) if scope.event_types is not None else None
            tables = {name: read_table(con, name, cols, ordered=False,
                                       types=types if name == "events" else None)
                      for name, cols in scope.columns.items()}
        [(seq,)] = con.execute("SELECT coalesce(max(seq), 0) FROM events").fetchall()
        return Snapshot(tables, int(seq))

    def last_seq(self) -> int:
        [(seq,)] = self.rows("SELECT coalesce(max(seq), 0) FROM events")
        return int(seq)

    def checkpoint(self) -> None:
        """Copies the WAL into the file and truncates it to zero bytes."""
        if self._memory:
            return
        with self._lock:
            self._writer().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    # ---- the stores that live here -----------------------------------------------------------

    def graph_store(self) -> SQLiteStore:
        if self._graph is None:
            self._graph = SQLiteStore(self)
        return self._graph

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            with self._readers_lock:
                readers, self._readers = self._readers, []
            for con in readers:
                con.close()
            self._con.close()

    def __repr__(self) -> str:
        return f"SQLiteDatabase({self.path!r})"


_ORDER = {"identifiers": "key", "observations": "id", "links": "link_id", "customers": "id",
          "aliases": "alias", "events": "seq", "constraints": "constraint_id"}


def read_table(con: sqlite3.Connection, name: str, columns: Sequence[str] | None = None,
               ordered: bool = True, types: Sequence[str] | None = None) -> pa.Table:
    """A graph table as Arrow, in the schema of `tables.TABLES` (or those of its `columns`),
    ordered by its key unless told not to (a scan in table order reads 4M rows a third faster);
    of `events`, only `types` when given."""
    schema = TABLES[name]
    if columns is not None:
        schema = pa.schema([schema.field(c) for c in columns])
    cols = ", ".join(f'"{c}"' for c in schema.names)
    where = "" if types is None else f" WHERE type IN ({', '.join('?' * len(types))})" if types \
        else " WHERE 0"
    order = f" ORDER BY {_ORDER[name]}" if ordered else ""
    rows = con.execute(f"SELECT {cols} FROM {name}{where}{order}", list(types or ())).fetchall()
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema.names]
    arrays = []
    for f, values in zip(schema, columns, strict=True):
        if pa.types.is_timestamp(f.type):
            arrays.append(pa.array(values, pa.int64()).cast(f.type))
        elif pa.types.is_boolean(f.type):
            arrays.append(pa.array([None if v is None else bool(v) for v in values], f.type))
        else:
            arrays.append(pa.array(values, f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _table_rows(table: pa.Table) -> list[tuple[Any, ...]]:
    """Arrow rows as tuples for `executemany`, timestamps as epoch microseconds."""
    for i, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type):
            us = table.column(i).cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
            table = table.set_column(i, f.name, us)
    return list(zip(*(c.to_pylist() for c in table.columns), strict=True))


_STALE = "DELETE FROM meta WHERE name = 'blocking_version'"
_IDENT_COLS = sqlite_schema.columns("identifiers")
_OBS_COLS = sqlite_schema.columns("observations")
_LINK_COLS = sqlite_schema.columns("links")
_EVENT_COLS = sqlite_schema.columns("events")
_CONSTRAINT_COLS = sqlite_schema.columns("constraints")
# Events that belong to one of the customer ids (first parameter, a JSON array) or whose payload
# contains one of the needles (second parameter, a JSON array of JSON texts).
_MENTIONING = (
    "customer_id IN (SELECT value FROM json_each(?)) OR EXISTS "
    "(SELECT 1 FROM json_each(?) n WHERE instr(events.payload, n.value) > 0)"
)


def _node(row: Sequence[Any]) -> IdentifierNode:
    k, t, v, fs, ls, c, g = row
    return IdentifierNode(key=k, type=t, value=v, first_seen=from_us(fs), last_seen=from_us(ls),
                          customer_id=c, generic=bool(g))  # type: ignore[arg-type]


def _link(row: Sequence[Any]) -> Link:
    (_id, a, b, kind, source, channel, event_id, model_version, probability, match_weight,
     comparisons, created_at, actor, removed_at, removed_by, removal_reason, claimant, revision) = row
    return Link(
        a=a, b=b, kind=LinkKind.parse(kind), source=source or "", channel=channel or "",
        event_id=event_id or "", model_version=model_version or "", probability=probability,
        match_weight=match_weight,
        comparisons=None if comparisons is None else json.loads(comparisons),
        created_at=from_us(created_at), actor=actor or "",  # type: ignore[arg-type]
        removed_at=from_us(removed_at), removed_by=removed_by or "",
        removal_reason=removal_reason or "", claimant=claimant or "", revision=revision or 0,
    )


def _constraint(row: Sequence[Any]) -> Constraint:
    (_id, kind, a, b, origin, link_id, actor, reason, created_at, withdrawn_at, withdrawn_by,
     withdrawal_reason) = row
    return Constraint(kind=ConstraintKind.parse(kind), a=a, b=b, actor=actor, reason=reason,
                      origin=origin, link_id=link_id,
                      created_at=from_us(created_at),  # type: ignore[arg-type]
                      withdrawn_at=from_us(withdrawn_at), withdrawn_by=withdrawn_by or "",
                      withdrawal_reason=withdrawal_reason or "")


def event_from_row(row: Sequence[Any]) -> Event:
    seq, type_, customer_id, at, payload = row
    return Event(type=type_, payload=json.loads(payload), customer_id=customer_id or "",
                 at=from_us(at), seq=seq)  # type: ignore[arg-type]


def _prefix_bound(prefix: str) -> str | None:
    """The smallest string above every string that starts with `prefix` (None: no bound)."""
    for i in range(len(prefix) - 1, -1, -1):
        code = ord(prefix[i]) + 1
        if 0xD800 <= code <= 0xDFFF:
            code = 0xE000
        if code <= 0x10FFFF:
            return prefix[:i] + chr(code)
    return None


class SQLiteStore(GraphStore):
    """The identity graph in a `SQLiteDatabase`. No read cache: a keyed read costs microseconds."""

    name = "sqlite"

    def __init__(self, database: SQLiteDatabase | str = ":memory:") -> None:
        self.database = database if isinstance(database, SQLiteDatabase) else SQLiteDatabase(database)
        self.path = self.database.path

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.database.rows(sql, params)

    # ---- writes ------------------------------------------------------------------------------

    def _apply(self, changes: ChangeSet) -> list[int]:
        with self.database.transaction() as con:
            self._write_identifiers(con, changes)
            self._write_links(con, changes)
            if changes.customers_created:
                con.executemany("INSERT INTO customers (id, created_at) VALUES (?, ?) "
                                "ON CONFLICT (id) DO NOTHING",
                                [(c.id, to_us(c.created_at)) for c in changes.customers_created])
            if changes.assignments:
                con.executemany("UPDATE identifiers SET customer_id = ? WHERE key = ?",
                                [(c, k) for k, c in changes.assignments.items()])
            if changes.aliases:
                con.executemany("INSERT INTO aliases (alias, customer_id) VALUES (?, ?) "
                                "ON CONFLICT (alias) DO UPDATE SET customer_id = excluded.customer_id",
                                list(changes.aliases.items()))
            if changes.generic:
                con.executemany("UPDATE identifiers SET generic = ? WHERE key = ?",
                                [(int(bool(g)), k) for k, g in changes.generic.items()])
            self._write_blocking(con, changes)
            self._write_constraints(con, changes)
            return self._write_events(con, changes.events)

    @staticmethod
    def _write_blocking(con: sqlite3.Connection, changes: ChangeSet) -> None:
        if changes.blocking is None:
            if any(up.observations for up in changes.identifiers):
                con.execute(_STALE)
            return
        cond, params = in_list("key", sorted(changes.blocking))
        con.execute(f"DELETE FROM blocking WHERE {cond}", params)
        con.executemany("INSERT OR IGNORE INTO blocking (hash, key, rule) VALUES (?, ?, ?)",
                        [(h, k, rule) for k, rows in changes.blocking.items() for rule, h in rows])

    @staticmethod
    def _write_identifiers(con: sqlite3.Connection, changes: ChangeSet) -> None:
        if not changes.identifiers:
            return
        merged: dict[str, list[Any]] = {}
        observations: dict[str, tuple[Any, ...]] = {}
        for up in changes.identifiers:
            seen = to_us(up.seen_at)
            row = merged.get(up.key)
            if row is None:
                merged[up.key] = [up.key, up.type, up.value, seen, seen]
            else:
                row[3], row[4] = min(row[3], seen), max(row[4], seen)
            for ob in up.observations:
                observations.setdefault(ob.id, (ob.id, ob.key, ob.attribute, ob.value, ob.source,
                                                ob.channel, to_us(ob.observed_at)))
        con.executemany(
            "INSERT INTO identifiers (key, type, value, first_seen, last_seen) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET first_seen = min(first_seen, excluded.first_seen), "
            "last_seen = max(last_seen, excluded.last_seen)",
            list(merged.values()),
        )
        if observations:
            con.executemany(f"INSERT INTO observations ({_OBS_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
                            "ON CONFLICT (id) DO NOTHING", list(observations.values()))

    @staticmethod
    def _write_links(con: sqlite3.Connection, changes: ChangeSet) -> None:
        if changes.links_added:
            rows: dict[str, tuple[Any, ...]] = {}
            for lk in changes.links_added:
                rows.setdefault(lk.id, (
                    lk.id, lk.a, lk.b, lk.kind.label, lk.source, lk.channel, lk.event_id,
                    lk.model_version, lk.probability, lk.match_weight, lk.comparisons_json(),
                    to_us(lk.created_at), lk.actor, to_us(lk.removed_at), lk.removed_by,
                    lk.removal_reason, lk.claimant or None, lk.revision or None,
                ))
            con.executemany(f"INSERT INTO links ({_LINK_COLS}) VALUES "
                            f"({sqlite_schema.placeholders('links')}) ON CONFLICT (link_id) DO NOTHING",
                            list(rows.values()))
        if changes.links_removed:
            removals: dict[str, tuple[Any, ...]] = {}
            for link_id, at, by, reason in changes.links_removed:
                removals.setdefault(link_id, (to_us(at), by or "", reason or "", link_id))
            con.executemany("UPDATE links SET removed_at = ?, removed_by = ?, removal_reason = ? "
                            "WHERE link_id = ? AND removed_at IS NULL", list(removals.values()))

    @staticmethod
    def _write_constraints(con: sqlite3.Connection, changes: ChangeSet) -> None:
        if changes.constraints_added:
            con.executemany(
                f"INSERT INTO constraints ({_CONSTRAINT_COLS}) VALUES "
                f"({sqlite_schema.placeholders('constraints')}) ON CONFLICT (constraint_id) DO NOTHING",
                [(c.id, c.kind.value, c.a, c.b, c.origin, c.link_id, c.actor, c.reason,
                  to_us(c.created_at), to_us(c.withdrawn_at), c.withdrawn_by, c.withdrawal_reason)
                 for c in changes.constraints_added])
        if changes.constraints_withdrawn:
            con.executemany(
                "UPDATE constraints SET withdrawn_at = ?, withdrawn_by = ?, withdrawal_reason = ? "
                "WHERE constraint_id = ? AND withdrawn_at IS NULL",
                [(to_us(at), by or "", why or "", cid) for cid, at, by, why in changes.constraints_withdrawn])

    @staticmethod
    def _write_events(con: sqlite3.Connection, events: Sequence[Event]) -> list[int]:
        if not events:
            return []
        [(last,)] = con.execute("SELECT coalesce(max(seq), 0) FROM events").fetchall()
        seqs = list(range(last + 1, last + 1 + len(events)))
        con.executemany(f"INSERT INTO events ({_EVENT_COLS}) VALUES (?, ?, ?, ?, ?)", [
            (seq, ev.type, ev.customer_id or "", to_us(ev.at), json.dumps(ev.payload, sort_keys=True))
            for seq, ev in zip(seqs, events, strict=True)
        ])
        return seqs

    def _delete(self, keys: Sequence[str]) -> DeleteCounts:
        cond_key, p_key = in_list("key", keys)
        cond_a, p_a = in_list("a", keys)
        cond_b, p_b = in_list("b", keys)
        with self.database.transaction() as con:
            n_obs = con.execute(f"DELETE FROM observations WHERE {cond_key}", p_key).rowcount
            n_links = con.execute(f"DELETE FROM links WHERE {cond_a} OR {cond_b}", p_a + p_b).rowcount
            con.execute(f"DELETE FROM constraints WHERE {cond_a} OR {cond_b}", p_a + p_b)
            n_ids = con.execute(f"DELETE FROM identifiers WHERE {cond_key}", p_key).rowcount
            con.execute(f"DELETE FROM blocking WHERE {cond_key}", p_key)
        return DeleteCounts(identifiers=n_ids, observations=n_obs, links=n_links, events=0)

    def _clear(self) -> None:
        with self.database.transaction() as con:
            for name in (*TABLES, "blocking"):
                con.execute(f"DELETE FROM {name}")
            con.execute(_STALE)

    # ---- the blocking-key index ----------------------------------------------------------------

    def _blocking_version(self) -> str | None:
        rows = self._rows("SELECT value FROM meta WHERE name = 'blocking_version'")
        return rows[0][0] if rows else None

    def _identifier_keys_after(self, after: str, limit: int) -> list[str]:
        return [k for (k,) in self._rows("SELECT key FROM identifiers WHERE key > ? ORDER BY key LIMIT ?",
                                         [after, limit])]

    def _rebuild_blocking(self, version: str | None, rows: dict[str, list[tuple[str, str]]],
                          first: bool) -> None:
        with self.database.transaction() as con:
            if first:
                con.execute(_STALE)
                con.execute("DELETE FROM blocking")
            con.executemany("INSERT OR IGNORE INTO blocking (hash, key, rule) VALUES (?, ?, ?)",
                            [(h, k, rule) for k, rs in rows.items() for rule, h in rs])
            if version is not None:
                con.execute("INSERT INTO meta (name, value) VALUES ('blocking_version', ?) "
                            "ON CONFLICT (name) DO UPDATE SET value = excluded.value", [version])

    def _blocking_probe(self, version: str, digests: Sequence[str], limit: int) -> list[str] | None:
        """One statement: the version check, then per digest an ordered range of the primary
        key `(hash, key)`."""
        probes = " UNION ".join("SELECT * FROM (SELECT key FROM blocking WHERE hash = ? ORDER BY key LIMIT ?)"
                                for _ in digests)
        rows = self._rows(
            "SELECT 'v', value FROM meta WHERE name = 'blocking_version' "
            f"UNION ALL SELECT 'k', key FROM ({probes})",
            [p for d in digests for p in (d, limit)],
        )
        if ("v", version) not in rows:
            return None
        return [k for tag, k in rows if tag == "k"]

    # ---- reads -------------------------------------------------------------------------------

    def _get_identifiers(self, keys: Sequence[str]) -> list[IdentifierNode]:
        cond, params = in_list("key", keys)
        return [_node(r) for r in self._rows(f"SELECT {_IDENT_COLS} FROM identifiers WHERE {cond}",
                                             params)]

    def _customers_of(self, keys: Sequence[str]) -> list[tuple[str, str | None]]:
        cond, params = in_list("key", keys)
        return [(k, c) for k, c in self._rows(f"SELECT key, customer_id FROM identifiers WHERE {cond}",
                                               params)]

    def _observations(self, keys: Sequence[str]) -> list[Observation]:
        cond, params = in_list("key", keys)
        rows = self._rows(f"SELECT {_OBS_COLS} FROM observations WHERE {cond}", params)
        return [Observation(key=k, attribute=att, value=v, source=s, channel=ch,
                            observed_at=from_us(at))  # type: ignore[arg-type]
                for _id, k, att, v, s, ch, at in rows]

    def _links_touching(self, keys: Sequence[str], include_removed: bool) -> list[Link]:
        active = "" if include_removed else " AND removed_at IS NULL"
        cond_a, p_a = in_list("a", keys)
        cond_b, p_b = in_list("b", keys)
        rows = self._rows(f"SELECT {_LINK_COLS} FROM links WHERE {cond_a}{active} UNION "
                          f"SELECT {_LINK_COLS} FROM links WHERE {cond_b}{active} "
                          "ORDER BY a, b, created_at, link_id", p_a + p_b)
        return [_link(r) for r in rows]

    def _links_by_id(self, link_ids: Sequence[str]) -> list[Link]:
        cond, params = in_list("link_id", link_ids)
        rows = self._rows(f"SELECT {_LINK_COLS} FROM links WHERE {cond} "
                          "ORDER BY a, b, created_at, link_id", params)
        return [_link(r) for r in rows]

    def _customers(self, customer_ids: Sequence[str]) -> list[Customer]:
        cond, params = in_list("id", customer_ids)
        return [Customer(id=i, created_at=from_us(at))  # type: ignore[arg-type]
                for i, at in self._rows(f"SELECT id, created_at FROM customers WHERE {cond}", params)]

    def _aliases(self, ids: Sequence[str]) -> dict[str, str]:
        cond, params = in_list("alias", ids)
        return dict(self._rows(f"SELECT alias, customer_id FROM aliases WHERE {cond}", params))

    def _aliases_to(self, customer_id: str) -> list[str]:
        return [a for (a,) in self._rows("SELECT alias FROM aliases WHERE customer_id = ?",
                                         [customer_id])]

    def _members(self, customer_id: str) -> list[str]:
        return [k for (k,) in self._rows("SELECT key FROM identifiers WHERE customer_id = ?",
                                         [customer_id])]

    def _customer_subgraph(self, customer_id: str) -> tuple[list[str], list[Link], dict[str, IdentifierNode]]:
        """Members, their active links and every end's node in one statement (one read
        transaction, so the three parts agree with each other)."""
        return self._subgraph(customer_id, None)[1]

    def _identifier_subgraph(self, key: str) -> tuple[IdentifierNode | None, tuple[list[str], list[Link],
                                                                                  dict[str, IdentifierNode]]]:
        """The known-Resolve read in one statement: the node of `key` and its customer's subgraph."""
        return self._subgraph(None, key)

    def _subgraph(self, customer_id: str | None, key: str | None) -> tuple[
            IdentifierNode | None, tuple[list[str], list[Link], dict[str, IdentifierNode]]]:
        """The subgraph of `customer_id`, or of `key`'s customer with `key`'s node (exactly one
        of them is given)."""
        pad = ", NULL" * (len(TABLES["links"]) - len(TABLES["identifiers"]))
        customer = "?" if key is None else "(SELECT customer_id FROM identifiers WHERE key = ?)"
        anchor_too = "" if key is None else " OR key = ?"
        param = customer_id if key is None else key
        rows = self._rows(
            f"WITH m AS (SELECT key FROM identifiers WHERE customer_id = {customer}), "
            f"l AS (SELECT {_LINK_COLS} FROM links JOIN m ON links.a = m.key WHERE removed_at IS NULL "
            f"UNION SELECT {_LINK_COLS} FROM links JOIN m ON links.b = m.key WHERE removed_at IS NULL), "
            "e AS (SELECT key FROM m UNION SELECT a FROM l UNION SELECT b FROM l) "
            f"SELECT 'l', * FROM l UNION ALL SELECT 'n', {_IDENT_COLS}{pad} "
            f"FROM identifiers WHERE key IN (SELECT key FROM e){anchor_too}",
            [param] if key is None else [param, param],
        )
        nodes = {n.key: n for n in (_node(r[1:8]) for r in rows if r[0] == "n")}
        anchor = None if key is None else nodes.get(key)
        if anchor is not None:
            customer_id = anchor.customer_id
        members = sorted(k for k, n in nodes.items() if customer_id is not None
                         and n.customer_id == customer_id)
        if not members:
            return anchor, ([], [], {})
        # Sorted on the stored columns (a, b, created_at, id): the same order as on the Link
        # objects, without hashing every link's id again.
        links = [_link(r[1:]) for r in sorted((r for r in rows if r[0] == "l"),
                                              key=lambda r: (r[2], r[3], r[12], r[1]))]
        return anchor, (members, links, nodes)

    def _constraints(self, keys: Sequence[str] | None, include_withdrawn: bool) -> list[Constraint]:
        active = "" if include_withdrawn else " AND withdrawn_at IS NULL"
        if keys is None:
            rows = self._rows(f"SELECT {_CONSTRAINT_COLS} FROM constraints WHERE 1 = 1{active}")
        else:
            cond_a, p_a = in_list("a", keys)
            cond_b, p_b = in_list("b", keys)
            rows = self._rows(f"SELECT {_CONSTRAINT_COLS} FROM constraints WHERE {cond_a}{active} UNION "
                              f"SELECT {_CONSTRAINT_COLS} FROM constraints WHERE {cond_b}{active}",
                              p_a + p_b)
        return [_constraint(r) for r in rows]

    def _constraints_by_id(self, ids: Sequence[str]) -> list[Constraint]:
        cond, params = in_list("constraint_id", ids)
        return [_constraint(r) for r in
                self._rows(f"SELECT {_CONSTRAINT_COLS} FROM constraints WHERE {cond}", params)]

    def _active_links_of_kind(self, kind: str, by_score: bool, limit: int,
                              offset: int) -> tuple[list[Link], int]:
        order = "probability DESC, created_at, link_id" if by_score else "created_at, link_id"
        rows = self._rows(f"SELECT {_LINK_COLS} FROM links WHERE kind = ? AND removed_at IS NULL "
                          f"ORDER BY {order} LIMIT ? OFFSET ?", [kind, limit, offset])
        [(total,)] = self._rows("SELECT count(*) FROM links WHERE kind = ? AND removed_at IS NULL", [kind])
        return [_link(r) for r in rows], int(total)

    def _events(self, from_seq: int, limit: int) -> list[Event]:
        rows = self._rows(f"SELECT {_EVENT_COLS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                          [from_seq, limit])
        return [event_from_row(r) for r in rows]

    def _keys_by_attribute(self, attribute: str, values: Sequence[str], limit: int) -> list[str]:
        cond, params = in_list("value", values)
        rows = self._rows(f"SELECT DISTINCT key FROM observations WHERE attribute = ? AND {cond} "
                          "ORDER BY key LIMIT ?", [attribute, *params, limit])
        return [k for (k,) in rows]

    def _keys_by_prefix(self, attribute: str, prefix: str, limit: int) -> list[str]:
        bound = _prefix_bound(prefix)
        upper = "" if bound is None else " AND value < ?"
        params: list[Any] = [attribute, prefix, *([bound] if bound is not None else []), limit]
        rows = self._rows("SELECT DISTINCT key FROM observations WHERE attribute = ? AND value >= ?"
                          f"{upper} ORDER BY key LIMIT ?", params)
        return [k for (k,) in rows]

    # ---- erasure -----------------------------------------------------------------------------

    def _events_between(self, types: Sequence[str], start: datetime | None, end: datetime | None,
                        after: tuple[datetime, int] | None, limit: int) -> list[Event]:
        cond, params = in_list("type", types)
        page, page_params = time_page(start, end, after, "seq")
        sql = f"SELECT {_EVENT_COLS} FROM events WHERE {cond}{page} ORDER BY at, seq LIMIT ?"
        params += [*page_params, limit]
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

    def _delete_customers(self, customer_ids: Sequence[str]) -> tuple[int, int]:
        ids = json.dumps(list(customer_ids))
        with self.database.transaction() as con:
            aliases = con.execute("DELETE FROM aliases WHERE alias IN (SELECT value FROM json_each(?)) "
                                  "OR customer_id IN (SELECT value FROM json_each(?))",
                                  [ids, ids]).rowcount
            customers = con.execute("DELETE FROM customers WHERE id IN "
                                    "(SELECT value FROM json_each(?))", [ids]).rowcount
        return customers, aliases

    # ---- bulk --------------------------------------------------------------------------------

    def _export_tables(self) -> dict[str, pa.Table]:
        with self.database.snapshot() as snap:
            return snap.tables

    def _load_tables(self, tables: dict[str, pa.Table]) -> None:
        """Inserts every row in one transaction; a key that exists already fails the whole load.
        The blocking index is left stale (rebuilt by the next `use_blocking`)."""
        with self.database.transaction() as con:
            con.execute(_STALE)
            for name, schema in TABLES.items():
                table = tables[name].select(schema.names).cast(schema)
                con.executemany(f"INSERT INTO {name} ({sqlite_schema.columns(name)}) "
                                f"VALUES ({', '.join('?' for _ in schema.names)})",
                                _table_rows(table))

    def close(self) -> None:
        self.database.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"
