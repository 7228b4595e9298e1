"""identity.v1 through a real aio server on 127.0.0.1 and real generated stubs, on both backends."""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import text_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from identity_graph.config import GraphConfig
from identity_graph.engine import IdentityGraph, Resolve, ResolveRequest
from identity_graph.errors import StoreError
from identity_graph.matching import OnlineScorer, load_starter_model
from identity_graph.store.base import GraphStore
from server import IDENTITY_SERVICE, BackgroundServer
from stubs.identity.v1 import identity_pb2 as pb
from stubs.identity.v1 import identity_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 30.0


# ---- a real server in a background thread with its own event loop ------------------------------


def ServerThread(graph: IdentityGraph, poll_interval_s: float = 0.02) -> BackgroundServer:
    return BackgroundServer(graph, poll_interval_s=poll_interval_s, timeout_s=TIMEOUT)


@dataclass
class Api:
    graph: IdentityGraph
    channel: grpc.Channel
    stub: pb_grpc.IdentityServiceStub
    port: int


def start_api(graph: IdentityGraph) -> tuple[ServerThread, Api]:
    srv = ServerThread(graph)
    channel = grpc.insecure_channel(f"127.0.0.1:{srv.port}")
    grpc.channel_ready_future(channel).result(TIMEOUT)
    return srv, Api(graph, channel, pb_grpc.IdentityServiceStub(channel), srv.port)


@pytest.fixture
def api(store: GraphStore) -> Iterator[Api]:
    srv, client = start_api(IdentityGraph(store))
    try:
        yield client
    finally:
        client.channel.close()
        srv.stop()


# ---- helpers --------------------------------------------------------------------------------


def ident(key: str) -> pb.Identifier:
    type_, _, value = key.partition(":")
    return pb.Identifier(type=type_, value=value)


def key(i: pb.Identifier) -> str:
    return f"{i.type}:{i.value}"


def resolve(
    api: Api,
    channel: str,
    *keys: str,
    attributes: Mapping[str, str] | None = None,
    proof: str | None = None,
) -> pb.ResolveResponse:
    req = pb.ResolveRequest(
        channel=channel, identifiers=[ident(k) for k in keys], attributes=dict(attributes or {})
    )
    if proof:
        req.proof.CopyFrom(pb.Proof(kind="login", identifier=ident(proof)))
    return api.stub.Resolve(req, timeout=TIMEOUT)


def assurance(resp: pb.ResolveResponse) -> dict[str, tuple[int, bool]]:
    return {key(a.identifier): (a.kind, a.full_disclosure) for a in resp.assurance}


def customer(api: Api, ref: str) -> pb.Customer:
    req = (
        pb.GetCustomerRequest(customer_id=ref)
        if ref.startswith("cus_")
        else pb.GetCustomerRequest(identifier=ident(ref))
    )
    return api.stub.GetCustomer(req, timeout=TIMEOUT).customer


def members(c: pb.Customer) -> set[str]:
    return {key(i.identifier) for i in c.identifiers}


def rpc_error(call: Any, *args: Any, **kw: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, timeout=TIMEOUT, **kw)
    return info.value


ANN = {"first_name": "Ann", "last_name": "Lee", "date_of_birth": "1980-02-03"}


# ---- Resolve --------------------------------------------------------------------------------


def test_resolve_new_then_known(api: Api) -> None:
    first = resolve(
        api, "web", "web_cookie:c1", "email:Ann@Example.com", "phone:+1 415 555 0101", attributes=ANN
    )
    assert first.customer_id.startswith("cus_") and first.is_new
    assert [key(i) for i in first.identifiers] == [
        "web_cookie:c1",
        "email:ann@example.com",
        "phone:+14155550101",
    ]
    assert {(key(lk.a), key(lk.b), lk.kind) for lk in first.links} == {
        ("email:ann@example.com", "web_cookie:c1", pb.LINK_KIND_OBSERVED),
        ("phone:+14155550101", "web_cookie:c1", pb.LINK_KIND_OBSERVED),
    }
    for lk in first.links:
        assert lk.link_id and lk.source == "web" and lk.channel == "web" and lk.created_at.seconds > 0
        assert not lk.HasField("probability")
    assert not first.violations
    got = assurance(first)  # typed, not held: claims reach as probable (holding is not claiming)
    assert got["email:ann@example.com"] == (pb.LINK_KIND_PROBABLE, False)
    assert got["phone:+14155550101"] == (pb.LINK_KIND_PROBABLE, False)

    again = resolve(api, "email", "email:ann@example.com")
    assert again.customer_id == first.customer_id and not again.is_new
    assert not again.links
    # Whoever holds the typed email may see the typist's data; the phone only through the cookie.
    got = assurance(again)  # the phone is only reached as probable: left unnamed
    assert got == {"email:ann@example.com": (pb.LINK_KIND_VERIFIED, True),
                   "web_cookie:c1": (pb.LINK_KIND_OBSERVED, True)}


def test_resolve_with_proof_links_verified(api: Api) -> None:
    resp = resolve(api, "app", "account_id:acc-1", "email:bo@example.com", proof="account_id:acc-1")
    assert [lk.kind for lk in resp.links] == [pb.LINK_KIND_VERIFIED]
    assert assurance(resp)["email:bo@example.com"] == (pb.LINK_KIND_VERIFIED, True)


def test_resolve_merges_and_the_alias_still_resolves(api: Api) -> None:
    a = resolve(api, "web", "web_cookie:m1", "email:m@example.com")
    b = resolve(api, "sms", "phone:+14155550177")
    assert a.customer_id != b.customer_id
    merged = resolve(api, "web", "web_cookie:m1", "phone:+14155550177")
    assert merged.customer_id == a.customer_id  # the older id survives
    assert list(merged.merged) == [b.customer_id]
    via_alias = customer(api, b.customer_id)
    assert via_alias.customer_id == a.customer_id
    assert b.customer_id in via_alias.aliases


# ---- Link / Unlink / SetGeneric ---------------------------------------------------------------


def test_a_claim_counts_one_way_in_explain_and_links_name_their_claimant(api: Api) -> None:
    typed = resolve(api, "web", "web_cookie:k9", "phone:+14155550109")  # typed on the web
    [lk] = typed.links
    assert lk.kind == pb.LINK_KIND_OBSERVED and key(lk.claimant) == "web_cookie:k9"

    def explain(a: str, b: str) -> pb.ExplainResponse:
        return api.stub.Explain(pb.ExplainRequest(a=ident(a), b=ident(b)), timeout=TIMEOUT)

    forward = explain("web_cookie:k9", "phone:+14155550109")
    assert forward.assurance == pb.LINK_KIND_PROBABLE and list(forward.steps) == [pb.LINK_KIND_PROBABLE]
    back = explain("phone:+14155550109", "web_cookie:k9")
    assert back.assurance == pb.LINK_KIND_OBSERVED and list(back.steps) == [pb.LINK_KIND_OBSERVED]
    # Link with a claimant behaves the same; without one, both ends count as claimants.
    api.stub.Link(pb.LinkRequest(a=ident("email:c@x.io"), b=ident("device_id:d1"), kind=pb.LINK_KIND_OBSERVED,
                                 source="crm", actor="t", claimant=ident("device_id:d1")), timeout=TIMEOUT)
    assert explain("email:c@x.io", "device_id:d1").assurance == pb.LINK_KIND_OBSERVED
    assert explain("device_id:d1", "email:c@x.io").assurance == pb.LINK_KIND_PROBABLE
    api.stub.Link(pb.LinkRequest(a=ident("email:u@x.io"), b=ident("device_id:d2"), kind=pb.LINK_KIND_OBSERVED,
                                 source="crm", actor="t"), timeout=TIMEOUT)
    assert explain("email:u@x.io", "device_id:d2").assurance == pb.LINK_KIND_PROBABLE
    assert explain("device_id:d2", "email:u@x.io").assurance == pb.LINK_KIND_PROBABLE
    bad = rpc_error(api.stub.Link, pb.LinkRequest(a=ident("email:c@x.io"), b=ident("device_id:d1"),
                                                 kind=pb.LINK_KIND_OBSERVED, source="crm", actor="t",
                                                 claimant=ident("email:z@x.io")))
    assert bad.code() is grpc.StatusCode.INVALID_ARGUMENT and "claimant" in bad.details()


def test_a_trusted_source_links_verified(store: GraphStore) -> None:
    graph = IdentityGraph(store, GraphConfig(trusted_sources=("accounts",)))
    srv, api = start_api(graph)
    try:
        r = api.stub.Resolve(pb.ResolveRequest(channel="web", source="accounts",
                                               identifiers=[ident("account_id:a1"), ident("email:a1@x.io")]),
                             timeout=TIMEOUT)
        assert [lk.kind for lk in r.links] == [pb.LINK_KIND_VERIFIED]
        untrusted = resolve(api, "web", "web_cookie:k1", "email:k1@x.io")
        assert [lk.kind for lk in untrusted.links] == [pb.LINK_KIND_OBSERVED]
        made = api.stub.Link(pb.LinkRequest(a=ident("email:b@x.io"), b=ident("device_id:b"),
                                            kind=pb.LINK_KIND_OBSERVED,
                                            source="accounts", actor="t"), timeout=TIMEOUT)
        assert [lk.kind for lk in made.links] == [pb.LINK_KIND_VERIFIED]
    finally:
        api.channel.close()
        srv.stop()


def test_link_and_unlink_with_evidence(api: Api) -> None:
    x = resolve(api, "web", "email:x@example.com")
    y = resolve(api, "web", "email:y@example.com")
    linked = api.stub.Link(
        pb.LinkRequest(
            a=ident("email:x@example.com"),
            b=ident("email:y@example.com"),
            kind=pb.LINK_KIND_OBSERVED,
            source="crm",
            actor="agent-7",
            channel="agent",
            event_id="ticket-1",
        ),
        timeout=TIMEOUT,
    )
    assert len(linked.links) == 1
    lk = linked.links[0]
    assert (lk.kind, lk.source, lk.actor, lk.channel, lk.event_id) == (
        pb.LINK_KIND_OBSERVED,
        "crm",
        "agent-7",
        "agent",
        "ticket-1",
    )
    assert list(linked.customer_ids) == [x.customer_id]
    assert [e.type for e in linked.events][:1] == ["link"] and all(e.seq > 0 for e in linked.events)
    assert {e.type for e in linked.events} >= {"link", "merge", "alias"}
    assert members(customer(api, x.customer_id)) == {"email:x@example.com", "email:y@example.com"}

    unlinked = api.stub.Unlink(
        pb.UnlinkRequest(
            a=ident("email:y@example.com"), b=ident("email:x@example.com"), actor="agent-7", reason="wrong"
        ),
        timeout=TIMEOUT,
    )
    assert [lk.link_id for lk in unlinked.links] == [lk.link_id]
    assert len(unlinked.customer_ids) == 2
    assert {e.type for e in unlinked.events} >= {"unlink", "split"}
    assert members(customer(api, "email:x@example.com")) == {"email:x@example.com"}
    assert y.customer_id  # y's id may come back or be new; the two are apart again
    assert (
        customer(api, "email:y@example.com").customer_id != customer(api, "email:x@example.com").customer_id
    )


def test_unlink_preview_needs_no_actor_and_writes_nothing(api: Api) -> None:
    """A preview (no actor needed) shows the split an unlink would make and writes nothing (no
    conversations here, so none would move); the unlink itself still needs an actor."""
    resolve(api, "web", "web_cookie:p1", "email:p1@example.com")
    linked = resolve(api, "web", "web_cookie:p1", "phone:+14155550199")
    before, events = customer(api, linked.customer_id), api.graph.events.read(0, 100_000)
    pair = {"a": ident("web_cookie:p1"), "b": ident("phone:+14155550199")}
    preview = api.stub.Unlink(pb.UnlinkRequest(**pair, preview=True), timeout=TIMEOUT)
    assert len(preview.customer_ids) == 2 and linked.customer_id in preview.customer_ids
    assert {e.type for e in preview.events} >= {"unlink", "split"} and not preview.moving_conversations
    assert customer(api, linked.customer_id) == before and api.graph.events.read(0, 100_000) == events
    err = rpc_error(api.stub.Unlink, pb.UnlinkRequest(**pair))  # no preview: an actor is required
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT and "actor" in (err.details() or "")
    assert customer(api, linked.customer_id) == before


def test_set_generic(api: Api) -> None:
    resolve(api, "web", "web_cookie:g1", "email:shop@example.com")
    resp = api.stub.SetGeneric(
        pb.SetGenericRequest(identifier=ident("email:shop@example.com"), generic=True, actor="analyst"),
        timeout=TIMEOUT,
    )
    assert [e.type for e in resp.events if e.type == "generic"] == ["generic"]
    info = {key(i.identifier): i.generic for i in customer(api, "email:shop@example.com").identifiers}
    assert info["email:shop@example.com"] is True


# ---- GetCustomer ------------------------------------------------------------------------------


def test_get_customer_by_id_alias_and_identifier(api: Api) -> None:
    r = resolve(api, "web", "web_cookie:gc", "email:gc@example.com", attributes=ANN)
    resolve(api, "web", "web_cookie:gc", attributes={"first_name": "Annie"})
    by_id = customer(api, r.customer_id)
    by_ident = customer(api, "email:GC@example.com")
    assert by_id == by_ident
    assert members(by_id) == {"web_cookie:gc", "email:gc@example.com"}
    assert {"web", "email"} <= set(by_id.channels)
    latest = {a.name: a for a in by_id.attributes}
    assert latest["first_name"].value == "annie"  # the latest observation wins (names kept lower-case)
    assert latest["last_name"].value == "lee"
    for a in by_id.attributes:
        assert key(a.identifier) == "web_cookie:gc" and a.source == "web" and a.channel == "web"
        assert a.observed_at.seconds > 0
    assert [a.value for a in by_id.attribute_history if a.name == "first_name"] == ["ann", "annie"]
    assert by_id.links and by_id.created_at.seconds > 0


# ---- Explain ----------------------------------------------------------------------------------


def test_explain_bottleneck_path_with_waterfall(store: GraphStore) -> None:
    scorer = OnlineScorer(load_starter_model())
    graph = IdentityGraph(store, scorer=scorer)
    srv, api = start_api(graph)
    try:
        resolve(api, "web", "web_cookie:e1", "email:e@example.com", attributes=ANN)
        scored = resolve(api, "sms", "phone:+14155550199", attributes=ANN)
        probable = [lk for lk in scored.links if lk.kind == pb.LINK_KIND_PROBABLE]
        assert len(probable) == 1
        ex = api.stub.Explain(
            pb.ExplainRequest(a=ident("phone:+14155550199"), b=ident("email:e@example.com")), timeout=TIMEOUT
        )
        assert ex.same_customer and ex.assurance == pb.LINK_KIND_PROBABLE
        assert [lk.kind for lk in ex.path] == [pb.LINK_KIND_PROBABLE, pb.LINK_KIND_OBSERVED]
        edge = ex.path[0]
        assert {edge.a.value, edge.b.value} >= {"+14155550199"}
        other = "email:e@example.com" if "email" in (edge.a.type, edge.b.type) else "web_cookie:e1"
        # The edge carries the model's own score of the pair, as a waterfall in model order.
        records = graph.resolve.candidate_records(["phone:+14155550199", other])
        expected = scorer.score_pair({**records["phone:+14155550199"], "unique_id": "phone:+14155550199"},
                                     {**records[other], "unique_id": other})
        assert edge.model_version == scorer.version
        assert edge.probability == pytest.approx(expected.match_probability)
        assert edge.probability >= graph.config.link_threshold
        assert edge.match_weight == pytest.approx(expected.match_weight)
        assert [(c.name, c.level, c.bits) for c in edge.comparisons] == [
            ("prior", "", pytest.approx(expected.prior_match_weight)),
            *[(c.comparison, c.level, pytest.approx(c.bits)) for c in expected.comparisons],
        ]
        assert sum(c.bits for c in edge.comparisons) == pytest.approx(edge.match_weight)
        levels = {c.name: c.level for c in edge.comparisons}
        assert levels["first_name"] == "Exact match on first_name"
        assert levels["last_name"] == "Exact match on last_name"
        assert levels["date_of_birth"] == "same date of birth"
        assert ex.path[1].source == "web"
        # A path between customers that are apart is empty.
        resolve(api, "web", "email:far@example.com")
        apart = api.stub.Explain(
            pb.ExplainRequest(a=ident("email:far@example.com"), b=ident("email:e@example.com")),
            timeout=TIMEOUT,
        )
        assert not apart.same_customer and not apart.path and apart.assurance == pb.LINK_KIND_UNSPECIFIED
    finally:
        api.channel.close()
        srv.stop()


# ---- PreviewSplit / Split ---------------------------------------------------------------------


def test_preview_split_writes_nothing_then_split(api: Api) -> None:
    r = resolve(api, "web", "web_cookie:s1", "email:s1@example.com", "phone:+14155550111")
    req = pb.SplitRequest(detach=[ident("phone:+14155550111")], actor="analyst")
    preview = api.stub.PreviewSplit(req, timeout=TIMEOUT)
    assert preview.original_customer_id == r.customer_id
    parts = {p.customer_id: ({key(i) for i in p.identifiers}, p.is_new) for p in preview.parts}
    assert parts[r.customer_id] == ({"web_cookie:s1", "email:s1@example.com"}, False)
    (new_id,) = set(parts) - {r.customer_id}
    assert parts[new_id] == ({"phone:+14155550111"}, True)
    assert [(key(lk.a), key(lk.b)) for lk in preview.cut] == [("phone:+14155550111", "web_cookie:s1")]
    # Nothing written yet.
    assert members(customer(api, r.customer_id)) == {
        "web_cookie:s1",
        "email:s1@example.com",
        "phone:+14155550111",
    }
    done = api.stub.Split(req, timeout=TIMEOUT)
    assert {p.customer_id for p in done.parts} >= {r.customer_id}
    assert members(customer(api, r.customer_id)) == {"web_cookie:s1", "email:s1@example.com"}
    assert customer(api, "phone:+14155550111").customer_id != r.customer_id


def test_split_by_cutting_links(api: Api) -> None:
    r = resolve(api, "web", "web_cookie:s2", "email:s2@example.com")
    req = pb.SplitRequest(
        cut=[pb.IdentifierPair(a=ident("email:s2@example.com"), b=ident("web_cookie:s2"))], actor="analyst"
    )
    done = api.stub.Split(req, timeout=TIMEOUT)
    assert len(done.parts) == 2 and done.original_customer_id == r.customer_id


def test_impossible_splits_fail_precondition(api: Api) -> None:
    # A triangle: cutting one edge leaves the customer whole.
    resolve(api, "web", "web_cookie:t1", "email:t1@example.com", "phone:+14155550122")
    resolve(api, "web", "email:t1@example.com", "phone:+14155550122")
    err = rpc_error(
        api.stub.PreviewSplit,
        pb.SplitRequest(cut=[pb.IdentifierPair(a=ident("web_cookie:t1"), b=ident("email:t1@example.com"))]),
    )
    assert err.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "one piece" in err.details()
    # Identifiers of two different customers cannot be split together.
    resolve(api, "web", "email:other@example.com")
    err = rpc_error(
        api.stub.Split,
        pb.SplitRequest(detach=[ident("email:t1@example.com"), ident("email:other@example.com")], actor="a"),
    )
    assert err.code() is grpc.StatusCode.FAILED_PRECONDITION


# ---- status codes -----------------------------------------------------------------------------


def test_bad_identifier_is_invalid_argument_naming_the_field(api: Api) -> None:
    err = rpc_error(
        api.stub.Resolve,
        pb.ResolveRequest(channel="web", identifiers=[ident("web_cookie:ok"), ident("email:not-an-email")]),
    )
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith("identifiers[1].")
    err = rpc_error(api.stub.Resolve, pb.ResolveRequest(channel="web", identifiers=[ident("fax:123")]))
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith("identifiers[0].type")
    err = rpc_error(api.stub.Resolve, pb.ResolveRequest(channel="web"))
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith("identifiers:")
    err = rpc_error(
        api.stub.Resolve,
        pb.ResolveRequest(
            channel="web",
            identifiers=[ident("email:a@example.com")],
            attributes={"date_of_birth": "3/2/1980"},
        ),
    )
    assert err.details().startswith("attributes.date_of_birth:")
    err = rpc_error(
        api.stub.Link,
        pb.LinkRequest(
            a=ident("email:a@example.com"), b=ident("phone:12"), kind=pb.LINK_KIND_OBSERVED, source="s",
            actor="x"
        ),
    )
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith("b.")
    err = rpc_error(
        api.stub.Link,
        pb.LinkRequest(a=ident("email:a@example.com"), b=ident("email:b@example.com"), source="s", actor="x"),
    )
    assert err.details().startswith("kind:")
    err = rpc_error(
        api.stub.Link,
        pb.LinkRequest(
            a=ident("email:a@example.com"),
            b=ident("email:b@example.com"),
            kind=pb.LINK_KIND_PROBABLE,
            source="s",
            actor="x",
        ),
    )
    assert err.details().startswith("probability:")
    err = rpc_error(
        api.stub.Link,
        pb.LinkRequest(
            a=ident("email:a@example.com"), b=ident("email:b@example.com"), kind=pb.LINK_KIND_OBSERVED,
            source="s"
        ),
    )
    assert err.details().startswith("actor:")
    err = rpc_error(api.stub.GetCustomer, pb.GetCustomerRequest(identifier=ident("phone:abc")))
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith("identifier.")
    err = rpc_error(api.stub.GetCustomer, pb.GetCustomerRequest())
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    err = rpc_error(api.stub.Split, pb.SplitRequest(detach=[ident("email:a@example.com")]))
    assert err.details().startswith("actor:")
    err = rpc_error(api.stub.PreviewSplit, pb.SplitRequest(detach=[ident("email:")]))
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith("detach[0].")


def test_not_found(api: Api) -> None:
    for req in (
        pb.GetCustomerRequest(customer_id="cus_doesnotexist"),
        pb.GetCustomerRequest(identifier=ident("email:nobody@example.com")),
    ):
        assert rpc_error(api.stub.GetCustomer, req).code() is grpc.StatusCode.NOT_FOUND
    err = rpc_error(
        api.stub.Explain,
        pb.ExplainRequest(a=ident("email:nobody@example.com"), b=ident("email:x@example.com")),
    )
    assert err.code() is grpc.StatusCode.NOT_FOUND
    resolve(api, "web", "email:u1@example.com")
    resolve(api, "web", "email:u2@example.com")
    err = rpc_error(
        api.stub.Unlink,
        pb.UnlinkRequest(a=ident("email:u1@example.com"), b=ident("email:u2@example.com"), actor="x"),
    )
    assert err.code() is grpc.StatusCode.NOT_FOUND


def test_unexpected_errors_are_internal_without_a_stack_trace(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(*_: Any, **__: Any) -> None:
        raise RuntimeError("secret detail in /srv/code.py")

    monkeypatch.setattr(api.graph.customers, "explain", boom)
    req = pb.ExplainRequest(a=ident("email:a@example.com"), b=ident("email:b@example.com"))
    with caplog.at_level("ERROR", logger="identity_graph.api"):
        err = rpc_error(api.stub.Explain, req)
    assert err.code() is grpc.StatusCode.INTERNAL
    assert "secret" not in err.details() and "Traceback" not in err.details()
    assert err.details().startswith("internal error")
    assert any("secret detail" in str(r.exc_info) for r in caplog.records)  # logged server-side

    def down(*_: Any, **__: Any) -> None:
        raise StoreError("bolt://10.0.0.1 refused")

    monkeypatch.setattr(api.graph.customers, "explain", down)
    err = rpc_error(api.stub.Explain, req)
    assert err.code() is grpc.StatusCode.UNAVAILABLE and "10.0.0.1" not in err.details()


def test_deadline_is_honoured(api: Api) -> None:
    started = time.monotonic()
    stream = api.stub.WatchEvents(pb.WatchEventsRequest(from_seq=0), timeout=0.5)
    with pytest.raises(grpc.RpcError) as info:
        list(stream)
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 5


# ---- health and reflection --------------------------------------------------------------------


def test_health_reports_serving(api: Api) -> None:
    stub = health_pb2_grpc.HealthStub(api.channel)
    for service in ("", IDENTITY_SERVICE):
        resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT)
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
    assert IDENTITY_SERVICE == "identity.v1.IdentityService"


def test_reflection_lists_and_describes_the_services(api: Api) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(api.channel)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="identity.v1.IdentityService"),
    ]
    listed, described = list(stub.ServerReflectionInfo(iter(requests), timeout=TIMEOUT))
    names = {s.name for s in listed.list_services_response.service}
    assert {
        "identity.v1.IdentityService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= names
    assert described.file_descriptor_response.file_descriptor_proto


# ---- adversarial cases ------------------------------------------------------------------------


def test_look_alike_on_a_new_phone_does_not_reach_full_assurance(api: Api) -> None:
    victim = resolve(
        api, "web", "web_cookie:victim", "email:victim@example.com", "phone:+14155550150", attributes=ANN
    )
    # Someone with a look-alike name on a new phone: the model scores a probable match.
    linked = api.stub.Link(
        pb.LinkRequest(
            a=ident("phone:+14155550999"),
            b=ident("email:victim@example.com"),
            kind=pb.LINK_KIND_PROBABLE,
            probability=0.995,
            match_weight=7.6,
            model_version="m1",
            source="splink",
            actor="online-scorer",
        ),
        timeout=TIMEOUT,
    )
    assert [lk.kind for lk in linked.links] == [pb.LINK_KIND_PROBABLE]
    resp = resolve(api, "sms", "phone:+14155550999")
    assert resp.customer_id == victim.customer_id  # recognised...
    got = assurance(resp)
    # ...but nothing of the victim's is disclosed, not even which identifiers they have.
    assert got == {"phone:+14155550999": (pb.LINK_KIND_VERIFIED, True)}
    text = text_format.MessageToString(resp)
    assert "victim" not in text and "4155550150" not in text


def test_family_phone_does_not_merge_two_people(api: Api) -> None:
    mum = resolve(
        api,
        "web",
        "web_cookie:fam-1",
        "email:mum@example.com",
        "phone:+14155550160",
        attributes={"first_name": "Maria", "last_name": "Silva", "date_of_birth": "1975-04-12"},
    )
    son = resolve(
        api,
        "web",
        "web_cookie:fam-2",
        "email:son@example.com",
        "phone:+14155550160",
        attributes={"first_name": "Tiago", "last_name": "Silva", "date_of_birth": "2004-09-30"},
    )
    assert mum.customer_id and son.customer_id and mum.customer_id != son.customer_id
    assert [(v.kind, key(v.identifier)) for v in son.violations] == [("generic", "phone:+14155550160")]
    assert "email:mum@example.com" not in members(customer(api, son.customer_id))
    assert "email:son@example.com" not in members(customer(api, mum.customer_id))
    assert customer(api, mum.customer_id).customer_id != customer(api, son.customer_id).customer_id


def test_blocked_value_links_nothing(api: Api) -> None:
    alone = resolve(api, "web", "email:test@test.com")
    assert alone.customer_id == "" and not alone.links
    assert [(v.kind, key(v.identifier)) for v in alone.violations] == [("blocked", "email:test@test.com")]
    one = resolve(api, "web", "web_cookie:b1", "email:Test@Test.com")
    two = resolve(api, "web", "web_cookie:b2", "email:test@test.com")
    assert not one.links and not two.links
    assert one.customer_id != two.customer_id
    assert [v.kind for v in one.violations] == ["blocked"]
    err = rpc_error(api.stub.GetCustomer, pb.GetCustomerRequest(identifier=ident("email:test@test.com")))
    assert err.code() is grpc.StatusCode.NOT_FOUND
    blocked_link = api.stub.Link(
        pb.LinkRequest(
            a=ident("web_cookie:b1"), b=ident("email:test@test.com"), kind=pb.LINK_KIND_VERIFIED, source="s",
            actor="x"
        ),
        timeout=TIMEOUT,
    )
    assert not blocked_link.links and [v.kind for v in blocked_link.violations] == ["blocked"]


# ---- WatchEvents ------------------------------------------------------------------------------


def test_watch_events_reconnect_misses_nothing(api: Api) -> None:
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        i = 0
        while not stop.is_set():
            resolve(api, "web", f"web_cookie:w{i}", f"email:w{i}@example.com")
            written[0] += 1
            i += 1
            time.sleep(0.005)

    seen: list[int] = []
    types: set[str] = set()
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(writer)
        last = 0
        for _ in range(4):  # read a few, disconnect, reconnect from the last seq
            stream = api.stub.WatchEvents(pb.WatchEventsRequest(from_seq=last), timeout=TIMEOUT)
            for n, ev in enumerate(stream, 1):
                seen.append(ev.seq)
                types.add(ev.type)
                last = ev.seq
                if n == 7:
                    break
            stream.cancel()
        stop.set()
        fut.result(TIMEOUT)
    # Catch up to the end of the log, then compare with the store's log.
    final = api.graph.events.read(0, 100_000)
    if last < final[-1].seq:
        stream = api.stub.WatchEvents(pb.WatchEventsRequest(from_seq=last), timeout=TIMEOUT)
        for ev in stream:
            seen.append(ev.seq)
            if ev.seq >= final[-1].seq:
                stream.cancel()
                break
    assert written[0] > 0
    assert seen == [e.seq for e in final]  # in order, no gap, no duplicate
    assert {"link", "customer_created"} <= types


def test_watch_events_pushes_this_servers_writes_without_waiting_for_a_poll(store: GraphStore) -> None:
    """With a 30 s poll (for other processes' writes), this server's own writes still reach a
    waiting stream at once."""
    graph = IdentityGraph(store)
    srv = ServerThread(graph, poll_interval_s=30.0)
    channel = grpc.insecure_channel(f"127.0.0.1:{srv.port}")
    stub = pb_grpc.IdentityServiceStub(channel)
    api = Api(graph, channel, stub, srv.port)
    try:
        resolve(api, "web", "web_cookie:p0")
        start = graph.events.read(0, 100_000)[-1].seq
        stream = stub.WatchEvents(pb.WatchEventsRequest(from_seq=start), timeout=TIMEOUT)
        got: queue.Queue[tuple[float, int]] = queue.Queue()

        def read() -> None:
            try:
                for ev in stream:
                    got.put((time.monotonic(), ev.seq))
            except grpc.RpcError:
                pass

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        time.sleep(0.3)  # the stream has read the log and is waiting
        delays = []
        for i in range(3):
            sent = time.monotonic()
            resolve(api, "web", f"web_cookie:p{i + 1}", f"email:p{i + 1}@example.com")
            expected = graph.events.read(0, 100_000)[-1].seq
            while True:
                at, seq = got.get(timeout=5)  # far below the 30 s poll
                if seq == expected:
                    delays.append(at - sent)
                    break
        assert max(delays) < 5
        stream.cancel()
        reader.join(TIMEOUT)
    finally:
        channel.close()
        srv.stop()


def test_watch_events_filters_by_type(api: Api) -> None:
    resolve(api, "web", "web_cookie:f1", "email:f1@example.com")
    stream = api.stub.WatchEvents(pb.WatchEventsRequest(from_seq=0, types=["link"]), timeout=TIMEOUT)
    ev = next(stream)
    stream.cancel()
    assert ev.type == "link"
    assert ev.payload["kind"] == "LINK_KIND_OBSERVED" and ev.payload["a"] == "email:f1@example.com"
    assert ev.customer_id.startswith("cus_") and ev.at.seconds > 0


# ---- concurrency ------------------------------------------------------------------------------


def _workload(seed: int, n: int = 50) -> list[list[str]]:
    """Requests that overlap: each presents a new cookie and one to three of a person's emails and
    phones. A person has at most three of each, so no limit is reached and no order matters."""
    rng = random.Random(seed)
    people = [
        [f"email:p{p}.{i}@example.com" for i in range(3)]
        + [f"phone:+1415555{p:02d}{i:02d}" for i in range(3)]
        for p in range(12)
    ]
    out = []
    for r in range(n):
        pool = rng.choice(people)
        out.append([f"web_cookie:r{r}", *rng.sample(pool, rng.randint(1, 3))])
    return out


def _partition(store: GraphStore, keys: set[str]) -> set[frozenset[str]]:
    nodes = store.get_identifiers(keys)
    assert set(nodes) == keys
    groups: dict[str, set[str]] = {}
    for k, node in nodes.items():
        assert node.customer_id, k
        groups.setdefault(node.customer_id, set()).add(k)
    return {frozenset(g) for g in groups.values()}


def test_concurrent_resolves_equal_the_serial_run(store: GraphStore) -> None:
    requests = _workload(seed=20240611)
    keys = {k for r in requests for k in r}

    serial_graph = IdentityGraph(store)
    for r in requests:
        serial_graph.resolve(ResolveRequest("web", [tuple(k.split(":", 1)) for k in r]))  # type: ignore[misc]
    serial = _partition(store, keys)
    assert 1 < len(serial) < len(keys)
    store.clear()

    srv, api = start_api(IdentityGraph(store))
    try:
        barrier = threading.Barrier(len(requests))

        def call(r: list[str]) -> str:
            barrier.wait(TIMEOUT)
            return resolve(api, "web", *r).customer_id

        with ThreadPoolExecutor(len(requests)) as pool:
            ids = list(pool.map(call, requests))
        assert all(ids)
        assert _partition(store, keys) == serial
        # Every answer names the customer its cookie ended in (or one merged into it since).
        for r, cid in zip(requests, ids, strict=True):
            assert customer(api, r[0]).customer_id == customer(api, cid).customer_id
    finally:
        api.channel.close()
        srv.stop()


def test_shutdown_drains_in_flight_calls(store: GraphStore, monkeypatch: pytest.MonkeyPatch) -> None:
    graph = IdentityGraph(store)
    real = Resolve.__call__
    entered = threading.Event()

    def slow(self: Resolve, req: ResolveRequest) -> Any:
        entered.set()
        time.sleep(1.0)
        return real(self, req)

    monkeypatch.setattr(Resolve, "__call__", slow)
    srv, api = start_api(graph)
    try:
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(resolve, api, "web", "email:slow@example.com")
            assert entered.wait(TIMEOUT)
            started = time.monotonic()
            srv.shutdown(5.0)  # what SIGTERM runs: waits for the call, not for the grace period
            assert in_flight.result(TIMEOUT).customer_id.startswith("cus_")
            assert time.monotonic() - started < 4.5
        assert store.get_identifier("email:slow@example.com") is not None
        with pytest.raises(grpc.RpcError):
            resolve(api, "web", "email:late@example.com")
    finally:
        api.channel.close()
        srv.stop()


# ---- the server process -------------------------------------------------------------------------


def _read_port(proc: subprocess.Popen[str], lines: queue.Queue[str]) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            assert proc.poll() is None, "server exited early"
            continue
        record = json.loads(line)
        if record.get("msg") == "listening":
            return int(record["port"])
    raise AssertionError("server did not report its port")


def test_sigterm_drains_and_exits_zero(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "server.py"),
            "--address",
            "127.0.0.1:0",
            "--db",
            str(tmp_path / "identity.db"),
            "--grace",
            "5",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    lines: queue.Queue[str] = queue.Queue()
    log: list[str] = []

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            log.append(line)
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        port = _read_port(proc, lines)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.IdentityServiceStub(channel)
            resp = stub.Resolve(
                pb.ResolveRequest(
                    channel="web", identifiers=[ident("web_cookie:z"), ident("email:z@example.com")]
                ),
                timeout=TIMEOUT,
            )
            assert resp.customer_id
            stream = stub.WatchEvents(pb.WatchEventsRequest(from_seq=0), timeout=TIMEOUT)
            first = next(stream)
            assert first.seq == 1
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            rest = list(stream)  # the open stream ends cleanly (OK) during the drain
            assert all(e.seq > 1 for e in rest)
            assert proc.wait(timeout=15) == 0
            assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(5)
        assert proc.stderr is not None
        proc.stderr.close()
    records = [json.loads(line) for line in log if line.startswith("{")]
    rpcs = [r for r in records if r.get("msg") == "rpc"]
    resolve_line = next(r for r in rpcs if r["method"] == "/identity.v1.IdentityService/Resolve")
    assert resolve_line["code"] == "OK" and resolve_line["duration_ms"] >= 0
    assert any(r["method"].endswith("/WatchEvents") for r in rpcs)
    assert any(r.get("msg") == "stopped" for r in records)
