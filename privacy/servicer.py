"""`AdminServicer`: identity.v1.AdminService (Forget, ExportCustomerData, QueryAudit) over `Privacy`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from identity_graph.api.convert import acting, timestamp
from identity_graph.api.errors import handle_errors, run_blocking
from identity_graph.errors import InvalidArgument
from privacy.service import DEFAULT_AUDIT_PAGE, AuditEntry, Privacy, Scope, document_json
from stubs.identity.v1 import admin_pb2 as pb
from stubs.identity.v1 import admin_pb2_grpc as pb_grpc

_SCOPES = {pb.FORGET_SCOPE_IDENTIFIER: Scope.IDENTIFIER, pb.FORGET_SCOPE_CUSTOMER: Scope.CUSTOMER}


MAX_ACTOR = 200
MAX_REASON = 2000


def _time(request: Any, name: str) -> datetime | None:
    if not request.HasField(name):
        return None
    ts: Timestamp = getattr(request, name)
    try:
        return ts.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError, OSError) as e:
        raise InvalidArgument(name, "not a valid time") from e


def _bounded(value: str, name: str, limit: int) -> str:
    if len(value) > limit:
        raise InvalidArgument(name, f"at most {limit} characters")
    return value


def _entry(e: AuditEntry) -> pb.AuditEntry:
    return pb.AuditEntry(id=e.id, action=e.action, actor=e.actor, at=timestamp(e.at),
                         subject=e.subject, detail_json=document_json(e.detail))


class AdminServicer(pb_grpc.AdminServiceServicer):
    """Converts and delegates; each call runs one blocking `Privacy` call in a worker thread (which
    sees the caller in `current_caller`: `asyncio.to_thread` copies the context)."""

    def __init__(self, privacy: Privacy) -> None:
        self.privacy = privacy

    @handle_errors
    async def Forget(self, request: pb.ForgetRequest, context: grpc.aio.ServicerContext) -> pb.ForgetResponse:
        if not request.identifier.type or not request.identifier.value:
            raise InvalidArgument("identifier", "an identifier (type and value) is required")
        scope = _SCOPES.get(request.scope)
        if scope is None:
            raise InvalidArgument("scope", "FORGET_SCOPE_IDENTIFIER or FORGET_SCOPE_CUSTOMER")
        result = await run_blocking(
            context, self.privacy.forget, request.identifier.type, request.identifier.value, scope,
            actor=_bounded(acting(request.actor, required=True), "actor", MAX_ACTOR),
            reason=_bounded(request.reason, "reason", MAX_REASON),
        )
        return pb.ForgetResponse(counts=result.counts, audit_id=result.audit_id)

    @handle_errors
    async def ExportCustomerData(
        self, request: pb.ExportCustomerDataRequest, context: grpc.aio.ServicerContext
    ) -> pb.ExportCustomerDataResponse:
        if request.customer_id:
            ref = request.customer_id.strip()
        elif request.identifier.type and request.identifier.value:
            ref = f"{request.identifier.type}:{request.identifier.value}"
        else:
            raise InvalidArgument("customer_id", "give a customer id or an identifier")
        actor = _bounded(acting(request.actor, required=True), "actor", MAX_ACTOR)
        cid, doc = await run_blocking(context, self.privacy.export_customer, ref, actor=actor)
        return pb.ExportCustomerDataResponse(customer_id=cid, document_json=document_json(doc))

    @handle_errors
    async def QueryAudit(
        self, request: pb.QueryAuditRequest, context: grpc.aio.ServicerContext
    ) -> pb.QueryAuditResponse:
        entries, token = await run_blocking(
            context, self.privacy.audit, _time(request, "start"), _time(request, "end"),
            list(request.actions), request.page_size or DEFAULT_AUDIT_PAGE, request.page_token,
        )
        return pb.QueryAuditResponse(entries=[_entry(e) for e in entries], next_page_token=token)
