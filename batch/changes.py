"""What a relink changes, counted the way a person asks: identifiers and customers, not link rows.

A new model version replaces every batch link (a link's id includes its model version), so the
plan's `links_added` / `links_removed` are about the size of the graph even when almost nothing
moves. Here links are compared by their pair: a pair linked before and after with the same kind
is only *re-scored*; the rest are pairs newly linked, unlinked, or whose kind changed.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batch.steps.types import Plan, Snapshot, Target

__all__ = ["change_counts"]


def change_counts(snap: Snapshot, target: Target, plan: Plan) -> dict[str, Any]:
    """Identifiers that change customer, customers whose members change, and links by pair."""
    before: dict[str, set[str]] = defaultdict(set)
    after: dict[str, set[str]] = defaultdict(set)
    moved = assigned = 0
    for key, prev, c in zip(target.keys, target.previous, target.component, strict=True):
        now = target.ids[c]
        after[now].add(key)
        if prev is None:
            assigned += 1
        else:
            before[prev].add(key)
            moved += prev != now
    changed = sum(1 for cid, members in after.items() if before.get(cid) != members)
    retired = sum(1 for cid in before if cid not in after)

    added: dict[tuple[str, str], str] = {}
    removed_ids: list[str] = []
    for unit in plan.units:
        for lk in unit.changes.links_added:
            added[(lk.a, lk.b)] = lk.kind.label
        removed_ids.extend(r[0] for r in unit.changes.links_removed)
    removed: dict[tuple[str, str], str] = {}
    if removed_ids:
        for a, b, kind in snap.con.execute(
                "SELECT a, b, kind FROM links WHERE link_id IN (SELECT unnest(?::VARCHAR[]))",
                [removed_ids]).fetchall():
            removed[(a, b)] = kind
    both = added.keys() & removed.keys()
    same = sum(1 for p in both if added[p] == removed[p])
    return {
        "identifiers_moved": moved,
        "identifiers_assigned": assigned,
        "customers_changed": changed,
        "customers_retired": retired,
        "pairs_linked": len(added.keys() - removed.keys()),
        "pairs_unlinked": len(removed.keys() - added.keys()),
        "pairs_kind_changed": len(both) - same,
        "pairs_rescored": same,
    }
