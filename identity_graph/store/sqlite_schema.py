"""The SQLite file's schema: every table of the embedded store in one place.

The graph (identifiers ... events), the conversations beside it (conversations ... seals) and the
privacy tables (suppressed, audit_log) share one file, so one transaction can span them (Forget).
Adding a column means adding it here (and, for a graph table, to `tables.TABLES`); `ensure`
adds missing columns to an existing file.

Times are INTEGER microseconds since 1970 UTC (exact, sortable, and cheap to turn into Arrow
timestamps); booleans are 0/1; JSON is TEXT.
"""

from __future__ import annotations

import sqlite3

TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    # ---- the identity graph (the columns of `tables.TABLES`, in that order) ------------------
    "identifiers": (
        ("key", "TEXT NOT NULL PRIMARY KEY"), ("type", "TEXT NOT NULL"), ("value", "TEXT NOT NULL"),
        ("first_seen", "INTEGER NOT NULL"), ("last_seen", "INTEGER NOT NULL"),
        ("customer_id", "TEXT"), ("generic", "INTEGER NOT NULL DEFAULT 0"),
    ),
    "observations": (
        ("id", "TEXT NOT NULL PRIMARY KEY"), ("key", "TEXT NOT NULL"), ("attribute", "TEXT NOT NULL"),
        ("value", "TEXT NOT NULL"), ("source", "TEXT"), ("channel", "TEXT"),
        ("observed_at", "INTEGER NOT NULL"),
    ),
    "links": (
        ("link_id", "TEXT NOT NULL PRIMARY KEY"), ("a", "TEXT NOT NULL"), ("b", "TEXT NOT NULL"),
        ("kind", "TEXT NOT NULL"), ("source", "TEXT"), ("channel", "TEXT"), ("event_id", "TEXT"),
        ("model_version", "TEXT"), ("probability", "REAL"), ("match_weight", "REAL"),
        ("comparisons", "TEXT"), ("created_at", "INTEGER NOT NULL"), ("actor", "TEXT"),
        ("removed_at", "INTEGER"), ("removed_by", "TEXT"), ("removal_reason", "TEXT"),
        # observed: the end that asserted the pair; NULL (older files): unknown, read as both ends
        ("claimant", "TEXT"),
        # the link's revision (`Link.revision`); NULL (older files): 0
        ("revision", "INTEGER"),
    ),
    "customers": (("id", "TEXT NOT NULL PRIMARY KEY"), ("created_at", "INTEGER NOT NULL")),
    "aliases": (("alias", "TEXT NOT NULL PRIMARY KEY"), ("customer_id", "TEXT NOT NULL")),
    "events": (
        ("seq", "INTEGER PRIMARY KEY"), ("type", "TEXT NOT NULL"), ("customer_id", "TEXT"),
        ("at", "INTEGER NOT NULL"), ("payload", "TEXT NOT NULL"),
    ),
    # The blocking-key index (`identity_graph.blocking`): one row per identifier and rule.
    "blocking": (("hash", "TEXT NOT NULL"), ("key", "TEXT NOT NULL"), ("rule", "TEXT NOT NULL")),
    # Small named values of the store: `blocking_version` (the index is complete for it).
    "meta": (("name", "TEXT NOT NULL PRIMARY KEY"), ("value", "TEXT")),
    # decisions by people (`model.Constraint`): cannot-links and must-links, withdrawn not deleted
    "constraints": (
        ("constraint_id", "TEXT NOT NULL PRIMARY KEY"), ("kind", "TEXT NOT NULL"),
        ("a", "TEXT NOT NULL"), ("b", "TEXT NOT NULL"), ("origin", "TEXT NOT NULL"),
        ("link_id", "TEXT NOT NULL"), ("actor", "TEXT NOT NULL"), ("reason", "TEXT NOT NULL"),
        ("created_at", "INTEGER NOT NULL"), ("withdrawn_at", "INTEGER"),
        ("withdrawn_by", "TEXT NOT NULL"), ("withdrawal_reason", "TEXT NOT NULL"),
    ),
    # ---- conversations (session.store.sqlite) -------------------------------------------------
    "conversations": (
        ("id", "TEXT NOT NULL PRIMARY KEY"), ("anchor", "TEXT NOT NULL"), ("status", "TEXT NOT NULL"),
        ("channels", "TEXT NOT NULL"), ("context", "TEXT NOT NULL"), ("state", "TEXT NOT NULL"),
        ("version", "INTEGER NOT NULL"), ("created_at", "INTEGER NOT NULL"),
        ("updated_at", "INTEGER NOT NULL"), ("closed_at", "INTEGER"),
        ("escalation_reason", "TEXT NOT NULL"), ("carried_from", "TEXT NOT NULL"),
        ("resumed_count", "INTEGER NOT NULL"), ("turn_count", "INTEGER NOT NULL"),
        ("last_channel", "TEXT NOT NULL"), ("channel_switches", "INTEGER NOT NULL"),
        # JSON of who started it (name, birth date); NULL: nobody said
        ("participant", "TEXT"),
    ),
    "turns": (
        ("conversation_id", "TEXT NOT NULL"), ("seq", "INTEGER NOT NULL"), ("role", "TEXT NOT NULL"),
        ("channel", "TEXT NOT NULL"), ("identifier", "TEXT NOT NULL"), ("text", "TEXT NOT NULL"),
        ("intent", "TEXT NOT NULL"), ("topic", "TEXT NOT NULL"), ("at", "INTEGER NOT NULL"),
    ),
    "handoffs": (
        ("code_hash", "TEXT NOT NULL PRIMARY KEY"), ("conversation_id", "TEXT NOT NULL"),
        ("channel", "TEXT NOT NULL"), ("created_at", "INTEGER NOT NULL"),
        ("expires_at", "INTEGER NOT NULL"), ("redeemed_at", "INTEGER"),
        ("redeemed_by", "TEXT NOT NULL"),
        # SHA-256 of the deep link's own 128-bit token ('' for codes made before links had one)
        ("link_hash", "TEXT NOT NULL DEFAULT ''"),
    ),
    # Caps on codes (`SQLiteConversationStore._count`): one row per counter, its window
    # restarting once it has ended.
    "attempt_counters": (
        ("key", "TEXT NOT NULL PRIMARY KEY"), ("n", "INTEGER NOT NULL"), ("expires_at", "INTEGER NOT NULL"),
    ),
    "step_ups": (
        ("id", "TEXT NOT NULL PRIMARY KEY"), ("requester", "TEXT NOT NULL"), ("target", "TEXT NOT NULL"),
        ("code_hash", "TEXT NOT NULL"), ("channel", "TEXT NOT NULL"),
        ("created_at", "INTEGER NOT NULL"), ("expires_at", "INTEGER NOT NULL"),
        ("attempts", "INTEGER NOT NULL"), ("completed_at", "INTEGER"),
    ),
    # `seq` keeps the recording order of consents (and outbox messages) stamped with one time.
    "consents": (
        ("seq", "INTEGER PRIMARY KEY"), ("identifier", "TEXT NOT NULL"), ("channel", "TEXT NOT NULL"),
        ("purpose", "TEXT NOT NULL"), ("granted", "INTEGER NOT NULL"), ("source", "TEXT NOT NULL"),
        ("at", "INTEGER NOT NULL"),
    ),
    "outbox": (
        ("id", "TEXT NOT NULL PRIMARY KEY"), ("seq", "INTEGER NOT NULL"), ("channel", "TEXT NOT NULL"),
        ("recipient", "TEXT NOT NULL"), ("text", "TEXT NOT NULL"), ("created_at", "INTEGER NOT NULL"),
    ),
    "seals": (
        ("anchor", "TEXT NOT NULL"), ("sealed_before", "INTEGER NOT NULL"), ("reason", "TEXT"),
        ("actor", "TEXT"), ("at", "INTEGER NOT NULL"),
    ),
    # ---- privacy (privacy.store.sqlite) ------------------------------------------------------
    "suppressed": (("hash", "TEXT NOT NULL PRIMARY KEY"), ("at", "INTEGER NOT NULL")),
    "audit_log": (
        ("id", "TEXT NOT NULL PRIMARY KEY"), ("action", "TEXT NOT NULL"), ("actor", "TEXT NOT NULL"),
        ("at", "INTEGER NOT NULL"), ("subject", "TEXT NOT NULL"), ("detail", "TEXT NOT NULL"),
    ),
}

CONSTRAINTS: dict[str, str] = {"turns": "PRIMARY KEY (conversation_id, seq)",
                                "blocking": "PRIMARY KEY (hash, key)"}

INDEXES: tuple[str, ...] = (
    "CREATE INDEX IF NOT EXISTS links_a ON links (a)",
    "CREATE INDEX IF NOT EXISTS links_b ON links (b)",
    "CREATE INDEX IF NOT EXISTS observations_key ON observations (key)",
    # Covering: candidate lookups (`keys_by_attribute`, `keys_by_prefix`) read keys from the index
    # alone, without a table row per match (a common first name matches thousands).
    "CREATE INDEX IF NOT EXISTS observations_attribute_value_key ON observations (attribute, value, key)",
    "CREATE INDEX IF NOT EXISTS blocking_key ON blocking (key)",
    "CREATE INDEX IF NOT EXISTS constraints_a ON constraints (a)",
    "CREATE INDEX IF NOT EXISTS constraints_b ON constraints (b)",
    "CREATE INDEX IF NOT EXISTS links_kind ON links (kind, removed_at)",
    "CREATE INDEX IF NOT EXISTS identifiers_customer ON identifiers (customer_id)",
    "CREATE INDEX IF NOT EXISTS aliases_customer ON aliases (customer_id)",
    "CREATE INDEX IF NOT EXISTS events_at ON events (at, seq)",
    "CREATE INDEX IF NOT EXISTS conversations_anchor ON conversations (anchor, updated_at)",
    "CREATE INDEX IF NOT EXISTS conversations_created_at ON conversations (created_at)",
    "CREATE INDEX IF NOT EXISTS conversations_status ON conversations (status, updated_at)",
    "CREATE INDEX IF NOT EXISTS turns_identifier ON turns (identifier)",
    "CREATE INDEX IF NOT EXISTS handoffs_conversation ON handoffs (conversation_id)",
    "CREATE INDEX IF NOT EXISTS handoffs_link_hash ON handoffs (link_hash)",
    "CREATE INDEX IF NOT EXISTS step_ups_requester ON step_ups (requester)",
    "CREATE INDEX IF NOT EXISTS step_ups_target ON step_ups (target)",
    "CREATE INDEX IF NOT EXISTS consents_identifier ON consents (identifier)",
    "CREATE INDEX IF NOT EXISTS outbox_recipient ON outbox (recipient)",
    "CREATE INDEX IF NOT EXISTS seals_anchor ON seals (anchor)",
    "CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at, id)",
)

GRAPH_TABLES = ("identifiers", "observations", "links", "customers", "aliases", "events", "blocking",
                "meta", "constraints")
SESSION_TABLES = ("turns", "handoffs", "step_ups", "consents", "outbox", "seals", "conversations",
                  "attempt_counters")


def columns(table: str) -> str:
    """The column list of `table`, comma-separated, in schema order."""
    return ", ".join(f'"{name}"' for name, _ in TABLES[table])


def placeholders(table: str) -> str:
    return ", ".join("?" for _ in TABLES[table])


def missing(con: sqlite3.Connection) -> list[str]:
    """The statements that would create the tables, columns and indexes missing from the file
    (a read only: opening a file whose schema is complete takes no write lock)."""
    have_tables = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    have_indexes = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    out = []
    for table, cols in TABLES.items():
        if table not in have_tables:
            body = ", ".join(f'"{name}" {decl}' for name, decl in cols)
            if table in CONSTRAINTS:
                body += ", " + CONSTRAINTS[table]
            out.append(f"CREATE TABLE IF NOT EXISTS {table} ({body})")
            continue
        have = {row[1] for row in con.execute(f"PRAGMA table_info({table})")}
        for name, decl in cols:
            if name not in have:  # a column added since the file was made: nullable on old rows
                plain = decl.replace("NOT NULL", "").replace("PRIMARY KEY", "")
                out.append(f'ALTER TABLE {table} ADD COLUMN "{name}" {plain}')
    out.extend(stmt for stmt in INDEXES
               if stmt.split(" IF NOT EXISTS ", 1)[1].split(" ", 1)[0] not in have_indexes)
    return out


def ensure(con: sqlite3.Connection) -> None:
    """Creates missing tables, columns and indexes (idempotent; run inside a write transaction)."""
    for statement in missing(con):
        con.execute(statement)
