"""Per-caller rate limiting: a token bucket per caller, and the interceptor that answers excess calls
with RESOURCE_EXHAUSTED, "retry after N ms" and a google.rpc.RetryInfo in the status details."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import grpc

from identity_graph.api.auth import current_caller, is_public, log_rejected, peer_host, wrap_handler

try:  # googleapis-common-protos (a dependency of grpcio-status) gives the rich status details
    from google.protobuf import any_pb2, duration_pb2
    from google.rpc import code_pb2, error_details_pb2, status_pb2
except ImportError:  # pragma: no cover - the plain detail and trailer still say when to retry
    status_pb2 = None

RETRY_AFTER_METADATA = "retry-after-ms"
STATUS_DETAILS_METADATA = "grpc-status-details-bin"
MAX_BUCKETS = 10_000


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Token buckets keyed by caller: each holds up to `burst` calls and refills at `rate` per second.

    Thread-safe (one lock, held for a few arithmetic operations, never across an await), so it serves
    the event loop and worker threads alike.

    Args:
        rate: calls per second each caller may sustain; None: only callers in `overrides` are limited.
        burst: bucket size, the calls a rested caller may make at once; default max(1, rate).
        overrides: per-caller (rate, burst); a None inside falls back to `rate`/`burst`.
        clock: monotonic seconds; tests pass a fake.
    """

    def __init__(
        self,
        rate: float | None,
        burst: float | None = None,
        overrides: Mapping[str, tuple[float | None, float | None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate is not None and not rate > 0:
            raise ValueError("rate must be positive (None: only the overridden callers are limited)")
        if burst is not None and not burst >= 1:
            raise ValueError("burst must be at least 1")
        self.rate = None if rate is None else float(rate)
        self.burst = float(burst) if burst is not None else None
        self.overrides = dict(overrides or {})
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def limits(self, key: str) -> tuple[float, float] | None:
        """(rate, burst) for `key`; None when it is not limited. A missing burst is max(1, rate)."""
        own_rate, own_burst = self.overrides.get(key, (None, None))
        rate = own_rate or self.rate
        if rate is None:
            return None
        return rate, max(1.0, own_burst or self.burst or rate)

    def acquire(self, key: str, cost: float = 1.0) -> float:
        """Takes `cost` from `key`'s bucket.

        Returns:
            0.0 when the call may go ahead; otherwise the seconds until it could (nothing is taken).
        """
        limits = self.limits(key)
        if limits is None:
            return 0.0
        rate, burst = limits
        with self._lock:
            now = self.clock()
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= MAX_BUCKETS:
                    self._prune(now)
                bucket = self._buckets[key] = _Bucket(burst, now)
            else:
                bucket.tokens = min(burst, bucket.tokens + (now - bucket.stamp) * rate)
                bucket.stamp = now
            if bucket.tokens >= cost:
                bucket.tokens -= cost
                return 0.0
            return (cost - bucket.tokens) / rate

    def _prune(self, now: float) -> None:
        # A bucket that has refilled is the same as no bucket: forget those.
        for key, b in list(self._buckets.items()):
            limits = self.limits(key)
            if limits is None or b.tokens + (now - b.stamp) * limits[0] >= limits[1]:
                del self._buckets[key]


def retry_trailers(message: str, delay_s: float) -> tuple[tuple[str, str | bytes], ...]:
    """Trailing metadata for a RESOURCE_EXHAUSTED: `retry-after-ms`, and a google.rpc.Status with a
    RetryInfo in `grpc-status-details-bin` (what `grpc_status.rpc_status.from_call` reads)."""
    ms = max(1, math.ceil(delay_s * 1000))
    trailers: list[tuple[str, str | bytes]] = [(RETRY_AFTER_METADATA, str(ms))]
    if status_pb2 is not None:
        delay = duration_pb2.Duration(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        status = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message=message, details=[detail])
        trailers.append((STATUS_DETAILS_METADATA, status.SerializeToString()))
    return tuple(trailers)


class RateLimitInterceptor(grpc.aio.ServerInterceptor):
    """Charges one token per call (a stream counts once) to the caller's bucket: the authenticated
    caller (`current_caller`), or the peer's host when auth is off. Public methods are not limited.
    Put it after the auth interceptor, which sets the caller."""

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method = details.method
        if handler is None or is_public(method):
            return handler

        async def charge(context: grpc.aio.ServicerContext) -> None:
            caller = current_caller.get()
            key = caller if caller is not None else f"peer:{peer_host(context.peer())}"
            delay = self.limiter.acquire(key)
            if delay > 0:
                ms = max(1, math.ceil(delay * 1000))
                who = repr(caller) if caller is not None else "this peer"
                message = f"rate limit exceeded for {who}; retry after {ms} ms"
                log_rejected(method, grpc.StatusCode.RESOURCE_EXHAUSTED, context.peer(), caller)
                await context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    message,
                    trailing_metadata=retry_trailers(message, delay),
                )

        return wrap_handler(handler, charge)
