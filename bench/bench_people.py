"""Cost of people's decisions in the rules (`identity_graph.rules.decide`) at relink scale.

The graph of `bench_rules.build` (people of a source record, an email, a phone and a cookie; junk
emails; one probable pair per 20 people), decided with no constraints and with `--constraints`
cannot-links (half between the two ends of a probable pair, so the pair is refused; half between
random identifiers) and as many must-links (pairs of the graph's own observed links). Medians of
`--repeat` runs, wall and CPU of this process (the machine is shared).

    .venv/bin/python bench/bench_people.py --identifiers 200000 --constraints 10000 --repeat 3
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_rules import build

from identity_graph.config import GraphConfig
from identity_graph.model import LinkKind
from identity_graph.rules import Rules, decide


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--identifiers", type=int, default=200_000)
    ap.add_argument("--constraints", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    region, links = build(args.identifiers, 1)
    rng = random.Random(7)
    keys = list(region.keys)
    probable = [lk for lk in links if lk.kind is LinkKind.PROBABLE]
    observed = [lk for lk in links if lk.kind is LinkKind.OBSERVED]
    cannot = {(lk.a, lk.b) for lk in rng.sample(probable, min(len(probable), args.constraints // 2))}
    while len(cannot) < args.constraints:
        a, b = sorted(rng.sample(keys, 2))
        cannot.add((a, b))
    must = {(lk.a, lk.b) for lk in rng.sample(observed, min(len(observed), args.constraints))}
    with_people = dataclasses.replace(region, cannot=cannot, must=must)
    rules = Rules.of(GraphConfig())
    plain, people, plain_cpu, people_cpu = [], [], [], []
    for _ in range(args.repeat):
        for out, cpu, reg in ((plain, plain_cpu, region), (people, people_cpu, with_people)):
            c, t = time.process_time(), time.perf_counter()
            decision = decide(reg, links, rules, policy="overlap")
            out.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    refused = sum(v.kind == "cannot_link" for v in decision.violations)
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    m = statistics.median
    print(f"identifiers {len(keys):,}, links {len(links):,}, cannot-links {len(cannot):,}, "
          f"must-links {len(must):,}, refused for a cannot-link {refused:,}")
    print(f"decide without decisions: median {m(plain):.2f} s (CPU {m(plain_cpu):.2f}); with them: "
          f"median {m(people):.2f} s (CPU {m(people_cpu):.2f}); ratio {m(people) / m(plain):.2f}x "
          f"(CPU {m(people_cpu) / m(plain_cpu):.2f}x); loadavg {load}")


if __name__ == "__main__":
    main()
