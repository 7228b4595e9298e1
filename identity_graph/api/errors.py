"""The one mapping from the project's error tree (identity_graph/errors.py) to gRPC status codes.

InvalidArgument     → INVALID_ARGUMENT  details "field: reason"
NotFound            → NOT_FOUND
FailedPrecondition  → FAILED_PRECONDITION
Conflict            → ABORTED
PermissionDenied    → PERMISSION_DENIED
TooManyAttempts     → RESOURCE_EXHAUSTED
StoreError          → UNAVAILABLE
anything else       → INTERNAL, a generic message; the exception is logged here, never sent
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import grpc

from identity_graph.errors import (
    Conflict,
    FailedPrecondition,
    IdentityGraphError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    StoreError,
    TooManyAttempts,
)

T = TypeVar("T")

log = logging.getLogger("identity_graph.api")

F = TypeVar("F", bound=Callable[..., Any])

_CODES: tuple[tuple[type[IdentityGraphError], grpc.StatusCode], ...] = (
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (Conflict, grpc.StatusCode.ABORTED),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (TooManyAttempts, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (StoreError, grpc.StatusCode.UNAVAILABLE),
)


# Details may quote the request; grpc refuses trailers over 16 KiB (percent-encoded), and the
# client would then see RESOURCE_EXHAUSTED instead of the status and the field.
MAX_DETAIL_CHARS = 500


def _bounded(detail: str) -> str:
    return detail if len(detail) <= MAX_DETAIL_CHARS else detail[: MAX_DETAIL_CHARS - 1] + "…"


def status_for(error: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and the client-safe detail (at most `MAX_DETAIL_CHARS`) for `error`."""
    if isinstance(error, InvalidArgument):
        return grpc.StatusCode.INVALID_ARGUMENT, _bounded(f"{error.field}: {error.reason}")
    if isinstance(error, StoreError):
        return grpc.StatusCode.UNAVAILABLE, "the graph store is unavailable; retry later"
    for cls, code in _CODES:
        if isinstance(error, cls):
            return code, _bounded(str(error) or cls.__name__)
    return grpc.StatusCode.INTERNAL, "internal error"


def check_deadline(context: grpc.aio.ServicerContext) -> bool:
    """False when the caller's deadline has already passed."""
    remaining = context.time_remaining()
    return remaining is None or remaining > 0


async def run_blocking(context: grpc.aio.ServicerContext, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    """Runs one blocking domain call in a worker thread, so the event loop stays free; the thread
    sees the caller (`asyncio.to_thread` copies the context). A call whose deadline has passed is
    not started."""
    if not check_deadline(context):
        await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded")
    return await asyncio.to_thread(fn, *args, **kw)


async def _abort_for(error: Exception, context: grpc.aio.ServicerContext, method: str) -> None:
    code, detail = status_for(error)
    if code is grpc.StatusCode.INTERNAL:
        incident = uuid.uuid4().hex[:12]
        log.error("unhandled error in %s (incident %s)", method, incident, exc_info=error)
        detail = f"internal error (incident {incident})"
    elif code is grpc.StatusCode.UNAVAILABLE:
        log.warning("store error in %s: %s", method, error, exc_info=error)
    await context.abort(code, detail)


def handle_errors(fn: F) -> F:
    """Wraps an async servicer method (unary or server-streaming) with the error mapping.

    It also refuses work whose deadline has passed (DEADLINE_EXCEEDED) before calling `fn`.
    """
    method = fn.__qualname__

    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        async def stream(self: Any, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            if not check_deadline(context):
                await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded")
            try:
                async for item in fn(self, request, context):
                    yield item
            except grpc.aio.AbortError:
                raise
            except Exception as e:
                await _abort_for(e, context, method)

        return stream  # type: ignore[return-value]

    @functools.wraps(fn)
    async def unary(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        if not check_deadline(context):
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded")
        try:
            return await fn(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as e:
            await _abort_for(e, context, method)

    return unary  # type: ignore[return-value]
