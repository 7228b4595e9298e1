"""Training the match model with Splink's Linker on DuckDB (the batch side; never per request)."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
import splink
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from splink.internals.constants import LEVEL_NOT_OBSERVED_TEXT

from identity_graph.attributes import BUILTIN_KINDS, Kind
from identity_graph.matching.builder import ModelPlan, em_sessions, plan_model, profile_columns
from identity_graph.matching.dialect import settings_for
from identity_graph.matching.model import MatchModel
from identity_graph.matching.scorer import OnlineScorer, UnsupportedModel, _exact_match_column
from identity_graph.matching.settings import ATTRIBUTE_COLUMNS

__all__ = [
    "MAX_LEVEL_BITS",
    "ModelCheckError",
    "check_model",
    "linker_for_model",
    "plan_for_records",
    "records_table",
    "train_model",
]

logger = logging.getLogger(__name__)

MAX_LEVEL_BITS = 20.0
"""No level may weigh more than this many bits either way unless configured (DESIGN)."""
M_FLOOR = 1e-3
"""The least m of any level: one matching pair in a thousand disagrees in any way a level can
describe (a typo, a move, a wrong country chosen from a list). EM on a field that never
disagrees within its blocked pairs drives m toward 0 and the disagreement weight toward −∞."""
#: EM blocking rules for a caller's own settings (the default model derives its own).
_EM_RULES = (
    block_on("postcode"),
    block_on("first_name", "date_of_birth"),
)


class ModelCheckError(ValueError):
    """A trained model failed its checks and must not be used; the message says why in one line."""


def untrainable(records: int, error: BaseException) -> ModelCheckError:
    """Why training on `records` failed, and what to do instead: a few records (a trial file)
    cannot weigh every comparison level, and Splink's arithmetic then fails (`math domain
    error`) or the checks reject the model; the starter model needs no training."""
    reason = str(error) or type(error).__name__
    why = ("too few records to weigh each comparison level" if records < 10_000
           else "the data did not give every comparison level a usable weight")
    return ModelCheckError(
        f"cannot train a model on {records:,} record(s) ({reason}): {why}. Use the starter "
        f"model instead: --model starter (or a model trained elsewhere: --model models/<version>.json)")


def records_table(records: Iterable[dict[str, Any]], columns: Sequence[str]) -> pa.Table:
    """`unique_id` plus `columns` as strings; other keys (e.g. truth labels) are dropped."""
    rows = list(records)
    data: dict[str, list[Any]] = {"unique_id": [str(r["unique_id"]) for r in rows]}
    for c in columns:
        data[c] = [None if r.get(c) is None else str(r.get(c)) for r in rows]
    return pa.table({k: pa.array(v, type=pa.string()) for k, v in data.items()})


def plan_for_records(table: pa.Table, kinds: Mapping[str, Kind] | None = None) -> ModelPlan:
    """The default model's plan for the columns of `table` (kinds: built-in, else text)."""
    kinds = dict(kinds or {})
    cols = {c: kinds.get(c) or BUILTIN_KINDS.get(c, Kind.TEXT)
            for c in table.column_names if c != "unique_id"}
    con = duckdb.connect()
    try:
        con.register("records_in", table)
        return plan_model(profile_columns(con, "records_in", cols), table.num_rows)
    finally:
        con.close()


def _null_junk(table: pa.Table, junk: Mapping[str, Sequence[str]]) -> pa.Table:
    """Junk values (`00000`) as NULL: they say nothing about who a record is."""
    import pyarrow.compute as pc

    for col, values in junk.items():
        if col in table.column_names and values:
            column = table[col]
            mask = pc.is_in(column, value_set=pa.array(list(values), pa.string()))
            table = table.set_column(table.column_names.index(col), col,
                                     pc.if_else(mask, pa.scalar(None, pa.string()), column))
    return table


def _trained_m_levels(linker: Linker) -> list[Any]:
    """Levels whose m-probability came from data (not 'level not observed')."""
    out = []
    for cc in linker._settings_obj.comparisons:
        for cl in cc._comparison_levels_excluding_null:
            if cl._m_probability is not None and cl._m_probability != LEVEL_NOT_OBSERVED_TEXT:
                out.append(cl)
    return out


class _Captured(logging.Handler):
    """Splink's warnings during training: kept for the report, not printed into progress bars."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = " ".join(record.getMessage().split())
        if text and text not in self.messages:
            self.messages.append(text[:300])


@contextmanager
def _capture_splink_warnings() -> Iterator[_Captured]:
    log = logging.getLogger("splink")
    handler = _Captured()
    propagate = log.propagate
    log.addHandler(handler)
    log.propagate = False
    try:
        yield handler
    finally:
        log.removeHandler(handler)
        log.propagate = propagate
        for m in handler.messages:
            logger.info("splink: %s", m)


def _rule_text(rule: Sequence[str]) -> str:
    return " AND ".join(rule)


def train_model(
    records: Sequence[dict[str, Any]] | pa.Table,
    seed: int,
    labels: Sequence[tuple[str, str]] | None = None,
    *,
    version: str | None = None,
    metadata: dict[str, Any] | None = None,
    settings: SettingsCreator | dict[str, Any] | None = None,
    plan: ModelPlan | None = None,
    kinds: Mapping[str, Kind] | None = None,
    prior: float | None = None,
    prior_recall: float = 0.5,
    max_pairs_u: float = 2e6,
    em_max_pairs: float | None = 2e6,
    tf_top_k: int = 1000,
    tf_boost_caps: dict[str, float] | None = None,
    max_level_bits: float = MAX_LEVEL_BITS,
    db_api: Any = None,
) -> MatchModel:
    """Trains the model as DESIGN.md says: u by random sampling, m from labels, EM for gaps.

    Args:
        records: one dict per identifier with `unique_id` and the attribute columns (the
            built-in ones), or an Arrow table of `unique_id` and every attribute column.
        seed: seeds u sampling, so a rerun on the same records gives the same model.
        labels: pairs of `unique_id`s known to be the same customer (the graph's `verified`
            and `equivalent` links). Their m-probabilities are kept; EM only fills levels
            the labels never reach. Without labels, EM estimates every m.
        version: the model's version string; a timestamped one when omitted.
        metadata: merged into the model's metadata.
        settings: a caller's Splink settings (used as given); default: the model the columns
            present call for (`plan`, else `plan_for_records(records, kinds)`).
        plan: the default model's plan (comparisons, rules, junk values).
        kinds: attribute kinds for custom columns (built-in ones have their own).
        prior: the probability that two random records match, when known; otherwise it is
            estimated from deterministic rules.
        prior_recall: assumed recall of the deterministic rules used for the prior.
        max_pairs_u: pairs sampled to estimate u.
        em_max_pairs: cap on pairs per EM session (None: all blocked pairs).
        tf_top_k: how many most frequent values each TF table keeps.
        tf_boost_caps: TF column → the most bits a rare value may ADD to its level
            (default: 0 for surnames and streets). Family members share a rare surname
            and street, so rarity there is household evidence, not identity evidence; common
            values are still weighted down. Stored as Splink's `tf_minimum_u_value`.
        max_level_bits: the most bits any level may weigh either way (`check_model`).
        db_api: the Splink engine that trains (default: a private DuckDB). The model comes
            back in DuckDB's SQL dialect whichever engine trained it (`matching.dialect`).

    Returns:
        The trained MatchModel, with TF tables of the training records.

    Raises:
        ModelCheckError: the trained model fails `check_model` or the OnlineScorer cannot
            score it; nothing should be saved.
    """
    table = records if isinstance(records, pa.Table) else records_table(records, ATTRIBUTE_COLUMNS)
    n_records = table.num_rows
    if settings is None and plan is None:
        plan = plan_for_records(table, kinds)
    notes: list[str] = []
    if plan is not None:
        table = _null_junk(table, plan.junk)
        notes += [f"{c}: left out ({why})" for c, why in plan.left_out.items()]
        notes += [f"{c}: {len(v)} junk value(s) treated as missing ({', '.join(v[:3])})"
                  for c, v in plan.junk.items()]
    if settings is None:
        assert plan is not None
        if not plan.comparisons:
            raise ModelCheckError("no attribute column is usable for matching: "
                                  + "; ".join(notes or ["no attributes"]))
        settings = plan.settings()
    db_api = db_api or DuckDBAPI()
    dialect = db_api.sql_dialect.sql_dialect_str
    if dialect != "duckdb" and not isinstance(settings, dict):
        # the model's SQL as DuckDB writes it, then translated: the same similarity functions
        settings = settings.get_settings("duckdb").as_dict()
    if isinstance(settings, dict):
        settings = settings_for(settings, dialect)
    sdf = db_api.register(table, table_name="identifiers")
    with _capture_splink_warnings() as captured:
        linker = Linker(sdf, settings, log_level=None)
        training = linker.training
        if prior is None:
            rules = ([block_on(*r) for r in plan.deterministic_rules] if plan is not None
                     else [block_on("first_name", "last_name", "date_of_birth")])
            try:
                training.estimate_probability_two_random_records_match(rules, recall=prior_recall)
            except Exception as e:  # Splink raises plain exceptions here
                notes.append(f"prior not estimated ({' '.join(str(e).split())[:120]}); default kept")
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
        em_rules: list[Any] = []
        if untrained:
            em_rules = ([block_on(*r) for r in em_sessions(plan)] if plan is not None
                        else list(_EM_RULES))
            # Fix what the labels taught us so EM cannot relearn "same household" as a match.
            for cl in fixed:
                cl._fix_m_probability = True
            for rule, text in zip(em_rules, [_rule_text(r) for r in em_sessions(plan)]
                                  if plan is not None else ["postcode", "first_name, date_of_birth"],
                                  strict=True):
                try:
                    training.estimate_parameters_using_expectation_maximisation(
                        rule, max_pairs=em_max_pairs)
                except Exception as e:  # e.g. EMTrainingException: no pairs
                    notes.append(f"EM blocked on {text} failed: {' '.join(str(e).split())[:160]}")
            for cl in fixed:
                cl._fix_m_probability = False

        tf_columns = plan.tf_columns if plan is not None else sorted({
            lv["tf_adjustment_column"]
            for cc in linker._settings_obj.as_dict()["comparisons"]
            for lv in cc["comparison_levels"] if lv.get("tf_adjustment_column")})
        tf_tables = {}
        for col in tf_columns:
            rows = linker.table_management.compute_tf_table(col).as_record_list()
            rows = [r for r in rows if r[col] is not None]
            rows.sort(key=lambda r: (-r[f"tf_{col}"], r[col]))
            tf_tables[col] = {r[col]: float(r[f"tf_{col}"]) for r in rows[:tf_top_k]}
        model_settings = linker.misc.save_model_to_json()
    model_settings = settings_for(model_settings, "duckdb")
    model_settings["linker_uid"] = None
    notes += _drop_unobserved_levels(model_settings)
    _regularise(model_settings, max_level_bits)
    notes += pool_weak_levels(model_settings)
    caps = tf_boost_caps
    if caps is None:
        caps = {"last_name": 0.0, "street": 0.0}
        if plan is not None:
            caps = {c: 0.0 for c in plan.tf_columns if c != "first_name"}
    _cap_tf_boosts(model_settings, caps)
    now = datetime.now(UTC).replace(microsecond=0)
    meta = {
        "trained_at": now.isoformat(),
        "splink_version": splink.__version__,
        "n_records": n_records,
        "n_label_pairs": n_labels,
        "seed": seed,
        "m_from_labels_levels": len(fixed),
        "m_from_em_levels": len(untrained),
        "tf_top_k": tf_top_k,
        "tf_absent_values": "no TF adjustment (Splink's behaviour for a missing lookup row)",
        "training_notes": notes,
        "splink_warnings": captured.messages,
    }
    if plan is not None:
        meta.update(compared=plan.explain, left_out=plan.left_out,
                    em_rules=[_rule_text(r) for r in em_sessions(plan)],
                    candidate_blocking_rules=[list(r) for r in plan.blocking_rules],
                    tighten_blocking_with=plan.tighten,
                    junk_values=plan.junk)
    meta.update(metadata or {})
    model = MatchModel(
        version=version or f"model-{now.strftime('%Y%m%dT%H%M%SZ')}",
        settings=model_settings,
        term_frequencies=tf_tables,
        metadata=meta,
    )
    problems = check_model(model, max_level_bits)
    if problems:
        raise ModelCheckError(f"trained model rejected: {problems[0]}"
                              + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    return model


def _drop_unobserved_levels(settings: dict[str, Any]) -> list[str]:
    """Levels the training never saw among matches cannot be weighed: they are removed (their
    pairs fall to the next level down), and an unobserved ELSE level gets the floor m. Returns
    a note per change."""
    notes = []
    for cc in settings["comparisons"]:
        kept = []
        for lv in cc["comparison_levels"]:
            m = lv.get("m_probability")
            trained = isinstance(m, int | float) and isinstance(lv.get("u_probability"), int | float)
            label = lv.get("label_for_charts") or lv["sql_condition"]
            if lv.get("is_null_level") or trained:
                kept.append(lv)
            elif lv["sql_condition"].strip().upper() == "ELSE":
                if isinstance(lv.get("u_probability"), int | float):
                    lv["m_probability"] = M_FLOOR
                    notes.append(f"{cc['output_column_name']}: {label!r} never seen among "
                                 f"matches; m set to {M_FLOOR:g}")
                kept.append(lv)
            else:
                notes.append(f"{cc['output_column_name']}: level {label!r} dropped (not observed "
                             "in training)")
        cc["comparison_levels"] = kept
    return notes


def _regularise(settings: dict[str, Any], max_bits: float) -> None:
    """Floors every trained m at `M_FLOOR` (then renormalises) and keeps |log2 m/u| within
    `max_bits`: no single field is ever conclusive evidence on its own."""
    for cc in settings["comparisons"]:
        levels = [lv for lv in cc["comparison_levels"] if not lv.get("is_null_level")]
        ms = [lv.get("m_probability") for lv in levels]
        if not all(isinstance(m, int | float) for m in ms):
            continue
        floored = [max(float(m), M_FLOOR) for m in ms]  # type: ignore[arg-type]
        total = sum(floored)
        for lv, m in zip(levels, floored, strict=True):
            lv["m_probability"] = m / total
            u = lv.get("u_probability")
            if isinstance(u, int | float) and u > 0:
                m = lv["m_probability"]
                lv["u_probability"] = min(max(float(u), m / 2**max_bits), m * 2**max_bits)


def pool_weak_levels(settings: dict[str, Any]) -> list[str]:
    """A partial-agreement level (not the comparison's first, strongest one) that the data weighs
    below disagreement is no evidence of a match here (e.g. "same birth year" where birth dates
    are mostly exact or missing): it is pooled with ELSE, both getting the pooled weight
    (m_pooled / u_pooled, m redistributed in proportion to u, so m still sums to 1), as isotonic
    regression pools adjacent violators. The strongest level below ELSE is left for
    `check_model` to reject: that is a degenerate model, not a weak level. Returns a note each."""
    notes = []
    for cc in settings["comparisons"]:
        levels = [lv for lv in cc["comparison_levels"] if not lv.get("is_null_level")]
        if len(levels) < 3 or levels[-1]["sql_condition"].strip().upper() != "ELSE":
            continue
        if not all(isinstance(lv.get(k), int | float) and lv[k] > 0
                   for lv in levels for k in ("m_probability", "u_probability")):
            continue
        pool = [levels[-1]]
        while True:
            bf = sum(lv["m_probability"] for lv in pool) / sum(lv["u_probability"] for lv in pool)
            below = [lv for lv in levels[1:-1] if lv not in pool
                     and lv["m_probability"] / lv["u_probability"] < bf]
            if not below:
                break
            pool += below
        for lv in pool[1:]:
            label = lv.get("label_for_charts") or lv["sql_condition"]
            notes.append(f"{cc['output_column_name']}: level {label!r} weighed "
                         f"{math.log2(lv['m_probability'] / lv['u_probability']):+.1f} bits, below "
                         f"disagreement; pooled with it at {math.log2(bf):+.1f} bits")
        if len(pool) > 1:
            for lv in pool:
                lv["m_probability"] = lv["u_probability"] * bf
    return notes


def check_model(model: MatchModel, max_level_bits: float = MAX_LEVEL_BITS) -> list[str]:
    """Why `model` must not be used (empty when it may): every non-null level has trained m and
    u; no agreement level weighs less than its comparison's disagreement (ELSE) level; no level
    beyond ±`max_level_bits`; and the OnlineScorer can score it exactly."""
    problems = []
    if not model.settings.get("comparisons"):
        problems.append("the model compares nothing")
    for cc in model.settings.get("comparisons", []):
        name = cc.get("output_column_name", "?")
        if sum(1 for lv in cc["comparison_levels"] if not lv.get("is_null_level")) < 2:
            problems.append(f"{name}: no level but ELSE was trained")
        weights = {}
        for lv in cc["comparison_levels"]:
            if lv.get("is_null_level"):
                continue
            label = lv.get("label_for_charts") or lv["sql_condition"]
            m, u = lv.get("m_probability"), lv.get("u_probability")
            if not isinstance(m, int | float) or not isinstance(u, int | float) or m <= 0 or u <= 0:
                problems.append(f"{name}: level {label!r} has no trained m and u (m={m}, u={u})")
                continue
            w = math.log2(m / u)
            weights[label] = (w, lv["sql_condition"].strip().upper() == "ELSE")
            if abs(w) > max_level_bits:
                problems.append(f"{name}: level {label!r} weighs {w:+.1f} bits, beyond ±{max_level_bits:g}")
        else_w = [w for w, is_else in weights.values() if is_else]
        if else_w:
            for label, (w, is_else) in weights.items():
                if not is_else and w < else_w[0] - 1e-9:  # pooled levels weigh the same
                    problems.append(f"{name}: agreement level {label!r} ({w:+.1f} bits) weighs less "
                                    f"than disagreement ({else_w[0]:+.1f} bits)")
    try:
        OnlineScorer(model)
    except UnsupportedModel as e:
        problems.append(f"the online scorer cannot score it: {e}")
    return problems


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
    columns = sorted(set(ATTRIBUTE_COLUMNS) | set(OnlineScorer(model).columns)
                     | set(model.term_frequencies))
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
