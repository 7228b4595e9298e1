"""Online cost of the rules: ms per Resolve write (a new cookie with an email, a phone and a
name, joining one of 150 customers), 3 rounds of 300, on an embedded store. The first argument is
the source tree to time (put first on sys.path), so two trees compare in one session:

    git archive <commit> | tar -x -C /tmp/before
    .venv/bin/python bench/bench_resolve_rules.py /tmp/before
    .venv/bin/python bench/bench_resolve_rules.py .
"""

import statistics
import sys
import tempfile
import time


def main(tree: str) -> None:
    sys.path.insert(0, tree)
    from identity_graph.engine import IdentityGraph, ResolveRequest
    from identity_graph.store import open_store

    runs = []
    with open_store(tempfile.mkdtemp() + "/g.db") as store:
        graph = IdentityGraph(store)
        for rep in range(3):
            t = time.perf_counter()
            for i in range(300):
                p = rep * 1000 + i
                graph.resolve(ResolveRequest(
                    "web", [("web_cookie", f"c{p}"), ("email", f"u{p % 150}@x.example"),
                            ("phone", f"202555{p % 150:04d}")],
                    {"first_name": "Ann", "last_name": f"L{p % 150}", "date_of_birth": "1980-01-01"}))
            runs.append((time.perf_counter() - t) / 300 * 1000)
    print(tree, "ms per Resolve write:", [round(r, 2) for r in runs],
          "median", round(statistics.median(runs), 2))


if __name__ == "__main__":
    main(sys.argv[1])
