"""`SessionServicer`: session.v1.SessionService over one `Sessions`. Converts and delegates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc

from identity_graph.api.convert import acting
from identity_graph.api.errors import handle_errors, run_blocking
from identity_graph.errors import InvalidArgument
from session.api import convert
from session.model import Conversation
from session.service import Caller, ConversationView, Sessions
from stubs.session.v1 import session_pb2 as pb
from stubs.session.v1 import session_pb2_grpc as pb_grpc

DEFAULT_PAGE_SIZE = 20
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SessionServicer(pb_grpc.SessionServiceServicer):
    """Each RPC converts its request, runs one blocking `Sessions` call in a worker thread (so the
    event loop stays free), and converts the result. Errors are mapped by `handle_errors`, the
    same decorator the identity service uses."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    def _caller(self, request: Any) -> Caller:
        return convert.request_caller(self.sessions, request)

    @handle_errors
    async def StartOrResume(
        self, request: pb.StartOrResumeRequest, context: grpc.aio.ServicerContext
    ) -> pb.StartOrResumeResponse:
        result = await run_blocking(
            context,
            self.sessions.start_or_resume,
            request.channel,
            convert.identifier_pairs(request.identifiers),
            dict(request.attributes),
            convert.proof_from_pb(request),
            acting(request.actor),
        )
        return convert.start_to_pb(result)

    @handle_errors
    async def AppendTurn(
        self, request: pb.AppendTurnRequest, context: grpc.aio.ServicerContext
    ) -> pb.AppendTurnResponse:
        caller = self._caller(request)
        role = convert.role_from_pb(request.role)
        turn = await run_blocking(
            context,
            self.sessions.append_turn,
            convert.conversation_id(request.conversation_id),
            caller,
            role,
            request.text,
            request.intent,
            request.topic,
        )
        return pb.AppendTurnResponse(turn=convert.turn_to_pb(turn))

    @handle_errors
    async def UpdateContext(
        self, request: pb.UpdateContextRequest, context: grpc.aio.ServicerContext
    ) -> pb.ConversationResponse:
        caller = self._caller(request)
        if not request.HasField("context"):
            raise InvalidArgument("context", "is required")
        cid = convert.conversation_id(request.conversation_id)
        version = convert.expected_version(request.expected_version)
        value = convert.context_from_pb(request.context)
        return await self._written(context, cid, caller, self.sessions.update_context, version, value)

    @handle_errors
    async def UpdateState(
        self, request: pb.UpdateStateRequest, context: grpc.aio.ServicerContext
    ) -> pb.ConversationResponse:
        caller = self._caller(request)
        if not request.HasField("state"):
            raise InvalidArgument("state", "is required")
        cid = convert.conversation_id(request.conversation_id)
        version = convert.expected_version(request.expected_version)
        value = convert.state_from_pb(request.state)
        return await self._written(context, cid, caller, self.sessions.update_state, version, value)

    async def _conversation(
        self, context: grpc.aio.ServicerContext, cid: str, caller: Caller
    ) -> pb.ConversationResponse:
        view = await run_blocking(context, self.sessions.get, cid, caller)
        return pb.ConversationResponse(conversation=convert.view_to_pb(view))

    async def _written(
        self,
        context: grpc.aio.ServicerContext,
        cid: str,
        caller: Caller,
        write: Callable[..., Conversation],
        *args: Any,
    ) -> pb.ConversationResponse:
        """Runs a write, then answers with the conversation exactly as written (its version),
        with the turns the caller may see."""

        def run() -> ConversationView:
            written = write(cid, caller, *args)
            view = self.sessions.get(cid, caller)
            return replace(view, conversation=written) if view.disclosed else view

        view = await run_blocking(context, run)
        return pb.ConversationResponse(conversation=convert.view_to_pb(view))

    @handle_errors
    async def GetConversation(
        self, request: pb.GetConversationRequest, context: grpc.aio.ServicerContext
    ) -> pb.ConversationResponse:
        caller = self._caller(request)
        return await self._conversation(context, convert.conversation_id(request.conversation_id), caller)

    @handle_errors
    async def ListConversations(
        self, request: pb.ListConversationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListConversationsResponse:
        caller = self._caller(request)
        views, token = await run_blocking(
            context,
            self.sessions.list,
            caller,
            convert.statuses_from_pb(request.statuses),
            request.channel,
            request.page_size or DEFAULT_PAGE_SIZE,
            request.page_token,
        )
        return pb.ListConversationsResponse(
            conversations=[convert.view_to_pb(v, turns=False) for v in views], next_page_token=token
        )

    @handle_errors
    async def SuggestHandoff(
        self, request: pb.SuggestHandoffRequest, context: grpc.aio.ServicerContext
    ) -> pb.SuggestHandoffResponse:
        caller = self._caller(request)
        cid = convert.conversation_id(request.conversation_id)
        suggestion = await run_blocking(context, self.sessions.suggest_handoff, cid, caller)
        return convert.suggestion_to_pb(suggestion)

    @handle_errors
    async def CreateHandoff(
        self, request: pb.CreateHandoffRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateHandoffResponse:
        caller = self._caller(request)
        cid = convert.conversation_id(request.conversation_id)
        ticket = await run_blocking(context, self.sessions.create_handoff, cid, caller, request.channel)
        return convert.ticket_to_pb(ticket)

    @handle_errors
    async def RedeemHandoff(
        self, request: pb.RedeemHandoffRequest, context: grpc.aio.ServicerContext
    ) -> pb.StartOrResumeResponse:
        result = await run_blocking(
            context,
            self.sessions.redeem_handoff,
            request.code.strip(),
            request.channel,
            convert.identifier_pairs(request.identifiers),
            acting(request.actor),
        )
        return convert.start_to_pb(result)

    @handle_errors
    async def StartStepUp(
        self, request: pb.StartStepUpRequest, context: grpc.aio.ServicerContext
    ) -> pb.StartStepUpResponse:
        caller = self._caller(request)
        cid = convert.conversation_id(request.conversation_id)
        step, sent_to = await run_blocking(context, self.sessions.start_step_up, caller, cid, request.channel)
        return pb.StartStepUpResponse(
            step_up_id=step.id, sent_to=sent_to, expires_at=convert.timestamp(step.expires_at)
        )

    @handle_errors
    async def CompleteStepUp(
        self, request: pb.CompleteStepUpRequest, context: grpc.aio.ServicerContext
    ) -> pb.CompleteStepUpResponse:
        caller = self._caller(request)
        if not request.step_up_id.strip():
            raise InvalidArgument("step_up_id", "is required")
        if not request.code.strip():
            raise InvalidArgument("code", "is required")
        done = await run_blocking(
            context, self.sessions.complete_step_up, request.step_up_id.strip(), caller, request.code.strip()
        )
        return pb.CompleteStepUpResponse(verified=done.completed_at is not None)

    @handle_errors
    async def Escalate(
        self, request: pb.EscalateRequest, context: grpc.aio.ServicerContext
    ) -> pb.EscalateResponse:
        caller = self._caller(request)
        cid = convert.conversation_id(request.conversation_id)
        package = await run_blocking(context, self.sessions.escalate, cid, caller, request.reason)
        return convert.escalation_to_pb(package)

    @handle_errors
    async def Close(
        self, request: pb.CloseRequest, context: grpc.aio.ServicerContext
    ) -> pb.ConversationResponse:
        caller = self._caller(request)
        cid = convert.conversation_id(request.conversation_id)
        return await self._written(context, cid, caller, self.sessions.close)

    @handle_errors
    async def RecordConsent(
        self, request: pb.RecordConsentRequest, context: grpc.aio.ServicerContext
    ) -> pb.Consent:
        consent = await run_blocking(
            context,
            self.sessions.record_consent,
            convert.identifier_pair(request.identifier),
            request.channel,
            request.purpose,
            request.granted,
            request.source,
        )
        return convert.consent_to_pb(consent)

    @handle_errors
    async def RecycleIdentifier(
        self, request: pb.RecycleIdentifierRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecycleIdentifierResponse:
        type_, value = convert.identifier_pair(request.identifier)
        sealed, customer_id = await run_blocking(
            context, self.sessions.recycle_identifier, type_, value, acting(request.actor), request.reason
        )
        return pb.RecycleIdentifierResponse(conversations_sealed=sealed, customer_id=customer_id)

    @handle_errors
    async def GetConsents(
        self, request: pb.GetConsentsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetConsentsResponse:
        current, history = await run_blocking(
            context, self.sessions.consents, convert.identifier_pair(request.identifier)
        )
        return pb.GetConsentsResponse(
            current=[convert.consent_to_pb(c) for c in current],
            history=[convert.consent_to_pb(c) for c in history],
        )

    @handle_errors
    async def GetMetrics(
        self, request: pb.GetMetricsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetMetricsResponse:
        start = convert.time_from_pb(request.start, "start") if request.HasField("start") else EPOCH
        if request.HasField("end"):
            end = convert.time_from_pb(request.end, "end")
        else:
            end = self.sessions.clock() + timedelta(seconds=1)
        return convert.metrics_to_pb(await run_blocking(context, self.sessions.metrics, start, end))
