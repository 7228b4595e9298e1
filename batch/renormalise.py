"""One-off re-normalisation: stored identifier keys checked against today's normalisers.

Normalisers change: e-mail domains moved from IDNA 2003 to UTS #46 / IDNA 2008, `phonenumbers`
updates its metadata, a deployment fixes a custom normaliser. A stored key then differs from the
key the same raw value makes today, so a caller presenting it again would get a new identifier.
`renormalise` finds those keys and, unless it is a dry run, gives each its current form: the
current key is added to the old key's customer with an `equivalent` link (the same address by
definition, DESIGN "Links"), so conversations, links and history anchored at the old key stay
where they are and both forms resolve to one customer. Nothing is renamed or deleted.

Left to an operator, and reported: keys that no longer normalise at all (e.g. a symbol domain
that IDNA 2008 disallows; `AdminService.Forget` removes one), and keys whose current form already
belongs to another customer or would break a per-type limit (joining them is a merge: use
`IdentityService.Link` with real evidence).

What cannot be found from a key: IDNA 2003 stored `straße.de` as `strasse.de`, so such a key
stays valid and unchanged; the next `straße.de` presented is a new identifier.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from identity_graph.config import GraphConfig
from identity_graph.errors import InvalidArgument
from identity_graph.guardrails import limit_violation, type_counts
from identity_graph.identifiers import IdentifierTypes
from identity_graph.model import ChangeSet, Event, IdentifierUpsert, Link, LinkKind, utcnow
from identity_graph.store import GraphStore

SOURCE = "renormalise"
ACTOR = "identity-batch"


@dataclass
class Renormalisation:
    """What a run found and did; keys only, in key order."""

    checked: int = 0
    changed: list[tuple[str, str]] = field(default_factory=list)
    """(stored key, key under the current rules)"""
    invalid: list[tuple[str, str]] = field(default_factory=list)
    """(stored key, why it no longer normalises)"""
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    """(stored key, current key, why it was left for an operator)"""
    applied: list[tuple[str, str]] = field(default_factory=list)
    """(stored key, current key) written by this run"""
    done: list[tuple[str, str]] = field(default_factory=list)
    """(stored key, current key) that an earlier run already joined"""

    def as_dict(self) -> dict[str, object]:
        return {
            "checked": self.checked,
            "changed": [{"stored": a, "current": b} for a, b in self.changed],
            "invalid": [{"stored": a, "reason": r} for a, r in self.invalid],
            "skipped": [{"stored": a, "current": b, "reason": r} for a, b, r in self.skipped],
            "applied": [{"stored": a, "current": b} for a, b in self.applied],
            "done": [{"stored": a, "current": b} for a, b in self.done],
        }


def stale_keys(store: GraphStore, types: IdentifierTypes) -> Renormalisation:
    """Every stored key normalised again; those that differ or fail, without writing anything."""
    ids = store.export_tables()["identifiers"].select(["key"]).to_pylist()
    out = Renormalisation(checked=len(ids))
    for row in sorted(ids, key=lambda r: r["key"]):
        key = row["key"]
        try:
            current = types.parse(key).key
        except InvalidArgument as e:
            out.invalid.append((key, e.reason))
            continue
        if current != key:
            out.changed.append((key, current))
    return out


def renormalise(store: GraphStore, config: GraphConfig | None = None, types: IdentifierTypes | None = None,
                *, dry_run: bool = True) -> Renormalisation:
    """Finds stale keys (`stale_keys`) and, unless `dry_run`, adds each one's current form to its
    customer with an `equivalent` link, one transaction per key. Re-running changes nothing more.

    Args:
        store: either backend; only its public interface is used.
        config: per-type limits (a current key that would break one is skipped).
        types: today's normalisers (default: the config's region).
        dry_run: report only.
    """
    config = config or GraphConfig()
    types = types or IdentifierTypes(config.default_region)
    out = stale_keys(store, types)
    for old, new in out.changed:
        reason = _blocker(store, config, old, new)
        if reason:
            out.skipped.append((old, new, reason))
            continue
        changes = _equivalence(store, old, new, types)
        if not changes:
            out.done.append((old, new))
        elif not dry_run:
            store.apply(changes)
            out.applied.append((old, new))
    return out


def _blocker(store: GraphStore, config: GraphConfig, old: str, new: str) -> str | None:
    nodes = store.get_identifiers([old, new])
    cid = nodes[old].customer_id if old in nodes else None
    if new in nodes:
        other = nodes[new].customer_id
        if other != cid:
            return f"{new} already belongs to {other}; joining it to {cid} is a merge, not a re-normalisation"
        return None
    if cid and (reason := limit_violation(config.limits, type_counts([*store.members(cid), new]))):
        return reason
    return None


def _equivalence(store: GraphStore, old: str, new: str, types: IdentifierTypes) -> ChangeSet:
    """The current key (if absent) in the old key's customer, and the `equivalent` link."""
    now = utcnow()
    node = store.get_identifier(old)
    cid = node.customer_id if node else None
    cs = ChangeSet()
    if store.get_identifier(new) is None:
        ident = types.parse(new)
        cs.identifiers.append(IdentifierUpsert(new, ident.type, ident.value, now))
        if cid:
            cs.assignments[new] = cid
    a, b = sorted((old, new))
    link = Link(a, b, LinkKind.EQUIVALENT, source=SOURCE, created_at=now, actor=ACTOR)
    if not any(lk.id == link.id for lk in store.links([old])):
        cs.links_added.append(link)
        cs.events.append(Event("link", {"link_id": link.id, "a": a, "b": b, "kind": link.kind.label,
                                        "source": SOURCE, "actor": ACTOR}, cid or "", now))
    return cs
