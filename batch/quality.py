"""Pairwise precision, recall and F1 of customers against ground truth, and generated test graphs.

Pairwise: every pair of labelled identifiers in one predicted customer is a predicted match; every
pair with the same true customer is a true match. Identifiers whose label is empty (shared by
several people: a family phone, `test@test.com`) are left out of both. Family members are the
hardest negatives (DESIGN "Matching model"), so pairs of one household wrongly merged are counted
on their own.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from identity_graph.attributes import clean_attribute
from identity_graph.errors import InvalidArgument
from identity_graph.identifiers import IdentifierTypes
from identity_graph.model import Link, LinkKind, Observation
from identity_graph.store.base import GraphStore
from identity_graph.store.tables import TABLES

if TYPE_CHECKING:
    from batch.steps.types import Target
    from identity_graph.synthetic import SyntheticData

ATTRIBUTE_NAMES = ("first_name", "last_name", "date_of_birth", "street", "city", "postcode", "country")


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def pairwise_scores(
    predicted: Mapping[str, str],
    truth: Mapping[str, str | None],
    household: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    """Pairwise P/R/F1 of `predicted` (key -> customer) against `truth` (key -> true customer).

    Returns:
        precision, recall, f1, the pair counts, and `household_false_pairs`: predicted pairs of
        two different people of one household.
    """
    # every labelled record counts, loaded or not: one that is not in the graph (rejected at
    # ingest) or not in any customer is a customer of its own, so its pairs are missed
    predicted = {**{k: f"\x00unplaced:{k}" for k in truth}, **predicted}
    keys = [k for k, t in truth.items() if t is not None]
    pred_sizes = Counter(predicted[k] for k in keys)
    true_sizes = Counter(truth[k] for k in keys)
    both = Counter((predicted[k], truth[k]) for k in keys)
    tp = sum(_pairs(n) for n in both.values())
    pp = sum(_pairs(n) for n in pred_sizes.values())
    tt = sum(_pairs(n) for n in true_sizes.values())
    precision = tp / pp if pp else 1.0
    recall = tp / tt if tt else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    out: dict[str, Any] = {
        "identifiers_evaluated": len(keys),
        "identifiers_not_placed": sum(1 for k in keys if predicted[k].startswith("\x00unplaced:")),
        "identifiers_unlabelled": sum(1 for t in truth.values() if t is None),
        "true_pairs": tt, "predicted_pairs": pp, "true_positive_pairs": tp,
        "precision": round(precision, 6), "recall": round(recall, 6), "f1": round(f1, 6),
    }
    if household is not None:
        cell = Counter((predicted[k], household.get(k)) for k in keys if household.get(k))
        same_house = sum(_pairs(n) for n in cell.values())
        same_person = Counter((predicted[k], household.get(k), truth[k]) for k in keys
                              if household.get(k))
        out["household_false_pairs"] = same_house - sum(_pairs(n) for n in same_person.values())
    return out


def read_labels(path: str | Path) -> tuple[dict[str, str | None], dict[str, str | None] | None]:
    """Ground truth from parquet or CSV with columns `key`, `cluster` and optionally `household`."""
    p = Path(path)
    if p.suffix == ".csv":
        import pyarrow.csv as pacsv

        t = pacsv.read_csv(p)
    else:
        t = pq.read_table(p)
    if "key" not in t.column_names or "cluster" not in t.column_names:
        raise InvalidArgument("labels", f"{p} needs columns key and cluster")
    keys = t.column("key").to_pylist()
    truth = dict(zip(keys, [c or None for c in t.column("cluster").to_pylist()], strict=True))
    household = None
    if "household" in t.column_names:
        household = dict(zip(keys, t.column("household").to_pylist(), strict=True))
    return truth, household


def evaluate_labels(target: Target, labels_path: str | Path) -> dict[str, Any]:
    """The relink's target customers scored against a labels file."""
    truth, household = read_labels(labels_path)
    predicted = {k: target.ids[c] for k, c in zip(target.keys, target.component, strict=True)}
    out = pairwise_scores(predicted, truth, household)
    out["labels"] = str(labels_path)
    return out


def threshold_curve(scored: Sequence[tuple[str, str, float]], truth: Mapping[str, str | None],
                    thresholds: Sequence[float]) -> list[dict[str, Any]]:
    """Pairwise precision and recall of the scored pairs `(a, b, probability)` at each threshold:
    a pair at or above it is a predicted match; recall is over every true pair of labelled
    identifiers (pairs never scored, e.g. not blocked together, count as missed)."""
    groups = Counter(v for v in truth.values() if v)
    total = sum(_pairs(n) for n in groups.values())
    labelled = [(p, truth[a] == truth[b]) for a, b, p in scored if truth.get(a) and truth.get(b)]
    out = []
    for t in sorted(thresholds):
        tp = sum(1 for p, same in labelled if p >= t and same)
        fp = sum(1 for p, same in labelled if p >= t and not same)
        out.append({"threshold": t, "predicted_pairs": tp + fp,
                    "precision": tp / (tp + fp) if tp + fp else None,
                    "recall": tp / total if total else None})
    return out


def _link_dict(lk: Link) -> dict[str, Any]:
    return {"a": lk.a, "b": lk.b, "kind": lk.kind.label, "source": lk.source,
            "probability": lk.probability, "model_version": lk.model_version}


def _joining_link(links: Sequence[Link], truth: Mapping[str, str | None]) -> Link | None:
    """The link that first joins two labelled people when the links are added strongest first
    (by kind, then probability): the weakest link of the strongest path between them."""
    parent: dict[str, str] = {}
    people: dict[str, set[str]] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for lk in sorted(links, key=lambda lk: (lk.kind, 1.0 if lk.probability is None else lk.probability),
                     reverse=True):
        ra, rb = find(lk.a), find(lk.b)
        if ra == rb:
            continue
        pa = people.setdefault(ra, {truth[lk.a]} if truth.get(lk.a) else set())
        pb = people.setdefault(rb, {truth[lk.b]} if truth.get(lk.b) else set())
        if pa and pb and pa != pb:
            return lk
        parent[rb] = ra
        people[ra] = pa | pb
    return None


def error_samples(target: Target, truth: Mapping[str, str | None], links: Sequence[Link],
                  scored: Sequence[tuple[str, str, float]], samples: int) -> dict[str, list[dict[str, Any]]]:
    """Samples of false merges and false splits, each with the link that caused it.

    A false merge is a customer holding identifiers of two or more labelled people; its cause is
    the weakest link the target holds between two of them (`links`: every link of the target,
    deterministic and scored). A false split is a labelled person spread over several customers;
    its cause is the strongest scored pair between two of the parts (under the link threshold,
    or set apart by a rule), or none when no pair between them was scored (not blocked together).
    """
    comp = dict(zip(target.keys, target.component, strict=True))
    people_of: dict[int, set[str]] = {}
    parts_of: dict[str, set[int]] = {}
    for k, c in comp.items():
        person = truth.get(k)
        if person:
            people_of.setdefault(c, set()).add(person)
            parts_of.setdefault(person, set()).add(c)
    merged = {c for c, people in people_of.items() if len(people) > 1}
    shown = sorted(merged, key=lambda c: (-len(people_of[c]), target.ids[c]))[:samples]
    inside: dict[int, list[Link]] = {c: [] for c in shown}
    for lk in links:
        c = comp.get(lk.a)
        if c in inside and comp.get(lk.b) == c:
            inside[c].append(lk)
    false_merges = []
    for c in shown:
        lk = _joining_link(inside[c], truth)
        false_merges.append({
            "customer_id": target.ids[c], "people": len(people_of[c]),
            "identifiers": sorted(k for k, cc in comp.items() if cc == c)[:12],
            "link": _link_dict(lk) if lk else None})
    split = {p for p, parts in parts_of.items() if len(parts) > 1}
    best: dict[str, tuple[str, str, float]] = {}
    for a, b, p in scored:
        person = truth.get(a)
        if person in split and truth.get(b) == person and comp.get(a) != comp.get(b) \
                and (person not in best or p > best[person][2]):
            best[person] = (a, b, p)
    false_splits = []
    for person in sorted(split, key=lambda p: (-len(parts_of[p]), p))[:samples]:
        pair = best.get(person)
        false_splits.append({
            "person": person, "customers": sorted(target.ids[c] for c in parts_of[person]),
            "identifiers": sorted(k for k, v in truth.items() if v == person and k in comp)[:12],
            "link": ({"a": pair[0], "b": pair[1], "probability": pair[2],
                      "why": "scored under the link threshold, or kept apart by a rule"}
                     if pair else None)})
    return {"false_merges": false_merges, "false_splits": false_splits}


def evaluate_store(store: GraphStore, truth: Mapping[str, str | None],
                   household: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """The store's current customers scored against `truth`."""
    ids = store.export_tables()["identifiers"]
    predicted = {k: c for k, c in zip(ids.column("key").to_pylist(),
                                      ids.column("customer_id").to_pylist(), strict=True) if c}
    return pairwise_scores(predicted, truth, household)


# ==== generated graphs =============================================================================


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def synthetic_tables(data: SyntheticData, region: str = "US") -> dict[str, pa.Table]:
    """A generated data set as store tables: the history a graph would hold before any relink.

    Identifiers with their observations; `observed` links between the identifiers of one event
    (`verified` for a login), `equivalent` between a WhatsApp id and its phone, and `observed`
    links from each source-system row to its email and phone. No customers yet.
    """
    types = IdentifierTypes(region)
    obs_rows: dict[str, dict[str, Any]] = {}
    seen: dict[str, list[datetime]] = {}
    for o in data.observations:
        key = o["identifier"]
        at = _ts(o["observed_at"])
        span = seen.setdefault(key, [at, at])
        span[0], span[1] = min(span[0], at), max(span[1], at)
        for name in ATTRIBUTE_NAMES:
            raw = o.get(name)
            if not raw:
                continue
            try:
                value = clean_attribute(name, raw)
            except InvalidArgument:
                continue
            if value:
                ob = Observation(key, name, value, o["channel"], o["channel"], at)
                obs_rows.setdefault(ob.id, {
                    "id": ob.id, "key": key, "attribute": name, "value": value,
                    "source": o["channel"], "channel": o["channel"], "observed_at": at})
    ident_rows = []
    for ident in data.identifiers:
        first, last = seen.get(ident["key"], [_ts("2024-01-01T00:00:00")] * 2)
        ident_rows.append({"key": ident["key"], "type": ident["type"], "value": ident["value"],
                           "first_seen": first, "last_seen": last, "customer_id": None,
                           "generic": False})
    known = {r["key"] for r in ident_rows}
    links: dict[str, Link] = {}

    def add(a: str, b: str, kind: LinkKind, source: str, event_id: str, at: datetime) -> None:
        if a != b and a in known and b in known:
            lk = Link(a, b, kind, source=source, channel=source, event_id=event_id,
                      created_at=at, actor=source)
            links.setdefault(lk.id, lk)

    for ev in data.events:
        keys = []
        for i in ev["identifiers"]:
            try:
                keys.append(types.make(i["type"], i["value"]).key)
            except InvalidArgument:
                continue
        at = _ts(ev["occurred_at"])
        for k in keys[1:]:
            kind = LinkKind.VERIFIED if ev.get("verified") else LinkKind.OBSERVED
            add(keys[0], k, kind, ev["channel"], ev["event_id"], at)
    for key in known:
        if key.startswith("whatsapp:"):
            add(key, "phone:" + key.partition(":")[2], LinkKind.EQUIVALENT, "equivalence", "",
                _ts("2024-01-01T00:00:00"))
    for row in data.source_rows:
        rec = row["identifier"]
        for t in ("email", "phone"):
            if row.get(t):
                try:
                    other = types.make(t, row[t]).key
                except InvalidArgument:
                    continue
                add(rec, other, LinkKind.OBSERVED, row["source"], rec, _ts("2024-01-01T00:00:00"))
    link_rows = [{
        "link_id": lk.id, "a": lk.a, "b": lk.b, "kind": lk.kind.label, "source": lk.source,
        "channel": lk.channel, "event_id": lk.event_id, "model_version": "", "probability": None,
        "match_weight": None, "comparisons": None, "created_at": lk.created_at, "actor": lk.actor,
        "removed_at": None, "removed_by": "", "removal_reason": ""} for lk in links.values()]
    return {
        "identifiers": pa.Table.from_pylist(ident_rows, schema=TABLES["identifiers"]),
        "observations": pa.Table.from_pylist(list(obs_rows.values()), schema=TABLES["observations"]),
        "links": pa.Table.from_pylist(link_rows, schema=TABLES["links"]),
        "customers": TABLES["customers"].empty_table(),
        "aliases": TABLES["aliases"].empty_table(),
        "events": TABLES["events"].empty_table(),
    }


def labels_table(data: SyntheticData) -> pa.Table:
    household = {c["customer_id"]: c["household_id"] for c in data.customers}
    keys = [i["key"] for i in data.identifiers]
    clusters = [i["customer_id"] for i in data.identifiers]
    return pa.table({
        "key": pa.array(keys, pa.string()),
        "cluster": pa.array(clusters, pa.string()),
        "household": pa.array([household.get(c) if c else None for c in clusters], pa.string()),
    })


def load_synthetic(store: GraphStore, n_customers: int, seed: int,
                   labels_out: str | Path | None = None,
                   generator_config: Any = None) -> SyntheticData:
    """Generates `n_customers` and bulk-loads them into an empty `store`; writes the labels."""
    from identity_graph.synthetic import generate

    data = generate(n_customers, seed, generator_config)
    tables = synthetic_tables(data)
    with tempfile.TemporaryDirectory() as tmp:
        for name, table in tables.items():
            pq.write_table(table, Path(tmp) / f"{name}.parquet")
        store.load_parquet(tmp)
    if labels_out:
        pq.write_table(labels_table(data), labels_out)
    return data


def true_labels(data: SyntheticData) -> tuple[dict[str, str | None], dict[str, str | None]]:
    household = {c["customer_id"]: c["household_id"] for c in data.customers}
    truth = {i["key"]: i["customer_id"] for i in data.identifiers}
    return truth, {k: household.get(c) if c else None for k, c in truth.items()}


__all__: Sequence[str] = [
    "evaluate_labels",
    "evaluate_store",
    "labels_table",
    "load_synthetic",
    "pairwise_scores",
    "read_labels",
    "synthetic_tables",
    "true_labels",
]
