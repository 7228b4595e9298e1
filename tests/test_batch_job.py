"""`batch.job.run_relink_job`: the relink job behind the admin RPC, without gRPC."""

from __future__ import annotations

import json
from pathlib import Path

from batch.job import model_file_of, run_relink_job
from batch.quality import load_synthetic
from batch.relink import RelinkOptions
from identity_graph.engine import IdentityGraph
from identity_graph.matching.model import STARTER_MODEL_PATH
from identity_graph.store.base import GraphStore


def test_the_job_writes_its_report_and_puts_its_model_online(store: GraphStore, tmp_path: Path) -> None:
    load_synthetic(store, 60, seed=5)
    graph = IdentityGraph(store)
    assert graph.scorer is None
    steps: list[str] = []
    options = RelinkOptions(model_path=str(STARTER_MODEL_PATH), progress=False, charts=False)
    result = run_relink_job(graph, options, tmp_path / "reports", steps.append, reload_scorer=True)
    assert steps[:6] == ["snapshot", "model", "predict", "cluster", "plan", "apply"]
    assert json.loads(result.json_path.read_text())["run"]["id"] == result.report["run"]["id"]
    assert result.html_path.is_file() and result.summary.startswith("relink ")
    assert result.model_online == str(STARTER_MODEL_PATH) == model_file_of(result.report)
    assert graph.scorer is not None and graph.scorer.version == result.report["model"]["version"]


def test_a_dry_run_leaves_the_online_model_alone(store: GraphStore, tmp_path: Path) -> None:
    load_synthetic(store, 30, seed=6)
    graph = IdentityGraph(store)
    options = RelinkOptions(model_path=str(STARTER_MODEL_PATH), dry_run=True, progress=False,
                            charts=False)
    result = run_relink_job(graph, options, tmp_path, reload_scorer=True)
    assert result.model_online is None and graph.scorer is None
    assert result.json_path.name.endswith("-dry-run.json")
