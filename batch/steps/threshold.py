"""Step 3b, threshold: the link threshold, from labelled pairs when there are enough of them."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from batch.people import label_pairs as people_labels
from batch.steps.labels import labelled_truth
from batch.steps.types import RelinkOptions, Snapshot
from identity_graph.config import GraphConfig

__all__ = ["choose_threshold"]


def choose_threshold(snap: Snapshot, config: GraphConfig,
                     options: RelinkOptions) -> tuple[float, dict[str, Any]]:
    """Step 3b: the link threshold. With enough labelled pairs, the threshold of best pairwise
    F1 whose precision is at least `options.precision_floor` (never below the review
    threshold: pairs under it were not kept); otherwise the configured one.

    A best F1 below `options.min_threshold_f1` is not used either: the labels and the model
    disagree (precision is reached only by a handful of pairs at the very top, e.g. threshold
    1.0 at F1 0.001), and linking at it would link almost nothing. The configured threshold is
    kept, and `info` says why (`note`) and what was turned down (`rejected`).

    Labels taken from the graph's own verified/equivalent links say who is the same person, never
    who is not: one person often holds several such groups (a phone verified here, an email
    there). So a scored pair across two groups is not counted against precision; only people's
    cannot-links are negatives. Without any, precision cannot be measured and the configured
    threshold is kept. A labels file (`--labels`) names every labelled record's person, so there
    two people are two people."""
    truth, source = labelled_truth(snap, options) if options.threshold_from_labels else ({}, "off")
    positive, negative = people_labels(snap) if options.threshold_from_labels else ([], [])
    decided = {**dict.fromkeys(positive, True), **dict.fromkeys(negative, False)}
    info: dict[str, Any] = {"default": config.link_threshold, "chosen": config.link_threshold,
                            "source": "configured", "labels": source,
                            "precision_floor": options.precision_floor,
                            "people_labels": {"positive": len(positive), "negative": len(negative)}}
    if not truth and not decided:
        return config.link_threshold, info
    t = pa.table({"key": pa.array(list(truth), pa.string()),
                  "person": pa.array(list(truth.values()), pa.string())})
    snap.con.register("_truth", t)
    try:
        total = int(snap.scalar(
            "SELECT coalesce(sum(n * (n - 1) // 2), 0) FROM (SELECT count(*) AS n FROM _truth "
            "JOIN records ON records.unique_id = _truth.key GROUP BY person)"))
        found = {(a, b): (p, same) for a, b, p, same in snap.con.execute("""
            SELECT p.a, p.b, p.probability, ta.person = tb.person AS same
            FROM pairs p JOIN _truth ta ON ta.key = p.a JOIN _truth tb ON tb.key = p.b""").fetchall()}
        if not options.labels_path:  # two groups of the graph's links may be one person
            found = {pair: (p, same) for pair, (p, same) in found.items() if same}
        if decided:  # a person's judgement of a scored pair wins over the components'
            scored = dict(((a, b), p) for a, b, p in snap.con.execute(
                "SELECT a, b, probability FROM pairs").fetchall())
            total += sum(1 for pair in positive if not found.get(pair, (0, False))[1])
            found.update({pair: (scored[pair], same) for pair, same in decided.items() if pair in scored})
        rows = sorted(found.values(), key=lambda r: -r[0])
    finally:
        snap.con.unregister("_truth")
    info["labelled_true_pairs"] = total
    if total < options.min_label_pairs:
        info["note"] = f"{total} labelled true pairs, fewer than {options.min_label_pairs}"
        return config.link_threshold, info
    if not options.labels_path and not negative:
        info["note"] = ("no pair is labelled as two people (the graph's links say only who is the "
                        "same person; people's cannot-links say who is not): precision cannot be "
                        "measured, the configured threshold is kept")
        return config.link_threshold, info
    curve = []
    tp = fp = 0
    best: tuple[float, float, int] | None = None
    i = 0
    while i < len(rows):
        p = rows[i][0]
        while i < len(rows) and rows[i][0] == p:  # every pair at this probability
            tp += rows[i][1]
            fp += not rows[i][1]
            i += 1
        precision, recall = tp / (tp + fp), tp / total
        f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
        curve.append((p, precision, recall, f1))
        if precision >= options.precision_floor and (best is None or f1 > best[1]):
            best = (p, f1, tp)
    grid = (0.999, 0.995, 0.99, 0.98, 0.95, 0.9, 0.85, 0.8)
    info["curve"] = [
        {"threshold": g, "precision": round(pr, 6), "recall": round(rc, 6), "f1": round(f, 6)}
        for g in grid if g >= config.review_threshold
        for (_, pr, rc, f) in [next((c for c in reversed(curve) if c[0] >= g), (g, 1.0, 0.0, 0.0))]]
    if best is None:
        info["note"] = f"no threshold reaches precision {options.precision_floor}"
        return config.link_threshold, info
    if best[1] < options.min_threshold_f1:
        info["rejected"] = {"threshold": best[0], "f1": round(best[1], 6), "true_pairs_above": best[2]}
        info["note"] = (f"the labels and the model disagree: the best threshold at precision "
                        f"{options.precision_floor} ({best[0]:.9g}) has F1 {best[1]:.4f}, below "
                        f"{options.min_threshold_f1} ({best[2]} of {total} labelled true pairs above "
                        f"it); the configured threshold is kept")
        return config.link_threshold, info
    chosen = max(min(best[0], 1.0), config.review_threshold)
    info.update(chosen=chosen, source="labelled pairs", f1_at_chosen=round(best[1], 6))
    return chosen, info
