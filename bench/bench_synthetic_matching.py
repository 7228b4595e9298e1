"""Generated customers with households and noisy sources: the project's default ingest + relink
against plain Splink with tutorial settings, on the same records, in one run.

The generator (`identity_graph.synthetic`) makes households (family members share surname,
street, postcode and often a phone), nicknames and typos. Only person records are matched (first
and last name and a birth date or street: a CRM row, not a cookie seen with a first name), and
they come from three sources: `crm` as generated, `payroll` without birth dates, `web` with the
postcode field filled with `00000` (a form's placeholder). Scores are pairwise precision, recall
and F1 of the final clusters, and household false pairs: pairs of two different members of one
household put together (the hardest negatives, DESIGN "Matching model").

Plain Splink: the comparisons of Splink's own person-deduplication tutorials (name comparisons,
date of birth, exact postcode/street/city with term frequencies), prior from deterministic rules,
u by random sampling, EM blocked on names and on date of birth, clusters at probability 0.99.

    .venv/bin/python bench/bench_synthetic_matching.py --customers 3000
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

COLUMNS = ["first_name", "last_name", "date_of_birth", "street", "city", "postcode"]


def noisy_records(customers: int, seed: int) -> list[dict[str, Any]]:
    from identity_graph.synthetic import generate, records_for_splink

    out = []
    for i, r in enumerate(records_for_splink(generate(customers, seed))):
        if not (r["first_name"] and r["last_name"] and (r["date_of_birth"] or r["street"])):
            continue  # a person record (a CRM row), not a cookie seen with a first name
        h = hashlib.blake2b(r["unique_id"].encode(), digest_size=2).digest()[0]
        source = "payroll" if h < 64 else "web" if h < 128 else "crm"
        rec = {c: r[c] for c in COLUMNS}
        if source == "payroll":
            rec["date_of_birth"] = None
        if source == "web":
            rec["postcode"] = "00000"
        out.append({**rec, "rec_id": f"{source}-{i}", "source": source, "cluster": r["cluster"],
                    "household": r["household"]})
    return out


def run_project(records: list[dict[str, Any]], work: Path) -> tuple[dict[str, str], float]:
    from batch.ingest import Mapping_, ingest
    from batch.relink import RelinkOptions, relink
    from identity_graph.store import open_store

    path = work / "people.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["record_id", *COLUMNS])
        for r in records:
            w.writerow([r["rec_id"], *(r[c] or "" for c in COLUMNS)])
    store = open_store(str(work / "g.db"))
    try:
        ingest(store, path, Mapping_.from_dict({"source": "people", "attributes": {c: c for c in COLUMNS}}),
               progress=False)
        t0 = time.perf_counter()
        target = relink(store, options=RelinkOptions(models_dir=None, dry_run=True, progress=False,
                                                     charts=False)).target
        seconds = time.perf_counter() - t0
    finally:
        store.close()
    assert target is not None
    return {k.split("/", 1)[1]: target.ids[c] for k, c in zip(target.keys, target.component, strict=True)
            if k.startswith("source_record:")}, seconds


def tutorial_settings(unique_id: str = "unique_id") -> Any:
    """Splink's person-deduplication tutorial settings over `COLUMNS` (the plain-Splink side of
    the benchmarks)."""
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    return SettingsCreator(
        unique_id_column_name=unique_id, link_type="dedupe_only",
        blocking_rules_to_generate_predictions=[
            block_on("first_name", "last_name"), block_on("last_name", "date_of_birth"),
            block_on("first_name", "date_of_birth"), block_on("postcode")],
        comparisons=[
            cl.NameComparison("first_name"), cl.NameComparison("last_name"),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True),
            cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
            cl.ExactMatch("street").configure(term_frequency_adjustments=True),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True)])


def run_splink(records: list[dict[str, Any]]) -> tuple[dict[str, str], float]:
    import pyarrow as pa
    from splink import DuckDBAPI, Linker, block_on

    table = pa.table({c: pa.array([r[c] for r in records], pa.string()) for c in ["rec_id", *COLUMNS]})
    settings = tutorial_settings("rec_id")
    t0 = time.perf_counter()
    linker = Linker(DuckDBAPI().register(table), settings, log_level=None)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("first_name", "last_name", "date_of_birth")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("first_name", "last_name"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    pred = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, 0.99)
    out = {r["rec_id"]: str(r["cluster_id"]) for r in clusters.as_record_list()}
    return out, time.perf_counter() - t0


def main() -> None:
    from batch.quality import pairwise_scores

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    records = noisy_records(args.customers, args.seed)
    truth = {r["rec_id"]: r["cluster"] for r in records}
    household = {r["rec_id"]: r["household"] for r in records}
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print(f"customers={args.customers} records={len(records)} seed={args.seed} load={load}")
    print(f"{'system':<14}{'precision':>10}{'recall':>10}{'F1':>10}{'household false pairs':>23}"
          f"{'seconds':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        runs = [("project", run_project(records, Path(tmp))), ("plain Splink", run_splink(records))]
    for name, (predicted, seconds) in runs:
        s = pairwise_scores(predicted, truth, household)
        print(f"{name:<14}{s['precision']:>10.4f}{s['recall']:>10.4f}{s['f1']:>10.4f}"
              f"{s['household_false_pairs']:>23,}{seconds:>9.1f}")


if __name__ == "__main__":
    main()
