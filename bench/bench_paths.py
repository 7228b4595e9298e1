"""What the one-way rule costs: `widest_paths` with directed steps against the undirected version
it replaced (read from git, default `c3bb8fc:identity_graph/paths.py`, the last commit before it),
on the same random customers.

    .venv/bin/python bench/bench_paths.py [--members 50] [--customers 200] [--repeats 7]
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from identity_graph import paths  # noqa: E402
from identity_graph.model import Link, LinkKind  # noqa: E402


def baseline(rev: str) -> ModuleType:
    """The paths module as it was at `rev`, imported under another name."""
    text = subprocess.run(["git", "-C", str(ROOT), "show", rev], capture_output=True, text=True,
                          check=True).stdout
    path = Path(tempfile.mkdtemp()) / "paths_baseline.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("paths_baseline", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def customer(rng: random.Random, n: int, i: int) -> tuple[list[str], dict[str, list[Link]]]:
    """A connected customer of `n` identifiers: a random tree plus n/2 extra links, kinds mixed,
    observed links claimed by a random end."""
    keys = [f"device_id:c{i}-{j}" for j in range(n)]
    pairs = [(keys[j], keys[rng.randrange(j)]) for j in range(1, n)]
    pairs += [tuple(rng.sample(keys, 2)) for _ in range(n // 2)]
    by_key: dict[str, list[Link]] = {k: [] for k in keys}
    for a, b in pairs:
        kind = rng.choice([LinkKind.VERIFIED, LinkKind.EQUIVALENT, LinkKind.OBSERVED, LinkKind.OBSERVED,
                           LinkKind.PROBABLE])
        lk = Link(a, b, kind, claimant=rng.choice([a, b]) if kind is LinkKind.OBSERVED else "")
        by_key[a].append(lk)
        by_key[b].append(lk)
    return keys, by_key


def run(module: ModuleType, customers: list[tuple[list[str], dict[str, list[Link]]]]) -> float:
    started = time.perf_counter()
    for keys, by_key in customers:
        module.widest_paths(keys[0], lambda ks, m=by_key: [lk for k in ks for lk in m[k]], lambda k: False)
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", type=int, default=50)
    p.add_argument("--customers", type=int, default=200)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--baseline", default="c3bb8fc:identity_graph/paths.py")
    args = p.parse_args()
    rng = random.Random(7)
    data = [customer(rng, args.members, i) for i in range(args.customers)]
    old = baseline(args.baseline)
    times: dict[str, list[float]] = {"undirected (baseline)": [], "one-way (this branch)": []}
    for _ in range(args.repeats):  # interleaved, so load changes hit both alike
        times["undirected (baseline)"].append(run(old, data))
        times["one-way (this branch)"].append(run(paths, data))
    medians = {name: statistics.median(t) for name, t in times.items()}
    per = {name: m / args.customers * 1e3 for name, m in medians.items()}
    for name, ms in per.items():
        print(f"{name:24s} {ms:.3f} ms per customer of {args.members} (median of {args.repeats})")
    ratio = medians["one-way (this branch)"] / medians["undirected (baseline)"]
    print(f"ratio one-way / undirected: {ratio:.2f}")
    print("loadavg:", Path("/proc/loadavg").read_text().split()[:3])


if __name__ == "__main__":
    main()
