"""OnlineScorer latency, rapidfuzz string metrics (now) vs the pure-Python ones (before), and
Splink's score_pairs, for 1 record × N candidates, all in one run on the same calls.

"before" swaps the scorer's string functions for the pure-Python references (`py_*`, which
tests/test_scorer.py keeps equal to DuckDB), memoised as they were (`lru_cache`); `--cold`
clears those caches before each call, the fair figure for records never seen before.

    .venv/bin/python bench/bench_scorer.py
    .venv/bin/python bench/bench_scorer.py --cold
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from functools import lru_cache
from unittest import mock

import identity_graph.matching.scorer as scorer_module
from identity_graph.matching.model import load_starter_model
from identity_graph.matching.scorer import (
    OnlineScorer,
    damerau_levenshtein,
    jaro_similarity,
    jaro_winkler_similarity,
    levenshtein,
    py_damerau_levenshtein,
    py_jaro_similarity,
    py_jaro_winkler_similarity,
    py_levenshtein,
)
from identity_graph.matching.settings import ATTRIBUTE_COLUMNS
from identity_graph.matching.training import linker_for_model
from identity_graph.synthetic import generate, records_for_splink


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--candidates", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cold", action="store_true",
                        help="clear the pure-Python string caches before each call")
    args = parser.parse_args()

    model = load_starter_model()
    columns = ("unique_id", *ATTRIBUTE_COLUMNS)
    records = [{c: r[c] for c in columns} for r in records_for_splink(generate(5000, args.seed))]
    rng = random.Random(args.seed)
    calls = [(rng.choice(records), rng.sample(records, args.candidates)) for _ in range(args.calls)]
    linker = linker_for_model(model, records)
    linker.inference.score_pairs([calls[0][0]], calls[0][1])  # warm up Splink's caches

    before = {
        "jaro_winkler_similarity": lru_cache(1 << 16)(py_jaro_winkler_similarity),
        "jaro_similarity": lru_cache(1 << 16)(py_jaro_similarity),
        "levenshtein": lru_cache(1 << 16)(py_levenshtein),
        "damerau_levenshtein": lru_cache(1 << 16)(py_damerau_levenshtein),
    }
    after = {"jaro_winkler_similarity": jaro_winkler_similarity, "jaro_similarity": jaro_similarity,
             "levenshtein": levenshtein, "damerau_levenshtein": damerau_levenshtein}

    def scorer_with(functions: dict) -> OnlineScorer:
        # the compiled model binds the functions when the scorer is built
        with mock.patch.dict(scorer_module._FUNCTIONS_2, functions):
            return OnlineScorer(model)

    def timed(fn) -> list[float]:
        out = []
        for rec, cands in calls:
            if args.cold:
                for f in before.values():
                    f.cache_clear()
            t0 = time.perf_counter()
            fn(rec, cands)
            out.append(time.perf_counter() - t0)
        return out

    new, old = scorer_with(after), scorer_with(before)
    results = {}
    for _ in range(2):  # interleaved rounds; the median of all calls is reported
        for name, fn in (("rapidfuzz (now)", new.score), ("pure Python (before)", old.score),
                         ("splink score_pairs", lambda r, c: linker.inference.score_pairs(
                             [r], c).as_record_list())):
            results.setdefault(name, []).extend(timed(fn))
    for rec, cands in calls[:50]:  # same answers, to the last bit
        assert [s.match_weight for s in new.score(rec, cands)] == \
            [s.match_weight for s in old.score(rec, cands)]
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    cache = "cold caches" if args.cold else "warm caches"
    print(f"calls={args.calls}×2 candidates={args.candidates} model={model.version} ({cache}) "
          f"load={load}")
    base = statistics.median(results["rapidfuzz (now)"])
    for name, xs in results.items():
        m = statistics.median(xs)
        print(f"{name:<22} median {m * 1e3:8.3f} ms   ×{m / base:6.1f} of now")


if __name__ == "__main__":
    main()
