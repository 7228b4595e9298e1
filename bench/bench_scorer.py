"""Median latency of OnlineScorer vs Splink's score_pairs for 1 record × 10 candidates."""

from __future__ import annotations

import argparse
import random
import statistics
import time

from identity_graph.matching.model import load_starter_model
from identity_graph.matching.scorer import (
    OnlineScorer,
    damerau_levenshtein,
    jaro_similarity,
    jaro_winkler_similarity,
    levenshtein,
)
from identity_graph.matching.settings import ATTRIBUTE_COLUMNS
from identity_graph.matching.training import linker_for_model
from identity_graph.synthetic import generate, records_for_splink


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--candidates", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--cold", action="store_true", help="clear the string-distance caches before each call"
    )
    args = parser.parse_args()

    model = load_starter_model()
    columns = ("unique_id", *ATTRIBUTE_COLUMNS)
    records = [{c: r[c] for c in columns} for r in records_for_splink(generate(5000, args.seed))]
    rng = random.Random(args.seed)
    calls = [(rng.choice(records), rng.sample(records, args.candidates)) for _ in range(args.calls)]

    scorer = OnlineScorer(model)
    linker = linker_for_model(model, records)
    linker.inference.score_pairs([calls[0][0]], calls[0][1])  # warm up Splink's caches

    def timed(fn) -> list[float]:
        out = []
        for rec, cands in calls:
            t0 = time.perf_counter()
            fn(rec, cands)
            out.append(time.perf_counter() - t0)
        return out

    def online_call(rec, cands):
        if args.cold:
            for fn in (jaro_similarity, jaro_winkler_similarity, levenshtein, damerau_levenshtein):
                fn.cache_clear()
        scorer.score(rec, cands)

    online = timed(online_call)
    splink = timed(lambda rec, cands: linker.inference.score_pairs([rec], cands).as_record_list())
    m_online, m_splink = statistics.median(online), statistics.median(splink)
    cache = "cold caches" if args.cold else "warm caches"
    print(f"calls={args.calls} candidates={args.candidates} model={model.version} ({cache})")
    print(f"OnlineScorer.score           median {m_online * 1e3:8.3f} ms")
    print(f"linker.inference.score_pairs median {m_splink * 1e3:8.3f} ms")
    print(f"speed-up {m_splink / m_online:.1f}x")


if __name__ == "__main__":
    main()
