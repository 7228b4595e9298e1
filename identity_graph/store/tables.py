"""Arrow schemas of the store's tables: the bulk load/export format, the same on every backend."""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")

IDENTIFIERS = pa.schema([
    ("key", pa.string()),
    ("type", pa.string()),
    ("value", pa.string()),
    ("first_seen", TS),
    ("last_seen", TS),
    ("customer_id", pa.string()),
    ("generic", pa.bool_()),
])

OBSERVATIONS = pa.schema([
    ("id", pa.string()),
    ("key", pa.string()),
    ("attribute", pa.string()),
    ("value", pa.string()),
    ("source", pa.string()),
    ("channel", pa.string()),
    ("observed_at", TS),
])

LINKS = pa.schema([
    ("link_id", pa.string()),
    ("a", pa.string()),
    ("b", pa.string()),
    ("kind", pa.string()),
    ("source", pa.string()),
    ("channel", pa.string()),
    ("event_id", pa.string()),
    ("model_version", pa.string()),
    ("probability", pa.float64()),
    ("match_weight", pa.float64()),
    ("comparisons", pa.string()),
    ("created_at", TS),
    ("actor", pa.string()),
    ("removed_at", TS),
    ("removed_by", pa.string()),
    ("removal_reason", pa.string()),
    ("claimant", pa.string()),  # empty: unknown, read as both ends (see `Link.claimant`)
    ("revision", pa.int64()),  # null: 0 (see `Link.revision`)
])

CUSTOMERS = pa.schema([
    ("id", pa.string()),
    ("created_at", TS),
])

ALIASES = pa.schema([
    ("alias", pa.string()),
    ("customer_id", pa.string()),
])

EVENTS = pa.schema([
    ("seq", pa.int64()),
    ("type", pa.string()),
    ("customer_id", pa.string()),
    ("at", TS),
    ("payload", pa.string()),
])

TABLES: dict[str, pa.Schema] = {
    "identifiers": IDENTIFIERS,
    "observations": OBSERVATIONS,
    "links": LINKS,
    "customers": CUSTOMERS,
    "aliases": ALIASES,
    "events": EVENTS,
}
