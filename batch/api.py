"""`BatchServicer`: the relink as an admin RPC, run inside the server that owns the store.

A thin servicer: request to `RelinkOptions`, `batch.job.run_relink_job`, result to messages.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

from batch.job import run_relink_job
from batch.steps.types import RelinkOptions
from identity_graph.api.errors import handle_errors
from identity_graph.engine import IdentityGraph
from identity_graph.errors import FailedPrecondition, InvalidArgument
from stubs.identity.v1 import batch_pb2 as pb
from stubs.identity.v1 import batch_pb2_grpc as pb_grpc


def _is_file(path: str) -> bool:
    """Whether `path` names a file; a path the OS refuses (too long, NUL byte) names none."""
    try:
        return Path(path).is_file()
    except (OSError, ValueError):
        return False


def _options(request: pb.RelinkRequest) -> RelinkOptions:
    """The request's fields as the run's options (the server draws no progress bars)."""
    return RelinkOptions(
        model_path=request.model_path or None,
        settings_path=request.settings_path or None,
        models_dir=request.models_dir or "models",
        dry_run=request.dry_run,
        seed=request.seed or 42,
        progress=False,
    )


class BatchServicer(pb_grpc.BatchServiceServicer):
    """One relink at a time; its steps stream back as they start. The work is `batch.job`'s:
    this only translates the request and the result."""

    def __init__(self, graph: IdentityGraph) -> None:
        self.graph = graph
        self._running = threading.Lock()

    @handle_errors
    async def Relink(
        self, request: pb.RelinkRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.RelinkProgress]:
        if request.model_path and not _is_file(request.model_path):
            raise InvalidArgument("model_path", "no such model file on the server")
        if not self._running.acquire(blocking=False):
            raise FailedPrecondition("a relink is already running")
        try:
            loop = asyncio.get_running_loop()
            steps: asyncio.Queue[str] = asyncio.Queue()

            def on_step(name: str) -> None:
                loop.call_soon_threadsafe(steps.put_nowait, name)

            job = asyncio.ensure_future(asyncio.to_thread(
                run_relink_job, self.graph, _options(request), request.report_dir or "reports",
                on_step, reload_scorer=request.reload_scorer))
            while not job.done() or not steps.empty():
                getter = asyncio.ensure_future(steps.get())
                done, _ = await asyncio.wait({getter, job}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    yield pb.RelinkProgress(step=getter.result())
                else:
                    getter.cancel()
            result = job.result()
            yield pb.RelinkProgress(step="done", summary=result.summary,
                                    report_json=json.dumps(result.report, default=str),
                                    report_html_path=str(result.html_path))
        finally:
            self._running.release()
