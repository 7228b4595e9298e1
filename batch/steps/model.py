"""Step 2, model: load the given model, or train one on the snapshot and save it as versioned JSON.

u comes from random sampling, m from the graph's verified/equivalent pairs and people's
decisions, EM fills the rest (`identity_graph.matching.training`); the saved file
(`models/<version>.json`) is the one the online scorer loads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from batch.people import label_pairs as people_labels
from batch.steps.blocking import null_junk, select_rules
from batch.steps.labels import label_pairs
from batch.steps.progress import progress_bar
from batch.steps.records import attribute_kinds
from batch.steps.types import RelinkOptions, Snapshot
from identity_graph.matching.model import MatchModel, load_model, save_model

__all__ = ["explain_model", "explain_text", "get_model", "load_settings_override"]


def load_settings_override(path: str | None, base: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """`base` (default: the default model's settings) with a deployment's Splink settings JSON
    merged over it (top-level keys): its comparisons may use any record column."""
    if not path:
        return None
    override = json.loads(Path(path).read_text())
    if not isinstance(override, dict):
        raise ValueError(f"{path}: Splink settings must be a JSON object")
    if base is None:
        from identity_graph.matching.settings import default_settings_dict

        base = default_settings_dict()
    settings = dict(base)
    settings.update(override)
    return settings


def get_model(snap: Snapshot, options: RelinkOptions,
              db_api: Any = None) -> tuple[MatchModel, dict[str, Any]]:
    """Step 2: the given model, or one trained on this snapshot and saved as versioned JSON.

    The default model is built from the columns present (`identity_graph.matching.builder`);
    its prediction rules are those that fit the comparison budget on this snapshot. `db_api`:
    the Splink engine that trains (default DuckDB; the Spark engine passes its `SparkAPI`).
    """
    bar = progress_bar("model", 1, options.progress)
    info: dict[str, Any] = {}
    if options.model_path:
        model = load_model(options.model_path)
        info["source"] = str(options.model_path)
    else:
        from identity_graph.matching.training import plan_for_records, train_model, untrainable

        n = int(snap.scalar("SELECT count(*) FROM records"))
        limit = min(n, options.max_training_records)
        table = snap.con.sql(
            f"SELECT * FROM records ORDER BY hash(unique_id || '{int(options.seed)}'), unique_id "
            f"LIMIT {int(limit)}").to_arrow_table()
        kinds = attribute_kinds(snap, [c for c in table.column_names if c != "unique_id"])
        plan = plan_for_records(table, kinds)
        null_junk(snap, plan.junk)
        plan.blocking_rules, rule_counts, budget = select_rules(snap, plan.blocking_rules, options,
                                                                plan.tighten)
        sampled = set(table.column("unique_id").to_pylist())
        positive, negative = people_labels(snap)  # people's decisions: labels too
        labels = [p for p in [*positive, *label_pairs(snap, options.max_label_pairs * 4)]
                  if p[0] in sampled and p[1] in sampled][: options.max_label_pairs]
        info["people_labels"] = {"positive": len(positive), "negative": len(negative)}
        if len(labels) < options.min_label_pairs_for_m:
            info["labels_not_used"] = (f"{len(labels)} verified/equivalent pairs, fewer than "
                                       f"{options.min_label_pairs_for_m}: m from EM alone")
            labels = []
        base = None
        if options.settings_path:
            base = plan.settings().get_settings("duckdb").as_dict()
        settings = load_settings_override(options.settings_path, base)
        try:
            model = train_model(table, options.seed, labels or None, settings=settings, plan=plan,
                                db_api=db_api,
                                metadata={"trained_on": "identity graph snapshot",
                                          "settings_override": options.settings_path,
                                          "kinds": {c: k.value for c, k in kinds.items()}})
        except (ValueError, ArithmeticError) as e:
            raise untrainable(n, e) from e
        info.update(source="trained", training_records=table.num_rows, label_pairs=len(labels),
                    blocking_rule_counts_on_training=rule_counts, comparison_budget=budget)
        if options.models_dir and not options.dry_run:
            out = Path(options.models_dir)
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"{model.version}.json"
            save_model(model, path)
            info["saved_to"] = str(path)
    bar.update(1)
    bar.close()
    info["version"] = model.version
    info["explain"] = explain_model(model)
    return model, info


def explain_text(explain: dict[str, Any]) -> str:
    """`explain_model` for a terminal: what is compared and how, what was left out and why."""
    lines = ["compared:"]
    kinds = {c["comparison"]: c for c in explain.get("compared_columns", [])}
    for c in explain["comparisons"]:
        col = kinds.get(c["comparison"], {})
        what = ", ".join(col.get("columns", [])) or c["comparison"]
        tf = f"  (term frequencies: {', '.join(c['term_frequencies'])})" if c["term_frequencies"] else ""
        lines.append(f"  {c['comparison']:<16}{col.get('kind', ''):<13}{what}{tf}")
        lines.append(f"  {'':<16}levels: {' > '.join(c['levels'])}")
    if explain.get("left_out"):
        lines.append("left out:")
        lines += [f"  {c}: {why}" for c, why in explain["left_out"].items()]
    if explain.get("junk_values"):
        lines.append("junk values (treated as missing):")
        lines += [f"  {c}: {', '.join(v[:5])}" for c, v in explain["junk_values"].items()]
    lines.append("blocking rules (prediction):")
    lines += [f"  {r}" for r in explain["blocking_rules"]]
    if explain.get("em_rules"):
        lines.append("EM blocked on: " + "; ".join(explain["em_rules"]))
    for n in explain.get("training_notes", []):
        lines.append(f"note: {n}")
    return "\n".join(lines)


def explain_model(model: MatchModel) -> dict[str, Any]:
    """What the model compares and how, what it left out, and how it blocks (for people)."""
    meta = model.metadata
    comparisons = []
    for cc in model.settings.get("comparisons", []):
        levels = [lv.get("label_for_charts") or lv["sql_condition"]
                  for lv in cc["comparison_levels"] if not lv.get("is_null_level")]
        comparisons.append({"comparison": cc["output_column_name"],
                            "description": cc.get("comparison_description", ""),
                            "levels": levels,
                            "term_frequencies": sorted({lv["tf_adjustment_column"]
                                                        for lv in cc["comparison_levels"]
                                                        if lv.get("tf_adjustment_column")})})
    return {
        "comparisons": comparisons,
        "compared_columns": meta.get("compared", []),
        "left_out": meta.get("left_out", {}),
        "junk_values": meta.get("junk_values", {}),
        "blocking_rules": [br["blocking_rule"] if isinstance(br, dict) else br
                           for br in model.settings.get("blocking_rules_to_generate_predictions", [])],
        "em_rules": meta.get("em_rules", []),
        "training_notes": meta.get("training_notes", []),
        "splink_warnings": meta.get("splink_warnings", []),
    }
