"""Step 3, predict: Splink scores the blocked pairs into table `pairs` (those at or above review).

The blocking rules are chosen within the comparison budget (`batch.steps.blocking`); the
scoring runs on the snapshot's DuckDB (`score_on_duckdb`) or on Spark (its engine passes its own).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import duckdb
import pyarrow as pa

from batch.evidence import RETAIN, waterfall_sql
from batch.steps.blocking import candidate_rules, count_pairs, null_junk, rule_sql, select_rules
from batch.steps.progress import progress_bar
from batch.steps.types import RelinkOptions, Snapshot
from identity_graph.config import GraphConfig
from identity_graph.matching.model import MatchModel

__all__ = ["PairScorer", "linker_on", "predict", "score_on_duckdb"]

log = logging.getLogger(__name__)


def linker_on(con: duckdb.DuckDBPyConnection, model: MatchModel, table: str = "records",
              settings: dict[str, Any] | None = None) -> Any:
    """A Splink Linker over `table` in `con` with `model`'s parameters and TF tables.

    Same as `identity_graph.matching.training.linker_for_model`, but reads a DuckDB table in
    place instead of a list of dicts (no per-row Python at a million records).
    """
    from splink import DuckDBAPI, Linker

    db_api = DuckDBAPI(connection=con)
    linker = Linker(db_api.register(table), settings or model.settings, log_level=None)
    for col, tf_table in model.term_frequencies.items():
        tf = pa.table({
            col: pa.array(list(tf_table), type=pa.string()),
            f"tf_{col}": pa.array(list(tf_table.values()), type=pa.float64()),
        })
        linker.table_management.register_term_frequency_lookup(db_api.register(tf), col)
    return linker


PairScorer = Callable[[Snapshot, MatchModel, dict[str, Any], float, int], tuple[int, bool]]
"""Scores the blocked pairs of `records` with (snapshot, model, settings, threshold, n records)
into table `pairs` (a, b, probability, match_weight, comparisons) and returns (pairs scored,
exact count)."""


def predict(snap: Snapshot, model: MatchModel, config: GraphConfig,
            options: RelinkOptions, scorer: PairScorer | None = None) -> dict[str, Any]:
    """Step 3: scored pairs at or above the review threshold, in table `pairs`.

    The blocking rules are chosen here, within the comparison budget; `scorer` runs Splink
    (default `score_on_duckdb`; the Spark engine passes its own)."""
    bar = progress_bar("predict", 2, options.progress)
    n_records = int(snap.scalar("SELECT count(*) FROM records"))
    info: dict[str, Any] = {"records": n_records}
    if n_records < 2:
        snap.run("CREATE OR REPLACE TABLE pairs (a VARCHAR, b VARCHAR, probability DOUBLE, "
                         "match_weight DOUBLE, comparisons VARCHAR)")
        info.update(pairs_scored=0, pairs_kept=0)
        bar.close()
        return info
    info["junk_values_nulled"] = null_junk(snap, model.metadata.get("junk_values") or {})
    settings = dict(model.settings)
    candidates = candidate_rules(model)
    if candidates is None:
        info["blocking"] = {"note": "the model's blocking rules are not equalities; used as given"}
    else:
        kept, counts, budget = select_rules(snap, candidates, options,
                                            model.metadata.get("tighten_blocking_with") or ())
        settings["blocking_rules_to_generate_predictions"] = [rule_sql(r) for r in kept]
        info["blocking"] = {
            "budget": budget, "comparisons_per_record": options.comparisons_per_record,
            "rules": counts,
            "comparisons_before": sum(c["comparisons"] for c in counts
                                      if not c["reason"].startswith("tightened")),
            "comparisons_after": sum(c["comparisons"] for c in counts if c["kept"]),
        }
        dropped = [c["rule"] for c in counts if not c["kept"]]
        if dropped:
            log.info("relink: blocking rules over the comparison budget left out: %s", dropped)
    if not settings.get("blocking_rules_to_generate_predictions"):
        # no rule fits the budget: compare nothing rather than everything
        snap.run("CREATE OR REPLACE TABLE pairs (a VARCHAR, b VARCHAR, probability DOUBLE, "
                 "match_weight DOUBLE, comparisons VARCHAR)")
        info.update(pairs_scored=0, pairs_scored_exact=True, pairs_kept=0)
        bar.close()
        return info
    info["pairs_scored"], info["pairs_scored_exact"] = (scorer or score_on_duckdb)(
        snap, model, settings, config.review_threshold, n_records)
    bar.update(1)
    info["pairs_kept"] = int(snap.scalar("SELECT count(*) FROM pairs"))
    bar.update(1)
    bar.close()
    return info


def score_on_duckdb(snap: Snapshot, model: MatchModel, settings: dict[str, Any], threshold: float,
                    n_records: int) -> tuple[int, bool]:
    """Splink on the snapshot's DuckDB: the pairs at or above `threshold` into table `pairs`."""
    linker = linker_on(snap.con, model, settings=settings | RETAIN)
    counted = count_pairs(linker, settings, n_records)
    df = linker.inference.predict(threshold_match_probability=threshold)
    comparisons = waterfall_sql(model, (c.name for c in df.columns))
    snap.run(f"""
        CREATE OR REPLACE TABLE pairs AS
        SELECT least(unique_id_l, unique_id_r) AS a, greatest(unique_id_l, unique_id_r) AS b,
               match_probability AS probability, match_weight,
               {comparisons}::VARCHAR AS comparisons
        FROM {df.physical_name} ORDER BY a, b""")
    df.drop_table_from_database_and_remove_from_cache()
    return counted
