"""Summarises a py-spy `--format raw` profile (collapsed stacks): the share of samples whose stack
passes through each function (inclusive), and the functions that were on top (self), so that a
benchmark can say where the server's time goes.

    .venv/bin/py-spy record -p PID -d 10 -r 200 --format raw -o /tmp/server.txt --idle
    .venv/bin/python bench/pyspy_summary.py /tmp/server.txt --top 25
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path


def load(path: Path) -> list[tuple[list[str], int]]:
    out = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            out.append((stack.split(";"), int(count)))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("profile", type=Path)
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args(argv)
    stacks = load(args.profile)
    total = sum(n for _, n in stacks)
    if not total:
        sys.exit("no samples")
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for frames, n in stacks:
        names = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
                 if " (" in f else f for f in frames]
        for name in set(names):
            inclusive[name] += n
        own[names[-1]] += n
    print(f"# {total} samples")
    print("## inclusive (share of samples with the function on the stack)")
    for name, n in inclusive.most_common(args.top):
        print(f"{100 * n / total:5.1f}%  {name}")
    print("## self (share of samples with the function on top)")
    for name, n in own.most_common(args.top):
        print(f"{100 * n / total:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
