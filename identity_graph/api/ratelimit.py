"""Per-caller rate limiting: a token bucket per caller, and the interceptor that answers excess calls
with RESOURCE_EXHAUSTED, "retry after N ms" and a google.rpc.RetryInfo in the status details."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from identity_graph.api.auth import current_caller, is_public, log_rejected, peer_host, wrap_handler

RETRY_AFTER_METADATA = "retry-after-ms"
MAX_BUCKETS = 10_000
"""Callers remembered at once. Beyond it the least recently seen caller is forgotten (a caller
forgotten while its bucket was not full comes back with a full one: memory stays bounded at the
price of one extra burst for the quietest of 10,000 callers)."""


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
        max_buckets: callers remembered at once (least recently seen forgotten first).
    """

    def __init__(
        self,
        rate: float | None,
        burst: float | None = None,
        overrides: Mapping[str, tuple[float | None, float | None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = MAX_BUCKETS,
    ) -> None:
        if rate is not None and not rate > 0:
            raise ValueError("rate must be positive (None: only the overridden callers are limited)")
        if burst is not None and not burst >= 1:
            raise ValueError("burst must be at least 1")
        if max_buckets < 1:
            raise ValueError("max_buckets must be at least 1")
        self.max_buckets = max_buckets
        self.rate = None if rate is None else float(rate)
        self.burst = float(burst) if burst is not None else None
        self.overrides = dict(overrides or {})
        self.clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()  # least recently seen first
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
                if len(self._buckets) >= self.max_buckets:
                    self._prune(now)
                while len(self._buckets) >= self.max_buckets:
                    self._buckets.popitem(last=False)
                bucket = self._buckets[key] = _Bucket(burst, now)
            else:
                self._buckets.move_to_end(key)
                bucket.tokens = min(burst, bucket.tokens + (now - bucket.stamp) * rate)
                bucket.stamp = now
            if bucket.tokens >= cost:
                bucket.tokens -= cost
                return 0.0
            return (cost - bucket.tokens) / rate

    def __len__(self) -> int:
        """How many callers' buckets are held now (at most `max_buckets`)."""
        with self._lock:
            return len(self._buckets)

    def _prune(self, now: float) -> None:
        # A bucket that has refilled is the same as no bucket: forget those.
        for key, b in list(self._buckets.items()):
            limits = self.limits(key)
            if limits is None or b.tokens + (now - b.stamp) * limits[0] >= limits[1]:
                del self._buckets[key]


def retry_status(message: str, delay_s: float) -> grpc.Status:
    """RESOURCE_EXHAUSTED with a google.rpc.RetryInfo detail (what `rpc_status.from_call` reads),
    and a plain `retry-after-ms` trailer for clients without the rich status."""
    ms = max(1, math.ceil(delay_s * 1000))
    delay = duration_pb2.Duration(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    rich = rpc_status.to_status(
        status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message=message, details=[detail])
    )
    return _Status(rich.code, rich.details, ((RETRY_AFTER_METADATA, str(ms)), *rich.trailing_metadata))


@dataclass(frozen=True)
class _Status(grpc.Status):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...]


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
                log_rejected(method, grpc.StatusCode.RESOURCE_EXHAUSTED, context.peer(), caller, message)
                status = retry_status(message, delay)
                await context.abort(status.code, status.details, status.trailing_metadata)

        return wrap_handler(handler, charge)
