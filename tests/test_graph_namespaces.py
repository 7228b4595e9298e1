"""`IdentityGraph` is reached through its namespaces (Splink's `Linker` shape): no flat domain
method is left on the graph, and every namespace's operations are found by name."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest

from identity_graph.engine import (
    Customers,
    Events,
    IdentityGraph,
    Links,
    Resolve,
    ResolveRequest,
    Review,
)
from identity_graph.model import LinkKind

NAMESPACES = {
    "resolve": (Resolve, {"without_waiting", "candidate_records"}),
    "links": (Links, {"add", "remove", "preview_remove", "set_generic", "split", "preview_split"}),
    "review": (Review, {"queue", "accept", "reject", "constraints", "withdraw_constraint"}),
    "customers": (Customers, {"id_of", "members", "get", "disclosed", "assurance", "explain"}),
    "events": (Events, {"read", "subscribe"}),
}
# shared plumbing, not domain operations: what servers, sessions, batch jobs and erasure wire up
PLUMBING = {"store", "config", "types", "clock", "scorer", "suppressed", "write_lock", "lock_keys",
            "identifier", "channel", "key"}
FLAT = {"resolve_without_waiting", "candidate_records", "link", "unlink", "preview_unlink",
        "set_generic", "preview_split", "split", "constraints", "withdraw_constraint", "review_queue",
        "accept_review", "reject_review", "customer_id_of", "customer_members", "get_customer",
        "disclosed", "assurance", "explain"}


@pytest.fixture
def graph(tmp_path: Path) -> Iterator[IdentityGraph]:
    from identity_graph.store import open_store

    store = open_store(str(tmp_path / "identity.db"))
    try:
        yield IdentityGraph(store)
    finally:
        store.close()


def _public(obj: object) -> set[str]:
    return {n for n in dir(obj) if not n.startswith("_")}


def test_the_public_surface_is_the_namespaces_and_the_plumbing(graph: IdentityGraph) -> None:
    assert _public(graph) == set(NAMESPACES) | PLUMBING
    assert not FLAT & _public(graph)
    assert not FLAT & _public(IdentityGraph)  # not on the class either, not even deprecated


def test_each_namespace_offers_its_operations_by_name(graph: IdentityGraph) -> None:
    for name, (cls, methods) in NAMESPACES.items():
        ns = getattr(graph, name)
        assert type(ns) is cls
        assert _public(ns) == methods, name
        for method in methods:
            assert inspect.ismethod(getattr(ns, method)), f"{name}.{method}"
    assert callable(graph.resolve)  # the common call: graph.resolve(request)


def test_the_namespaces_share_one_graph(graph: IdentityGraph) -> None:
    first = graph.resolve(ResolveRequest("web", [("web_cookie", "c1"), ("email", "ann@example.com")]))
    assert first.is_new and first.customer_id
    again = graph.resolve.without_waiting(ResolveRequest("web", [("web_cookie", "c1")]))
    assert again is not None and again.customer_id == first.customer_id
    assert graph.customers.id_of("email:ann@example.com") == first.customer_id
    assert graph.customers.members(first.customer_id)[1] == ["email:ann@example.com", "web_cookie:c1"]
    woken: list[int] = []
    stop = graph.events.subscribe(woken.append)
    try:
        out = graph.links.add("email:ann@example.com", "phone:+15551230001", LinkKind.VERIFIED,
                              source="crm", actor="t")
    finally:
        stop()
    assert out.customer_ids == [first.customer_id] and woken == [out.events[-1].seq]
    assert [e.seq for e in graph.events.read(out.events[0].seq - 1)] == [e.seq for e in out.events]
    assert graph.customers.explain("web_cookie:c1", "phone:+15551230001").same_customer
    assert graph.review.queue() == ([], 0) and graph.review.constraints() == []
