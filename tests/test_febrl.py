"""FEBRL3 (public data with ground truth) through the project's default ingest + relink.

Guards the benchmark in BENCHMARKS.md: no hand-written settings, the model comes from the
columns (bench/bench_febrl.py runs the same path side by side with plain Splink).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from bench_febrl import febrl, person, run_project, scores


@pytest.mark.slow
def test_febrl3_default_ingest_and_relink(tmp_path: Path) -> None:
    data = febrl("febrl3")
    truth = {r["rec_id"]: person(r["rec_id"]) for rows in data.values() for r in rows}
    predicted, info = run_project(data, tmp_path)
    assert info["rejected"] == 0
    s = scores(predicted, truth)
    assert s["precision"] >= 0.999
    assert s["f1"] >= 0.99, s
