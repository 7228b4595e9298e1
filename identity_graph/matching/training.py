"""Training the match model with Splink's Linker on DuckDB (the batch side; never per request)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import splink
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from splink.internals.constants import LEVEL_NOT_OBSERVED_TEXT

from identity_graph.matching.model import MatchModel
from identity_graph.matching.scorer import _exact_match_column
from identity_graph.matching.settings import ATTRIBUTE_COLUMNS, TF_COLUMNS, default_settings

__all__ = ["linker_for_model", "records_table", "train_model"]

logger = logging.getLogger(__name__)

#: Rules that admit almost no false positives, for estimating the prior.
_DETERMINISTIC_RULES = (
    block_on("first_name", "last_name", "date_of_birth"),
    block_on("first_name", "last_name", "street", "postcode"),
)
#: EM blocking rules: each leaves the other comparisons free to be estimated.
_EM_RULES = (
    block_on("postcode"),
    block_on("first_name", "date_of_birth"),
)


def records_table(records: Iterable[dict[str, Any]], columns: Sequence[str]) -> pa.Table:
    """`unique_id` plus `columns` as strings; other keys (e.g. truth labels) are dropped."""
    rows = list(records)
    data: dict[str, list[Any]] = {"unique_id": [str(r["unique_id"]) for r in rows]}
    for c in columns:
        data[c] = [None if r.get(c) is None else str(r.get(c)) for r in rows]
    return pa.table({k: pa.array(v, type=pa.string()) for k, v in data.items()})


def _trained_m_levels(linker: Linker) -> list[Any]:
    """Levels whose m-probability came from data (not 'level not observed')."""
    out = []
    for cc in linker._settings_obj.comparisons:
        for cl in cc._comparison_levels_excluding_null:
            if cl._m_probability is not None and cl._m_probability != LEVEL_NOT_OBSERVED_TEXT:
                out.append(cl)
    return out


def train_model(
    records: Sequence[dict[str, Any]],
    seed: int,
    labels: Sequence[tuple[str, str]] | None = None,
    *,
    version: str | None = None,
    metadata: dict[str, Any] | None = None,
    settings: SettingsCreator | None = None,
    prior: float | None = None,
    prior_recall: float = 0.5,
    max_pairs_u: float = 2e6,
    em_max_pairs: float | None = 2e6,
    tf_top_k: int = 1000,
    tf_boost_caps: dict[str, float] | None = None,
) -> MatchModel:
    """Trains the model as DESIGN.md says: u by random sampling, m from labels, EM for gaps.

    Args:
        records: one dict per identifier with `unique_id` and the attribute columns.
        seed: seeds u sampling, so a rerun on the same records gives the same model.
        labels: pairs of `unique_id`s known to be the same customer (the graph's `verified`
            and `equivalent` links). Their m-probabilities are kept; EM only fills levels
            the labels never reach. Without labels, EM estimates every m.
        version: the model's version string; a timestamped one when omitted.
        metadata: merged into the model's metadata.
        settings: Splink settings; `default_settings()` when omitted.
        prior: the probability that two random records match, when known; otherwise it is
            estimated from deterministic rules.
        prior_recall: assumed recall of the deterministic rules used for the prior.
        max_pairs_u: pairs sampled to estimate u.
        em_max_pairs: cap on pairs per EM session (None: all blocked pairs).
        tf_top_k: how many most frequent values each TF table keeps.
        tf_boost_caps: TF column → the most bits a rare value may ADD to its level
            (default: 0 for `last_name` and `street`). Family members share a rare surname
            and street, so rarity there is household evidence, not identity evidence; common
            values are still weighted down. Stored as Splink's `tf_minimum_u_value`.

    Returns:
        The trained MatchModel, with TF tables of the training records.
    """
    settings = settings or default_settings()
    db_api = DuckDBAPI()
    sdf = db_api.register(records_table(records, ATTRIBUTE_COLUMNS), table_name="identifiers")
    linker = Linker(sdf, settings, log_level=None)
    training = linker.training

    if prior is None:
        training.estimate_probability_two_random_records_match(
            list(_DETERMINISTIC_RULES), recall=prior_recall
        )
    else:
        linker._settings_obj._probability_two_random_records_match = prior
    training.estimate_u_using_random_sampling(max_pairs=max_pairs_u, seed=seed)

    n_labels = 0
    if labels:
        n_labels = len(labels)
        lab = pa.table(
            {
                "source_dataset_l": ["identifiers"] * n_labels,
                "unique_id_l": [str(a) for a, _ in labels],
                "source_dataset_r": ["identifiers"] * n_labels,
                "unique_id_r": [str(b) for _, b in labels],
            }
        )
        labels_sdf = db_api.register(lab, table_name="labels")
        training.estimate_m_from_pairwise_labels(labels_sdf)

    fixed = _trained_m_levels(linker) if labels else []
    untrained = [
        cl
        for cc in linker._settings_obj.comparisons
        for cl in cc._comparison_levels_excluding_null
        if cl not in fixed
    ]
    if untrained:
        # Fix what the labels taught us so EM cannot relearn "same household" as a match.
        for cl in fixed:
            cl._fix_m_probability = True
        for rule in _EM_RULES:
            training.estimate_parameters_using_expectation_maximisation(rule, max_pairs=em_max_pairs)
        for cl in fixed:
            cl._fix_m_probability = False

    tf_tables = {}
    for col in TF_COLUMNS:
        rows = linker.table_management.compute_tf_table(col).as_record_list()
        rows.sort(key=lambda r: (-r[f"tf_{col}"], r[col]))
        tf_tables[col] = {r[col]: float(r[f"tf_{col}"]) for r in rows[:tf_top_k]}

    model_settings = linker.misc.save_model_to_json()
    model_settings["linker_uid"] = None
    caps = {"last_name": 0.0, "street": 0.0} if tf_boost_caps is None else tf_boost_caps
    _cap_tf_boosts(model_settings, caps)
    now = datetime.now(UTC).replace(microsecond=0)
    meta = {
        "trained_at": now.isoformat(),
        "splink_version": splink.__version__,
        "n_records": len(records),
        "n_label_pairs": n_labels,
        "seed": seed,
        "m_from_labels_levels": len(fixed),
        "m_from_em_levels": len(untrained),
        "tf_top_k": tf_top_k,
        "tf_absent_values": "no TF adjustment (Splink's behaviour for a missing lookup row)",
    }
    meta.update(metadata or {})
    return MatchModel(
        version=version or f"model-{now.strftime('%Y%m%dT%H%M%SZ')}",
        settings=model_settings,
        term_frequencies=tf_tables,
        metadata=meta,
    )


def _cap_tf_boosts(settings: dict[str, Any], caps: dict[str, float]) -> None:
    """Sets `tf_minimum_u_value` = u_base / 2**cap on every level adjusted by a capped column."""
    for cc in settings["comparisons"]:
        levels = cc["comparison_levels"]
        for lv in levels:
            col = lv.get("tf_adjustment_column")
            if col not in caps:
                continue
            if lv.get("disable_tf_exact_match_detection"):
                u_base = lv["u_probability"]
            else:
                u_base = next(
                    o["u_probability"]
                    for o in levels
                    if o["sql_condition"].strip().upper() != "ELSE"
                    and not o.get("is_null_level")
                    and _exact_match_column(o["sql_condition"]) == col.lower()
                )
            lv["tf_minimum_u_value"] = u_base / 2 ** caps[col]


def linker_for_model(
    model: MatchModel, records: Sequence[dict[str, Any]], db_api: DuckDBAPI | None = None
) -> Linker:
    """A Linker over `records` that scores with `model`'s parameters AND its TF tables.

    Registering the model's TF tables (rather than letting Splink compute them from
    `records`) is what makes batch predictions agree with the OnlineScorer.
    """
    db_api = db_api or DuckDBAPI()
    columns = sorted({c for c in ATTRIBUTE_COLUMNS} | set(model.term_frequencies))
    sdf = db_api.register(records_table(records, columns))
    linker = Linker(sdf, model.settings, log_level=None)
    for col, table in model.term_frequencies.items():
        tf = pa.table(
            {
                col: pa.array(list(table), type=pa.string()),
                f"tf_{col}": pa.array(list(table.values()), type=pa.float64()),
            }
        )
        linker.table_management.register_term_frequency_lookup(db_api.register(tf), col)
    return linker


def build_starter_model(
    n_customers: int = 20_000, seed: int = 20240601, n_label_pairs: int = 40_000
) -> MatchModel:
    """The packaged starter: trained on generated data only, never on real customers.

    The prior comes from the generator's ground truth; labels are sampled true pairs,
    standing in for the verified/equivalent links a live graph supplies.
    """
    from identity_graph.synthetic import generate, records_for_splink, true_pairs

    records = records_for_splink(generate(n_customers, seed))
    clusters: dict[str, int] = {}
    for r in records:
        if r["cluster"]:
            clusters[r["cluster"]] = clusters.get(r["cluster"], 0) + 1
    n = len(records)
    matching = sum(k * (k - 1) // 2 for k in clusters.values())
    prior = matching / (n * (n - 1) / 2)
    return train_model(
        records,
        seed,
        true_pairs(records, n_label_pairs, seed),
        version=f"starter-synthetic-{seed}",
        prior=prior,
        metadata={
            "trained_on": "synthetic starter",
            "warning": "trained on generated data only; retrain on the graph's own evidence",
            "generator": {"n_customers": n_customers, "seed": seed},
            "prior_from": "ground truth of the synthetic data",
        },
    )


if __name__ == "__main__":
    from identity_graph.matching.model import STARTER_MODEL_PATH, save_model

    save_model(build_starter_model(), STARTER_MODEL_PATH)
    print(f"wrote {STARTER_MODEL_PATH}")
