"""The nightly relink on Spark local[2] against DuckDB, in one run: seconds per step, peak memory.

    python bench/bench_spark_relink.py --customers 20000
    python bench/bench_spark_relink.py --customers 174000 --spark-customers 35000

Generates the data set once (SQLite), copies it, then relinks each copy in its own process (so
each engine's peak memory is its own): DuckDB first, then Spark (local[2], driver memory as
given). With `--spark-customers`, DuckDB also runs alone at `--customers` and both engines run
at the smaller size (Spark at the full size takes too long on a shared 2-core machine). Both
train their model on the snapshot. Peak memory is the high-water mark (VmHWM) of the Python
process and, for Spark, of its JVM. Prints a JSON line per engine and a table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _hwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_one(engine: str, db: str, work: str, driver_memory: str, partitions: int) -> dict:
    from batch.relink import RelinkOptions, relink
    from identity_graph.store import open_store

    options = RelinkOptions(models_dir=str(Path(work) / f"models-{engine}"), progress=False,
                            charts=False, work_dir=None)
    jvm_peak = [0.0]
    spark = None
    eng = None
    t0 = time.perf_counter()
    if engine == "spark":
        from batch.engines.spark import SparkEngine, log_to_file, spark_session

        spark = spark_session("local[2]", {
            "spark.driver.memory": driver_memory, "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": str(partitions),
            **log_to_file(Path(work) / "spark.log")})
        jvm_pid = spark.sparkContext._gateway.proc.pid
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.5):
                jvm_peak[0] = max(jvm_peak[0], _hwm_mb(jvm_pid))

        threading.Thread(target=sample, daemon=True).start()
        eng = SparkEngine(spark, str(Path(work) / "ckpt"), partitions=partitions)
    startup = time.perf_counter() - t0
    with open_store(db) as store:
        t = time.perf_counter()
        result = relink(store, options=options, engine=eng)
        total = time.perf_counter() - t
    if spark is not None:
        jvm_peak[0] = max(jvm_peak[0], _hwm_mb(spark.sparkContext._gateway.proc.pid))
        stop.set()
    out = {
        "engine": engine,
        "records": result.report["counts"]["records_compared"],
        "pairs_kept": result.report["counts"]["pairs_above_review_threshold"],
        "steps": result.report["run"]["step_seconds"],
        "engine_steps": dict(eng.seconds) if eng is not None else {},
        "session_start_s": round(startup, 1),
        "relink_s": round(total, 1),
        "python_peak_mb": round(_hwm_mb(os.getpid())),
        "jvm_peak_mb": round(jvm_peak[0]),
    }
    if spark is not None:
        spark.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--spark-customers", type=int, help="Spark (and DuckDB again) at this size")
    ap.add_argument("--seed", type=int, default=20261205)
    ap.add_argument("--driver-memory", default="4g")
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--one", choices=("duckdb", "spark"), help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.db, args.work, args.driver_memory, args.partitions)))
        return


    work = tempfile.mkdtemp(prefix="bench-spark-")
    try:
        runs = [(args.customers, ("duckdb",) if args.spark_customers else ("duckdb", "spark"))]
        if args.spark_customers:
            runs.append((args.spark_customers, ("duckdb", "spark")))
        for customers, engines in runs:
            bench_size(args, work, customers, engines)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench_size(args: argparse.Namespace, work: str, customers: int, engines: tuple[str, ...]) -> None:
    from batch.quality import load_synthetic
    from identity_graph.store import open_store

    base = Path(work) / f"base-{customers}.db"
    t = time.perf_counter()
    with open_store(str(base)) as store:
        load_synthetic(store, customers, seed=args.seed)
        n_ids = store.export_tables()["identifiers"].num_rows
    print(f"\n== {customers} customers, {n_ids} identifiers (generated in "
          f"{time.perf_counter() - t:.0f}s)", flush=True)
    results = []
    for engine in engines:
        db = Path(work) / f"{engine}.db"
        shutil.copy(base, db)
        out = subprocess.run(
            [sys.executable, __file__, "--one", engine, "--db", str(db), "--work", work,
             "--driver-memory", args.driver_memory, "--partitions", str(args.partitions)],
            capture_output=True, text=True, check=False)
        if out.returncode:
            print(f"{engine} failed:\n{out.stderr[-3000:]}", flush=True)
            continue
        line = out.stdout.strip().splitlines()[-1]
        print(line, flush=True)
        results.append(json.loads(line))
    print(f"load average: {Path('/proc/loadavg').read_text().split()[:3]}")
    if not results:
        return
    steps = list(results[0]["steps"])
    print(f"{'step':<10}" + "".join(f"{r['engine']:>12}" for r in results))
    for s in steps:
        print(f"{s:<10}" + "".join(f"{r['steps'].get(s, 0):>12.1f}" for r in results))
    print(f"{'total':<10}" + "".join(f"{r['relink_s']:>12.1f}" for r in results))
    for r in results:
        if r["engine"] == "spark":
            print("spark engine steps:", r["engine_steps"], "session start", r["session_start_s"], "s")
        print(f"{r['engine']}: python peak {r['python_peak_mb']} MB, jvm peak {r['jvm_peak_mb']} MB, "
              f"{r['records']} records, {r['pairs_kept']} pairs kept")


if __name__ == "__main__":
    main()
