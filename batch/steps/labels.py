"""The graph's own evidence as labels: pairs joined by verified/equivalent links.

Training takes them for the m-probabilities (`batch.steps.model`); the threshold step scores
the predicted pairs against them (`batch.steps.threshold`).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

from batch.components import labels as component_labels
from batch.steps.types import RelinkOptions, Snapshot

__all__ = ["label_pairs", "labelled_truth"]


def label_pairs(snap: Snapshot, limit: int) -> list[tuple[str, str]]:
    """Pairs of attribute-carrying identifiers joined by verified/equivalent links (labels for m)."""
    con = snap.con
    nodes = con.execute("""
        SELECT key FROM (SELECT a AS key FROM links WHERE kind IN ('verified', 'equivalent')
                         UNION SELECT b FROM links WHERE kind IN ('verified', 'equivalent'))
        ORDER BY key""").fetchall()
    if not nodes:
        return []
    index = {k: i for i, (k,) in enumerate(nodes)}
    edges = con.execute("SELECT a, b FROM links WHERE kind IN ('verified', 'equivalent')").fetchall()
    lab = component_labels(len(index), [index[a] for a, _ in edges], [index[b] for _, b in edges])
    has_record = {k for (k,) in con.execute(
        "SELECT unique_id FROM records WHERE unique_id IN (SELECT a FROM links "
        "WHERE kind IN ('verified','equivalent') UNION SELECT b FROM links "
        "WHERE kind IN ('verified','equivalent'))").fetchall()}
    groups: dict[int, list[str]] = defaultdict(list)
    for (k,), g in zip(nodes, lab, strict=True):
        if k in has_record:
            groups[int(g)].append(k)
    pairs = []
    for members in groups.values():
        for other in members[1:]:
            pairs.append((members[0], other))
    pairs.sort(key=lambda p: hashlib.blake2b(f"{p[0]}\x1f{p[1]}".encode(), digest_size=8).digest())
    return pairs[:limit]


def labelled_truth(snap: Snapshot, options: RelinkOptions) -> tuple[dict[str, str], str]:
    """key -> true person, from `--labels`, else from the graph's verified/equivalent links
    (identifiers in one such component are one person; two components, two people)."""
    if options.labels_path:
        from batch.quality import read_labels

        truth, _ = read_labels(options.labels_path)
        return {k: str(v) for k, v in truth.items() if v is not None}, "labels file"
    out: dict[str, str] = {}
    pairs = label_pairs(snap, 1_000_000)
    if not pairs:
        return out, "verified/equivalent links"
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for a, b in pairs:  # _label_pairs gives star pairs per component: one root each
        parent[b] = a
        parent.setdefault(a, a)
    for k in parent:
        out[k] = root(k)
    return out, "verified/equivalent links"
