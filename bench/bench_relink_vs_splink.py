"""The project's relink end to end against plain Splink train + predict + cluster on the same
records, in one run (issue 10 item 7): seconds per step and peak memory.

    .venv/bin/python bench/bench_relink_vs_splink.py --customers 174000   # ~1M identifiers

Generates the data set once (SQLite, the generator of `batch.quality.load_synthetic`), then runs
each side in its own process so that each peak (VmHWM) is its own:
- project: `relink` on a copy of the store, as `identity-batch relink` runs it (snapshot →
  records → train → predict → rules/cluster → plan → apply), timed per step by the relink itself;
- records: the relink's own snapshot + record SQL, written to parquet (so plain Splink scores
  exactly the records the project scores; not counted on Splink's side);
- plain Splink: the person-deduplication tutorial settings of `bench_synthetic_matching` (name
  comparisons, date of birth, exact postcode / street / city with term frequencies), prior from a
  deterministic rule, u by random sampling (1M pairs), EM blocked on names and on date of birth,
  predict at 0.5, clusters at 0.99, on DuckDB.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

def _hwm_mb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return 0


def write_records(db: str, out: str) -> dict:
    """The relink's records of `db` (its snapshot and record SQL) as parquet."""
    from batch.relink import RelinkOptions, build_records, snapshot
    from identity_graph.store import open_store

    t = time.perf_counter()
    with open_store(db) as store:
        snap = snapshot(store, RelinkOptions(models_dir=None, progress=False, charts=False))
    n = build_records(snap)
    snap.con.execute(f"COPY records TO '{out}' (FORMAT parquet)")
    return {"records": n, "seconds": round(time.perf_counter() - t, 1)}


def plain_splink(records: str) -> dict:
    import duckdb
    from bench_synthetic_matching import COLUMNS as SPLINK_COLUMNS
    from bench_synthetic_matching import tutorial_settings
    from splink import DuckDBAPI, Linker, block_on

    logging.basicConfig(level=logging.ERROR)
    con = duckdb.connect()
    cols = ", ".join(f"CAST({c} AS VARCHAR) AS {c}" for c in SPLINK_COLUMNS)
    con.execute(f"CREATE TABLE people AS SELECT CAST(unique_id AS VARCHAR) AS unique_id, {cols} "
                f"FROM read_parquet('{records}')")
    settings = tutorial_settings()
    steps = {}
    t = time.perf_counter()
    linker = Linker(DuckDBAPI().register(con.table("people").fetch_arrow_table()), settings)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("first_name", "last_name", "date_of_birth")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("first_name", "last_name"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    steps["train"] = time.perf_counter() - t
    t = time.perf_counter()
    pred = linker.inference.predict(threshold_match_probability=0.5)
    n_pairs = pred.as_duckdbpyrelation().aggregate("count(*)").fetchall()[0][0]
    steps["predict"] = time.perf_counter() - t
    t = time.perf_counter()
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, 0.99)
    n_clusters = clusters.as_duckdbpyrelation().aggregate("count(DISTINCT cluster_id)").fetchall()[0][0]
    steps["cluster"] = time.perf_counter() - t
    return {"steps": {k: round(v, 1) for k, v in steps.items()}, "total": round(sum(steps.values()), 1),
            "pairs_at_0_5": n_pairs, "clusters": n_clusters, "peak_mb": _hwm_mb()}


def project(db: str, work: str) -> dict:
    from bench_spark_relink import run_one

    out = run_one("duckdb", db, work, "1g", 8)
    return {"steps": {k: round(v, 1) for k, v in out["steps"].items()}, "total": out["relink_s"],
            "pairs_kept": out["pairs_kept"], "records": out["records"], "peak_mb": out["python_peak_mb"]}


def _child(*args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=int, default=17_400)
    ap.add_argument("--seed", type=int, default=20261205)
    ap.add_argument("--child", choices=("records", "splink", "project"), help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "records":
        print(json.dumps(write_records(args.db, args.out)))
        return
    if args.child == "splink":
        print(json.dumps(plain_splink(args.out)))
        return
    if args.child == "project":
        print(json.dumps(project(args.db, args.out)))
        return

    from batch.quality import load_synthetic
    from identity_graph.store import open_store

    work = tempfile.mkdtemp(prefix="bench-vs-splink-")
    try:
        base = os.path.join(work, "base.db")
        t = time.perf_counter()
        with open_store(base) as store:
            load_synthetic(store, args.customers, seed=args.seed)
            n_ids = store.export_tables()["identifiers"].num_rows
        print(f"{args.customers} customers, {n_ids:,} identifiers (generated in "
              f"{time.perf_counter() - t:.0f} s); load {Path('/proc/loadavg').read_text().split()[:3]}",
              flush=True)
        parquet = os.path.join(work, "records.parquet")
        rec = _child("--child", "records", "--db", base, "--out", parquet)
        print(f"records: {rec['records']:,} written in {rec['seconds']} s", flush=True)
        splink = _child("--child", "splink", "--out", parquet)
        print("plain Splink:", json.dumps(splink), flush=True)
        db = os.path.join(work, "project.db")
        shutil.copy(base, db)
        mine = _child("--child", "project", "--db", db, "--out", work)
        print("project:", json.dumps(mine), flush=True)
        print(f"load {Path('/proc/loadavg').read_text().split()[:3]}")
        print(f"\n{'':<34}{'project':>10}{'plain Splink':>14}")
        core = sum(mine["steps"].get(s, 0) for s in ("model", "predict", "cluster"))
        print(f"{'train + predict + cluster (s)':<34}{core:>10.1f}{splink['total']:>14.1f}"
              f"   ratio {core / splink['total']:.2f}")
        print(f"{'end to end (s)':<34}{mine['total']:>10.1f}{splink['total']:>14.1f}"
              f"   ratio {mine['total'] / splink['total']:.2f}")
        print(f"{'peak memory (MB)':<34}{mine['peak_mb']:>10}{splink['peak_mb']:>14}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
