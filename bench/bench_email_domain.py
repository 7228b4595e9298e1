"""E-mail domain normalisation: the `idna` package (UTS #46 / IDNA 2008, what
`identity_graph.identifiers` uses) against the stdlib IDNA 2003 codec it replaced, same domains,
one run. Medians of `--repeat` timings of `--number` calls, in microseconds per call.

    .venv/bin/python bench/bench_email_domain.py
"""

from __future__ import annotations

import argparse
import statistics
import timeit

from identity_graph.identifiers import _ascii_domain, normalise_email

CASES = ["Bob.Smith@Example.COM", "anna@Bücher.de", "user@straße.de"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--number", type=int, default=20_000)
    p.add_argument("--repeat", type=int, default=7)
    args = p.parse_args()

    def per_call(fn) -> float:
        runs = timeit.repeat(fn, number=args.number, repeat=args.repeat)
        return statistics.median(runs) / args.number * 1e6

    print("| address | idna package µs | stdlib codec µs | ratio | whole normalise_email µs |")
    print("|---|---|---|---|---|")
    for raw in CASES:
        domain = raw.lower().rpartition("@")[2]
        new = per_call(lambda d=domain: _ascii_domain(d))
        old = per_call(lambda d=domain: d.encode("idna").decode("ascii"))
        whole = per_call(lambda r=raw: normalise_email(r))
        print(f"| `{raw}` | {new:.2f} | {old:.2f} | {new / old:.2f}x | {whole:.2f} |")


if __name__ == "__main__":
    main()
