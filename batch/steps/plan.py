"""Step 5, plan: the target diffed against the snapshot, per unit of change.

A unit is the new customers that share any old customer, so a merge or split is always
written whole, in one change set.
"""

from __future__ import annotations

import json
from collections import defaultdict

from batch.steps.progress import progress_bar
from batch.steps.types import ACTOR, SOURCE, Plan, RelinkOptions, Snapshot, Target, Unit
from identity_graph.components import UnionFind
from identity_graph.matching.model import MatchModel
from identity_graph.model import ChangeSet, Customer, Event, Link, LinkKind

__all__ = ["plan"]


def plan(snap: Snapshot, target: Target, model: MatchModel, options: RelinkOptions) -> Plan:
    """Step 5: the difference between the snapshot and the target, as units of change."""
    bar = progress_bar("plan", 3, options.progress)
    keys, comp, ids = target.keys, target.component, target.ids
    index = {k: i for i, k in enumerate(keys)}
    # units: components joined by a shared previous customer id
    uf = UnionFind(set(comp))
    find = uf.find
    first_holder: dict[str, int] = {}
    for i, cid in enumerate(target.previous):
        if cid is None:
            continue
        c = comp[i]
        uf.union(first_holder.setdefault(cid, c), c)
    bar.update(1)

    unit_of_comp = {}
    now = snap.taken_at
    changes: dict[int, ChangeSet] = defaultdict(ChangeSet)
    # assignments
    for i, k in enumerate(keys):
        cid = ids[comp[i]]
        if target.previous[i] != cid:
            changes[find(comp[i])].assignments[k] = cid
    # links: add the target's new ones, remove active batch links it does not hold
    existing: dict[str, tuple[str, str]] = {}
    revised: dict[str, str] = {}
    """first revision's id -> the active revision's id (a batch link linked again after an unlink)"""
    for lid, a, b, kind, mv, rev in snap.con.execute(
            f"SELECT link_id, a, b, kind, model_version, revision FROM links "
            f"WHERE source = '{SOURCE}'").fetchall():
        existing[lid] = (a, b)
        if rev:
            revised[Link(a, b, LinkKind.parse(kind), source=SOURCE, model_version=mv).id] = lid
    kept = {revised[lid] for lid in target.links if lid in revised}
    n_added = n_removed = 0
    for lid, lk in target.links.items():
        if lid not in existing and revised.get(lid) not in existing:
            changes[find(comp[index[lk.a]])].links_added.append(lk)
            n_added += 1
    reason = f"replaced by relink with model {model.version}"
    ends = dict(existing)
    if target.removed:
        ends.update({lid: (a, b) for lid, a, b in snap.con.execute(
            "SELECT link_id, a, b FROM links WHERE link_id IN (SELECT unnest(?::VARCHAR[]))",
            [sorted(target.removed)]).fetchall()})
    dropped = {lid: reason for lid in existing if lid not in target.links and lid not in kept}
    dropped.update(target.removed)
    for lid, why in sorted(dropped.items()):
        a, b = ends[lid]
        i = index.get(a, index.get(b))
        if i is None:
            continue
        changes[find(comp[i])].links_removed.append((lid, now, ACTOR, why))
        n_removed += 1
    bar.update(1)
    comp_of_id = {cid: c for c, cid in ids.items()}
    for cid in sorted(target.created):
        changes[find(comp_of_id[cid])].customers_created.append(Customer(cid, now))
    out = Plan([], links_added=n_added, links_removed=n_removed)
    for survivor, retired in sorted(target.merges.items()):
        cs = changes[find(comp_of_id[survivor])]
        payload = {"survivor": survivor, "retired": retired, "actor": ACTOR,
                   "model_version": model.version}
        cs.events.append(Event("merge", payload, survivor, now))
        for r in retired:
            cs.aliases[r] = survivor
            cs.events.append(Event("alias", {"alias": r, "customer_id": survivor}, survivor, now))
        out.merges.append(payload)
    for original, others in sorted(target.splits.items()):
        keeper = comp_of_id.get(original)
        cs = changes[find(keeper if keeper is not None else comp_of_id[others[0]])]
        payload = {"original": original, "new_ids": others, "kept": original in comp_of_id,
                   "actor": ACTOR, "model_version": model.version}
        cs.events.append(Event("split", payload, original, now))
        out.splits.append(payload)
    for k in target.generic_new:
        cs = changes[find(comp[index[k]])]
        cs.generic[k] = True
        cs.events.append(Event("generic", {"key": k, "generic": True, "actor": ACTOR},
                               ids[comp[index[k]]], now))
    logged = _logged_violations(snap)
    for v in target.violations:
        if (v.kind in ("blocked", "limit", "chain", "generic", "junk") and v.key in index
                and (v.kind, v.key, v.other) not in logged):
            logged.add((v.kind, v.key, v.other))
            out.violations_logged += 1
            changes[find(comp[index[v.key]])].events.append(Event(
                "violation", {"kind": v.kind, "key": v.key, "other": v.other, "reason": v.reason,
                              "actor": ACTOR}, "", now))
    for cid in sorted(target.created):
        changes[find(comp_of_id[cid])].events.append(
            Event("customer_created", {"customer_id": cid, "actor": ACTOR}, cid, now))
    # keys of each unit, for the conflict check; only units with real changes
    dirty = {u for u, cs in changes.items() if _substantive(cs)}
    unit_keys: dict[int, list[int]] = defaultdict(list)
    for i in range(len(keys)):
        u = find(comp[i])
        if u in dirty:
            unit_keys[u].append(i)
    for u in sorted(dirty, key=lambda u: keys[unit_keys[u][0]] if unit_keys[u] else ""):
        cs = changes[u]
        members = unit_keys[u]
        unit_of_comp[u] = u
        out.units.append(Unit(sorted({comp[i] for i in members}), members, cs,
                              {keys[i]: target.previous[i] for i in members}))
        out.assignments += len(cs.assignments)
    out.customers_created = len(target.created)
    out.generic = len(target.generic_new)
    bar.update(1)
    bar.close()
    return out


def _substantive(cs: ChangeSet) -> bool:
    """A change set that writes anything, a violation event alone included: a refusal that
    changes no state (a pair refused by a limit) is still reported, once (`_logged_violations`)."""
    return any((cs.links_added, cs.links_removed, cs.customers_created, cs.assignments,
                cs.aliases, cs.generic, cs.events))


def _logged_violations(snap: Snapshot) -> set[tuple[str, str, str]]:
    """(kind, key, other) of the violations the event log holds already."""
    out = set()
    for (payload,) in snap.con.execute("SELECT payload FROM logged_violations").fetchall():
        try:
            p = json.loads(payload)
            out.add((p["kind"], p["key"], p.get("other", "")))
        except (ValueError, KeyError, TypeError):
            continue
    return out
