"""`identity-batch export`: parquet tables for analysts, one file per table, queryable with DuckDB.

    identifiers.parquet  key, type, value, customer_id, first_seen, last_seen, generic
    links.parquet        link_id, a, b, kind, probability, match_weight, model_version, source,
                         channel, event_id, actor, created_at, active, removed_at, removed_by,
                         removal_reason, comparisons (JSON text), claimant (observed: the end
                         that asserted it; NULL: unknown, read as both ends), revision (n: the
                         same evidence linked again after n removals)
    customers.parquet    customer_id, size, channels (list), created_at, aliases (list)
    events.parquet       seq, type, customer_id, at, payload (JSON text)
    observations.parquet key, attribute, value, source, channel, observed_at
    constraints.parquet  constraint_id, kind (cannot_link | must_link), a, b, origin (unlink, split,
                         link, review), link_id, actor, reason, created_at, active, withdrawn_at,
                         withdrawn_by, withdrawal_reason: decisions by people
    audit.parquet        id, action, actor, at, subject, detail (JSON text): merges and splits
                         from the event log, erasures, exports and handoff redemptions

The tables are derived set-wise in DuckDB from the store's own export.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
from tqdm import tqdm

from identity_graph.store.base import GraphStore
from privacy.store import privacy_store_for

_QUERIES = {
    "identifiers": """
        SELECT key, type, value, customer_id, first_seen, last_seen, generic
        FROM s_identifiers ORDER BY key""",
    "links": """
        SELECT link_id, a, b, kind, probability, match_weight, nullif(model_version, '') AS model_version,
               source, channel, event_id, actor, created_at, removed_at IS NULL AS active,
               removed_at, removed_by, removal_reason, comparisons, nullif(claimant, '') AS claimant,
               coalesce(revision, 0) AS revision
        FROM s_links ORDER BY a, b, created_at, link_id""",
    "customers": """
        WITH members AS (
            SELECT customer_id, count(*) AS size,
                   coalesce(list(DISTINCT CASE type WHEN 'web_cookie' THEN 'web' WHEN 'phone' THEN 'sms'
                                 ELSE type END)
                            FILTER (WHERE type IN ('web_cookie', 'phone', 'whatsapp', 'email')),
                            []) AS type_channels
            FROM s_identifiers WHERE customer_id IS NOT NULL GROUP BY customer_id),
        obs_channels AS (
            SELECT i.customer_id, list(DISTINCT o.channel) AS chans
            FROM s_observations o JOIN s_identifiers i USING (key)
            WHERE o.channel <> '' AND i.customer_id IS NOT NULL GROUP BY i.customer_id),
        al AS (SELECT customer_id, list(alias ORDER BY alias) AS aliases FROM s_aliases
               GROUP BY customer_id)
        SELECT c.id AS customer_id, coalesce(m.size, 0) AS size,
               list_sort(list_distinct(list_concat(coalesce(m.type_channels, []),
                                                   coalesce(oc.chans, [])))) AS channels,
               c.created_at, coalesce(al.aliases, []) AS aliases
        FROM s_customers c
        LEFT JOIN members m ON m.customer_id = c.id
        LEFT JOIN obs_channels oc ON oc.customer_id = c.id
        LEFT JOIN al ON al.customer_id = c.id
        WHERE c.id NOT IN (SELECT alias FROM s_aliases)
        ORDER BY c.id""",
    "events": """SELECT seq, type, nullif(customer_id, '') AS customer_id, "at", payload
                 FROM s_events ORDER BY seq""",
    "observations": """SELECT key, attribute, value, source, channel, observed_at
                       FROM s_observations ORDER BY key, observed_at, attribute""",
    "constraints": """
        SELECT constraint_id, kind, a, b, origin, nullif(link_id, '') AS link_id, actor, reason,
               created_at, withdrawn_at IS NULL AS active, withdrawn_at, withdrawn_by,
               withdrawal_reason
        FROM s_constraints ORDER BY created_at, constraint_id""",
    "audit": """
        SELECT 'event:' || seq AS id, type AS action,
               coalesce(json_extract_string(payload, '$.actor'), '') AS actor, "at",
               customer_id AS subject, payload AS detail
        FROM s_events WHERE type IN ('merge', 'split')
        UNION ALL
        SELECT id, action, actor, "at", subject, detail FROM s_audit
        ORDER BY "at", id""",
}


def export(store: GraphStore, out_dir: str | Path, progress: bool = True) -> dict[str, int]:
    """Writes the analyst tables to `out_dir`; returns row counts per table.

    Raises:
        StoreError: the store could not be read.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(_QUERIES) + 1, desc="export", unit="table", disable=not progress,
               leave=False)
    tables = store.export_tables()
    tables["audit"] = privacy_store_for(store).export_audit()
    bar.update(1)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.complete()
    for name, table in tables.items():
        con.register(f"s_{name}", table)
    counts = {}
    try:
        for name, sql in _QUERIES.items():
            path = out / f"{name}.parquet"
            tmp = out / f".{name}.parquet.tmp"
            con.execute(f"COPY ({sql}) TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)")
            con.complete()
            tmp.replace(path)
            counts[name] = int(con.execute(f"SELECT count(*) FROM '{path}'").fetchall()[0][0])
            bar.update(1)
    finally:
        con.close()
        bar.close()
    return counts
