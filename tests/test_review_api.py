"""identity.v1.ReviewService and a person's Link/Unlink through a real server on 127.0.0.1 with
real generated stubs, on both backends: the review queue, accept and reject, constraints listed
and withdrawn, and bad input named by field."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest

from identity_graph.engine import IdentityGraph
from identity_graph.matching import OnlineScorer, load_starter_model
from server import BackgroundServer
from stubs.identity.v1 import identity_pb2 as ipb
from stubs.identity.v1 import identity_pb2_grpc, review_pb2_grpc
from stubs.identity.v1 import review_pb2 as pb
from tests.test_people_decisions import BAND, R1, R2, R3, _owner, _pat

TIMEOUT = 30.0


@dataclass
class Api:
    graph: IdentityGraph
    review: review_pb2_grpc.ReviewServiceStub
    identity: identity_pb2_grpc.IdentityServiceStub


@pytest.fixture
def api(store) -> Iterator[Api]:
    _pat(store, BAND)
    graph = IdentityGraph(store, BAND, scorer=OnlineScorer(load_starter_model()))
    srv = BackgroundServer(graph, poll_interval_s=0.02, timeout_s=TIMEOUT)
    channel = grpc.insecure_channel(f"127.0.0.1:{srv.port}")
    try:
        grpc.channel_ready_future(channel).result(TIMEOUT)
        yield Api(graph, review_pb2_grpc.ReviewServiceStub(channel),
                  identity_pb2_grpc.IdentityServiceStub(channel))
    finally:
        channel.close()
        srv.stop()


def _key(i: ipb.Identifier) -> str:
    return f"{i.type}:{i.value}"


def _ident(key: str) -> ipb.Identifier:
    t, _, v = key.partition(":")
    return ipb.Identifier(type=t, value=v)


def test_review_queue_accept_reject_and_constraints(api: Api) -> None:
    first = api.review.ListReviewQueue(pb.ListReviewQueueRequest(page_size=1), timeout=TIMEOUT)
    assert first.total == 2 and len(first.items) == 1 and first.next_page_token == "1"
    second = api.review.ListReviewQueue(pb.ListReviewQueueRequest(page_size=1, page_token="1"),
                                        timeout=TIMEOUT)
    assert second.next_page_token == "" and second.items[0].link.link_id != first.items[0].link.link_id
    by_score = api.review.ListReviewQueue(
        pb.ListReviewQueueRequest(customer=R3, order=pb.REVIEW_ORDER_SCORE), timeout=TIMEOUT)
    items = {(_key(i.link.a), _key(i.link.b)): i for i in by_score.items}
    assert set(items) == {(R1, R3), (R2, R3)}
    r13, r23 = items[(R1, R3)], items[(R2, R3)]
    assert r13.link.kind == ipb.LINK_KIND_POSSIBLE and r13.customer_b == _owner(api.graph.store, R3)[0]
    # the waterfall, as Explain shows it: the prior first, adding up to the match weight
    assert r13.waterfall[0].name == "prior"
    assert sum(c.bits for c in r13.waterfall) == pytest.approx(r13.link.match_weight, abs=1e-6)

    rejected = api.review.RejectReview(pb.RejectReviewRequest(
        link_id=r23.link.link_id, actor="analyst:lee", reason="different birth dates"), timeout=TIMEOUT)
    assert rejected.constraint.kind == pb.CONSTRAINT_KIND_CANNOT_LINK
    assert (_key(rejected.constraint.a), _key(rejected.constraint.b)) == (R2, R3)
    assert rejected.constraint.origin == "review" and rejected.constraint.actor == "analyst:lee"
    # accepting r1-r3 would put r3 with r2, whom a person set apart from it
    with pytest.raises(grpc.RpcError) as e:
        api.review.AcceptReview(pb.AcceptReviewRequest(link_id=r13.link.link_id, actor="analyst:lee"),
                                timeout=TIMEOUT)
    assert e.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert rejected.constraint.constraint_id in e.value.details()

    withdrawn = api.review.WithdrawConstraint(pb.WithdrawConstraintRequest(
        constraint_id=rejected.constraint.constraint_id, actor="analyst:lee", reason="misread"),
        timeout=TIMEOUT)
    assert withdrawn.constraint.withdrawn_by == "analyst:lee"
    assert withdrawn.constraint.HasField("withdrawn_at")
    accepted = api.review.AcceptReview(pb.AcceptReviewRequest(
        link_id=r13.link.link_id, actor="analyst:lee", reason="same address history"), timeout=TIMEOUT)
    assert accepted.constraint.kind == pb.CONSTRAINT_KIND_MUST_LINK
    assert [lk.kind for lk in accepted.links] == [ipb.LINK_KIND_PROBABLE]
    assert accepted.links[0].source == "review" and accepted.constraint.link_id == accepted.links[0].link_id
    assert len(set(_owner(api.graph.store, R1, R2, R3))) == 1

    listed = api.review.ListConstraints(pb.ListConstraintsRequest(customer=R3), timeout=TIMEOUT)
    assert [c.kind for c in listed.constraints] == [pb.CONSTRAINT_KIND_MUST_LINK]
    everything = api.review.ListConstraints(pb.ListConstraintsRequest(include_withdrawn=True, page_size=1),
                                            timeout=TIMEOUT)
    assert len(everything.constraints) == 1 and everything.next_page_token == "1"
    cid = _owner(api.graph.store, R1)[0]
    by_customer = api.review.ListConstraints(pb.ListConstraintsRequest(customer=cid, include_withdrawn=True),
                                             timeout=TIMEOUT)
    assert len(by_customer.constraints) == 2


def test_a_persons_unlink_and_link_are_constraints(api: Api) -> None:
    api.identity.Unlink(ipb.UnlinkRequest(a=_ident(R1), b=_ident(R2), actor="agent:kim",
                                          reason="two people"), timeout=TIMEOUT)
    [c] = api.review.ListConstraints(pb.ListConstraintsRequest(customer=R1), timeout=TIMEOUT).constraints
    assert (c.kind, c.origin, c.actor, c.reason) == (pb.CONSTRAINT_KIND_CANNOT_LINK, "unlink", "agent:kim",
                                                      "two people")
    out = api.identity.Link(ipb.LinkRequest(a=_ident(R1), b=_ident(R2), kind=ipb.LINK_KIND_OBSERVED,
                                            source="agent",
                                            actor="agent:kim"), timeout=TIMEOUT)
    assert [v.kind for v in out.violations] == ["cannot_link"] and not out.links
    out = api.identity.Link(ipb.LinkRequest(a=_ident(R1), b=_ident(R2), kind=ipb.LINK_KIND_OBSERVED,
                                            source="agent",
                                            actor="agent:kim", by_person=True, reason="confirmed"),
                            timeout=TIMEOUT)
    assert len(out.links) == 1
    now = api.review.ListConstraints(pb.ListConstraintsRequest(customer=R1, include_withdrawn=True),
                                     timeout=TIMEOUT).constraints
    assert {(x.kind, x.HasField("withdrawn_at")) for x in now} == {
        (pb.CONSTRAINT_KIND_CANNOT_LINK, True), (pb.CONSTRAINT_KIND_MUST_LINK, False)}


@pytest.mark.parametrize(("call", "request_", "field"), [
    ("ListReviewQueue", pb.ListReviewQueueRequest(page_size=-1), "page_size"),
    ("ListReviewQueue", pb.ListReviewQueueRequest(page_size=5000), "page_size"),
    ("ListReviewQueue", pb.ListReviewQueueRequest(page_token="abc"), "page_token"),
    ("ListReviewQueue", pb.ListReviewQueueRequest(order=7), "order"),
    ("ListReviewQueue", pb.ListReviewQueueRequest(customer="nocolon"), "ref"),
    ("AcceptReview", pb.AcceptReviewRequest(actor="a"), "link_id"),
    ("AcceptReview", pb.AcceptReviewRequest(link_id="x"), "actor"),
    ("AcceptReview", pb.AcceptReviewRequest(link_id="x", actor="a", reason="r" * 300), "reason"),
    ("RejectReview", pb.RejectReviewRequest(link_id="x"), "actor"),
    ("ListConstraints", pb.ListConstraintsRequest(page_token="-1"), "page_token"),
    ("ListConstraints", pb.ListConstraintsRequest(customer="email:"), "ref"),
    ("WithdrawConstraint", pb.WithdrawConstraintRequest(actor="a", reason="r"), "constraint_id"),
    ("WithdrawConstraint", pb.WithdrawConstraintRequest(constraint_id="con_x", actor="a"), "reason"),
])
def test_bad_input_is_invalid_argument_naming_the_field(api: Api, call: str, request_, field: str) -> None:
    with pytest.raises(grpc.RpcError) as e:
        getattr(api.review, call)(request_, timeout=TIMEOUT)
    assert e.value.code() is grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    assert e.value.details().startswith(field), e.value.details()


def test_unknown_ids_are_not_found_and_decided_links_leave_the_queue(api: Api) -> None:
    for call, req in (("AcceptReview", pb.AcceptReviewRequest(link_id="nope", actor="a")),
                      ("WithdrawConstraint", pb.WithdrawConstraintRequest(constraint_id="con_x", actor="a",
                                                                          reason="r"))):
        with pytest.raises(grpc.RpcError) as e:
            getattr(api.review, call)(req, timeout=TIMEOUT)
        assert e.value.code() is grpc.StatusCode.NOT_FOUND
    item = api.review.ListReviewQueue(pb.ListReviewQueueRequest(), timeout=TIMEOUT).items[0]
    api.review.RejectReview(pb.RejectReviewRequest(link_id=item.link.link_id, actor="a"), timeout=TIMEOUT)
    with pytest.raises(grpc.RpcError) as e:
        api.review.RejectReview(pb.RejectReviewRequest(link_id=item.link.link_id, actor="a"), timeout=TIMEOUT)
    assert e.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert api.review.ListReviewQueue(pb.ListReviewQueueRequest(), timeout=TIMEOUT).total == 1
