"""`IdentityGraph.resolve.without_waiting`: the known-Resolve read a server runs on its event loop
over SQLite (issue 12 item 7: no thread hand-off for a read of microseconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from identity_graph.engine import IdentityGraph, ResolveRequest
from identity_graph.errors import InvalidArgument
from identity_graph.store import open_store


@pytest.fixture
def graph(tmp_path: Path):
    store = open_store(str(tmp_path / "identity.db"))
    try:
        yield IdentityGraph(store)
    finally:
        store.close()


def test_known_identifier_is_answered_as_resolve_answers_it(graph: IdentityGraph) -> None:
    assert graph.store.database.inline_reads  # a file: readers of their own, never blocked
    req = ResolveRequest("web", [("web_cookie", "c1"), ("email", "ann@x.org")])
    first = graph.resolve(req)
    known = ResolveRequest("web", [("web_cookie", "c1")])
    inline = graph.resolve.without_waiting(known)
    assert inline is not None
    assert inline == graph.resolve(known)
    assert inline.customer_id == first.customer_id and not inline.is_new


def test_anything_that_writes_or_waits_is_handed_back(graph: IdentityGraph) -> None:
    graph.resolve(ResolveRequest("web", [("web_cookie", "c1")]))
    # new identifier, new attributes: writes
    assert graph.resolve.without_waiting(ResolveRequest("web", [("web_cookie", "c2")])) is None
    assert graph.resolve.without_waiting(
        ResolveRequest("web", [("web_cookie", "c1")], {"first_name": "ann"})) is None
    # a write under way (the tracker's barrier): no wait, handed back at once
    with graph.store.writes.writing():
        assert graph.resolve.without_waiting(ResolveRequest("web", [("web_cookie", "c1")])) is None
    assert graph.resolve.without_waiting(ResolveRequest("web", [("web_cookie", "c1")])) is not None
    # bad input is refused inline as by `resolve`
    with pytest.raises(InvalidArgument) as e:
        graph.resolve.without_waiting(ResolveRequest("fax", [("web_cookie", "c1")]))
    assert e.value.field == "channel"


def test_in_memory_database_reads_behind_the_writer_lock() -> None:
    with open_store(":memory:") as store:
        assert not store.database.inline_reads
