"""Cost of the one rules entry point (`identity_graph.rules.decide`) at relink scale.

Builds a graph of `--identifiers` keys as the relink sees it: people of one source record, an
email, a phone and a cookie each (observed links), 1% of emails shared as junk by 4 people,
prior customer ids for every key, and one probable pair per 20 people. Times `decide(...,
policy="overlap")` (every rule, components and ids) against the obvious floor: union-find
components over the same links with nothing checked. Medians of `--repeat` runs, wall and CPU
(this process: on a shared machine the CPU time is what an idle one would need).

    .venv/bin/python bench/bench_rules.py --identifiers 1000000 --repeat 3
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime

from identity_graph.components import UnionFind
from identity_graph.config import GraphConfig
from identity_graph.model import Link, LinkKind
from identity_graph.rules import Region, Rules, decide

NAMES = ["ann", "raj", "olga", "tom", "zoe", "ivan", "mia", "ben", "kim", "lee", "sam", "pat"]


def build(n_keys: int, seed: int) -> tuple[Region, list[Link]]:
    rng = random.Random(seed)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    keys: list[str] = []
    links: list[Link] = []
    records: dict[str, dict[str, str]] = {}
    previous: dict[str, str] = {}
    people = n_keys // 4
    junk = [f"email:junk{j}@x.example" for j in range(max(people // 400, 1))]
    for p in range(people):
        rec, email, phone, cookie = (f"source_record:crm/{p}", f"email:p{p}@mail.example",
                                     f"phone:+1202{p:07d}", f"web_cookie:c{p}")
        keys += [rec, email, phone, cookie]
        records[rec] = {"first_name": f"{rng.choice(NAMES)}{p % 97}", "last_name": f"n{p}",
                        "date_of_birth": f"19{50 + p % 50}-01-01"}
        for k in (email, phone, cookie):
            links.append(Link(rec, k, LinkKind.OBSERVED, source="crm", created_at=at))
        for k in (rec, email, phone, cookie):
            previous[k] = f"cus_{p}"
        if p % 100 == 0:
            links.append(Link(rec, junk[(p // 100) % len(junk)], LinkKind.OBSERVED, source="crm",
                              created_at=at))
        if p % 20 == 0 and p:
            links.append(Link(rec, f"source_record:crm/{p - 1}", LinkKind.PROBABLE, source="batch",
                              probability=0.995, created_at=at))
    keys += junk
    region = Region(keys=keys, records=records, previous=previous,
                    created_at={f"cus_{p}": at for p in range(people)})
    return region, links


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--identifiers", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    region, links = build(args.identifiers, 1)
    rules = Rules.of(GraphConfig())
    floor, full, floor_cpu, full_cpu = [], [], [], []
    for _ in range(args.repeat):
        c = time.process_time()
        t = time.perf_counter()
        uf = UnionFind(region.keys)
        for lk in links:
            if lk.kind.merges:
                uf.union(lk.a, lk.b)
        uf.groups()
        floor.append(time.perf_counter() - t)
        floor_cpu.append(time.process_time() - c)
        c = time.process_time()
        t = time.perf_counter()
        decision = decide(region, links, rules, policy="overlap")
        full.append(time.perf_counter() - t)
        full_cpu.append(time.process_time() - c)
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"identifiers {len(region.keys):,}, links {len(links):,}, "
          f"customers {len(decision.components):,}, generic {len(decision.generic)}, "
          f"refused {len(decision.refused)}, chains "
          f"{sum(v.kind == 'chain' for v in decision.violations)}")
    print(f"union-find only: median {statistics.median(floor):.2f} s; "
          f"decide (all rules + ids): median {statistics.median(full):.2f} s; "
          f"ratio {statistics.median(full) / statistics.median(floor):.1f}x; CPU s: union-find "
          f"{statistics.median(floor_cpu):.2f}, decide {statistics.median(full_cpu):.2f} (ratio "
          f"{statistics.median(full_cpu) / statistics.median(floor_cpu):.1f}x); loadavg {' '.join(load)}")


if __name__ == "__main__":
    main()
