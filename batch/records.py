"""Record construction for Splink, as one SQL text that DuckDB and Spark SQL both run.

One Splink record per identifier that carries attributes, with a column per attribute: the
most often observed value (ties: the latest, then the smallest). Both relink engines build
records with `records_sql`, so the same snapshot gives the same records on either.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["RECORD_COLUMNS", "record_columns_from", "records_sql"]

RECORD_COLUMNS = ("first_name", "last_name", "date_of_birth", "street", "city", "postcode", "country")
"""The built-in attribute columns, in record order."""

_QUOTE = {"duckdb": '"', "spark": "`"}


def record_columns_from(attributes: Iterable[str]) -> list[str]:
    """The attribute names that can be record columns (built-in ones first, then the rest
    sorted): identifiers that are not Splink's reserved names or column prefixes."""
    from identity_graph.matching.builder import RESERVED

    ok = sorted({a for a in attributes if a.isidentifier() and a not in RESERVED
                 and not a.startswith(("tf_", "gamma_", "bf_"))})
    return [c for c in RECORD_COLUMNS if c in ok] + [a for a in ok if a not in RECORD_COLUMNS]


def records_sql(columns: Sequence[str], dialect: str, observations: str = "observations") -> str:
    """A SELECT of `unique_id` and `columns` from the `observations` table, in `dialect`
    (`duckdb` or `spark`); only standard SQL, so both engines give the same rows."""
    q = _QUOTE[dialect]
    for c in columns:
        if not c.isidentifier():
            raise ValueError(f"not a record column name: {c!r}")
    cols = ", ".join(f"max(CASE WHEN attribute = '{c}' THEN value END) AS {q}{c}{q}" for c in columns)
    attrs = ", ".join(f"'{c}'" for c in columns)
    return f"""
        WITH counted AS (
            SELECT key, attribute, value, count(*) AS n, max(observed_at) AS last_seen
            FROM {observations} WHERE attribute IN ({attrs}) AND value <> ''
            GROUP BY key, attribute, value),
        ranked AS (
            SELECT key, attribute, value,
                   row_number() OVER (PARTITION BY key, attribute
                                      ORDER BY n DESC, last_seen DESC, value) AS rank
            FROM counted)
        SELECT key AS unique_id, {cols} FROM ranked WHERE rank = 1 GROUP BY key ORDER BY key"""
