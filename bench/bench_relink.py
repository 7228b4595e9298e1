"""Scale benchmark of the nightly relink: generate → load → relink, per-step wall time and peak RSS.

Each phase runs in its own child process, so one phase's memory does not inflate the next:

- **prepare**: `synthetic.generate` at the requested size, `quality.synthetic_tables`, parquet
  files and a labels file, cached under `bench/.cache/relink-c<customers>-s<seed>/`.
- **run** (once per model mode and repeat): open an empty store (a fresh SQLite file, or the
  Neo4j server cleared), `load_parquet`, then `relink` with the starter model (`--mode starter`)
  or with training (`--mode train`) and the labels, so the report carries pairwise P/R/F1.

Peak memory per step is the process's peak RSS inside that step: the kernel's high-water mark
(`VmHWM`) is reset at each step start (`/proc/self/clear_refs`), read at its end, and checked
against a 100 ms sampler of `VmRSS`. With `--neo4j-dir` the Neo4j JVM's RSS is sampled too.

    .venv/bin/python bench/bench_relink.py --identifiers 100000 --mode starter train --repeat 2
    .venv/bin/python bench/bench_relink.py --identifiers 1000000 --mode starter --repeat 2
    bash scripts/neo4j.sh start /tmp/scale-neo4j
    .venv/bin/python bench/bench_relink.py --identifiers 100000 --backend neo4j \
        --neo4j-dir /tmp/scale-neo4j --mode starter --repeat 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(__file__).resolve().parent / ".cache"
STARTER = ROOT / "identity_graph" / "matching" / "starter_model.json"
IDENTIFIERS_PER_CUSTOMER = 5.78  # the generator's default rates
STEPS = ("generate", "tables", "write", "load", "snapshot", "model", "predict", "cluster", "plan",
         "apply", "report")


def customers_for(n_identifiers: int) -> int:
    return max(1, math.ceil(n_identifiers / IDENTIFIERS_PER_CUSTOMER))


# ==== memory ======================================================================================


def _status_kb(field: str, pid: int | str = "self") -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu() -> float:
    """CPU seconds of this process, all threads (DuckDB's included): on a machine shared with
    other work, a step's CPU time says more than its wall time about an idle machine."""
    t = os.times()
    return t.user + t.system


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class StepMeter:
    """Per-step wall time and peak RSS of this process (and optionally of another one)."""

    def __init__(self, other_pid: int | None = None, interval: float = 0.1) -> None:
        self.other_pid = other_pid
        self.interval = interval
        self.rows: dict[str, dict[str, float]] = {}
        self._name: str | None = None
        self._t0 = 0.0
        self._peak = 0
        self._other_peak = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            rss = _status_kb("VmRSS")
            other = _status_kb("VmRSS", self.other_pid) if self.other_pid else 0
            with self._lock:
                self._peak = max(self._peak, rss)
                self._other_peak = max(self._other_peak, other)

    def start(self, name: str) -> None:
        self.end()
        print(f"  [{time.strftime('%H:%M:%S')}] {name} (load1 {os.getloadavg()[0]:.2f})",
              file=sys.stderr, flush=True)
        with self._lock:
            self._name = name
            self._reset = _reset_hwm()
            self._peak = _status_kb("VmRSS")
            self._other_peak = _status_kb("VmRSS", self.other_pid) if self.other_pid else 0
            self._t0 = time.perf_counter()
            self._cpu0 = _cpu()

    def end(self) -> None:
        with self._lock:
            if self._name is None:
                return
            seconds = time.perf_counter() - self._t0
            peak = max(self._peak, _status_kb("VmRSS"))
            if self._reset:
                peak = max(peak, _status_kb("VmHWM"))
            row = {"seconds": round(seconds, 3), "peak_rss_mb": round(peak / 1024, 1),
                   "cpu_seconds": round(_cpu() - self._cpu0, 3)}
            if self.other_pid:
                row["server_rss_mb"] = round(self._other_peak / 1024, 1)
            self.rows[self._name] = row
            self._name = None

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.start(name)
        try:
            yield
        finally:
            self.end()

    def close(self) -> None:
        self.end()
        self._stop.set()
        self._thread.join()


# ==== phases (child processes) ====================================================================


def _cache_dir(customers: int, seed: int) -> Path:
    return CACHE / f"relink-c{customers}-s{seed}"


def phase_prepare(args: argparse.Namespace) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from batch.quality import labels_table, synthetic_tables
    from identity_graph.synthetic import generate

    out = Path(args.cache)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    meter = StepMeter()
    with meter.step("generate"):
        data = generate(args.customers, args.seed)
    with meter.step("tables"):
        tables = synthetic_tables(data)
        labels = labels_table(data)
    with meter.step("write"):
        for name, table in tables.items():
            pq.write_table(table, tmp / f"{name}.parquet")
        pq.write_table(labels, tmp / "labels.parquet")
    meter.close()
    counts = {name: t.num_rows for name, t in tables.items()}
    counts["customers_true"] = len(data.customers)
    (tmp / "meta.json").write_text(json.dumps({"counts": counts, "steps": meter.rows}, indent=1))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return {"counts": counts, "steps": meter.rows}


def _neo4j_env(directory: str) -> dict[str, str]:
    env = {}
    for line in Path(directory, "env").read_text().splitlines():
        if line.startswith("export "):
            k, _, v = line[len("export "):].partition("=")
            env[k] = v
    return env


def phase_run(args: argparse.Namespace) -> dict[str, Any]:
    from batch.relink import RelinkOptions, relink
    from identity_graph.config import GraphConfig
    from identity_graph.store import open_store

    src = Path(args.cache)
    other_pid = None
    tmpdir = tempfile.mkdtemp(prefix="bench-relink-", dir=args.tmp)
    if args.backend == "neo4j":
        env = _neo4j_env(args.neo4j_dir)
        other_pid = int(Path(args.neo4j_dir, "pid").read_text().strip())
        store = open_store(neo4j_uri=env["NEO4J_URI"], neo4j_user=env["NEO4J_USER"],
                           neo4j_password=env["NEO4J_PASSWORD"])
        store.clear()
    else:
        store = open_store(os.path.join(tmpdir, "identity.db"))
    meter = StepMeter(other_pid)
    try:
        with meter.step("load"):
            store.load_parquet(src)
        options = RelinkOptions(
            model_path=str(STARTER) if args.mode == "starter" else None,
            models_dir=os.path.join(tmpdir, "models"), labels_path=str(src / "labels.parquet"),
            progress=False, charts=False, seed=args.seed, batch_size=args.batch_size or None)
        result = relink(store, GraphConfig(), options, on_step=meter.start)
        meter.end()
        report = result.report
    finally:
        meter.close()
        store.close()
        shutil.rmtree(tmpdir, ignore_errors=True)
    q = report.get("quality", {})
    model = {k: report["model"].get(k) for k in ("source", "version", "training_records",
                                                 "label_pairs")}
    return {"steps": meter.rows, "report_step_seconds": report["run"]["step_seconds"],
            "quality": {k: q.get(k) for k in ("precision", "recall", "f1", "true_pairs",
                                              "predicted_pairs", "household_false_pairs",
                                              "identifiers_evaluated")},
            "counts": report["counts"], "apply": report["apply"], "model": model}


# ==== orchestration ===============================================================================


def _child(phase: str, args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--phase", phase, "--customers", str(args.customers),
           "--seed", str(args.seed), "--cache", str(args.cache), "--backend", args.backend,
           "--batch-size", str(args.batch_size)]
    if args.neo4j_dir:
        cmd += ["--neo4j-dir", args.neo4j_dir]
    if args.tmp:
        cmd += ["--tmp", args.tmp]
    for k, v in extra.items():
        cmd += [f"--{k}", str(v)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, check=True, cwd=ROOT)
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])


def _load1() -> float:
    return os.getloadavg()[0]


def _table(title: str, runs: list[dict[str, Any]], steps: list[str]) -> list[str]:
    lines = [f"### {title}", "",
             "| step | " + " | ".join(f"run {i + 1} s" for i in range(len(runs)))
             + " | median s | median CPU s | peak RSS MB (max) |"
             + (" Neo4j RSS MB |" if any("server_rss_mb" in r["steps"].get(s, {})
                                         for r in runs for s in steps) else ""),
             "|---" * (len(runs) + 4 + (1 if lines_has_server(runs, steps) else 0)) + "|"]
    for s in steps:
        vals = [r["steps"][s]["seconds"] for r in runs if s in r["steps"]]
        if not vals:
            continue
        peak = max(r["steps"][s]["peak_rss_mb"] for r in runs if s in r["steps"])
        cpu = [r["steps"][s]["cpu_seconds"] for r in runs if "cpu_seconds" in r["steps"].get(s, {})]
        row = f"| {s} | " + " | ".join(f"{v:.1f}" for v in vals) + \
            f" | {statistics.median(vals):.1f} | " + \
            (f"{statistics.median(cpu):.1f}" if cpu else "–") + f" | {peak:.0f} |"
        if lines_has_server(runs, steps):
            srv = max(r["steps"][s].get("server_rss_mb", 0) for r in runs if s in r["steps"])
            row += f" {srv:.0f} |"
        lines.append(row)
    return lines


def lines_has_server(runs: list[dict[str, Any]], steps: list[str]) -> bool:
    return any("server_rss_mb" in r["steps"].get(s, {}) for r in runs for s in steps)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--identifiers", type=int, help="about this many identifiers")
    p.add_argument("--customers", type=int, help="exactly this many generated customers")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--backend", choices=("sqlite", "neo4j"), default="sqlite")
    p.add_argument("--neo4j-dir", help="instance dir of `scripts/neo4j.sh start DIR` (env, pid)")
    p.add_argument("--mode", nargs="+", choices=("starter", "train"), default=["starter"])
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=0,
                   help="identifiers per transaction (default: batch.relink.batch_size_for)")
    p.add_argument("--tmp", help="directory for the store files (default the system temp)")
    p.add_argument("--regenerate", action="store_true", help="ignore the cached generated data")
    p.add_argument("--json-out", help="write all measurements here")
    p.add_argument("--phase", choices=("prepare", "run"), help=argparse.SUPPRESS)
    p.add_argument("--cache", help=argparse.SUPPRESS)
    p.add_argument("--run-mode", dest="run_mode", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.customers is None:
        if args.identifiers is None:
            p.error("give --identifiers or --customers")
        args.customers = customers_for(args.identifiers)
    if args.backend == "neo4j" and not args.neo4j_dir:
        p.error("--backend neo4j needs --neo4j-dir")
    if args.phase == "prepare":
        print(json.dumps(phase_prepare(args)))
        return
    if args.phase == "run":
        args.mode = args.run_mode
        print(json.dumps(phase_run(args)))
        return

    args.cache = str(_cache_dir(args.customers, args.seed))
    out: dict[str, Any] = {"customers": args.customers, "seed": args.seed,
                           "backend": args.backend, "cpus": os.cpu_count()}
    meta = Path(args.cache, "meta.json")
    if args.regenerate or not meta.exists():
        print(f"load1 {_load1():.2f}: generating {args.customers:,} customers ...", file=sys.stderr)
        prepared = _child("prepare", args)
    else:
        prepared = json.loads(meta.read_text())
    out["prepare"] = prepared
    counts = prepared["counts"]
    print(f"data: {counts['identifiers']:,} identifiers, {counts['observations']:,} observations, "
          f"{counts['links']:,} links, {counts['customers_true']:,} true customers", file=sys.stderr)
    out["runs"] = {}
    for mode in args.mode:
        runs = []
        for i in range(args.repeat):
            before = _load1()
            t0 = time.perf_counter()
            r = _child("run", args, **{"run-mode": mode})
            r["wall_seconds"] = round(time.perf_counter() - t0, 2)
            r["load1_before"], r["load1_after"] = round(before, 2), round(_load1(), 2)
            relink_steps = [s for s in STEPS[4:] if s in r["steps"]]
            r["relink_total"] = round(sum(r["steps"][s]["seconds"] for s in relink_steps), 2)
            r["relink_cpu"] = round(sum(r["steps"][s].get("cpu_seconds", 0)
                                        for s in relink_steps), 2)
            q = r["quality"]
            print(f"{mode} run {i + 1}: load {r['steps']['load']['seconds']:.1f}s, relink "
                  f"{r['relink_total']:.1f}s, P {q['precision']} R {q['recall']} F1 {q['f1']} "
                  f"(load1 {before:.2f} → {r['load1_after']:.2f})", file=sys.stderr)
            runs.append(r)
        out["runs"][mode] = runs

    lines = [f"## relink bench: {counts['identifiers']:,} identifiers ({args.customers:,} "
             f"customers, seed {args.seed}), backend {args.backend}, {os.cpu_count()} CPUs", ""]
    lines += _table("prepare (one run; cached afterwards)", [prepared], list(STEPS[:3]))
    for mode, runs in out["runs"].items():
        lines.append("")
        lines += _table(f"mode {mode}", runs, list(STEPS[3:]))
        totals = [r["relink_total"] for r in runs]
        load_and = [r["relink_total"] + r["steps"]["load"]["seconds"] for r in runs]
        q = runs[-1]["quality"]
        lines += ["",
                  f"- relink (snapshot → report) median {statistics.median(totals):.1f} s "
                  f"(runs {', '.join(f'{t:.1f}' for t in totals)}); load + relink median "
                  f"{statistics.median(load_and):.1f} s",
                  f"- relink CPU time (this process, all threads) median "
                  f"{statistics.median(r['relink_cpu'] for r in runs):.1f} s",
                  f"- 1-minute load before each run: "
                  f"{', '.join(str(r['load1_before']) for r in runs)}",
                  f"- quality: precision {q['precision']}, recall {q['recall']}, F1 {q['f1']} "
                  f"({q['identifiers_evaluated']:,} labelled identifiers, "
                  f"{q['household_false_pairs']} household false pairs)"]
    print("\n".join(lines))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
