"""`identity-batch explain A B`: why two identifiers are (or are not) one customer, for a terminal.

The bottleneck path of `IdentityGraph.customers.explain`, each link with its evidence and, for Splink links,
the waterfall: the prior and each comparison's bits, adding up to the link's match weight.
"""

from __future__ import annotations

from typing import Any

from identity_graph.engine import Explanation
from identity_graph.model import Link

__all__ = ["explanation_dict", "explanation_text"]


def _link_dict(lk: Link) -> dict[str, Any]:
    out: dict[str, Any] = {
        "a": lk.a, "b": lk.b, "kind": lk.kind.label, "source": lk.source, "channel": lk.channel,
        "event_id": lk.event_id, "actor": lk.actor, "model_version": lk.model_version,
        "probability": lk.probability, "match_weight": lk.match_weight,
        "created_at": lk.created_at.isoformat(),
    }
    if lk.comparisons:
        out["waterfall"] = {
            "prior_match_weight": lk.comparisons.get("prior_match_weight"),
            "comparisons": list(lk.comparisons.get("comparisons", [])),
        }
    return out


def explanation_dict(e: Explanation) -> dict[str, Any]:
    """The explanation as plain JSON-ready data (`--json`)."""
    return {"a": e.a, "b": e.b, "same_customer": e.same_customer,
            "assurance": e.assurance.label if e.assurance is not None else None,
            "connected": bool(e.path) or e.a == e.b, "path": [_link_dict(lk) for lk in e.path]}


def explanation_text(e: Explanation) -> str:
    """A few readable lines per link: who, what kind, from which evidence, and the waterfall."""
    lines = [f"{e.a}  ↔  {e.b}"]
    if not e.path:
        lines.append("  no path over active links: not the same customer")
        return "\n".join(lines) + "\n"
    verdict = "the same customer" if e.same_customer else "connected, but not one customer (a possible link)"
    weakest = e.assurance.label if e.assurance else "-"
    lines.append(f"  {verdict}; weakest link on the strongest path: {weakest}")
    node = e.a
    for i, lk in enumerate(e.path, 1):
        nxt = lk.other(node)
        evidence = ", ".join(f"{k} {v}" for k, v in (("source", lk.source), ("channel", lk.channel),
                                                       ("event", lk.event_id), ("actor", lk.actor),
                                                       ("model", lk.model_version)) if v)
        lines.append(f"  {i}. {node} —{lk.kind.label}→ {nxt}   ({evidence or 'no evidence recorded'}; "
                     f"{lk.created_at:%Y-%m-%d %H:%M})")
        if lk.probability is not None:
            mw = f", match weight {lk.match_weight:+.2f} bits" if lk.match_weight is not None else ""
            lines.append(f"       probability {lk.probability:.4f}{mw}")
        if lk.comparisons:
            rows = [(str(c["name"]), str(c.get("level", "")), float(c["bits"]))
                    for c in lk.comparisons.get("comparisons", [])]
            name_w = max([len(n) for n, _, _ in rows] + [5]) + 2
            level_w = max([len(lv) for _, lv, _ in rows] + [0]) + 2
            prior = lk.comparisons.get("prior_match_weight")
            if prior is not None:
                lines.append(f"       {'prior':<{name_w + level_w}}{prior:+8.2f}")
            for name, level, bits in rows:  # whole names and levels: a cut level reads as another
                bar = ("+" if bits >= 0 else "-") * min(30, round(abs(bits)))
                lines.append(f"       {name:<{name_w}}{level:<{level_w}}{bits:+8.2f}  {bar}")
        node = nxt
    return "\n".join(lines) + "\n"
