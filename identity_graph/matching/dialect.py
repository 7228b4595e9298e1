"""One model, two SQL engines: a model's Splink settings rewritten between DuckDB and Spark SQL.

A saved model is canonical in DuckDB's dialect (the online scorer parses it that way). Splink
checks that a model's `sql_dialect` matches its engine, and the two engines name the similarity
functions differently (DuckDB's built-ins against the Scala UDFs that Splink ships for Spark),
so a model moves between them by rewriting each SQL condition and blocking rule: the
parameters (m, u, prior, TF tables) are untouched, which is why both engines score a pair the
same.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import sqlglot
from sqlglot import exp

from identity_graph.matching.model import MatchModel

__all__ = ["DIALECTS", "model_for", "settings_for", "translate_sql"]

DIALECTS = ("duckdb", "spark")

# function name per dialect. On Spark: DuckDB's own algorithms as Java UDFs
# (`batch.engines.udfs`), not Splink's Scala ones, whose Jaro differs from DuckDB's on some
# strings; Splink's names are read as aliases.
_NAMES = {
    "jaro_winkler": {"duckdb": "jaro_winkler_similarity", "spark": "ig_jaro_winkler"},
    "jaro": {"duckdb": "jaro_similarity", "spark": "ig_jaro"},
    "damerau_levenshtein": {"duckdb": "damerau_levenshtein", "spark": "ig_damerau_levenshtein"},
    "levenshtein": {"duckdb": "levenshtein", "spark": "ig_levenshtein"},
    "jaccard": {"duckdb": "jaccard", "spark": "jaccard"},
    "substr": {"duckdb": "substr", "spark": "substr"},
}
_ALIASES = {
    "jaro_winkler_similarity": "jaro_winkler", "jarowinkler_similarity": "jaro_winkler",
    "jaro_winkler": "jaro_winkler", "ig_jaro_winkler": "jaro_winkler",
    "jaro_similarity": "jaro", "jaro_sim": "jaro", "ig_jaro": "jaro",
    "damerau_levenshtein": "damerau_levenshtein", "ig_damerau_levenshtein": "damerau_levenshtein",
    "levenshtein": "levenshtein", "ig_levenshtein": "levenshtein",
    "jaccard": "jaccard", "substr": "substr", "substring": "substr",
}


def _function_name(node: exp.Expression) -> str | None:
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    if isinstance(node, exp.Func):
        return node.sql_name().lower()
    return None


def translate_sql(sql: str, source: str, target: str) -> str:
    """`sql` (a Splink condition or blocking rule) written in `source`'s dialect, in `target`'s.

    Raises:
        ValueError: a dialect is not one of `DIALECTS`, or the SQL does not parse.
    """
    for d in (source, target):
        if d not in DIALECTS:
            raise ValueError(f"unknown SQL dialect {d!r} (one of {', '.join(DIALECTS)})")
    if source == target or sql.strip().upper() == "ELSE":
        return sql
    try:
        tree = sqlglot.parse_one(sql, read=source)
    except sqlglot.errors.ParseError as e:
        raise ValueError(f"cannot parse model SQL {sql!r} as {source}") from e

    def rename(node: exp.Expression) -> exp.Expression:
        name = _function_name(node)
        canonical = _ALIASES.get(name or "")
        if canonical is None:
            return node
        # written as a plain call so neither dialect rewrites it (e.g. substr's edge cases)
        args = [a for a in node.args.values() if isinstance(a, exp.Expression)] \
            if not isinstance(node, exp.Anonymous) else list(node.expressions)
        return exp.Anonymous(this=_NAMES[canonical][target], expressions=args)

    return tree.transform(rename).sql(dialect=target)


def settings_for(settings: dict[str, Any], target: str) -> dict[str, Any]:
    """A copy of Splink `settings` whose SQL is in `target`'s dialect."""
    source = settings.get("sql_dialect") or "duckdb"
    out = copy.deepcopy(settings)
    if source == target:
        return out
    for cc in out.get("comparisons", []):
        for lv in cc["comparison_levels"]:
            lv["sql_condition"] = translate_sql(lv["sql_condition"], source, target)
    rules = []
    for br in out.get("blocking_rules_to_generate_predictions", []):
        if isinstance(br, dict):
            rules.append({**br, "blocking_rule": translate_sql(br["blocking_rule"], source, target),
                          "sql_dialect": target})
        else:
            rules.append(translate_sql(br, source, target))
    out["blocking_rules_to_generate_predictions"] = rules
    out["sql_dialect"] = target
    return out


def model_for(model: MatchModel, target: str) -> MatchModel:
    """`model` with its settings in `target`'s dialect (the same model otherwise)."""
    if (model.settings.get("sql_dialect") or "duckdb") == target:
        return model
    return replace(model, settings=settings_for(model.settings, target))
