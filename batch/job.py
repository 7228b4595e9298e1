"""One relink as a server job: run it, write its report, and put its model online if asked.

The admin RPC (`batch.api.BatchServicer`) only translates messages; this is the domain work
behind it, callable (and testable) without gRPC.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batch.relink import run_relink
from batch.report import summary_text, write_report
from batch.steps.types import RelinkOptions
from identity_graph.matching.model import load_model
from identity_graph.matching.scorer import OnlineScorer

if TYPE_CHECKING:
    from identity_graph.engine import IdentityGraph

__all__ = ["JobResult", "model_file_of", "run_relink_job", "use_model"]


@dataclass(frozen=True)
class JobResult:
    """What a finished relink job gives its caller."""

    report: dict[str, Any]
    json_path: Path
    html_path: Path
    summary: str
    """The one-screen summary (`batch.report.summary_text`)."""
    model_online: str | None = None
    """The model file the online scorer now uses, when the job switched it."""


def run_relink_job(
    graph: IdentityGraph,
    options: RelinkOptions,
    report_dir: str | Path,
    on_step: Callable[[str], None] | None = None,
    *,
    reload_scorer: bool = False,
) -> JobResult:
    """Runs the relink inside the process that owns `graph`, writes its report, and with
    `reload_scorer` (and not a dry run) makes the run's model the online one, so Resolve
    scores with the model that just decided the customers.

    Args:
        graph: the server's graph; the relink applies under its write lock (`run_relink`).
        options: the run's options.
        report_dir: where `<run id>.json` and `.html` are written (`batch.report.write_report`).
        on_step: called with each step's name as it starts.
        reload_scorer: switch the online scorer to the run's model afterwards.
    Returns:
        The report, the paths written, the summary text, and the model file put online if any.
    """
    report = run_relink(graph, options, on_step)
    json_path, html_path = write_report(report, report_dir)
    online = use_model(graph, model_file_of(report)) if reload_scorer and not options.dry_run else None
    return JobResult(report, json_path, html_path, summary_text(report), online)


def model_file_of(report: dict[str, Any]) -> str | None:
    """The model file a run used: the one it saved after training, else the one it was given."""
    model = report.get("model") or {}
    path = model.get("saved_to") or model.get("source")
    return str(path) if path and Path(path).is_file() else None


def use_model(graph: IdentityGraph, path: str | None) -> str | None:
    """Makes the model at `path` the graph's online scorer (through its public `scorer` setter,
    which also rebuilds the blocking index); returns `path`, or None when there is no file."""
    if path is None:
        return None
    graph.scorer = OnlineScorer(load_model(path))
    return path
