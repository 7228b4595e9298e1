"""Blocking within the comparison budget (DESIGN "cost is bounded"), for training and prediction.

Junk values are nulled first (they would make a rule a cross-product); then the candidate rules
are kept, most specific first, while the pairs they make stay within the budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from batch.steps.types import RelinkOptions, Snapshot
from identity_graph.matching.model import MatchModel

__all__ = ["candidate_rules", "count_pairs", "null_junk", "rule_sql", "select_rules"]


def rule_sql(rule: Sequence[str]) -> dict[str, Any]:
    from splink import block_on

    return {"blocking_rule": block_on(*rule).get_blocking_rule("duckdb").blocking_rule_sql,
            "sql_dialect": "duckdb"}


def null_junk(snap: Snapshot, junk: dict[str, list[str]]) -> int:
    """Junk values (`00000`, a shop's email) as NULL in `records`: they say nothing about who a
    record is, and would make a blocking rule a cross-product. Returns the cells changed."""
    cols = {d[0] for d in snap.con.execute("SELECT * FROM records LIMIT 0").description}
    changed = 0
    for col, values in junk.items():
        if col in cols and values:
            n = snap.con.execute(f'SELECT count(*) FROM records WHERE "{col}" IN '
                                 f'(SELECT unnest(?::VARCHAR[]))', [list(values)]).fetchall()[0][0]
            snap.run(f'UPDATE records SET "{col}" = NULL WHERE "{col}" IN '
                     f'(SELECT unnest(?::VARCHAR[]))', [list(values)])
            changed += int(n)
    return changed


def select_rules(snap: Snapshot, candidates: Sequence[Sequence[str]], options: RelinkOptions,
                 tighten: Sequence[str] = ()) -> tuple[list[tuple[str, ...]], list[dict[str, Any]], int]:
    """The candidate blocking rules that fit the comparison budget on `records` (tightened
    with `tighten` where that makes them fit), with each rule's count and the budget."""
    from identity_graph.matching.builder import select_blocking_rules

    n = int(snap.scalar("SELECT count(*) FROM records"))
    budget = max(int(options.comparisons_per_record * n), 1)
    counts = select_blocking_rules(snap.con, "records", candidates, budget, tighten)
    return [c.rule for c in counts if c.kept], [c.as_dict() for c in counts], budget


def candidate_rules(model: MatchModel) -> list[tuple[str, ...]] | None:
    """The model's prediction rules, then the builder's other candidates, as column expressions;
    None when a rule of the model is not a conjunction of equalities."""
    from identity_graph.matching.scorer import UnsupportedModel, blocking_rule_parts

    out: list[tuple[str, ...]] = []
    try:
        for br in model.settings.get("blocking_rules_to_generate_predictions", []):
            out.append(tuple(blocking_rule_parts(br["blocking_rule"] if isinstance(br, dict) else br)))
    except UnsupportedModel:
        return None
    for r in model.metadata.get("candidate_blocking_rules", []):
        if tuple(r) not in out:
            out.append(tuple(r))
    return out


def count_pairs(linker: Any, settings: dict[str, Any], n_records: int) -> tuple[int, bool]:
    """Pairs the blocking rules generate (exact up to 200k records, else from a 10% sample)."""
    try:
        from splink.blocking_analysis import count_comparisons_from_blocking_rules
    except ImportError:  # pragma: no cover
        return -1, False
    rules = [br["blocking_rule"] if isinstance(br, dict) else br
             for br in settings.get("blocking_rules_to_generate_predictions", [])]
    if not rules:
        return 0, True
    exact = n_records <= 200_000
    sdf = linker._input_tables_dict[next(iter(linker._input_tables_dict))]
    recs = count_comparisons_from_blocking_rules(
        sdf, blocking_rules=rules, link_type="dedupe_only",
        record_sample_proportion=1.0 if exact else 0.1)
    last = recs[-1]
    value = last["cumulative_comparison_count"] if isinstance(last, dict) else \
        last.cumulative_comparison_count
    return int(value), exact
