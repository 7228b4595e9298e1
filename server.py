"""identity-server: the identity graph and the session service over gRPC (grpc.aio), with health
checking, reflection, periodic session housekeeping, bearer-token auth, per-caller rate limits and TLS."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import logging
import os
import signal
import sys
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from batch.api import BatchServicer
from identity_graph import workers
from identity_graph.api import IdentityServicer
from identity_graph.api import auth as auth_mod
from identity_graph.api.auth import (
    AuthInterceptor,
    InsecureBindError,
    TokenConfigError,
    TokenStore,
    check_bind,
    current_caller,
)
from identity_graph.api.identity_servicer import DEFAULT_POLL_INTERVAL_S
from identity_graph.api.ratelimit import RateLimiter, RateLimitInterceptor
from identity_graph.api.reflection import enable_reflection
from identity_graph.api.review_servicer import ReviewServicer
from identity_graph.api.wire import DecodeGuardInterceptor
from identity_graph.config import ConfigError
from identity_graph.engine import IdentityGraph, Scorer
from identity_graph.errors import InvalidArgument, StoreError
from identity_graph.store import choose_store, open_store
from privacy.service import Privacy
from privacy.servicer import AdminServicer
from privacy.store import privacy_store_for
from session.api import SessionServicer
from session.policy import Settings
from session.service import Sessions
from session.store import conversation_store_for
from stubs.identity.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    batch_pb2,
    batch_pb2_grpc,
    identity_pb2,
    identity_pb2_grpc,
    review_pb2,
    review_pb2_grpc,
)
from stubs.session.v1 import session_pb2, session_pb2_grpc

log = logging.getLogger("identity_server")
access_log = logging.getLogger("identity_server.access")

DEFAULT_ADDRESS = "127.0.0.1:50051"
DEFAULT_DB = "./identity.db"
DEFAULT_GRACE_S = 10.0
DEFAULT_HOUSEKEEPING_S = 30.0
DEFAULT_STORE_CHECK_S = 2.0

IDENTITY_SERVICE = identity_pb2.DESCRIPTOR.services_by_name["IdentityService"].full_name
SESSION_SERVICE = session_pb2.DESCRIPTOR.services_by_name["SessionService"].full_name
BATCH_SERVICE = batch_pb2.DESCRIPTOR.services_by_name["BatchService"].full_name
ADMIN_SERVICE = admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name
REVIEW_SERVICE = review_pb2.DESCRIPTOR.services_by_name["ReviewService"].full_name
SERVICE_NAMES = (IDENTITY_SERVICE, SESSION_SERVICE, BATCH_SERVICE, ADMIN_SERVICE, REVIEW_SERVICE)


@dataclass
class _Parts:
    """What `shutdown` and `reload_tokens` need besides the server itself."""

    identity: IdentityServicer
    health: Any
    housekeeping: asyncio.Task[None] | None
    auth: AuthInterceptor | None = None
    rate_limit: RateLimiter | None = None
    store_watch: asyncio.Task[None] | None = None


_parts: weakref.WeakKeyDictionary[grpc.aio.Server, _Parts] = weakref.WeakKeyDictionary()


# ---- logging --------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any `extra={"fields": {…}}`."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(getattr(record, "fields", {}))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)  # server-side only
        return json.dumps(out, default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def _status_message(context: grpc.aio.ServicerContext, error: BaseException | None) -> str:
    """The status message a finished call sent; a cancelled call has none (its context is gone)."""
    if isinstance(error, asyncio.CancelledError):
        return "the call ended before it finished (client cancel or deadline)"
    try:
        details = context.details()
    except Exception:  # a context torn down with its call
        details = None
    if isinstance(details, bytes):
        details = details.decode("utf-8", "replace")
    return details or ("" if error is None else f"internal error ({type(error).__name__})")


_Began = tuple[float, float | None, str, str | None]  # start, deadline, peer, caller


class AccessLogInterceptor(grpc.aio.ServerInterceptor):
    """Logs one line per RPC: method, status code, duration in ms, peer, and the authenticated caller
    (None when auth is off). Calls refused by auth or the rate limit are logged by those, in the
    same shape."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return handler
        method = details.method

        def begin(context: grpc.aio.ServicerContext) -> _Began:
            # Read the peer and deadline now: the context must not be queried after a cancel.
            start = time.perf_counter()
            remaining = context.time_remaining()
            deadline = None if remaining is None else start + remaining
            return start, deadline, context.peer(), current_caller.get()

        def done(context: grpc.aio.ServicerContext, began: _Began, error: BaseException | None) -> None:
            start, deadline, peer, caller = began
            end = time.perf_counter()
            if isinstance(error, asyncio.CancelledError):
                expired = deadline is not None and end >= deadline
                code = grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED
            else:
                code = context.code()
                if error is not None and code is None:
                    code = grpc.StatusCode.UNKNOWN
            code = code or grpc.StatusCode.OK
            name = code.name if isinstance(code, grpc.StatusCode) else str(code)
            fields = {
                "method": method,
                "code": name,
                "duration_ms": round((end - start) * 1000, 3),
                "peer": peer,
                "caller": caller,
            }
            if code is not grpc.StatusCode.OK:  # what the caller was told (never a stack trace)
                fields["message"] = _status_message(context, error)
            access_log.info("rpc", extra={"fields": fields})

        if handler.unary_unary:
            inner_uu = handler.unary_unary

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                began, error = begin(context), None
                try:
                    result = inner_uu(request, context)
                    return await result if inspect.isawaitable(result) else result
                except BaseException as e:
                    error = e
                    raise
                finally:
                    done(context, began, error)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary, handler.request_deserializer, handler.response_serializer
            )

        inner = handler.unary_stream or handler.stream_stream
        if inner is None:  # client streaming: not used by these services
            return handler

        async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            began, error = begin(context), None
            try:
                result = inner(request, context)
                if inspect.isasyncgen(result):
                    async for item in result:
                        yield item
                elif inspect.isawaitable(result):
                    await result
            except BaseException as e:
                error = e
                raise
            finally:
                done(context, began, error)

        factory = (
            grpc.unary_stream_rpc_method_handler
            if handler.unary_stream
            else grpc.stream_stream_rpc_method_handler
        )
        return factory(streaming, handler.request_deserializer, handler.response_serializer)


# ---- the server -----------------------------------------------------------------------------

class BindError(RuntimeError):
    """The server's address could not be bound (a RuntimeError, as grpc raises it)."""


SERVER_OPTIONS = [("grpc.so_reuseport", 0)]


@dataclass(frozen=True)
class TlsConfig:
    """Server TLS: a PEM certificate chain and key; with `client_ca`, mutual TLS (every client must
    present a certificate that this CA bundle verifies)."""

    cert_chain: bytes
    private_key: bytes = field(repr=False)
    client_ca: bytes | None = None

    @classmethod
    def from_files(cls, cert: str, key: str, client_ca: str | None = None) -> TlsConfig:
        """Reads the PEM files. Raises OSError when one cannot be read."""
        return cls(
            Path(cert).read_bytes(),
            Path(key).read_bytes(),
            Path(client_ca).read_bytes() if client_ca else None,
        )

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.private_key, self.cert_chain)],
            root_certificates=self.client_ca,
            require_client_auth=self.client_ca is not None,
        )


async def _housekeeping(sessions: Sessions, interval_s: float) -> None:
    """Every `interval_s` seconds: idle conversations go inactive, old inactive ones close."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            changed = await asyncio.to_thread(sessions.housekeeping)
        except Exception:  # keep the loop alive; the next round retries
            log.exception("session housekeeping failed")
            continue
        if changed:
            log.info("session housekeeping", extra={"fields": {"changed": changed}})


async def _watch_store(graph: IdentityGraph, health_servicer: Any, interval_s: float) -> None:
    """Every `interval_s` seconds, pings the store; health says NOT_SERVING while it does not
    answer, and SERVING again once it does (the driver reconnects by itself)."""
    serving = True
    while True:
        await asyncio.sleep(interval_s)
        try:
            await asyncio.wait_for(asyncio.to_thread(graph.store.ping), timeout=max(interval_s, 10.0))
            up = True
        except asyncio.CancelledError:
            raise
        except Exception as e:  # StoreError, or a ping that outlived its timeout
            up, reason = False, f"{type(e).__name__}: {e}"
        if up != serving:
            serving = up
            states = health_pb2.HealthCheckResponse
            status = states.SERVING if up else states.NOT_SERVING
            for name in ("", *SERVICE_NAMES):
                await health_servicer.set(name, status)
            if up:
                log.info("store reachable again: serving")
            else:
                log.error("store unreachable: health NOT_SERVING", extra={"fields": {"reason": reason}})


async def create_server(
    address: str,
    graph: IdentityGraph,
    *,
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
    access_log_enabled: bool = True,
    sessions: Sessions | None = None,
    housekeeping_interval_s: float | None = DEFAULT_HOUSEKEEPING_S,
    auth: TokenStore | None = None,
    rate_limit: RateLimiter | None = None,
    tls: TlsConfig | None = None,
    allow_insecure_non_loopback: bool = False,
    store_check_interval_s: float | None = DEFAULT_STORE_CHECK_S,
    reuse_port: bool = False,
) -> tuple[grpc.aio.Server, int]:
    """Builds (does not start) an aio server with the identity, session and batch services, health
    and reflection, and starts the session housekeeping task (stopped by `shutdown`).

    Interceptors run auth → rate limit → access log → decode guard (unparseable requests get
    INVALID_ARGUMENT). A non-loopback `address` needs `auth` and
    `tls` unless `allow_insecure_non_loopback` (see `identity_graph.api.auth.check_bind`).

    Call it inside the event loop that will run the server.

    Args:
        address: `host:port` to bind; port 0 picks a free port.
        graph: the engine the identity servicer calls.
        poll_interval_s: how often WatchEvents polls the store for events written by other
            processes; this process's own writes wake the streams at once.
        access_log_enabled: log one line per RPC.
        sessions: the session domain the session servicer calls; by default one over `graph`
            with the conversation store beside its graph store.
        housekeeping_interval_s: seconds between `sessions.housekeeping()` runs; None or 0
            turns it off.
        auth: the callers and their scopes; None (the default) turns auth off: loopback only.
        rate_limit: per-caller token buckets; None (the default) does not limit.
        tls: serve TLS (mutual TLS when it has a client CA); None serves plain text.
        allow_insecure_non_loopback: bind a non-loopback address without auth or TLS anyway.
        store_check_interval_s: seconds between store pings that set the health status
            (NOT_SERVING while the store does not answer); None or 0 turns them off.
        reuse_port: bind with `SO_REUSEPORT`, beside the other workers of one
            `identity-server --workers N` (`identity_graph.workers`); never for a lone server.

    Returns:
        The server and the port it is bound to.

    Raises:
        InsecureBindError: a non-loopback address without auth or TLS, not forced.
        BindError: the address could not be bound (e.g. another server holds the port).
    """
    if housekeeping_interval_s is not None and housekeeping_interval_s < 0:
        raise ValueError("housekeeping_interval_s must not be negative")
    for missing in check_bind(
        address, auth=auth is not None, tls=tls is not None, force=allow_insecure_non_loopback
    ):
        log.warning("serving %s without %s (forced)", address, missing)
    if sessions is None:
        sessions = Sessions(graph, conversation_store_for(graph.store))
    # Privacy: erasure, export and audit; Resolve (and so StartOrResume) honours the suppression
    # list, and handoff redemptions are audited.
    privacy = Privacy(graph, sessions.store, privacy_store_for(graph.store), current_caller.get)
    graph.suppressed = privacy.is_suppressed
    sessions.on_handoff_redeemed = privacy.record_handoff_redemption
    interceptors: list[grpc.aio.ServerInterceptor] = []
    auth_interceptor = AuthInterceptor(auth) if auth is not None else None
    if auth_interceptor is not None:
        interceptors.append(auth_interceptor)
    if rate_limit is not None:
        interceptors.append(RateLimitInterceptor(rate_limit))
    if access_log_enabled:
        interceptors.append(AccessLogInterceptor())
    interceptors.append(DecodeGuardInterceptor())
    # gRPC sets SO_REUSEPORT by default: a second server on a taken port would start silently and
    # share its calls with the first (and its database). Off, the second one fails to bind.
    options = [("grpc.so_reuseport", 1)] if reuse_port else SERVER_OPTIONS
    server = grpc.aio.server(interceptors=interceptors or None, options=options)
    servicer = IdentityServicer(graph, poll_interval_s=poll_interval_s, splits=sessions)
    identity_pb2_grpc.add_IdentityServiceServicer_to_server(servicer, server)
    session_pb2_grpc.add_SessionServiceServicer_to_server(SessionServicer(sessions), server)
    batch_pb2_grpc.add_BatchServiceServicer_to_server(BatchServicer(graph), server)
    admin_pb2_grpc.add_AdminServiceServicer_to_server(AdminServicer(privacy), server)
    review_pb2_grpc.add_ReviewServiceServicer_to_server(ReviewServicer(graph), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    # v1 and v1alpha, with the proto comments (grpcurl describe shows them)
    enable_reflection(server, (*SERVICE_NAMES, health.SERVICE_NAME), health_pb2.DESCRIPTOR.name)
    try:
        port = (
            server.add_secure_port(address, tls.credentials()) if tls else server.add_insecure_port(address)
        )
    except RuntimeError as e:
        raise BindError(f"could not bind {address}: the port is in use or the address is not local") from e
    if port == 0:
        raise BindError(f"could not bind {address}: the port is in use or the address is not local")
    task = None
    if housekeeping_interval_s:
        task = asyncio.create_task(_housekeeping(sessions, housekeeping_interval_s), name="housekeeping")
    watch = None
    if store_check_interval_s:
        watch = asyncio.create_task(
            _watch_store(graph, health_servicer, store_check_interval_s), name="store-health"
        )
    _parts[server] = _Parts(servicer, health_servicer, task, auth_interceptor, rate_limit, watch)
    return server, port


def reload_tokens(server: grpc.aio.Server, tokens: TokenStore) -> None:
    """Swaps the callers (and their rate overrides) of a running server built with auth; calls
    already past the check finish under the old set.

    Raises:
        ValueError: the server was built without auth, which cannot be turned on in place.
    """
    parts = _parts[server]
    if parts.auth is None:
        raise ValueError("the server runs without auth; restart it with --tokens-file to turn it on")
    parts.auth.tokens = tokens  # one attribute store: each call sees the old set or the new one
    overrides = tokens.rate_overrides()
    if parts.rate_limit is not None:
        parts.rate_limit.overrides = dict(overrides)
    elif overrides:
        log.warning("tokens set rate limits, but the server runs without rate limiting; restart "
                    "it to apply them")


def _reload_tokens_from(args: argparse.Namespace, server: grpc.aio.Server) -> None:
    """SIGHUP: reads the tokens file and $IDENTITY_TOKENS again. A bad file keeps the old set."""
    try:
        tokens = TokenStore.load(args.tokens_file, os.environ)
        if tokens is None:
            raise TokenConfigError("no tokens file or $IDENTITY_TOKENS configured")
        reload_tokens(server, tokens)
    except (TokenConfigError, ValueError) as e:
        log.error("tokens not reloaded, the previous set stays: %s", e)
        return
    log.info("tokens reloaded", extra={"fields": {"callers": len(tokens)}})


async def shutdown(server: grpc.aio.Server, grace_s: float = DEFAULT_GRACE_S) -> None:
    """Reports NOT_SERVING, ends event streams, and stops taking calls while in-flight calls
    drain for up to `grace_s` seconds."""
    parts = _parts.get(server)
    if parts is not None:
        for task in (parts.housekeeping, parts.store_watch):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await parts.health.enter_graceful_shutdown()
        parts.identity.close()
    await server.stop(grace_s)


# ---- command line ---------------------------------------------------------------------------


class BackgroundServer:
    """The real aio server on its own event loop in a daemon thread, for synchronous callers:
    tests, the demo and benchmarks. `port` is bound on `address`; `stop` drains and closes."""

    def __init__(
        self, graph: IdentityGraph, address: str = "127.0.0.1:0", timeout_s: float = 30.0, **options: Any
    ) -> None:
        self.timeout_s = timeout_s
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="identity-server", daemon=True)
        self.thread.start()
        self._stopped = False
        try:
            self.server, self.port = self.run(create_server(address, graph, **options))
            self.run(self.server.start())
        except BaseException:
            self._close_loop()
            raise

    def run(self, coro: Awaitable[Any]) -> Any:
        """Runs a coroutine on the server's loop and waits for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(self.timeout_s)  # type: ignore[arg-type]

    def shutdown(self, grace_s: float = 1.0) -> None:
        """What SIGTERM runs: health NOT_SERVING, then drain in-flight calls for up to `grace_s`."""
        if not self._stopped:
            self._stopped = True
            self.run(shutdown(self.server, grace_s))

    def stop(self, grace_s: float = 1.0) -> None:
        try:
            self.shutdown(grace_s)
        finally:
            self._close_loop()

    def _close_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(self.timeout_s)
        self.loop.close()

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def load_scorer(model_path: str | None) -> Scorer | None:
    """HOOK: the online Splink scorer, when `identity_graph.matching` provides one.

    Uses `identity_graph.matching.model.load_model` and `identity_graph.matching.scorer.OnlineScorer`
    if both exist and the scorer fits the engine's `Scorer` protocol (`version`, `blocking_keys`,
    `score`); otherwise the server runs deterministic-only and says so in the log.
    """
    if not model_path:
        return None
    try:
        from identity_graph.matching.model import load_model  # type: ignore[import-not-found]
        from identity_graph.matching.scorer import OnlineScorer  # type: ignore[import-not-found]
    except ImportError as e:
        log.warning("no online scorer available (%s); running deterministic-only", e)
        return None
    scorer = OnlineScorer(load_model(model_path))
    if not all(hasattr(scorer, a) for a in ("version", "blocking_keys", "blocking_lookups", "score")):
        log.warning("OnlineScorer does not fit the engine's Scorer protocol; running deterministic-only")
        return None
    return scorer  # type: ignore[return-value]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="identity-server", description=__doc__)
    p.add_argument("--address", default=DEFAULT_ADDRESS, help=f"host:port to listen on ({DEFAULT_ADDRESS})")
    p.add_argument("--db", help=f"embedded SQLite file (default {DEFAULT_DB}, or $NEO4J_URI when set)")
    p.add_argument("--neo4j-uri", help="use Neo4j at this Bolt URI instead of a SQLite file")
    p.add_argument("--neo4j-user", default=os.environ.get("NEO4J_USER", "neo4j"))
    p.add_argument("--neo4j-password", default=os.environ.get("NEO4J_PASSWORD", ""))
    p.add_argument("--config", help="settings TOML file ([graph] and [session]; see config.example.toml)")
    p.add_argument("--model", help="Splink model JSON for online scoring (optional)")
    p.add_argument("--grace", type=float, default=DEFAULT_GRACE_S, help="shutdown drain seconds")
    p.add_argument("--poll-interval", type=float, default=DEFAULT_POLL_INTERVAL_S,
                   help="seconds between WatchEvents polls for events that other processes write "
                        "(this server's own writes are pushed at once)")
    p.add_argument(
        "--housekeeping-interval",
        type=float,
        default=DEFAULT_HOUSEKEEPING_S,
        help=f"seconds between session housekeeping runs; 0 turns it off ({DEFAULT_HOUSEKEEPING_S:g})",
    )
    p.add_argument("--workers", type=int, default=1,
                   help="server processes sharing the port (SO_REUSEPORT), each with its own "
                        "connection to the one database; see README, Several servers (1)")
    p.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # a worker's
    p.add_argument("--log-level", default="INFO")
    sec = p.add_argument_group(
        "security",
        "A non-loopback --address needs token auth and TLS unless --allow-insecure-non-loopback. "
        "Issue tokens with `identity-server issue-token --name NAME --scopes S1,S2 --tokens-file FILE`.",
    )
    sec.add_argument(
        "--tokens-file",
        default=os.environ.get("IDENTITY_TOKENS_FILE"),
        help="JSON or TOML file of callers (token hashes and scopes) ($IDENTITY_TOKENS_FILE); "
        f"${auth_mod.ENV_TOKENS} may hold more as JSON. Without either, auth is off",
    )
    sec.add_argument("--tls-cert", help="PEM certificate chain: serve TLS")
    sec.add_argument("--tls-key", help="PEM private key for --tls-cert")
    sec.add_argument(
        "--tls-client-ca", help="PEM CA bundle: mutual TLS, clients must present a cert it signed"
    )
    sec.add_argument(
        "--rate-limit", type=float, default=0.0, help="calls per second per caller; 0 means no limit (0)"
    )
    sec.add_argument(
        "--rate-burst", type=float, help="bucket size per caller (default: max(1, --rate-limit))"
    )
    sec.add_argument(
        "--allow-insecure-non-loopback",
        action="store_true",
        help="serve a non-loopback address without token auth and/or TLS (e.g. TLS ends at a sidecar)",
    )
    args = p.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    if args.tls_client_ca and not args.tls_cert:
        p.error("--tls-client-ca needs --tls-cert and --tls-key")
    if args.rate_limit < 0:
        p.error("--rate-limit must not be negative")
    if args.rate_burst is not None and args.rate_burst < 1:
        p.error("--rate-burst must be at least 1")
    return args


@dataclass
class Security:
    """What the security flags configure, loaded and checked before the store opens."""

    auth: TokenStore | None
    rate_limit: RateLimiter | None
    tls: TlsConfig | None
    allow_insecure_non_loopback: bool

    @classmethod
    def from_args(cls, args: argparse.Namespace, env: dict[str, str] | None = None) -> Security:
        """Raises TokenConfigError, OSError (unreadable PEM) or InsecureBindError."""
        tokens = TokenStore.load(args.tokens_file, os.environ if env is None else env)
        tls = TlsConfig.from_files(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert else None
        overrides = tokens.rate_overrides() if tokens is not None else {}
        limiter = (
            RateLimiter(args.rate_limit or None, args.rate_burst, overrides)
            if args.rate_limit or overrides
            else None
        )
        check_bind(
            args.address, auth=tokens is not None, tls=tls is not None, force=args.allow_insecure_non_loopback
        )
        return cls(tokens, limiter, tls, args.allow_insecure_non_loopback)

    def options(self) -> dict[str, Any]:
        return {
            "auth": self.auth,
            "rate_limit": self.rate_limit,
            "tls": self.tls,
            "allow_insecure_non_loopback": self.allow_insecure_non_loopback,
        }

    def describe(self) -> dict[str, Any]:
        return {
            "auth": "off" if self.auth is None else f"{len(self.auth)} callers",
            "tls": "off" if self.tls is None else ("mutual" if self.tls.client_ca else "on"),
            "rate_limit": None if self.rate_limit is None else self.rate_limit.rate,
        }


async def serve(
    args: argparse.Namespace,
    graph: IdentityGraph,
    sessions: Sessions | None = None,
    security: Security | None = None,
) -> None:
    """Runs until SIGTERM or SIGINT, then drains in-flight calls and returns."""
    security = security or Security.from_args(args)
    server, port = await create_server(
        args.address,
        graph,
        poll_interval_s=args.poll_interval,
        sessions=sessions,
        housekeeping_interval_s=args.housekeeping_interval,
        reuse_port=getattr(args, "reuse_port", False),
        **security.options(),
    )
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, _reload_tokens_from, args, server)
    # logged once SIGTERM is handled: a supervisor may stop the server as soon as it reads this
    log.info(
        "listening",
        extra={
            "fields": {
                "address": args.address,
                "port": port,
                "backend": graph.store.name,
                # the model the online scorer loaded; None: deterministic links only
                "model": graph.scorer.version if graph.scorer is not None else None,
                **security.describe(),
            }
        },
    )
    await stop.wait()
    log.info("shutting down", extra={"fields": {"grace_s": args.grace}})
    await shutdown(server, args.grace)
    log.info("stopped")


TOKEN_COMMANDS = {"issue-token": "issue", "revoke-token": "revoke", "list-tokens": "list"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in TOKEN_COMMANDS:
        return auth_mod.main([TOKEN_COMMANDS[argv[0]], *argv[1:]])
    args = parse_args(argv)
    configure_logging(args.log_level)
    if args.workers < 1:
        print("identity-server: error: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.workers > 1:
        if (args.db or "").startswith(":memory:"):
            print("identity-server: error: --workers needs a database file or Neo4j, not :memory:",
                  file=sys.stderr)
            return 2
        return workers.run(argv, args.address, args.workers)
    try:
        security = Security.from_args(args)
    except (TokenConfigError, InsecureBindError) as e:
        print(f"identity-server: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"identity-server: error: cannot read TLS file {e.filename}: {e.strerror}", file=sys.stderr)
        return 2
    try:
        settings = Settings.from_file(args.config) if args.config else Settings()
    except ConfigError as e:
        print(f"identity-server: error: {args.config}: {e}", file=sys.stderr)
        return 2
    try:
        db, uri = choose_store(args.db, args.neo4j_uri, DEFAULT_DB)
    except InvalidArgument as e:
        print(f"identity-server: error: {e}", file=sys.stderr)
        return 2
    try:
        store = open_store(
            db,
            neo4j_uri=uri,
            neo4j_user=args.neo4j_user,
            neo4j_password=args.neo4j_password,
        )
    except StoreError as e:
        print(f"identity-server: error: {e}", file=sys.stderr)
        return 1
    try:
        graph = IdentityGraph(store, settings.graph, scorer=load_scorer(args.model))
        sessions = Sessions(graph, conversation_store_for(store), settings.session)
        asyncio.run(serve(args, graph, sessions, security))
    except BindError as e:
        print(f"identity-server: error: {e}", file=sys.stderr)
        return 2
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
