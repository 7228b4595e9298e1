"""WatchEvents delivery delay: from a Resolve returning to its last event reaching a waiting stream.

Runs the real server in-process on an embedded SQLite (`BackgroundServer`), one WatchEvents stream
in a thread, and N sequential Resolve calls that each write new identifiers. For each call it
takes the time from the Resolve's return until the stream has yielded the call's last event.

`--poll` sets the server's poll interval. The server's own writes wake the stream at once, so the
delay should not depend on it; with `--no-push` the listener is removed, which is how the server
behaved before the push (each stream found new events at its next poll only).

    .venv/bin/python bench/bench_watch.py --calls 200 --poll 0.1
    .venv/bin/python bench/bench_watch.py --calls 200 --poll 0.1 --no-push
"""

from __future__ import annotations

import argparse
import queue
import statistics
import threading
import time

import grpc

from identity_graph.engine import IdentityGraph
from identity_graph.store import open_store
from server import BackgroundServer, _parts
from stubs.identity.v1 import identity_pb2 as pb
from stubs.identity.v1 import identity_pb2_grpc as pb_grpc


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--poll", type=float, default=0.1, help="the server's poll interval, seconds")
    p.add_argument("--no-push", action="store_true", help="remove the push listener (the old way)")
    args = p.parse_args()

    store = open_store(":memory:")
    graph = IdentityGraph(store)
    srv = BackgroundServer(graph, poll_interval_s=args.poll, access_log_enabled=False)
    if args.no_push:
        _parts[srv.server].identity._unsubscribe()
    channel = grpc.insecure_channel(f"127.0.0.1:{srv.port}")
    stub = pb_grpc.IdentityServiceStub(channel)
    got: queue.Queue[tuple[float, int]] = queue.Queue()
    stream = stub.WatchEvents(pb.WatchEventsRequest(from_seq=0))

    def read() -> None:
        try:
            for ev in stream:
                got.put((time.perf_counter(), ev.seq))
        except grpc.RpcError:
            pass

    threading.Thread(target=read, daemon=True).start()
    time.sleep(0.5)
    delays = []
    for i in range(args.calls):
        req = pb.ResolveRequest(channel="web", identifiers=[
            pb.Identifier(type="web_cookie", value=f"bw{i}"),
            pb.Identifier(type="email", value=f"bw{i}@example.com")])
        stub.Resolve(req, timeout=30)
        done = time.perf_counter()
        last = graph.events.read(0, 100_000)[-1].seq
        while True:
            at, seq = got.get(timeout=30)
            if seq == last:
                delays.append(max(0.0, at - done) * 1000)
                break
    stream.cancel()
    channel.close()
    srv.stop()
    delays.sort()
    print(f"poll={args.poll}s push={'off' if args.no_push else 'on'} calls={len(delays)} "
          f"delay ms: p50={statistics.median(delays):.2f} p90={delays[int(0.9 * len(delays))]:.2f} "
          f"p99={delays[int(0.99 * len(delays))]:.2f} max={delays[-1]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
