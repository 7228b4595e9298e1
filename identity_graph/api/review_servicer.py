"""`ReviewServicer`: identity.v1.ReviewService (the review queue and people's decisions) over one
`IdentityGraph`. Converts and delegates."""

from __future__ import annotations

import grpc

from identity_graph.api import convert
from identity_graph.api.errors import handle_errors, run_blocking
from identity_graph.decisions import ReviewItem
from identity_graph.engine import IdentityGraph
from identity_graph.errors import InvalidArgument
from identity_graph.model import Constraint, ConstraintKind
from stubs.identity.v1 import review_pb2 as pb
from stubs.identity.v1 import review_pb2_grpc as pb_grpc

_KINDS = {ConstraintKind.CANNOT_LINK: pb.CONSTRAINT_KIND_CANNOT_LINK,
          ConstraintKind.MUST_LINK: pb.CONSTRAINT_KIND_MUST_LINK}
_ORDERS = {pb.REVIEW_ORDER_UNSPECIFIED: False, pb.REVIEW_ORDER_AGE: False, pb.REVIEW_ORDER_SCORE: True}
MAX_PAGE = 1000


def constraint_to_pb(c: Constraint) -> pb.Constraint:
    msg = pb.Constraint(constraint_id=c.id, kind=_KINDS[c.kind], a=convert.identifier_to_pb(c.a),
                        b=convert.identifier_to_pb(c.b), origin=c.origin, link_id=c.link_id,
                        actor=c.actor, reason=c.reason, created_at=convert.timestamp(c.created_at),
                        withdrawn_by=c.withdrawn_by, withdrawal_reason=c.withdrawal_reason)
    if c.withdrawn_at is not None:
        msg.withdrawn_at.CopyFrom(convert.timestamp(c.withdrawn_at))
    return msg


def item_to_pb(item: ReviewItem) -> pb.ReviewItem:
    return pb.ReviewItem(link=convert.link_to_pb(item.link), customer_a=item.customer_a,
                         customer_b=item.customer_b,
                         waterfall=convert.comparisons_to_pb(item.waterfall) if item.waterfall else [])


def _page(size: int, token: str, default: int) -> tuple[int, int]:
    """(limit, offset) from a request's page size and token."""
    if size < 0 or size > MAX_PAGE:
        raise InvalidArgument("page_size", f"must be between 0 and {MAX_PAGE}")
    if token and not (token.isdigit() and len(token) <= 12):
        raise InvalidArgument("page_token", "not a token this server gave")
    return size or default, int(token or 0)


def _order(value: int) -> bool:
    if value not in _ORDERS:
        raise InvalidArgument("order", "unknown review order")
    return _ORDERS[value]


class ReviewServicer(pb_grpc.ReviewServiceServicer):
    """Each RPC converts its request, runs one blocking engine call in a worker thread and
    converts the result; `handle_errors` maps the error tree to status codes."""

    def __init__(self, graph: IdentityGraph) -> None:
        self.graph = graph

    @handle_errors
    async def ListReviewQueue(self, request: pb.ListReviewQueueRequest,
                              context: grpc.aio.ServicerContext) -> pb.ListReviewQueueResponse:
        limit, offset = _page(request.page_size, request.page_token, 50)
        items, total = await run_blocking(context, self.graph.review.queue, request.customer.strip(),
                                          by_score=_order(request.order), limit=limit, offset=offset)
        more = offset + len(items) < total
        return pb.ListReviewQueueResponse(items=[item_to_pb(i) for i in items], total=total,
                                          next_page_token=str(offset + len(items)) if more else "")

    @handle_errors
    async def AcceptReview(self, request: pb.AcceptReviewRequest,
                           context: grpc.aio.ServicerContext) -> pb.AcceptReviewResponse:
        actor = convert.acting(request.actor, required=True)
        out = await run_blocking(context, self.graph.review.accept, request.link_id.strip(),
                                 actor=actor, reason=request.reason)
        return pb.AcceptReviewResponse(
            links=[convert.link_to_pb(lk) for lk in out.links],
            violations=[convert.violation_to_pb(v) for v in out.violations],
            customer_ids=out.customer_ids,
            constraint=constraint_to_pb(out.constraint) if out.constraint else None)

    @handle_errors
    async def RejectReview(self, request: pb.RejectReviewRequest,
                           context: grpc.aio.ServicerContext) -> pb.RejectReviewResponse:
        actor = convert.acting(request.actor, required=True)
        out = await run_blocking(context, self.graph.review.reject, request.link_id.strip(),
                                 actor=actor, reason=request.reason)
        return pb.RejectReviewResponse(
            customer_ids=out.customer_ids,
            constraint=constraint_to_pb(out.constraint) if out.constraint else None)

    @handle_errors
    async def ListConstraints(self, request: pb.ListConstraintsRequest,
                              context: grpc.aio.ServicerContext) -> pb.ListConstraintsResponse:
        limit, offset = _page(request.page_size, request.page_token, 100)
        found = await run_blocking(context, self.graph.review.constraints, request.customer.strip(),
                                   include_withdrawn=request.include_withdrawn)
        page = found[offset:offset + limit]
        more = offset + len(page) < len(found)
        return pb.ListConstraintsResponse(constraints=[constraint_to_pb(c) for c in page],
                                          next_page_token=str(offset + len(page)) if more else "")

    @handle_errors
    async def WithdrawConstraint(self, request: pb.WithdrawConstraintRequest,
                                 context: grpc.aio.ServicerContext) -> pb.WithdrawConstraintResponse:
        actor = convert.acting(request.actor, required=True)
        done = await run_blocking(context, self.graph.review.withdraw_constraint,
                                  request.constraint_id.strip(), actor=actor, reason=request.reason.strip())
        return pb.WithdrawConstraintResponse(constraint=constraint_to_pb(done))
