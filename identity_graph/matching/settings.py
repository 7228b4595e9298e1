"""The starter model's Splink 5 settings (the seven built-in attributes, fixed rules).

The relink's default model is built from the columns a graph actually holds
(`identity_graph.matching.builder`); these fixed settings remain what the packaged starter
model was trained with, and the base a `--settings` file is merged over when no plan exists.
"""

from __future__ import annotations

from typing import Any

import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import SettingsCreator, block_on

__all__ = ["ATTRIBUTE_COLUMNS", "TF_COLUMNS", "default_settings", "default_settings_dict"]

#: Input columns the default model reads; records may carry more (they are ignored).
ATTRIBUTE_COLUMNS = (
    "first_name",
    "last_name",
    "date_of_birth",
    "street",
    "city",
    "postcode",
    "country",
)
#: Columns with term-frequency adjustments; their TF tables travel inside the model JSON.
TF_COLUMNS = ("first_name", "last_name", "street")


def _address() -> cl.CustomComparison:
    """Street, postcode and city as ONE comparison (DESIGN: they move together in a family).

    Summed separately, a shared address would be counted three times and outweigh a first-name
    and birth-date disagreement. The exact level carries the street's term frequency, using the
    level's own u as the base (there is no street-only exact level to borrow it from).
    """
    return cl.CustomComparison(
        output_column_name="address",
        comparison_description="street, postcode and city compared together",
        comparison_levels=[
            cll.And(
                cll.Or(cll.NullLevel("street"), cll.NullLevel("city")),
                cll.NullLevel("postcode"),
            ).configure(is_null_level=True, label_for_charts="address missing"),
            cll.And(cll.ExactMatchLevel("street"), cll.ExactMatchLevel("postcode")).configure(
                tf_adjustment_column="street",
                disable_tf_exact_match_detection=True,
                label_for_charts="same street and postcode",
            ),
            cll.And(cll.JaroWinklerLevel("street", 0.9), cll.ExactMatchLevel("postcode")).configure(
                label_for_charts="similar street, same postcode"
            ),
            cll.And(cll.ExactMatchLevel("street"), cll.ExactMatchLevel("city")).configure(
                label_for_charts="same street and city"
            ),
            cll.ExactMatchLevel("postcode").configure(label_for_charts="same postcode"),
            cll.ElseLevel().configure(label_for_charts="different address"),
        ],
    )


def _date_of_birth() -> cl.CustomComparison:
    """Exact / one typo in month or day (Damerau: a swapped pair counts once) / same year.

    A one-character difference in the YEAR is not a typo level: a parent and a child born on
    the same day 30 years apart ('1950-12-28' vs '1980-12-28') would otherwise score as a
    near-match. Dates are ISO strings; ingest normalises them, so nothing is parsed here.
    """
    return cl.CustomComparison(
        output_column_name="date_of_birth",
        comparison_description="date of birth as an ISO string",
        comparison_levels=[
            cll.NullLevel("date_of_birth"),
            cll.ExactMatchLevel("date_of_birth").configure(label_for_charts="same date of birth"),
            cll.And(
                cll.DamerauLevenshteinLevel("date_of_birth", 1),
                cll.CustomLevel("substr(date_of_birth_l, 1, 4) = substr(date_of_birth_r, 1, 4)"),
            ).configure(label_for_charts="one typo in month or day"),
            cll.CustomLevel(
                "substr(date_of_birth_l, 1, 4) = substr(date_of_birth_r, 1, 4)",
                label_for_charts="same birth year",
            ),
            cll.ElseLevel().configure(label_for_charts="different date of birth"),
        ],
    )


def default_settings(
    probability_two_random_records_match: float = 1e-5,
) -> SettingsCreator:
    """The model's comparisons and blocking rules, untrained.

    Every comparison uses only SQL the OnlineScorer reproduces exactly: `=`, `IS NULL`,
    `jaro_winkler_similarity`, `damerau_levenshtein`, `levenshtein`, `substr`, AND/OR/NOT.
    """
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        probability_two_random_records_match=probability_two_random_records_match,
        comparisons=[
            cl.NameComparison("first_name", jaro_winkler_thresholds=[0.92, 0.88, 0.7]),
            cl.NameComparison("last_name", jaro_winkler_thresholds=[0.92, 0.88]),
            _date_of_birth(),
            _address(),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("postcode"),
            block_on("last_name", "substr(date_of_birth, 1, 4)"),
            block_on("first_name", "date_of_birth"),
        ],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )


def default_settings_dict() -> dict[str, Any]:
    """`default_settings()` rendered for DuckDB as a plain dict (what the model JSON stores)."""
    return default_settings().get_settings("duckdb").as_dict()
