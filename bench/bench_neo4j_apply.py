"""Links per second of the relink's apply step on Neo4j (`batch.relink.apply` → `Neo4jStore.apply`).

Per repeat: load the generated graph (`bench_relink.py`'s cached data, made on first use; a
server that already holds it is only reset to the loaded state, see `_RESET`), run snapshot →
model (starter) → predict → cluster → plan, then time `apply` alone.
The rate is the plan's new links over the apply's wall time; the same apply also writes the
identifiers' customer assignments, the new customers and the events, so the table shows those
rates too. The apply is then checked: every planned link is in the store, and the store's
customers equal the plan's target.

    bash scripts/neo4j.sh start /tmp/scale-neo4j
    .venv/bin/python bench/bench_neo4j_apply.py --neo4j-dir /tmp/scale-neo4j --identifiers 100000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import LiteralString

from bench_relink import STARTER, StepMeter, _cache_dir, _neo4j_env, customers_for
from neo4j import GraphDatabase

ROOT = Path(__file__).resolve().parent.parent


# Back to the state right after `load_parquet` of generated data (which has no customers, aliases,
# events, batch links or generic marks): much faster than clearing and loading again.
_RESET: tuple[LiteralString, ...] = (
    "MATCH ()-[l:LINK]->() WHERE l.source = 'batch' "
    "CALL { WITH l DELETE l } IN TRANSACTIONS OF 20000 ROWS",
    "MATCH (c:Customer) CALL { WITH c DELETE c } IN TRANSACTIONS OF 20000 ROWS",
    "MATCH (a:Alias) CALL { WITH a DELETE a } IN TRANSACTIONS OF 20000 ROWS",
    "MATCH (e:Event) CALL { WITH e DELETE e } IN TRANSACTIONS OF 20000 ROWS",
    "MATCH (s:Sequence) DELETE s",
    "MATCH (n:Identifier) WHERE n.customer_id IS NOT NULL OR n.generic "
    "CALL { WITH n SET n.customer_id = null, n.generic = false } IN TRANSACTIONS OF 20000 ROWS",
)


def _loaded(env: dict[str, str], expected: int) -> bool:
    """The server holds the generated graph (maybe relinked): as many identifiers, no others."""
    with GraphDatabase.driver(env["NEO4J_URI"],
                              auth=(env["NEO4J_USER"], env["NEO4J_PASSWORD"])) as driver:
        n = driver.execute_query("MATCH (n:Identifier) RETURN count(n) AS n").records[0]["n"]
        if n != expected:
            return False
        with driver.session() as session:
            for q in _RESET:
                session.run(q).consume()
    return True


def one_run(args: argparse.Namespace, src: Path, env: dict[str, str], pid: int,
            expected: int) -> dict:
    from batch.relink import (
        RelinkOptions,
        apply,
        build_records,
        cluster,
        get_model,
        plan,
        predict,
        snapshot,
    )
    from identity_graph.config import GraphConfig
    from identity_graph.store import open_store

    config = GraphConfig()
    options = RelinkOptions(model_path=str(STARTER), models_dir=None, progress=False,
                            charts=False, batch_size=args.batch_size,
                            apply_workers=args.workers)
    store = open_store(neo4j_uri=env["NEO4J_URI"], neo4j_user=env["NEO4J_USER"],
                       neo4j_password=env["NEO4J_PASSWORD"])
    meter = StepMeter(pid)
    try:
        with meter.step("load"):
            if args.reload or not _loaded(env, expected):
                store.clear()
                store.load_parquet(src)
        with meter.step("plan"):
            snap = snapshot(store, options)
            build_records(snap)
            model, _ = get_model(snap, options)
            predict(snap, model, config, options)
            target = cluster(snap, model, config, options)
            the_plan = plan(snap, target, model, options)
            snap.close()
        print(f"  load1 before apply {os.getloadavg()[0]:.2f}", file=sys.stderr)
        with meter.step("apply"):
            result = apply(store, the_plan, options)
        with meter.step("check"):
            tables = store.export_tables()
            link_ids = set(tables["links"].column("link_id").to_pylist())
            missing = sum(1 for lid in target.links if lid not in link_ids)
            ids = dict(zip(tables["identifiers"].column("key").to_pylist(),
                           tables["identifiers"].column("customer_id").to_pylist(), strict=True))
            wrong = sum(1 for k, c in zip(target.keys, target.component, strict=True)
                        if ids.get(k) != target.ids[c])
    finally:
        meter.close()
        store.close()
    apply_s = meter.rows["apply"]["seconds"]
    return {
        "steps": meter.rows, "batches": result.batches, "links_added": the_plan.links_added,
        "assignments": the_plan.assignments, "customers_created": the_plan.customers_created,
        "events": result.events, "apply_seconds": apply_s,
        "links_per_s": the_plan.links_added / apply_s,
        "identifiers_per_s": the_plan.assignments / apply_s,
        "missing_links": missing, "wrong_customers": wrong,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--neo4j-dir", required=True, help="instance dir of `scripts/neo4j.sh start`")
    p.add_argument("--identifiers", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--batch-size", type=int, help="identifiers per transaction (default: "
                   "batch.relink.batch_size_for)")
    p.add_argument("--workers", type=int, help="transactions in flight (default: "
                   "batch.relink.apply_workers_for)")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--reload", action="store_true",
                   help="clear and load every run (default: reset a graph already loaded)")
    args = p.parse_args()
    customers = customers_for(args.identifiers)
    src = _cache_dir(customers, args.seed)
    if not (src / "meta.json").exists():
        subprocess.run([sys.executable, str(ROOT / "bench" / "bench_relink.py"), "--phase",
                        "prepare", "--customers", str(customers), "--seed", str(args.seed),
                        "--cache", str(src)], check=True, stdout=subprocess.DEVNULL)
    expected = json.loads((src / "meta.json").read_text())["counts"]["identifiers"]
    env = _neo4j_env(args.neo4j_dir)
    pid = int(Path(args.neo4j_dir, "pid").read_text().strip())
    runs = []
    for i in range(args.repeat):
        t = time.perf_counter()
        r = one_run(args, src, env, pid, expected)
        print(f"run {i + 1}: {r['links_added']:,} links, {r['assignments']:,} assignments in "
              f"{r['apply_seconds']:.1f} s: {r['links_per_s']:,.0f} links/s "
              f"(whole run {time.perf_counter() - t:.0f} s; missing {r['missing_links']}, "
              f"wrong customers {r['wrong_customers']})", file=sys.stderr)
        runs.append(r)
    rates = [r["links_per_s"] for r in runs]
    print(f"## Neo4j apply: {args.identifiers:,} identifiers, batch size "
          f"{args.batch_size or 'default'}, workers {args.workers or 'default'}\n")
    print("| run | links added | assignments | customers created | events | batches | load s | "
          "apply s | links/s | identifiers/s | Python peak RSS MB | Neo4j RSS MB | check |")
    print("|---" * 13 + "|")
    for i, r in enumerate(runs, 1):
        a = r["steps"]["apply"]
        ok = "ok" if not r["missing_links"] and not r["wrong_customers"] else \
            f"{r['missing_links']} missing, {r['wrong_customers']} wrong"
        print(f"| {i} | {r['links_added']:,} | {r['assignments']:,} | {r['customers_created']:,} "
              f"| {r['events']:,} | {r['batches']} | {r['steps']['load']['seconds']:.1f} | "
              f"{r['apply_seconds']:.2f} | {r['links_per_s']:,.0f} | {r['identifiers_per_s']:,.0f} "
              f"| {a['peak_rss_mb']:.0f} | {a.get('server_rss_mb', 0):.0f} | {ok} |")
    print(f"\nmedian {statistics.median(rates):,.0f} links/s")


if __name__ == "__main__":
    main()
