"""cProfile of Resolve for new identifiers with attributes, in process (no gRPC), on a fresh
embedded store loaded with the benchmark preload (~100k identifiers).

    .venv/bin/python bench/profile_resolve_new.py --calls 200 --lines 28
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import preload
from bench_resolve import new_requests

import server as server_mod
from identity_graph.config import GraphConfig
from identity_graph.engine import IdentityGraph, ResolveRequest
from identity_graph.matching.model import STARTER_MODEL_PATH
from identity_graph.store import open_store


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--warm", type=int, default=50)
    p.add_argument("--lines", type=int, default=28)
    p.add_argument("--identifiers", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    directory = preload.ensure(args.identifiers, args.seed)
    reqs = new_requests(directory, args.warm + args.calls, args.seed, 0.2)
    with tempfile.TemporaryDirectory() as work:
        store = open_store(str(Path(work) / "profile.db"))
        preload.load_into(store, directory)
        graph = IdentityGraph(store, GraphConfig(), scorer=server_mod.load_scorer(str(STARTER_MODEL_PATH)))

        def one(r: object) -> None:
            graph.resolve(ResolveRequest(r.channel, [(i.type, i.value) for i in r.identifiers],  # type: ignore[attr-defined]
                                         dict(r.attributes), source=r.source, event_id=r.event_id))  # type: ignore[attr-defined]

        for r in reqs[:args.warm]:
            one(r)
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        for r in reqs[args.warm:]:
            one(r)
        prof.disable()
        print(f"# {args.calls} calls, {(time.perf_counter() - t0) / args.calls * 1e3:.2f} ms per call "
              "(profiled)", flush=True)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(args.lines)
        store.close()


if __name__ == "__main__":
    main()
