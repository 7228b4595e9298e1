"""Where the default model's pairwise errors are: each false negative and false positive pair of
`ingest` + `relink` on FEBRL3/FEBRL4 or the synthetic households, with the comparison levels the
model gave it (or "not blocked") and the two records side by side.

    .venv/bin/python bench/matching_errors.py --data febrl3 [--show 40]
    .venv/bin/python bench/matching_errors.py --data synthetic --customers 3000
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import sys
import tempfile
from collections import Counter, defaultdict
from itertools import combinations
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))


def _load(name: str, work: Path, customers: int, seed: int) -> tuple[Any, dict[str, str], dict]:
    """An ingested store, truth (record id → person) and household (record id → household)."""
    from batch.ingest import Mapping_, ingest
    from identity_graph.store import open_store

    store = open_store(str(work / "graph.db"))
    if name.startswith("febrl"):
        import bench_febrl as bf

        data = bf.febrl(name)
        for source, rows in data.items():
            path = work / f"{source}.csv"
            with path.open("w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["record_id", *bf.ATTRIBUTES])
                for r in rows:
                    street = " ".join(x for x in (r["street_number"], r["address_1"]) if x)
                    w.writerow([r["rec_id"], *(street if c == "street" else r[c] for c in bf.ATTRIBUTES)])
            ingest(store, path, Mapping_.from_dict({"source": source, "attributes": bf.ATTRIBUTES}),
                   progress=False)
        truth = {r["rec_id"]: bf.person(r["rec_id"]) for rows in data.values() for r in rows}
        return store, truth, {}
    import bench_synthetic_matching as bs

    records = bs.noisy_records(customers, seed)
    path = work / "people.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["record_id", *bs.COLUMNS])
        for r in records:
            w.writerow([r["rec_id"], *(r[c] or "" for c in bs.COLUMNS)])
    ingest(store, path, Mapping_.from_dict({"source": "people", "attributes": {c: c for c in bs.COLUMNS}}),
           progress=False)
    return store, {r["rec_id"]: r["cluster"] for r in records}, \
        {r["rec_id"]: r["household"] for r in records}


def main() -> None:
    from batch import relink as rl
    from identity_graph.config import GraphConfig

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="febrl3", choices=["febrl3", "febrl4", "synthetic"])
    ap.add_argument("--customers", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--show", type=int, default=30)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        store, truth, household = _load(args.data, Path(tmp), args.customers, args.seed)
        options = rl.RelinkOptions(models_dir=None, dry_run=True, progress=False, charts=False)
        config = GraphConfig()
        snap = rl.snapshot(store, options)
        rl.build_records(snap)
        model, _ = rl.get_model(snap, options)
        import math

        print(f"prior {model.settings.get('probability_two_random_records_match'):.3g}")
        for cc in model.settings["comparisons"]:
            print(f"  {cc['output_column_name']}: " + "; ".join(
                f"{lv.get('label_for_charts') or lv['sql_condition'][:40]} "
                f"{math.log2(lv['m_probability'] / lv['u_probability']):+.1f}"
                for lv in cc["comparison_levels"] if not lv.get("is_null_level")))
        info = rl.predict(snap, model, config, options)
        threshold, tinfo = rl.choose_threshold(snap, config, options)
        target = rl.cluster(snap, model, dataclasses.replace(config, link_threshold=threshold), options)
        recs = {r["unique_id"].split("/", 1)[1]: r for r in
                snap.con.sql("SELECT * FROM records").to_arrow_table().to_pylist()}
        pairs = {(a.split("/", 1)[1], b.split("/", 1)[1]): (p, w, c) for a, b, p, w, c in
                 snap.con.execute("SELECT a, b, probability, match_weight, comparisons FROM pairs")
                 .fetchall()}
        print("guardrail violations:", Counter(v.kind for v in target.violations))
        snap.close()
        store.close()
    pred = {k.split("/", 1)[1]: target.ids[c] for k, c in zip(target.keys, target.component, strict=True)
            if k.startswith("source_record:")}
    print(f"threshold {threshold} ({tinfo.get('source', '')}); pairs scored {info.get('pairs_scored')}")
    print("blocking:", json.dumps(info.get("blocking", {}).get("rules"), default=str)[:2000])
    by_person: dict[str, list[str]] = defaultdict(list)
    for k, p in truth.items():
        if p is not None:  # a shared identifier's record: nobody's (as batch.quality scores)
            by_person[p].append(k)
    fn = [(a, b) for ks in by_person.values() for a, b in combinations(sorted(ks), 2)
          if pred.get(a, a) != pred.get(b, b)]
    by_cluster: dict[str, list[str]] = defaultdict(list)
    for k, p in truth.items():
        if p is not None:
            by_cluster[pred.get(k, k)].append(k)
    fp = [(a, b) for ks in by_cluster.values() for a, b in combinations(sorted(ks), 2)
          if truth[a] != truth[b]]
    cols = [c for c in next(iter(recs.values())) if c != "unique_id"]

    from identity_graph.guardrails import DEFAULT_SIMILARITY, Profile

    def different(a: str, b: str) -> bool:
        return DEFAULT_SIMILARITY.clearly_different(Profile.of([recs.get(a, {})]),
                                                    Profile.of([recs.get(b, {})]))

    def show(kind: str, items: list[tuple[str, str]]) -> None:
        why: Counter[str] = Counter()
        levels: Counter[str] = Counter()
        for a, b in items:
            s = pairs.get((a, b)) or pairs.get((b, a))
            if s is None:
                why["not blocked / below review threshold"] += 1
            else:
                why[f"scored {'>=' if s[0] >= threshold else '<'} threshold"] += 1
                levels[s[2]] += 1
                if s[0] >= threshold and different(a, b):
                    why["scored >= threshold, names and birth dates clearly different"] += 1
            if household and truth[a] != truth[b] and household.get(a) == household.get(b):
                why["same household"] += 1
            ra, rb = recs.get(a, {}), recs.get(b, {})
            if not any(ra.get(c) and rb.get(c) for c in cols
                       if c not in ("first_name", "last_name")):
                why["no field but the names given on both sides"] += 1
        print(f"\n== {kind}: {len(items)} pairs: {dict(why)}")
        for lv, n in levels.most_common(8):
            print(f"   {n:5d} x {lv}")
        def rank(p: tuple[str, str]) -> int:
            s = pairs.get(p) or pairs.get((p[1], p[0]))
            return 0 if s is None else 1 if s[0] < threshold else 2
        for a, b in sorted(items, key=rank)[: args.show]:
            s = pairs.get((a, b)) or pairs.get((b, a))
            ra, rb = recs.get(a, {}), recs.get(b, {})
            print(f"-- {a} | {b}: " + (f"p={s[0]:.4f} w={s[1]:.1f} {s[2]}" if s else "not scored"))
            for c in cols:
                va, vb = ra.get(c), rb.get(c)
                if va or vb:
                    print(f"     {c:<14}{'=' if va == vb else '≠'} {va!s:<28}{vb!s}")

    show("false negatives (true pairs split)", fn)
    show("false positives (pairs wrongly merged)", fp)


if __name__ == "__main__":
    main()
