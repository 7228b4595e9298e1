"""How long a call waits when Neo4j goes away: the driver's defaults against this project's bounds.

A TCP forwarder stands between the store and Neo4j (NEO4J_URI/USER/PASSWORD); closing it takes the
network path away, as a crashed or partitioned server would (connections refused).

    bash scripts/neo4j.sh start /tmp/n4 > /tmp/n4.env && source /tmp/n4.env
    .venv/bin/python bench/bench_store_down.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_operations import Proxy

from identity_graph.errors import StoreError
from identity_graph.store.neo4j import Neo4jStore


def time_to_fail(connect_s: float, retry_s: float, runs: int) -> list[float]:
    uri = os.environ["NEO4J_URI"]
    host, _, port = uri.rpartition("/")[2].partition(":")
    proxy = Proxy((host, int(port)))
    proxy.start()
    store = Neo4jStore(f"bolt://127.0.0.1:{proxy.port}", os.environ.get("NEO4J_USER", "neo4j"),
                       os.environ["NEO4J_PASSWORD"], connect_timeout_s=connect_s, retry_time_s=retry_s)
    store.get_identifier("web_cookie:warm")
    proxy.stop()
    took = []
    for _ in range(runs):
        began = time.monotonic()
        try:
            store.get_identifier("web_cookie:x")
        except StoreError:
            took.append(time.monotonic() - began)
    store.close()
    return took


def main() -> None:
    runs = int(os.environ.get("RUNS", "3"))
    print(f"load {Path('/proc/loadavg').read_text().split()[:3]}")
    for label, connect_s, retry_s in (("driver defaults (30 s, 30 s)", 30.0, 30.0),
                                      ("bounded (3 s, 5 s)", 3.0, 5.0)):
        took = time_to_fail(connect_s, retry_s, runs)
        print(f"{label}: median {statistics.median(took):.1f} s to StoreError "
              f"(runs: {', '.join(f'{t:.1f}' for t in took)})")


if __name__ == "__main__":
    main()
