"""Where a known Resolve's server CPU goes outside gRPC: the servicer's three steps in a loop, profiled.

The steps are the ones `IdentityServicer.Resolve` runs for a known identifier on SQLite
(`convert.resolve_request` → `IdentityGraph.resolve.without_waiting` → `convert.resolve_response`,
then serialisation), with the erasure check on as in the server, over the 100k preload.

    .venv/bin/python bench/profile_resolve_known.py --calls 5000
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import tempfile
import time

import preload

from identity_graph.api import convert
from identity_graph.engine import IdentityGraph
from identity_graph.store import open_store
from privacy.service import Privacy
from privacy.store import privacy_store_for
from session.store import conversation_store_for
from stubs.identity.v1 import identity_pb2 as pb

CHANNELS = {"phone": "sms", "whatsapp": "whatsapp", "email": "email"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--top", type=int, default=30, help="profile lines to print")
    args = parser.parse_args()
    directory = preload.ensure(100_000, quiet=True)
    keys = preload.identifier_keys(directory)
    rng = random.Random(1)
    with tempfile.TemporaryDirectory(prefix="profile-known-") as tmp, open_store(f"{tmp}/k.db") as store:
        preload.load_into(store, directory)
        graph = IdentityGraph(store)
        privacy = Privacy(graph, conversation_store_for(store), privacy_store_for(store), lambda: None)
        graph.suppressed = privacy.is_suppressed

        def one() -> int:
            type_, _, value = rng.choice(keys).partition(":")
            request = pb.ResolveRequest(channel=CHANNELS.get(type_, "web"),
                                        identifiers=[pb.Identifier(type=type_, value=value)])
            result = graph.resolve.without_waiting(convert.resolve_request(request))
            assert result is not None, "a known identifier was not read inline"
            return len(convert.resolve_response(result, graph.config.disclosure_level).SerializeToString())

        for _ in range(500):
            one()
        t0 = time.perf_counter()
        sizes = sorted(one() for _ in range(args.calls))
        per_call = (time.perf_counter() - t0) / args.calls
        print(f"{per_call * 1e6:.0f} us per call in process; response bytes p50 {sizes[len(sizes) // 2]}")
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(args.calls):
            one()
        profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
