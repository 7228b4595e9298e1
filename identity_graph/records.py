"""An identifier's record, defined once as SQL that SQLite, DuckDB and Spark SQL all run.

A record is what an identifier says about a person: per attribute, the value observed most
often (ties: the latest, then the smallest). `best_values_sql` is that policy, the only copy:

- the nightly relink pivots it into one Splink record per identifier (`records_sql`) on DuckDB
  or on Spark;
- the online engine and ingest run it on an in-memory SQLite database over the observations
  they hold (`records_of`), so a pair scores the same by day and by night.

Only standard SQL (CTEs, `count`, `max`, `row_number() OVER`), so the three engines give the
same rows; strings order by code point in all three (binary collation).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence

from identity_graph.model import Observation

__all__ = ["RECORD_COLUMNS", "best_values_sql", "record_columns_from", "record_of", "records_of",
           "records_sql"]

RECORD_COLUMNS = ("first_name", "last_name", "date_of_birth", "street", "city", "postcode", "country")
"""The built-in attribute columns, in record order."""

_QUOTE = {"duckdb": '"', "spark": "`", "sqlite": '"'}


def best_values_sql(observations: str = "observations", where: str = "") -> str:
    """SELECT key, attribute, value: each identifier's record in long form (the policy above).

    `observations` is a table (or subquery) with key, attribute, value and observed_at (any
    type that orders by time); `where` an extra condition on it."""
    cond = f" AND ({where})" if where else ""
    return f"""
        WITH counted AS (
            SELECT key, attribute, value, count(*) AS n, max(observed_at) AS last_seen
            FROM {observations} WHERE value <> ''{cond}
            GROUP BY key, attribute, value),
        ranked AS (
            SELECT key, attribute, value,
                   row_number() OVER (PARTITION BY key, attribute
                                      ORDER BY n DESC, last_seen DESC, value) AS rank
            FROM counted)
        SELECT key, attribute, value FROM ranked WHERE rank = 1"""


def record_columns_from(attributes: Iterable[str]) -> list[str]:
    """The record's columns: the built-in attributes (NULL where never observed: the model then
    leaves them out and says so), then every other observed attribute that can be a column
    (an identifier that is not a Splink reserved name or column prefix), sorted."""
    from identity_graph.matching.builder import RESERVED

    ok = sorted({a for a in attributes if a.isidentifier() and a not in RESERVED
                 and not a.startswith(("tf_", "gamma_", "bf_"))})
    return [*RECORD_COLUMNS, *(a for a in ok if a not in RECORD_COLUMNS)]


def records_sql(columns: Sequence[str], dialect: str, observations: str = "observations") -> str:
    """SELECT unique_id and `columns`: one Splink record per identifier that carries attributes
    (`best_values_sql` pivoted), in `dialect` (`duckdb`, `spark` or `sqlite`)."""
    q = _QUOTE[dialect]
    for c in columns:
        if not c.isidentifier():
            raise ValueError(f"not a record column name: {c!r}")
    cols = ", ".join(f"max(CASE WHEN attribute = '{c}' THEN value END) AS {q}{c}{q}" for c in columns)
    attrs = ", ".join(f"'{c}'" for c in columns)
    best = best_values_sql(observations, f"attribute IN ({attrs})")
    return f"SELECT key AS unique_id, {cols} FROM ({best}) best GROUP BY key ORDER BY key"


_local = threading.local()


def _sqlite() -> sqlite3.Connection:
    """This thread's in-memory SQLite database (opened once: a connection costs more than a
    record)."""
    con = getattr(_local, "con", None)
    if con is None:
        con = sqlite3.connect(":memory:")
        con.execute("CREATE TEMP TABLE obs (key TEXT, attribute TEXT, value TEXT, observed_at REAL)")
        _local.con = con
    return con


_BEST = best_values_sql("obs")


def records_of(observations: Iterable[Observation]) -> dict[str, dict[str, str]]:
    """key -> its record (attribute -> value), for every key with a non-empty observation:
    `best_values_sql` on SQLite over these observations."""
    rows = [(o.key, o.attribute, o.value, o.observed_at.timestamp()) for o in observations if o.value]
    if not rows:
        return {}
    con = _sqlite()
    try:
        con.executemany("INSERT INTO obs VALUES (?, ?, ?, ?)", rows)
        out: dict[str, dict[str, str]] = {}
        for key, attribute, value in con.execute(_BEST):
            out.setdefault(key, {})[attribute] = value
        return out
    finally:
        con.execute("DELETE FROM obs")


def record_of(observations: Iterable[Observation]) -> dict[str, str]:
    """One identifier's record from its observations (`records_of` for one key)."""
    recs = records_of(observations)
    return next(iter(recs.values())) if recs else {}
