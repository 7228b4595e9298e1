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

from identity_graph.config import GraphConfig
from identity_graph.matching.model import MatchModel
from identity_graph.model import LinkKind, utcnow

if TYPE_CHECKING:
    from batch.relink import ApplyResult, Plan, RelinkOptions, Snapshot, Target

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
    from batch.relink import linker_on

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
            "sample": [dataclasses.asdict(v) for v in target.violations[: options.samples * 2]],
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
    if options.labels_path:
        from batch.quality import evaluate_labels

        report["quality"] = evaluate_labels(target, options.labels_path)
    if options.charts:
        report["charts"] = _charts(snap, model, target, min(options.samples, 5))
    return report


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
        f"  links           +{c['links_added']:,} / -{c['links_removed']:,}",
        f"  customers       {c['customers']:,} ({c['customers_created']:,} new, "
        f"{c['assignments_changed']:,} identifiers moved)",
        f"  merges / splits {c['merges']:,} / {c['splits']:,}   generic marked {c['generic_marked']:,}",
        f"  largest cluster {report['cluster_sizes']['largest']:,}",
        "  violations      " + (", ".join(f"{k} {v:,}" for k, v in
                                        report["guardrails"]["violations_by_kind"].items()) or "none"),
        f"  apply           {a['batches']} batches, {a['units_applied']:,} units, "
        f"{a['units_skipped_changed_since_snapshot']} skipped, {a['events_written']:,} events",
        "  steps           " + ", ".join(f"{k} {v:.1f}s" for k, v in r["step_seconds"].items())
        + f"  (total {r['total_seconds']:.1f}s)",
    ]
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
                        if th["source"] == "labelled pairs" else "") + ")")
    left_out = (report["model"].get("explain") or {}).get("left_out") or {}
    for col, why in left_out.items():
        lines.append(f"  left out        {col}: {why}")
    q = report.get("quality")
    if q:
        lines.append(f"  quality         precision {q['precision']:.4f}  recall {q['recall']:.4f}  "
                     f"F1 {q['f1']:.4f}  (household false pairs {q['household_false_pairs']:,})")
    for w in report.get("warnings", []):
        lines.append(f"  WARNING: {w}")
    return "\n".join(lines)


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


def _svg_histogram(hist: list[dict[str, Any]]) -> str:
    width, height, pad = 640, 220, 40
    top = max((h["customers"] for h in hist), default=0) or 1
    bw = (width - pad) / len(hist)
    bars = []
    import math

    scale = math.log10(top + 1)
    for i, h in enumerate(hist):
        v = h["customers"]
        bh = 0 if v == 0 else max(2, (height - 50) * math.log10(v + 1) / scale)
        x = pad + i * bw
        y = height - 30 - bh
        bars.append(
            f'<rect x="{x + 3:.1f}" y="{y:.1f}" width="{bw - 6:.1f}" height="{bh:.1f}" fill="#4c78a8">'
            f'<title>{html.escape(h["size"])}: {v:,} customers, '
            f'{h["identifiers"]:,} identifiers</title></rect>'
            f'<text x="{x + bw / 2:.1f}" y="{height - 14}" font-size="11" text-anchor="middle">'
            f'{html.escape(h["size"])}</text>'
            f'<text x="{x + bw / 2:.1f}" y="{y - 4:.1f}" font-size="10" text-anchor="middle">{v:,}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'role="img" aria-label="cluster sizes">'
            f'<text x="4" y="14" font-size="11">customers (log scale) by identifiers held</text>'
            + "".join(bars) + "</svg>")


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in columns) + "</tr>"
        for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list | dict):
        return json.dumps(v, default=str)
    return "" if v is None else str(v)


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
    sections.append("<h2>Counts</h2>" + _table(
        [{"count": k, "value": v} for k, v in c.items()], ["count", "value"]))
    sections.append("<h2>Steps</h2>" + _table(
        [{"step": k, "seconds": v} for k, v in r["step_seconds"].items()], ["step", "seconds"]))
    if report.get("quality"):
        q = report["quality"]
        sections.append("<h2>Quality against labels</h2>" + _table(
            [{"metric": k, "value": v} for k, v in q.items()], ["metric", "value"]))
    cs = report["cluster_sizes"]
    sections.append("<h2>Cluster sizes</h2>" + _svg_histogram(cs["histogram"])
                    + _table(cs["histogram"], ["size", "customers", "identifiers"])
                    + f"<p>Largest: {cs['largest']:,}. Giant threshold: {cs['giant_threshold']:,}.</p>")
    sections.append("<h2>Merges (sample)</h2>" + _table(
        report["merges_sample"], ["survivor", "retired", "members"]))
    sections.append("<h2>Splits (sample)</h2>" + _table(
        report["splits_sample"], ["original", "new_ids", "kept", "parts"]))
    g = report["guardrails"]
    sections.append("<h2>Guardrail violations</h2>" + _table(
        [{"kind": k, "count": v} for k, v in g["violations_by_kind"].items()], ["kind", "count"])
        + _table(g["sample"], ["kind", "key", "other", "reason"]))
    sections.append("<h2>Apply</h2>" + _table(
        [{"what": k, "value": v} for k, v in report["apply"].items()], ["what", "value"]))
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
.warn {{ color: #a40000; font-weight: 600; }}
</style>
{scripts}
</head><body>
{body}
<script>{embed}</script>
</body></html>
"""
