"""FEBRL3 and FEBRL4 (public data with ground truth) through the project's default ingest + relink.

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
@pytest.mark.parametrize("name", ["febrl3", "febrl4"])
def test_febrl_default_ingest_and_relink(name: str, tmp_path: Path) -> None:
    data = febrl(name)
    truth = {r["rec_id"]: person(r["rec_id"]) for rows in data.values() for r in rows}
    predicted, info = run_project(data, tmp_path)
    assert info["rejected"] == 0
    s = scores(predicted, truth)
    assert s["precision"] >= 0.999
    # the target, met with no slack to spare: measured 0.9999 / 0.9997 pairwise and
    # 0.9993 / 0.9991 cluster F1 (seeded training: the same every run); one more split cluster
    # of FEBRL3, or two of FEBRL4, fails it
    assert s["f1"] >= 0.999, s
    assert s["cluster_f1"] >= 0.999, s
