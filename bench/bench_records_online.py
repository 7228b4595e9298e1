"""The online cost of building a record with the relink's SQL (`identity_graph.records`) on an
in-memory SQLite database, against the former pure-Python `record_of`, in one run.

    python bench/bench_records_online.py [--observations 12] [--repeat 20000]

Prints µs per record (median of 7 rounds) for one identifier with N observations, and for a
Resolve's candidate set (20 identifiers at once).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from identity_graph.model import Observation
from identity_graph.records import records_of


def python_record_of(observations: list[Observation]) -> dict[str, str]:
    """The former online definition (guardrails.record_of before the records module)."""
    seen: dict[str, dict[str, list]] = {}
    for o in observations:
        if not o.value:
            continue
        stat = seen.setdefault(o.attribute, {}).setdefault(o.value, [0, o.observed_at])
        stat[0] += 1
        stat[1] = max(stat[1], o.observed_at)
    return {a: min(v, key=lambda x: (-v[x][0], -v[x][1].timestamp(), x)) for a, v in seen.items()}


def observations(key: str, n: int, rng: random.Random) -> list[Observation]:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    attrs = ["first_name", "last_name", "date_of_birth", "street", "city", "postcode"]
    return [Observation(key, rng.choice(attrs), rng.choice(["a", "b", "c"]), "crm", "",
                        t0 + timedelta(minutes=rng.randint(0, 999))) for _ in range(n)]


def per_call_us(fn, arg, repeat: int) -> float:
    rounds = []
    for _ in range(7):
        t = time.perf_counter()
        for _ in range(repeat):
            fn(arg)
        rounds.append((time.perf_counter() - t) / repeat * 1e6)
    return statistics.median(rounds)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--observations", type=int, default=12)
    ap.add_argument("--repeat", type=int, default=5000)
    args = ap.parse_args()
    rng = random.Random(1)
    one = observations("email:a@x.org", args.observations, rng)
    many = [o for i in range(20) for o in observations(f"email:{i}@x.org", args.observations, rng)]
    assert records_of(one)["email:a@x.org"] == python_record_of(one)
    print(f"load average {Path('/proc/loadavg').read_text().split()[:3]}")
    print(f"one identifier, {args.observations} observations:")
    print(f"  sql on sqlite   {per_call_us(records_of, one, args.repeat):8.1f} µs")
    print(f"  python          {per_call_us(python_record_of, one, args.repeat):8.1f} µs")
    sql20 = per_call_us(records_of, many, args.repeat // 10) / 20
    py20 = per_call_us(lambda obs: [python_record_of(obs[i::20]) for i in range(20)], many,
                       args.repeat // 10) / 20
    print("20 identifiers at once (a Resolve's candidates), per record:")
    print(f"  sql on sqlite   {sql20:8.1f} µs")
    print(f"  python          {py20:8.1f} µs")


if __name__ == "__main__":
    main()
