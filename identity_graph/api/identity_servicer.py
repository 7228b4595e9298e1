"""`IdentityServicer`: identity.v1.IdentityService over one `IdentityGraph`. Converts and delegates."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, Protocol

import grpc

from identity_graph.api import convert
from identity_graph.api.errors import handle_errors, run_blocking
from identity_graph.engine import IdentityGraph, SplitPlan, UnlinkResult
from identity_graph.errors import FailedPrecondition, InvalidArgument
from identity_graph.model import LinkKind
from stubs.identity.v1 import identity_pb2 as pb
from stubs.identity.v1 import identity_pb2_grpc as pb_grpc

DEFAULT_POLL_INTERVAL_S = 1.0
DEFAULT_EVENT_BATCH = 500


class EventBell:
    """Wakes waiting WatchEvents streams when this process writes events (see
    `GraphStore.on_events`). `ring` may be called from any thread; the rest runs on the loop."""

    def __init__(self) -> None:
        self.rings = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: set[asyncio.Future[None]] = set()

    def ring(self, _seq: int = 0) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        self.rings += 1
        for f in self._waiters:
            if not f.done():
                f.set_result(None)
        self._waiters.clear()

    async def wait(self, rings_seen: int, timeout: float) -> None:
        """Returns at the next ring after `rings_seen` (at once if there was one), or after
        `timeout`."""
        self._loop = asyncio.get_running_loop()
        if self.rings != rings_seen:
            return
        fut = self._loop.create_future()
        self._waiters.add(fut)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(fut)


class Splits(Protocol):
    """Splits and unlinks that know the conversations moving with each part: the session
    service (`session.service.Sessions`), which lives beside the graph."""

    def preview_split(
        self, *, cut: Sequence[tuple[str, str]] = ..., detach: Sequence[str] = ..., actor: str = ...
    ) -> tuple[SplitPlan, list[list[str]]]: ...

    def split(
        self, *, cut: Sequence[tuple[str, str]] = ..., detach: Sequence[str] = ..., actor: str,
        seal_moving: bool = ...,
    ) -> tuple[SplitPlan, list[list[str]], int]: ...

    def unlink(
        self, a: str, b: str, *, actor: str, reason: str = ..., kinds: Iterable[LinkKind] | None = ...,
        preview: bool = ..., seal_moving: bool = ...,
    ) -> tuple[UnlinkResult, list[str], int]: ...


class IdentityServicer(pb_grpc.IdentityServiceServicer):
    """Each RPC converts its request, runs one blocking engine call in a worker thread (so the
    event loop stays free), and converts the result. Errors are mapped by `handle_errors`."""

    def __init__(
        self,
        graph: IdentityGraph,
        *,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        event_batch: int = DEFAULT_EVENT_BATCH,
        splits: Splits | None = None,
    ) -> None:
        self.graph = graph
        self.splits = splits
        self.poll_interval_s = poll_interval_s
        self.event_batch = event_batch
        self._closing = False
        self._bell = EventBell()
        self._unsubscribe = graph.events.subscribe(self._bell.ring)

    def close(self) -> None:
        """Ends open WatchEvents streams (cleanly) so a shutdown can drain."""
        self._closing = True
        self._unsubscribe()
        self._bell.ring()

    @handle_errors
    async def Resolve(
        self, request: pb.ResolveRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResolveResponse:
        req = convert.resolve_request(request)
        result = None
        if self.graph.store.database.inline_reads:  # a known identifier: read here, no hand-off
            result = self.graph.resolve.without_waiting(req)
        if result is None:
            result = await run_blocking(context, self.graph.resolve, req)
        return convert.resolve_response(result, self.graph.config.disclosure_level)

    @handle_errors
    async def Link(self, request: pb.LinkRequest, context: grpc.aio.ServicerContext) -> pb.LinkResponse:
        args = convert.link_args(request)
        result = await run_blocking(context, self.graph.links.add, **args)
        return pb.LinkResponse(
            links=[convert.link_to_pb(lk) for lk in result.links], **convert.change_fields(result)
        )

    @handle_errors
    async def Unlink(self, request: pb.UnlinkRequest, context: grpc.aio.ServicerContext) -> pb.UnlinkResponse:
        args = convert.unlink_args(request)
        if self.splits is None:
            if request.seal_moving_conversations:
                raise FailedPrecondition("this server runs no session service: nothing to seal")
            unlink = self.graph.links.preview_remove if request.preview else self.graph.links.remove
            return convert.unlink_response(await run_blocking(context, unlink, **args))
        result, moving, sealed = await run_blocking(
            context,
            self.splits.unlink,
            **args,
            preview=request.preview,
            seal_moving=request.seal_moving_conversations,
        )
        return convert.unlink_response(result, moving, sealed)

    @handle_errors
    async def SetGeneric(
        self, request: pb.SetGenericRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetGenericResponse:
        if not request.HasField("identifier"):
            raise InvalidArgument("identifier", "is required")
        key = convert.key_from_pb(request.identifier, "identifier")
        actor = convert.acting(request.actor, required=True)
        result = await run_blocking(context, self.graph.links.set_generic, key, request.generic, actor=actor)
        return pb.SetGenericResponse(**convert.change_fields(result))

    @handle_errors
    async def GetCustomer(
        self, request: pb.GetCustomerRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetCustomerResponse:
        ref, field = convert.customer_ref(request)
        view = await run_blocking(context, self._get_customer, ref, field)
        return pb.GetCustomerResponse(customer=convert.customer_to_pb(view))

    def _get_customer(self, ref: str, field: str) -> Any:
        if field == "identifier":  # normalise first, so that errors name the request's field
            ref = self.graph.key(ref, field)
            # Asked by an identifier: what its holder may see (holding is not claiming).
            return self.graph.customers.get(ref, viewer=ref)
        return self.graph.customers.get(ref)

    @handle_errors
    async def Explain(
        self, request: pb.ExplainRequest, context: grpc.aio.ServicerContext
    ) -> pb.ExplainResponse:
        for name in ("a", "b"):
            if not request.HasField(name):
                raise InvalidArgument(name, "is required")
        a = convert.key_from_pb(request.a, "a")
        b = convert.key_from_pb(request.b, "b")
        return convert.explain_response(await run_blocking(context, self.graph.customers.explain, a, b))

    @handle_errors
    async def PreviewSplit(
        self, request: pb.SplitRequest, context: grpc.aio.ServicerContext
    ) -> pb.SplitResponse:
        args = convert.split_args(request, actor_required=False)
        if self.splits is None:
            return convert.split_response(await run_blocking(context, self.graph.links.preview_split, **args))
        plan, moving = await run_blocking(context, self.splits.preview_split, **args)
        return convert.split_response(plan, moving)

    @handle_errors
    async def Split(self, request: pb.SplitRequest, context: grpc.aio.ServicerContext) -> pb.SplitResponse:
        args = convert.split_args(request, actor_required=True)
        if self.splits is None:
            if request.seal_moving_conversations:
                raise FailedPrecondition("this server runs no session service: nothing to seal")
            return convert.split_response(await run_blocking(context, self.graph.links.split, **args))
        plan, moving, sealed = await run_blocking(
            context, self.splits.split, **args, seal_moving=request.seal_moving_conversations
        )
        return convert.split_response(plan, moving, sealed)

    @handle_errors
    async def WatchEvents(
        self, request: pb.WatchEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.Event]:
        if request.from_seq < 0:
            raise InvalidArgument("from_seq", "must not be negative")
        types = set(request.types)
        last = request.from_seq
        # Woken by this process's writes at once; polled every `poll_interval_s` for the writes
        # of other processes (a batch CLI, another server on the same Neo4j).
        while not self._closing:
            rings = self._bell.rings
            events = await run_blocking(context, self.graph.events.read, last, self.event_batch)
            for ev in events:
                last = ev.seq
                if not types or ev.type in types:
                    yield convert.event_to_pb(ev)
            if len(events) < self.event_batch and not self._closing:
                await self._bell.wait(rings, self.poll_interval_s)
