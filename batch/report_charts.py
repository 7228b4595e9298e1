"""The run report's own charts, as inline SVG (no script, no network): cluster sizes, the
match-weight histogram with the link and review thresholds, precision and recall against the
threshold.

Every text has its own band: the title on the first line, legends and threshold labels on
lines of their own under it, value labels inside the plot's headroom, tick labels under the
axis. So nothing overlaps whatever the data (the report's browser test measures it).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

__all__ = ["cluster_sizes_svg", "match_weight_svg", "precision_recall_svg", "probability_to_weight"]

WIDTH, FONT = 720, 11
LINE = 15  # one text line, in px


def probability_to_weight(p: float) -> float:
    """Splink's match weight (bits) of a match probability."""
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log2(p / (1 - p))


def _text(x: float, y: float, s: str, anchor: str = "middle", cls: str = "", size: int = FONT) -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"'
            + (f' class="{cls}"' if cls else "") + f">{html.escape(s)}</text>")


def _svg(height: int, label: str, body: list[str]) -> str:
    return (f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{html.escape(label)}">'
            + "".join(body) + "</svg>")


def cluster_sizes_svg(hist: Sequence[dict[str, Any]]) -> str:
    """Customers per size bucket, log scale, each bar with its count above it."""
    height, left, title_h, value_h, axis_h = 240, 40, LINE + 6, LINE, LINE + 8
    top = max((h["customers"] for h in hist), default=0) or 1
    bw = (WIDTH - left) / max(len(hist), 1)
    plot_top = title_h + value_h
    plot_h = height - plot_top - axis_h
    body = [_text(4, 14, "customers (log scale) by identifiers held", "start", "title")]
    scale = math.log10(top + 1)
    for i, h in enumerate(hist):
        v = h["customers"]
        bh = 0.0 if v == 0 else max(2.0, plot_h * math.log10(v + 1) / scale)
        x, y = left + i * bw, plot_top + plot_h - bh
        body.append(f'<rect x="{x + 3:.1f}" y="{y:.1f}" width="{bw - 6:.1f}" height="{bh:.1f}" '
                    f'fill="#4c78a8"><title>{html.escape(h["size"])}: {v:,} customers, '
                    f'{h["identifiers"]:,} identifiers</title></rect>')
        body.append(_text(x + bw / 2, y - 4, f"{v:,}", cls="value", size=10))
        body.append(_text(x + bw / 2, height - 8, h["size"], cls="tick"))
    return _svg(height, "cluster sizes", body)


def match_weight_svg(bins: Sequence[dict[str, Any]], link_threshold: float,
                     review_threshold: float) -> str:
    """Scored pairs per match-weight bin, with the link and review thresholds as lines."""
    height, left, axis_h = 270, 48, LINE + 18
    lines = [("link", link_threshold, "#a40000"), ("review", review_threshold, "#e08a00")]
    plot_top = LINE + 6 + LINE * len(lines) + 6
    plot_h = height - plot_top - axis_h
    body = [_text(4, 14, "scored pairs by match weight (bits)", "start", "title")]
    if not bins:
        body.append(_text(WIDTH / 2, plot_top + plot_h / 2, "no pairs were scored", cls="note"))
        return _svg(height, "match weights", body)
    lo = min(min(b["lo"] for b in bins), *(probability_to_weight(t) for _, t, _ in lines))
    hi = max(max(b["hi"] for b in bins), *(probability_to_weight(t) for _, t, _ in lines))
    lo, hi = math.floor(lo), math.ceil(hi) if math.ceil(hi) > math.floor(lo) else math.floor(lo) + 1
    span = WIDTH - left - 10

    def x_of(w: float) -> float:
        return left + (w - lo) / (hi - lo) * span

    top = max(b["pairs"] for b in bins) or 1
    for b in bins:
        bh = plot_h * b["pairs"] / top
        x0, x1 = x_of(b["lo"]), x_of(b["hi"])
        body.append(f'<rect x="{x0 + 0.5:.1f}" y="{plot_top + plot_h - bh:.1f}" '
                    f'width="{max(x1 - x0 - 1, 1):.1f}" height="{bh:.1f}" fill="#4c78a8">'
                    f'<title>{b["lo"]:+.0f} to {b["hi"]:+.0f} bits: '
                    f'{b["pairs"]:,} pairs</title></rect>')
    body.append(_text(left - 4, plot_top + 8, f"{top:,}", "end", "tick"))
    body.append(_text(left - 4, plot_top + plot_h, "0", "end", "tick"))
    step = max(1, math.ceil((hi - lo) / 12))
    for w in range(lo, hi + 1, step):
        body.append(_text(x_of(w), height - 8, f"{w:+d}" if w else "0", cls="tick"))
    for row, (name, p, colour) in enumerate(lines):
        x = x_of(probability_to_weight(p))
        y_label = LINE + 6 + LINE * (row + 1) - 3
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y_label + 3:.1f}" y2="{plot_top + plot_h:.1f}" '
                    f'stroke="{colour}" stroke-width="2" stroke-dasharray="4 3"/>')
        anchor = "start" if x < WIDTH / 2 else "end"
        body.append(_text(x + (4 if anchor == "start" else -4), y_label,
                          f"{name} threshold p ≥ {p:g} ({probability_to_weight(p):+.1f} bits)",
                          anchor, "threshold"))
    return _svg(height, "match weights", body)


def precision_recall_svg(curve: Sequence[dict[str, Any]], link_threshold: float) -> str:
    """Pairwise precision and recall of the scored pairs against the link threshold."""
    height, left, axis_h = 270, 48, LINE + 18
    plot_top = LINE + 6 + LINE + 6
    plot_h = height - plot_top - axis_h
    body = [_text(4, 14, "pairwise precision and recall against the link threshold", "start", "title"),
            f'<rect x="4" y="{LINE + 6 + 2}" width="10" height="10" fill="#4c78a8"/>',
            _text(18, LINE + 6 + 11, "precision", "start", "legend"),
            f'<rect x="94" y="{LINE + 6 + 2}" width="10" height="10" fill="#f58518"/>',
            _text(108, LINE + 6 + 11, "recall", "start", "legend")]
    pts = [c for c in curve if c["precision"] is not None or c["recall"] is not None]
    if not pts:
        body.append(_text(WIDTH / 2, plot_top + plot_h / 2, "no labelled pairs were scored", cls="note"))
        return _svg(height, "precision and recall", body)
    lo, hi = min(c["threshold"] for c in pts), max(c["threshold"] for c in pts)
    hi = hi if hi > lo else lo + 1e-3
    span = WIDTH - left - 20

    def x_of(t: float) -> float:
        return left + (t - lo) / (hi - lo) * span

    def y_of(v: float) -> float:
        return plot_top + plot_h * (1 - v)

    for v in (0.0, 0.5, 1.0):
        body.append(f'<line x1="{left}" x2="{left + span}" y1="{y_of(v):.1f}" y2="{y_of(v):.1f}" '
                    'stroke="#ddd"/>')
        body.append(_text(left - 4, y_of(v) + 4, f"{v:.1f}", "end", "tick"))
    for key, colour in (("precision", "#4c78a8"), ("recall", "#f58518")):
        xy = " ".join(f"{x_of(c['threshold']):.1f},{y_of(c[key]):.1f}" for c in pts if c[key] is not None)
        body.append(f'<polyline points="{xy}" fill="none" stroke="{colour}" stroke-width="2"/>')
    every = max(1, len(pts) // 5)
    ticks = sorted({pts[0]["threshold"], pts[-1]["threshold"], *(c["threshold"] for c in pts[::every])})
    last = -1e9
    for t in ticks:
        if x_of(t) - last >= 60:  # tick labels at least 60 px apart
            body.append(_text(x_of(t), height - 8, f"{t:g}", cls="tick"))
            last = x_of(t)
    if lo <= link_threshold <= hi:
        x = x_of(link_threshold)
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{plot_top}" y2="{plot_top + plot_h}" '
                    f'stroke="#a40000" stroke-dasharray="4 3"/>')
        body.append(_text(WIDTH - 4, LINE + 6 + 11, f"link threshold {link_threshold:g} (dashed)",
                          "end", "legend"))
    return _svg(height, "precision and recall", body)
