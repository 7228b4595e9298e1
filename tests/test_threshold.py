"""`batch.steps.threshold.choose_threshold` on a hand-made snapshot: no store, no Splink, no Spark."""

from __future__ import annotations

import duckdb
import pytest

from batch.steps.threshold import choose_threshold
from batch.steps.types import RelinkOptions, Snapshot
from identity_graph.config import GraphConfig
from identity_graph.model import utcnow

PEOPLE = 100
"""Each labelled person holds two identifiers joined by a verified link: 100 labelled true pairs."""


def _snapshot(pairs: list[tuple[str, str, float]], people_say_different: bool = True) -> Snapshot:
    """A snapshot with PEOPLE verified pairs, their records, and `pairs` as the run's scores;
    with `people_say_different`, every scored pair of two people is also a person's cannot-link
    (the graph's verified links alone never say that two identifiers are two people)."""
    snap = Snapshot(duckdb.connect(":memory:"), 0, utcnow(), "test")
    keys = [f"email:p{i}@x" for i in range(PEOPLE)] + [f"phone:+1555{i:07d}" for i in range(PEOPLE)]
    snap.run("CREATE TABLE records (unique_id VARCHAR)")
    snap.con.executemany("INSERT INTO records VALUES (?)", [[k] for k in keys])
    snap.run("CREATE TABLE links (a VARCHAR, b VARCHAR, kind VARCHAR)")
    snap.con.executemany("INSERT INTO links VALUES (?, ?, 'verified')",
                         [_pair(i, i) for i in range(PEOPLE)])
    snap.run("CREATE TABLE constraints (kind VARCHAR, a VARCHAR, b VARCHAR, withdrawn_at TIMESTAMP)")
    if people_say_different:
        snap.con.executemany("INSERT INTO constraints VALUES ('cannot_link', ?, ?, NULL)",
                             [[a, b] for a, b, _ in pairs if _person(a) != _person(b)])
    snap.run("CREATE TABLE pairs (a VARCHAR, b VARCHAR, probability DOUBLE)")
    snap.con.executemany("INSERT INTO pairs VALUES (?, ?, ?)", pairs)
    return snap


def _person(key: str) -> int:
    """The person an identifier of `_snapshot` belongs to."""
    return int(key.removeprefix("email:p").removesuffix("@x")) if key.startswith("email:") else int(key[-7:])


def _pair(i: int, j: int) -> list[str]:
    """Person i's email and person j's phone, smaller key first (as `pairs` holds them)."""
    a, b = f"email:p{i}@x", f"phone:+1555{j:07d}"
    return sorted([a, b])


@pytest.fixture
def config() -> GraphConfig:
    return GraphConfig()


@pytest.fixture
def options() -> RelinkOptions:
    return RelinkOptions(progress=False)


def _disagreeing() -> list[tuple[str, str, float]]:
    """Seen on Spark with synthetic data: one true pair at 1.0, then the model's best pairs are
    pairs the labels call two people, and the true pairs score low. Precision 0.99 is reached
    only at 1.0, with recall 1/100: F1 0.02; linking at 1.0 would link almost nothing."""
    true = [(*_pair(0, 0), 1.0)] + [(*_pair(i, i), 0.85) for i in range(1, PEOPLE)]
    false = [(*_pair(i, (i + 1) % PEOPLE), 0.999 - i / 100_000) for i in range(PEOPLE)]
    return [(a, b, p) for a, b, p in true + false]


def test_labels_that_agree_with_the_model_choose_the_threshold(config: GraphConfig,
                                                               options: RelinkOptions) -> None:
    # every true pair at 0.995, the pairs of different people at 0.9 or below
    true = [(*_pair(i, i), 0.995) for i in range(PEOPLE)]
    false = [(*_pair(i, (i + 1) % PEOPLE), 0.9 - i / 10_000) for i in range(PEOPLE)]
    snap = _snapshot(true + false)
    try:
        chosen, info = choose_threshold(snap, config, options)
    finally:
        snap.close()
    assert chosen == 0.995 and info["source"] == "labelled pairs"
    assert info["f1_at_chosen"] == 1.0 and "rejected" not in info


def test_labels_that_disagree_with_the_model_keep_the_configured_threshold(
        config: GraphConfig, options: RelinkOptions) -> None:
    snap = _snapshot(_disagreeing())
    try:
        chosen, info = choose_threshold(snap, config, options)
    finally:
        snap.close()
    assert chosen == config.link_threshold == info["chosen"]
    assert info["source"] == "configured" and info["labelled_true_pairs"] == PEOPLE
    assert info["rejected"] == {"threshold": 1.0, "f1": pytest.approx(2 / 101, abs=1e-6),
                                "true_pairs_above": 1}
    assert "disagree" in info["note"] and "configured threshold is kept" in info["note"]


def test_without_the_f1_floor_the_disagreeing_labels_would_pick_one(config: GraphConfig) -> None:
    snap = _snapshot(_disagreeing())
    try:
        chosen, info = choose_threshold(snap, config, RelinkOptions(progress=False, min_threshold_f1=0.0))
    finally:
        snap.close()
    assert chosen == 1.0 and info["source"] == "labelled pairs" and info["f1_at_chosen"] < 0.02


def test_the_graphs_own_links_never_say_two_people(config: GraphConfig, options: RelinkOptions) -> None:
    """Pairs across two verified groups are no evidence of two people (one person may hold both
    groups): without people's cannot-links, precision is unknown and the configured threshold is
    kept, even where those pairs score above every true pair."""
    snap = _snapshot(_disagreeing(), people_say_different=False)
    try:
        chosen, info = choose_threshold(snap, config, options)
    finally:
        snap.close()
    assert chosen == config.link_threshold and info["source"] == "configured"
    assert info["people_labels"] == {"positive": 0, "negative": 0}
    assert "precision cannot be measured" in info["note"] and "rejected" not in info
