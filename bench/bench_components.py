"""Connected components on ~10M edges: `batch.components.labels` against networkx, same edges, one run.

Both sides get the same input, the two Python lists of integer node ids the relink hands to
`labels` (`left`, `right`). networkx is timed twice: building the `Graph` from the edges, and
`connected_components` on it; the ratio that matters is against `connected_components` alone
(build time left out, which favours networkx). `labels` is timed whole: list → numpy → CSR →
scipy → relabel by smallest node. The two partitions are checked to be equal.

Graph shapes (`--shape`):
- `clusters`: an identity-like graph: nodes fall into customers of 1-12 identifiers, each
  customer a random tree plus a few extra edges, and 1% of edges join two random customers.
- `random`: endpoints uniform over all nodes (one giant component plus dust).

    .venv/bin/python bench/bench_components.py --edges 10000000 --repeat 2
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time

import numpy as np

from batch.components import labels


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def make_edges(shape: str, n_edges: int, seed: int) -> tuple[int, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if shape == "random":
        n = int(n_edges * 0.8)
        return n, rng.integers(0, n, n_edges), rng.integers(0, n, n_edges)
    # clusters: sizes 1..12, a spanning tree per cluster, extra edges inside, 1% across
    sizes = rng.integers(1, 13, int(n_edges / 6.5))  # mean size 6.5: ~85% of edges are tree edges
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    n = int(sizes.sum())
    cluster = np.repeat(np.arange(len(sizes)), sizes)
    node = np.arange(n)
    offset = node - starts[cluster]
    tree = offset > 0  # each non-first member joins a random earlier member of its cluster
    a_tree = node[tree]
    b_tree = starts[cluster[tree]] + (rng.random(tree.sum()) * offset[tree]).astype(np.int64)
    n_cross = n_edges // 100
    n_extra = max(0, n_edges - len(a_tree) - n_cross)
    pick = rng.integers(0, n, n_extra)
    c = cluster[pick]
    b_extra = starts[c] + (rng.random(n_extra) * sizes[c]).astype(np.int64)
    a = np.concatenate((a_tree, pick, rng.integers(0, n, n_cross)))
    b = np.concatenate((b_tree, b_extra, rng.integers(0, n, n_cross)))
    perm = rng.permutation(len(a))
    ids = rng.permutation(n)  # node ids not in cluster order
    return n, ids[a[perm]], ids[b[perm]]


def run_shape(shape: str, args: argparse.Namespace) -> dict[str, float]:
    import networkx as nx

    n, a_np, b_np = make_edges(shape, args.edges, args.seed)
    left, right = a_np.tolist(), b_np.tolist()
    del a_np, b_np
    print(f"[{shape}] {n:,} nodes, {len(left):,} edges; load1 {os.getloadavg()[0]:.2f}",
          file=sys.stderr)

    ours = []
    for _ in range(args.repeat):
        gc.collect()
        t = time.perf_counter()
        lab = labels(n, left, right)
        ours.append(time.perf_counter() - t)
    print(f"[{shape}] batch.components.labels: {', '.join(f'{s:.2f}' for s in ours)} s",
          file=sys.stderr)
    lab = np.asarray(lab)

    build, cc = [], []
    ok = True
    for i in range(args.nx_repeat):
        gc.collect()
        t = time.perf_counter()
        g = nx.Graph()
        g.add_nodes_from(range(n))
        g.add_edges_from(zip(left, right, strict=True))
        build.append(time.perf_counter() - t)
        rss = _rss_mb()
        t = time.perf_counter()
        comps = list(nx.connected_components(g))
        cc.append(time.perf_counter() - t)
        print(f"[{shape}] networkx build {build[-1]:.2f} s, connected_components {cc[-1]:.2f} s "
              f"(RSS with graph {rss:,.0f} MB); load1 {os.getloadavg()[0]:.2f}", file=sys.stderr)
        del g
        if i == 0:  # same partition: every networkx component carries one label, its smallest node
            check = np.empty(n, dtype=np.int64)
            for members in comps:
                m = np.fromiter(members, dtype=np.int64, count=len(members))
                check[m] = m.min()
            ok = bool(np.array_equal(check, lab))
            n_comps = len(comps)
        del comps
    out = {"nodes": n, "edges": len(left), "components": n_comps, "same_partition": ok,
           "ours_median": statistics.median(ours), "ours": ours,
           "nx_build_median": statistics.median(build), "nx_cc_median": statistics.median(cc),
           "nx_cc": cc, "nx_build": build}
    out["ratio_cc"] = out["nx_cc_median"] / out["ours_median"]
    out["ratio_build_cc"] = (out["nx_build_median"] + out["nx_cc_median"]) / out["ours_median"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--edges", type=int, default=10_000_000)
    p.add_argument("--shape", nargs="+", choices=("clusters", "random"),
                   default=["clusters", "random"])
    p.add_argument("--repeat", type=int, default=3, help="runs of batch.components.labels")
    p.add_argument("--nx-repeat", type=int, default=2, help="runs of networkx")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    print("| shape | nodes | edges | components | batch.components.labels s (median) | "
          "networkx build s | networkx connected_components s | ratio (cc only) | "
          "ratio (build + cc) | same partition |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for shape in args.shape:
        r = run_shape(shape, args)
        print(f"| {shape} | {r['nodes']:,} | {r['edges']:,} | {r['components']:,} | "
              f"{r['ours_median']:.2f} ({', '.join(f'{s:.2f}' for s in r['ours'])}) | "
              f"{r['nx_build_median']:.1f} | {r['nx_cc_median']:.1f} "
              f"({', '.join(f'{s:.1f}' for s in r['nx_cc'])}) | {r['ratio_cc']:.1f}x | "
              f"{r['ratio_build_cc']:.1f}x | {r['same_partition']} |", flush=True)
        gc.collect()


if __name__ == "__main__":
    main()
