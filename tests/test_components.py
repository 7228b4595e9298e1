"""Components and id policies against networkx and DESIGN.md's stable-id rules."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import networkx as nx
import pytest

from identity_graph.components import assign_ids_by_overlap, assign_ids_incremental, components

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("seed", range(20))
def test_components_match_networkx_on_random_graphs(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(1, 300)
    nodes = [f"n{i}" for i in range(n)]
    edges = [(rng.choice(nodes), rng.choice(nodes)) for _ in range(rng.randint(0, n * 2))]
    g = nx.Graph()
    g.add_nodes_from(nodes)
    g.add_edges_from(edges)
    expected = {frozenset(c) for c in nx.connected_components(g)}
    assert set(components(nodes, edges)) == expected


def _ids(seq: list[str]):
    it = iter(seq)
    return lambda: next(it)


def test_incremental_merge_keeps_the_oldest_id() -> None:
    comps = [frozenset({"a", "b", "c"})]
    previous = {"a": "cus_young", "b": "cus_old", "c": None}
    created = {"cus_young": T0 + timedelta(days=1), "cus_old": T0}
    out = assign_ids_incremental(comps, previous, created, lambda k: False, {}, _ids([]))
    assert out.ids == ["cus_old"]
    assert [(m.survivor, m.retired) for m in out.merges] == [("cus_old", ("cus_young",))]


def test_incremental_split_gives_the_id_to_the_most_verified_part() -> None:
    comps = [frozenset({"a", "b", "c"}), frozenset({"v"})]
    previous = dict.fromkeys("abcv", "cus_1")
    out = assign_ids_incremental(
        comps, previous, {"cus_1": T0}, lambda k: k == "v", dict.fromkeys("abcv", T0), _ids(["cus_new"])
    )
    assert out.ids == ["cus_new", "cus_1"]
    assert out.splits[0].original == "cus_1" and out.splits[0].new_ids == ("cus_new",)


def test_incremental_split_ties_go_to_more_identifiers_then_older() -> None:
    comps = [frozenset({"a"}), frozenset({"b", "c"})]
    previous = dict.fromkeys("abc", "cus_1")
    out = assign_ids_incremental(
        comps, previous, {"cus_1": T0}, lambda k: False, dict.fromkeys("abc", T0), _ids(["cus_new"])
    )
    assert out.ids == ["cus_new", "cus_1"]
    comps = [frozenset({"a"}), frozenset({"b"})]
    first_seen = {"a": T0 + timedelta(1), "b": T0}
    out = assign_ids_incremental(
        comps, dict.fromkeys("ab", "cus_1"), {"cus_1": T0}, lambda k: False, first_seen, _ids(["cus_new"])
    )
    assert out.ids == ["cus_new", "cus_1"]


@pytest.mark.parametrize("seed", range(10))
def test_nightly_overlap_on_unchanged_data_changes_no_id(seed: int) -> None:
    rng = random.Random(seed)
    keys = [f"k{i}" for i in range(500)]
    edges = [(rng.choice(keys), rng.choice(keys)) for _ in range(400)]
    comps = components(keys, edges)
    previous = {k: f"cus_{i}" for i, c in enumerate(comps) for k in c}
    rng.shuffle(comps)
    out = assign_ids_by_overlap(comps, previous, new_id=_ids([]))
    assert out.created == [] and out.merges == [] and out.splits == []
    assert out.by_key(comps) == previous


def test_nightly_overlap_uses_each_id_once() -> None:
    previous = {"a": "cus_1", "b": "cus_1", "c": "cus_1", "d": "cus_2"}
    comps = [frozenset({"a", "b"}), frozenset({"c", "d"})]
    out = assign_ids_by_overlap(comps, previous, new_id=_ids(["cus_3"]))
    assert out.ids[0] == "cus_1" and out.ids[1] == "cus_2"
    assert len(set(out.ids)) == 2
    assert [s.original for s in out.splits] == ["cus_1"]


def test_widest_path_prefers_fewest_links_among_equally_strong_paths() -> None:
    from identity_graph.model import Link, LinkKind
    from identity_graph.paths import bottleneck, widest_paths

    links = [
        Link("s", "x", LinkKind.VERIFIED),
        Link("x", "y", LinkKind.VERIFIED),
        Link("y", "t", LinkKind.VERIFIED),
        Link("s", "t", LinkKind.OBSERVED),
        Link("t", "u", LinkKind.OBSERVED),
    ]

    def links_of(keys):
        return [lk for lk in links if lk.a in keys or lk.b in keys]

    paths = widest_paths("s", links_of, lambda k: False)
    assert [(lk.a, lk.b) for lk in paths["u"]] == [("s", "t"), ("t", "u")]
    assert bottleneck(paths["t"], "s") is LinkKind.VERIFIED and len(paths["t"]) == 3
    assert widest_paths("s", links_of, lambda k: k == "t").get("u") is None


def test_detached_identifiers_never_keep_the_id() -> None:
    comps = [frozenset({"a"}), frozenset({"b"})]
    first_seen = {"a": T0, "b": T0 + timedelta(1)}
    out = assign_ids_incremental(
        comps,
        dict.fromkeys("ab", "cus_1"),
        {"cus_1": T0},
        lambda k: k == "a",
        first_seen,
        _ids(["cus_new"]),
        leaving=frozenset({"a"}),
    )
    assert out.ids == ["cus_new", "cus_1"]
