"""The relink run report: a JSON document and one self-contained HTML page (no network needed).

The HTML inlines the Vega, Vega-Lite and vega-embed scripts that Splink ships inside its package
(`splink/internals/files/external_js`), so Splink's match-weights and waterfall charts render
offline. The cluster-size histogram is an inline SVG drawn here and needs no script at all.
"""

from __future__ import annotations

import copy
import dataclasses
import html
import json
import logging
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batch.changes import change_counts
from batch.report_charts import cluster_sizes_svg, match_weight_svg, precision_recall_svg
from identity_graph.config import GraphConfig
from identity_graph.matching.model import MatchModel
from identity_graph.model import Link, LinkKind, utcnow

if TYPE_CHECKING:
    from batch.steps.types import ApplyResult, Plan, RelinkOptions, Snapshot, Target

log = logging.getLogger(__name__)

BUCKETS = ((1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 10), (11, 20), (21, 50), (51, 100),
           (101, 500), (501, 10**12))


def histogram(sizes: Counter[int]) -> list[dict[str, Any]]:
    """Customers per size bucket, with the identifiers they hold."""
    out = []
    for lo, hi in BUCKETS:
        n = sum(c for s, c in sizes.items() if lo <= s <= hi)
        ids = sum(s * c for s, c in sizes.items() if lo <= s <= hi)
        label = str(lo) if lo == hi else (f"{lo}–{hi}" if hi < 10**12 else f">{lo - 1}")
        out.append({"size": label, "customers": n, "identifiers": ids})
    return out


def _model_parameters(model: MatchModel) -> list[dict[str, Any]]:
    import math

    out = []
    for cc in model.settings.get("comparisons", []):
        levels = []
        for lv in cc.get("comparison_levels", []):
            if lv.get("is_null_level"):
                continue
            m, u = lv.get("m_probability"), lv.get("u_probability")
            weight = math.log2(m / u) if isinstance(m, float | int) and isinstance(u, float | int) \
                and m > 0 and u > 0 else None
            levels.append({"label": lv.get("label_for_charts") or lv.get("sql_condition"),
                           "m": m, "u": u, "match_weight": None if weight is None else round(weight, 3),
                           "tf_adjustment_column": lv.get("tf_adjustment_column")})
        out.append({"comparison": cc.get("output_column_name"), "levels": levels})
    return out


def _charts(snap: Snapshot, model: MatchModel, target: Target, samples: int) -> dict[str, Any]:
    """Splink's match-weights chart and waterfall charts of sample merging links (vega specs)."""
    from batch.steps.predict import linker_on

    out: dict[str, Any] = {}
    try:
        linker = linker_on(snap.con, model)
        out["match_weights"] = linker.visualisations.match_weights_chart().chart_dict
    except Exception as e:  # a chart is worth a warning, never a failed run
        log.warning("match weights chart failed: %s", e)
        out["errors"] = [f"match weights chart: {type(e).__name__}: {e}"]
    index = {k: i for i, k in enumerate(target.keys)}
    picks = []
    for lk in sorted(target.links.values(), key=lambda lk: (-(lk.probability or 0), lk.a, lk.b)):
        if lk.kind is not LinkKind.PROBABLE:
            continue
        pa_, pb = target.previous[index[lk.a]], target.previous[index[lk.b]]
        if pa_ != pb or pa_ is None:
            picks.append(lk)
        if len(picks) >= samples:
            break
    if not picks:
        return out
    try:
        settings = copy.deepcopy(model.settings)
        settings["retain_intermediate_calculation_columns"] = True
        settings["retain_matching_columns"] = True
        linker = linker_on(snap.con, model, settings=settings)
        rel = snap.con.execute("SELECT * FROM records WHERE unique_id IN ?",
                               [[k for lk in picks for k in (lk.a, lk.b)]])
        names = [d[0] for d in rel.description]
        recs = {r[0]: dict(zip(names, r, strict=True)) for r in rel.fetchall()}
        rows = []
        for lk in picks:
            if lk.a in recs and lk.b in recs:
                rows.extend(linker.inference.score_pair(recs[lk.a], recs[lk.b]).as_record_list())
        if rows:
            out["waterfall"] = linker.visualisations.waterfall_chart(rows, filter_nulls=False).chart_dict
            out["waterfall_pairs"] = [[lk.a, lk.b] for lk in picks]
    except Exception as e:
        log.warning("waterfall chart failed: %s", e)
        out.setdefault("errors", []).append(f"waterfall chart: {type(e).__name__}: {e}")
    return out


def build_report(
    *,
    snap: Snapshot,
    model: MatchModel,
    model_info: dict[str, Any],
    predict_info: dict[str, Any],
    target: Target,
    plan: Plan,
    applied: ApplyResult,
    config: GraphConfig,
    options: RelinkOptions,
    run_id: str,
    started: datetime,
    times: dict[str, float],
    n_records: int,
    backend: str,
) -> dict[str, Any]:
    """Everything the operator needs to trust (or stop) a run, as one JSON-able dict."""
    links_by_kind = Counter(lk.kind.label for lk in target.links.values())
    existing = dict(snap.con.execute(
        "SELECT kind, count(*) FROM links WHERE source <> 'batch' GROUP BY kind").fetchall())
    all_links = {k.label: int(existing.get(k.label, 0)) + links_by_kind.get(k.label, 0)
                 for k in sorted(LinkKind, reverse=True)}
    sizes = target.sizes
    largest = max(sizes) if sizes else 0
    n_ids = len(target.keys)
    giant_limit = min(options.giant_cluster, max(10, n_ids // 100)) if n_ids else options.giant_cluster
    comp_sizes = Counter(target.component)
    giants = sorted(((n, target.ids[c]) for c, n in comp_sizes.items() if n > giant_limit),
                    reverse=True)[:10]
    violations = Counter(v.kind for v in target.violations)
    members_by_id: dict[str, list[str]] = {}
    wanted = {m["survivor"] for m in plan.merges[: options.samples]}
    wanted |= {s["original"] for s in plan.splits[: options.samples]}
    wanted |= {i for s in plan.splits[: options.samples] for i in s["new_ids"]}
    comp_of_id = {cid: c for c, cid in target.ids.items()}
    wanted_comps = {comp_of_id[w] for w in wanted if w in comp_of_id}
    for i, c in enumerate(target.component):
        if c in wanted_comps and len(members_by_id.setdefault(target.ids[c], [])) < 20:
            members_by_id[target.ids[c]].append(target.keys[i])
    merges = [dict(m, members=members_by_id.get(m["survivor"], [])) for m in plan.merges[: options.samples]]
    splits = [dict(s, parts={i: members_by_id.get(i, []) for i in [s["original"], *s["new_ids"]]
                             if i in comp_of_id}) for s in plan.splits[: options.samples]]
    report: dict[str, Any] = {
        "run": {
            "id": run_id, "started": started.isoformat(), "finished": utcnow().isoformat(),
            "backend": backend, "dry_run": options.dry_run, "snapshot_event_seq": snap.last_seq,
            "step_seconds": times, "total_seconds": round(sum(times.values()), 3),
        },
        "counts": {
            "identifiers": n_ids,
            "records_compared": n_records,
            "pairs_scored": predict_info.get("pairs_scored"),
            "pairs_scored_exact": predict_info.get("pairs_scored_exact"),
            "pairs_above_review_threshold": predict_info.get("pairs_kept"),
            "batch_links_by_kind": dict(sorted(links_by_kind.items())),
            "active_links_by_kind_after": all_links,
            "customers": len(comp_sizes),
            "customers_created": plan.customers_created,
            "assignments_changed": plan.assignments,
            "links_added": plan.links_added,
            "links_removed": plan.links_removed,
            "merges": len(plan.merges),
            "splits": len(plan.splits),
            "generic_marked": plan.generic,
            "units_to_write": len(plan.units),
        },
        "apply": {
            "batches": applied.batches, "units_applied": applied.units_applied,
            "units_skipped_changed_since_snapshot": applied.units_skipped,
            "skipped_sample": applied.skipped_keys[:20], "events_written": applied.events,
        },
        "merges_sample": merges,
        "splits_sample": splits,
        "cluster_sizes": {
            "histogram": histogram(sizes), "largest": largest,
            "giant_threshold": giant_limit,
            "giants": [{"customer_id": cid, "size": n} for n, cid in giants],
        },
        "warnings": [],
        "guardrails": {
            "violations_by_kind": dict(sorted(violations.items())),
            "violations_logged": plan.violations_logged,
            "sample": _violation_sample(target, options.samples),
            "limits": config.limits, "link_threshold": config.link_threshold,
            "review_threshold": config.review_threshold,
        },
        "blocking": predict_info.get("blocking"),
        "threshold": predict_info.get("threshold"),
        "model": {
            **model_info, "version": model.version, "metadata": model.metadata,
            "probability_two_random_records_match": model.probability_two_random_records_match,
            "parameters": _model_parameters(model),
        },
    }
    if giants:
        report["warnings"].append(
            f"giant cluster: {len(giants)} customer(s) hold more than {giant_limit} identifiers "
            f"(largest {largest}); check for a shared identifier that should be blocked or generic")
    if applied.units_skipped:
        report["warnings"].append(
            f"{applied.units_skipped} unit(s) changed online since the snapshot and were left "
            "for the next run")
    report["changes"] = change_counts(snap, target, plan)
    link_threshold = (predict_info.get("threshold") or {}).get("chosen", config.link_threshold)
    report["match_weight_histogram"] = {
        "bins": _weight_bins(snap), "link_threshold": link_threshold,
        "review_threshold": config.review_threshold}
    if options.labels_path:
        from batch.quality import error_samples, evaluate_labels, read_labels, threshold_curve

        report["quality"] = evaluate_labels(target, options.labels_path)
        truth, _ = read_labels(options.labels_path)
        scored = snap.con.execute("SELECT a, b, probability FROM pairs").fetchall()
        grid = sorted({config.review_threshold, link_threshold,
                       *(round(config.review_threshold + (1 - config.review_threshold) * i / 20, 6)
                         for i in range(20))})
        report["quality"]["threshold_curve"] = threshold_curve(scored, truth, grid)
        report["quality"].update(error_samples(target, truth, _target_links(snap, target), scored,
                                               options.samples))
    if options.charts:
        report["charts"] = _charts(snap, model, target, min(options.samples, 5))
    return report


def _violation_sample(target: Target, samples: int) -> list[dict[str, Any]]:
    """Up to `samples` violations of EACH kind, so a rare kind (a chain) is never crowded out."""
    taken: Counter[str] = Counter()
    out = []
    for v in target.violations:
        if taken[v.kind] < samples:
            taken[v.kind] += 1
            out.append(dataclasses.asdict(v))
    return out


def _weight_bins(snap: Snapshot) -> list[dict[str, Any]]:
    """Scored pairs (those kept: at or above the review threshold) per one-bit match-weight bin."""
    rows = snap.con.execute(
        "SELECT floor(match_weight)::BIGINT AS lo, count(*) FROM pairs "
        "WHERE isfinite(match_weight) GROUP BY 1 ORDER BY 1").fetchall()
    return [{"lo": int(lo), "hi": int(lo) + 1, "pairs": int(n)} for lo, n in rows]


def _target_links(snap: Snapshot, target: Target) -> list[Link]:
    """Every link the target holds: its batch links and the stored deterministic ones it keeps."""
    kept = [Link(a, b, LinkKind.parse(kind), source=source)
            for lid, a, b, kind, source in snap.con.execute(
                "SELECT link_id, a, b, kind, source FROM links "
                "WHERE kind IN ('verified', 'equivalent', 'observed')").fetchall()
            if lid not in target.removed]
    return [*target.links.values(), *kept]


# ==== output =======================================================================================


def write_report(report: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Writes `<run id>.json` and `<run id>.html` (and `latest.*` copies) into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = report["run"]["id"] + ("-dry-run" if report["run"]["dry_run"] else "")
    text = json.dumps(report, indent=1, default=str)
    page = render_html(report)
    json_path, html_path = out / f"{name}.json", out / f"{name}.html"
    json_path.write_text(text)
    html_path.write_text(page)
    (out / "latest.json").write_text(text)
    (out / "latest.html").write_text(page)
    return json_path, html_path


def summary_text(report: dict[str, Any]) -> str:
    """The one-screen summary printed at the end of a run."""
    c, r, a = report["counts"], report["run"], report["apply"]
    lines = [
        f"relink {r['id']} on {r['backend']}{' (DRY RUN: nothing written)' if r['dry_run'] else ''}",
        f"  model           {report['model']['version']} ({report['model'].get('source')})",
        f"  identifiers     {c['identifiers']:>10,}   records compared {c['records_compared']:>10,}",
        f"  pairs scored    {c['pairs_scored'] or 0:>10,}   "
        f"kept (≥ review)   {c['pairs_above_review_threshold'] or 0:>9,}",
        "  batch links     " + ", ".join(f"{k} {v:,}" for k, v in c["batch_links_by_kind"].items()),
        *_change_lines(report),
        f"  merges / splits {c['merges']:,} / {c['splits']:,}   generic marked {c['generic_marked']:,}",
        f"  largest cluster {report['cluster_sizes']['largest']:,}",
        "  violations      " + (", ".join(f"{k} {v:,}" for k, v in
                                        report["guardrails"]["violations_by_kind"].items()) or "none"),
        f"  apply           {a['batches']} batches, {a['units_applied']:,} units, "
        f"{a['units_skipped_changed_since_snapshot']} skipped, {a['events_written']:,} events",
        "  steps           " + ", ".join(f"{k} {v:.1f}s" for k, v in r["step_seconds"].items())
        + f"  (total {r['total_seconds']:.1f}s)",
    ]
    p = report.get("people")
    if p:
        made = ", ".join(f"{k} {v:,}" for k, v in p["decisions_since_last_run"].items()) or "none"
        lines.append(f"  review queue    {p['review_queue']:,} possible links; decisions by people "
                     f"since the last run: {made}; {p['withdrawn_since_last_run']:,} withdrawn")
    b = report.get("blocking") or {}
    if b.get("rules"):
        cut = [r["rule"] for r in b["rules"] if not r["kept"]]
        lines.append(f"  blocking        {b['comparisons_before']:,} comparisons before the budget, "
                     f"{b['comparisons_after']:,} after (budget {b['budget']:,})"
                     + (f"; left out: {'; '.join(cut)}" if cut else ""))
    th = report.get("threshold") or {}
    if th:
        lines.append(f"  link threshold  {th['chosen']:.6g} ({th['source']}"
                     + (f", best F1 {th['f1_at_chosen']} at precision >= {th['precision_floor']}"
                        if th["source"] == "labelled pairs" else "")
                     + (f": {th['note']}" if th.get("note") else "") + ")")
    left_out = (report["model"].get("explain") or {}).get("left_out") or {}
    for col, why in left_out.items():
        lines.append(f"  left out        {col}: {why}")
    q = report.get("quality")
    if q:
        household = q.get("household_false_pairs")
        lines.append(f"  quality         precision {q['precision']:.4f}  recall {q['recall']:.4f}  "
                     f"F1 {q['f1']:.4f}"
                     + (f"  (household false pairs {household:,})" if household is not None else ""))
    for w in report.get("warnings", []):
        lines.append(f"  WARNING: {w}")
    return "\n".join(lines)


def _change_lines(report: dict[str, Any]) -> list[str]:
    """What changes, in identifiers and customers; links by pair (a new model version re-scores
    every batch link: those are counted apart, not as links added and removed)."""
    c, ch = report["counts"], report.get("changes")
    if not ch:
        return [f"  links           +{c['links_added']:,} / -{c['links_removed']:,}",
                f"  customers       {c['customers']:,} ({c['customers_created']:,} new, "
                f"{c['assignments_changed']:,} identifiers moved)"]
    return [
        f"  identifiers     {ch['identifiers_moved']:,} change customer, "
        f"{ch['identifiers_assigned']:,} get their first",
        f"  customers       {c['customers']:,}: {ch['customers_changed']:,} change "
        f"({c['customers_created']:,} new, {ch['customers_retired']:,} retired)",
        f"  links (pairs)   {ch['pairs_linked']:,} linked, {ch['pairs_unlinked']:,} unlinked, "
        f"{ch['pairs_kind_changed']:,} change kind, {ch['pairs_rescored']:,} re-scored only",
    ]


def _vega_scripts() -> str:
    """Splink's packaged vega, vega-lite and vega-embed, inlined; empty if not found."""
    try:
        import splink

        base = Path(splink.__file__).parent / "internals" / "files" / "external_js"
        parts = []
        for name in ("vega@5.31.0", "vega-lite@5.2.0", "vega-embed@6.20.2"):
            matches = sorted(base.glob(name.split("@")[0] + "@*"))
            exact = base / name
            path = exact if exact.exists() else (matches[-1] if matches else None)
            if path is None:
                return ""
            parts.append("<script>" + path.read_text(encoding="utf-8").replace("</script", "<\\/script")
                         + "</script>")
        return "\n".join(parts)
    except Exception:  # pragma: no cover
        return ""


VIOLATION_KINDS = ("blocked", "limit", "generic", "junk", "chain", "suppressed")
"""Every kind of guardrail violation (`identity_graph.guardrails.Violation.kind`), all listed."""


def _cell(v: Any) -> str:
    """A value as HTML a person reads: lists as lines, mappings as `key value` lines."""
    if isinstance(v, dict):
        if not v:
            return "–"
        return "<br>".join(f"<span class='k'>{html.escape(str(k))}</span> {_cell(x)}" for k, x in v.items())
    if isinstance(v, list | tuple):
        if not v:
            return "–"
        shown = [_cell(x) for x in v[:12]]
        more = f"<br><i>… {len(v) - 12:,} more</i>" if len(v) > 12 else ""
        return "<br>".join(shown) + more
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.6g}"
    return "" if v is None else html.escape(str(v))


def _table(rows: list[dict[str, Any]], columns: list[str], cls: str = "") -> str:
    if not rows:
        return "<p class='none'>none</p>"
    head = "".join(f"<th>{html.escape(c.replace('_', ' '))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(r.get(c))}</td>" for c in columns) + "</tr>"
                   for r in rows)
    return f"<table class='{cls}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _pairs_table(d: dict[str, Any], key: str = "count", value: str = "value") -> str:
    return _table([{key: k.replace("_", " "), value: v} for k, v in d.items()], [key, value], "kv")


def _link_text(lk: dict[str, Any] | None) -> str:
    if not lk:
        return "no pair between the parts was scored (never blocked together)"
    p = lk.get("probability")
    kind = lk.get("kind") or "scored"
    by = f" by {lk['source']}" if lk.get("source") else ""
    return (f"{lk['a']} —{kind}{by}"
            + (f", p {p:.4f}" if isinstance(p, float) else "") + f"→ {lk['b']}"
            + (f" ({lk['why']})" if lk.get("why") else ""))


def _quality_section(q: dict[str, Any], link_threshold: float) -> str:
    scalars = {k: v for k, v in q.items() if not isinstance(v, list | dict)}
    out = ["<h2>Quality against labels</h2>", _pairs_table(scalars, "metric")]
    if q.get("threshold_curve"):
        out.append(precision_recall_svg(q["threshold_curve"], link_threshold))
        out.append(_table(q["threshold_curve"], ["threshold", "predicted_pairs", "precision", "recall"]))
    if "false_merges" in q:
        out.append("<h3>False merges (sample): one customer, several people</h3>" + _table(
            [dict(m, link=_link_text(m["link"])) for m in q["false_merges"]],
            ["customer_id", "people", "identifiers", "link"]))
        out.append("<h3>False splits (sample): one person, several customers</h3>" + _table(
            [dict(m, link=_link_text(m["link"])) for m in q["false_splits"]],
            ["person", "customers", "identifiers", "link"]))
    return "".join(out)


def _script_json(value: Any) -> str:
    return json.dumps(value, default=str).replace("</", "<\\/")


def render_html(report: dict[str, Any]) -> str:
    """One self-contained page: tables, an SVG histogram and Splink's charts (inlined scripts)."""
    r, c = report["run"], report["counts"]
    charts = report.get("charts") or {}
    scripts = _vega_scripts() if any(k in charts for k in ("match_weights", "waterfall")) else ""
    sections = [
        f"<h1>Relink {html.escape(r['id'])}{' — dry run' if r['dry_run'] else ''}</h1>",
        f"<p>Backend <b>{html.escape(r['backend'])}</b>, model <b>"
        f"{html.escape(report['model']['version'])}</b>, started {html.escape(r['started'])}, "
        f"{r['total_seconds']:.1f}s.</p>",
    ]
    for w in report.get("warnings", []):
        sections.append(f'<p class="warn">⚠ {html.escape(w)}</p>')
    if report.get("changes"):
        sections.append("<h2>What changes</h2><p>Identifiers and customers; links counted by pair "
                        "(a new model version re-scores every batch link: counted apart).</p>"
                        + _pairs_table(report["changes"]))
    sections.append("<h2>Counts</h2>" + _pairs_table(c))
    sections.append("<h2>Steps</h2>" + _pairs_table(r["step_seconds"], "step", "seconds"))
    mw = report.get("match_weight_histogram")
    if mw:
        sections.append("<h2>Match weights</h2>" + match_weight_svg(
            mw["bins"], mw["link_threshold"], mw["review_threshold"]))
    if report.get("quality"):
        sections.append(_quality_section(report["quality"], (mw or {}).get(
            "link_threshold", report["guardrails"]["link_threshold"])))
    cs = report["cluster_sizes"]
    sections.append("<h2>Cluster sizes</h2>" + cluster_sizes_svg(cs["histogram"])
                    + _table(cs["histogram"], ["size", "customers", "identifiers"])
                    + f"<p>Largest: {cs['largest']:,}. Giant threshold: {cs['giant_threshold']:,}.</p>")
    sections.append("<h2>Merges (sample)</h2>" + _table(
        report["merges_sample"], ["survivor", "retired", "members"]))
    sections.append("<h2>Splits (sample)</h2>" + _table(
        report["splits_sample"], ["original", "new_ids", "kept", "parts"]))
    g = report["guardrails"]
    by_kind = {k: g["violations_by_kind"].get(k, 0) for k in VIOLATION_KINDS}
    by_kind.update(g["violations_by_kind"])
    sections.append("<h2>Guardrail violations</h2>" + _pairs_table(by_kind, "kind", "count")
                    + "<h3>Sample, per kind</h3>" + _table(g["sample"], ["kind", "key", "other", "reason"]))
    sections.append("<h2>Apply</h2>" + _pairs_table(report["apply"], "what"))
    m = report["model"]
    rows = [{"comparison": p["comparison"], **lv} for p in m["parameters"] for lv in p["levels"]]
    sections.append(
        f"<h2>Model {html.escape(m['version'])}</h2><p>λ (prior) = "
        f"{m['probability_two_random_records_match']:.3g}; source {html.escape(str(m.get('source')))}</p>"
        + _table(rows, ["comparison", "label", "m", "u", "match_weight", "tf_adjustment_column"]))
    chart_divs = []
    specs = {}
    for name, title in (("match_weights", "Match weights (Splink)"),
                        ("waterfall", "Waterfall of sample merging links (Splink)")):
        if name in charts:
            chart_divs.append(f"<h2>{title}</h2><div id='chart_{name}'></div>")
            specs[name] = charts[name]
    if charts.get("errors"):
        chart_divs.append("<p class='warn'>" + html.escape("; ".join(charts["errors"])) + "</p>")
    if specs and not scripts:
        chart_divs.append("<p class='warn'>Splink's packaged Vega scripts were not found: charts "
                          "load vega from the jsDelivr CDN and need network access.</p>")
        scripts = ('<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>'
                   '<script src="https://cdn.jsdelivr.net/npm/vega-lite@5"></script>'
                   '<script src="https://cdn.jsdelivr.net/npm/vega-embed@6"></script>')
    embed = "".join(
        f"vegaEmbed('#chart_{n}', {_script_json(s)}, " + "{actions: false}).catch(console.error);"
        for n, s in specs.items())
    body = "\n".join(sections + chart_divs)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Relink {html.escape(r['id'])}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 2em; color: #222; max-width: 1100px; }}
table {{ border-collapse: collapse; margin: .5em 0 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top;
          max-width: 520px; overflow-wrap: anywhere; }}
th {{ background: #f3f3f3; }}
table.kv td:first-child {{ color: #555; }}
td .k {{ color: #555; }}
svg.chart {{ display: block; margin: .5em 0 1em; }}
svg.chart .title {{ font-weight: 600; }}
.none {{ color: #777; }}
.warn {{ color: #a40000; font-weight: 600; }}
</style>
{scripts}
</head><body>
{body}
<script>{embed}</script>
</body></html>
"""
