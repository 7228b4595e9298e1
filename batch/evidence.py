"""A batch link's evidence in the same form as an online one: the prior and each comparison's bits.

The online engine stores `identity_graph.engine.waterfall(score)` on every probable or possible
link: `{"prior_match_weight": w, "comparisons": [{"name", "level", "bits"}, …]}`, which Explain
turns into its waterfall and `links.comparisons` exports. Splink's `predict()` drops the per-
comparison columns unless asked (`retain_matching_columns` for `gamma_<name>`,
`retain_intermediate_calculation_columns` for `mw_<name>` and `mw_tf_adj_<name>`); with both on,
`waterfall_sql` builds the same JSON in DuckDB or in Spark SQL (the Spark relink engine), one
expression over the prediction table, so a million pairs never pass through Python row by row.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from identity_graph.matching.model import MatchModel

__all__ = ["RETAIN", "level_labels", "prior_match_weight", "waterfall_sql"]

RETAIN = {"retain_matching_columns": True, "retain_intermediate_calculation_columns": True}
"""Settings that make Splink's `predict()` keep what `waterfall_sql` reads."""


def _quote(text: str, dialect: str = "duckdb") -> str:
    if dialect == "spark":  # Spark SQL reads backslash escapes in string literals
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return "'" + text.replace("'", "''") + "'"


def prior_match_weight(settings: Mapping[str, Any]) -> float:
    """The model's prior in bits, as `OnlineScorer` and Splink's `prob_to_match_weight` compute it."""
    p = float(settings["probability_two_random_records_match"])
    return math.log2(p / (1 - p)) if p < 1 else math.inf


def level_labels(comparison: Mapping[str, Any]) -> dict[int, str]:
    """Splink's comparison vector value of each level → its label (`label_for_charts`).

    Splink numbers the null level -1 and the others from n-1 down to 0 in settings order, the
    numbering `OnlineScorer` uses too, so both sides of a link name a level alike.
    """
    levels = comparison["comparison_levels"]
    gamma = sum(1 for lv in levels if not lv.get("is_null_level"))
    out: dict[int, str] = {}
    for lv in levels:
        if lv.get("is_null_level"):
            g = -1
        else:
            gamma -= 1
            g = gamma
        out[g] = str(lv.get("label_for_charts") or lv["sql_condition"])
    return out


def waterfall_sql(model: MatchModel, columns: Iterable[str], dialect: str = "duckdb") -> str:
    """An expression in `dialect` (`duckdb` or `spark`) over a Splink prediction table whose
    `columns` include the retained ones (`RETAIN`): each pair's waterfall as JSON text, or NULL
    when they were not retained."""
    have = {c.strip('"`') for c in columns}
    q = "`" if dialect == "spark" else '"'
    parts = []
    for cc in model.settings.get("comparisons", []):
        name = str(cc["output_column_name"]).replace(" ", "_")
        gamma, mw, tf = f"gamma_{name}", f"mw_{name}", f"mw_tf_adj_{name}"
        if gamma not in have or mw not in have:
            return "CAST(NULL AS STRING)" if dialect == "spark" else "NULL"
        cases = " ".join(f"WHEN {g} THEN {_quote(label, dialect)}"
                         for g, label in level_labels(cc).items())
        bits = f"{q}{mw}{q}" + (f" + coalesce({q}{tf}{q}, 0)" if tf in have else "")
        fields = (("name", _quote(str(cc["output_column_name"]), dialect)),
                  ("level", f"CASE {q}{gamma}{q} {cases} END"), ("bits", bits))
        parts.append(_object(fields, dialect))
    if not parts:
        return "CAST(NULL AS STRING)" if dialect == "spark" else "NULL"
    prior = f"CAST({prior_match_weight(model.settings)!r} AS DOUBLE)"
    listed = ", ".join(parts)
    array = f"array({listed})" if dialect == "spark" else f"json_array({listed})"
    whole = _object((("prior_match_weight", prior), ("comparisons", array)), dialect)
    return f"to_json({whole})" if dialect == "spark" else f"{whole}::VARCHAR"


def _object(fields: Iterable[tuple[str, str]], dialect: str) -> str:
    """A JSON object (DuckDB) or a struct that `to_json` writes as one (Spark), keys in order."""
    inner = ", ".join(f"'{k}', {v}" for k, v in fields)
    return f"named_struct({inner})" if dialect == "spark" else f"json_object({inner})"
