"""OnlineScorer reproduces Splink's score_pairs; the starter model respects the household rule."""

from __future__ import annotations

import json
import math
import random

import duckdb
import pyarrow as pa
import pytest

from identity_graph.matching.model import (
    STARTER_MODEL_PATH,
    MatchModel,
    load_model,
    load_starter_model,
    save_model,
)
from identity_graph.matching.scorer import (
    OnlineScorer,
    UnsupportedModel,
    damerau_levenshtein,
    jaro_similarity,
    jaro_winkler_similarity,
    levenshtein,
    py_damerau_levenshtein,
    py_jaro_similarity,
    py_jaro_winkler_similarity,
    py_levenshtein,
)
from identity_graph.matching.settings import ATTRIBUTE_COLUMNS
from identity_graph.matching.training import linker_for_model
from identity_graph.synthetic import generate, household_pairs, records_for_splink

LINK_THRESHOLD = 0.99
COLUMNS = ("unique_id", *ATTRIBUTE_COLUMNS)


@pytest.fixture(scope="module")
def model() -> MatchModel:
    return load_starter_model()


@pytest.fixture(scope="module")
def scorer(model: MatchModel) -> OnlineScorer:
    return OnlineScorer(model)


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return records_for_splink(generate(3000, seed=4242))


def _model_input(r: dict) -> dict:
    return {c: r.get(c) for c in COLUMNS}


def _edge_records() -> list[dict]:
    """Hand-made corner cases: NULLs, empty strings, Unicode, values absent from TF tables."""
    base = {c: None for c in COLUMNS}
    rows = [
        {"first_name": "émile", "last_name": "zoë", "date_of_birth": "1980-02-03"},
        {"first_name": "emile", "last_name": "zoe", "date_of_birth": "1980-03-02"},
        {"first_name": "", "last_name": "", "street": "", "postcode": "", "city": ""},
        {"first_name": "", "last_name": "", "street": "", "postcode": "", "city": ""},
        {"first_name": "robert", "last_name": "smith", "street": "1 high st", "postcode": "M1 1AA"},
        {"first_name": "bob", "last_name": "smith", "street": "1 high street", "postcode": "M1 1AA"},
        {"first_name": "xyzzyq", "last_name": "qqqqzz", "street": "9 nowhere", "postcode": "ZZ9 9ZZ"},
        {"first_name": "xyzzyq", "last_name": "qqqqzz", "street": "9 nowhere", "postcode": "ZZ9 9ZZ"},
        {"street": "1 high st", "city": "leeds"},
        {"street": "1 high st", "city": "leeds", "postcode": "LS1 1AA"},
        {"date_of_birth": "1980-12-28"},
        {"date_of_birth": "1950-12-28"},
        {},
    ]
    return [{**base, **row, "unique_id": f"edge:{i}"} for i, row in enumerate(rows)]


def test_string_functions_match_duckdb_exactly() -> None:
    rng = random.Random(3)
    alphabet = "abcdeé ñ"
    pairs = [
        (
            "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 10))),
            "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 10))),
        )
        for _ in range(5000)
    ]
    names = ["robert", "bob", "martha", "marhta", "dixon", "dicksonx", "jon", "john", "émile"]
    pairs += [(a, b) for a in names for b in names]
    table = pa.table({"a": [p[0] for p in pairs], "b": [p[1] for p in pairs]})
    con = duckdb.connect()
    con.register("t", table)
    rows = con.execute(
        "select jaro_winkler_similarity(a, b), jaro_similarity(a, b), levenshtein(a, b), "
        "damerau_levenshtein(a, b) from t"
    ).fetchall()
    mismatches = [
        (a, b)
        for (a, b), expected in zip(pairs, rows, strict=True)
        if (
            jaro_winkler_similarity(a, b),
            jaro_similarity(a, b),
            levenshtein(a, b),
            damerau_levenshtein(a, b),
        )
        != expected
    ]
    assert mismatches == []
    # the pure-Python references (bench/bench_scorer.py's "before") agree too
    reference = [
        (a, b)
        for (a, b), expected in zip(pairs, rows, strict=True)
        if (py_jaro_winkler_similarity(a, b), py_jaro_similarity(a, b), py_levenshtein(a, b),
            py_damerau_levenshtein(a, b)) != expected
    ]
    assert reference == []


def test_scores_equal_splink_score_pairs(model: MatchModel, scorer: OnlineScorer, records):
    rng = random.Random(11)
    by_cluster: dict[str, list[dict]] = {}
    for r in records:
        if r["cluster"]:
            by_cluster.setdefault(r["cluster"], []).append(r)
    multi = [rs for rs in by_cluster.values() if len(rs) >= 3]
    chosen: list[dict] = [r for rs in rng.sample(multi, 15) for r in rs]
    for a, b in rng.sample(household_pairs(records), 25):
        chosen += [a, b]
    chosen += rng.sample(records, 40)
    chosen = [_model_input(r) for r in {r["unique_id"]: r for r in chosen}.values()]
    chosen += _edge_records()

    linker = linker_for_model(model, chosen)
    expected = linker.inference.score_pairs(chosen, chosen).as_record_list()
    assert len(expected) >= 5000

    by_id = {r["unique_id"]: r for r in chosen}
    n_matches = n_household = 0
    for row in expected:
        left, right = by_id[row["unique_id_l"]], by_id[row["unique_id_r"]]
        got = scorer.score_pair(left, right)
        assert abs(got.match_probability - row["match_probability"]) <= 1e-9, (left, right)
        assert abs(got.match_weight - row["match_weight"]) <= 1e-9, (left, right)
        for part in got.comparisons:
            assert part.comparison_vector_value == row[f"gamma_{part.comparison}"]
        n_matches += row["match_probability"] >= LINK_THRESHOLD
        n_household += left["last_name"] is not None and left["last_name"] == right["last_name"]
    # the sample really exercised strong matches and shared surnames, not only non-matches
    assert n_matches > 50
    assert n_household > 100


def test_score_returns_waterfall_that_sums_to_match_weight(scorer: OnlineScorer, records):
    rec, *cands = [_model_input(r) for r in records[:11]]
    scores = scorer.score(rec, cands)
    assert [s.unique_id_r for s in scores] == [c["unique_id"] for c in cands]
    for s in scores:
        assert [c.comparison for c in s.comparisons] == [
            "first_name",
            "last_name",
            "date_of_birth",
            "address",
        ]
        total = s.prior_match_weight + sum(c.bits for c in s.comparisons)
        assert math.isclose(total, s.match_weight, abs_tol=1e-9)
        assert all(isinstance(c.level, str) and c.level for c in s.comparisons)


def test_blocking_keys_follow_the_models_rules(scorer: OnlineScorer) -> None:
    rec = {
        "first_name": "bob",
        "last_name": "smith",
        "date_of_birth": "1980-01-02",
        "postcode": "SW1A 1AA",
    }
    assert scorer.blocking_keys(rec) == [
        ("postcode", "SW1A 1AA"),
        ("last_name&SUBSTRING(date_of_birth, 1, 4)", "smith\x1f1980"),
        ("first_name&date_of_birth", "bob\x1f1980-01-02"),
    ]
    assert scorer.blocking_keys({"first_name": "bob", "last_name": "smith"}) == []


def test_household_pairs_never_cross_the_link_threshold(scorer: OnlineScorer) -> None:
    """DESIGN: same surname and address, different first name AND birth date → not a link."""
    records = records_for_splink(generate(4000, seed=777))
    checked = 0
    worst = 0.0
    for a, b in household_pairs(records):
        same_surname_address = (
            a["last_name"] is not None
            and a["last_name"] == b["last_name"]
            and a["street"] is not None
            and a["street"] == b["street"]
            and a["postcode"] == b["postcode"]
        )
        differ = (
            None not in (a["first_name"], b["first_name"], a["date_of_birth"], b["date_of_birth"])
            and a["first_name"] != b["first_name"]
            and a["date_of_birth"] != b["date_of_birth"]
        )
        if same_surname_address and differ:
            checked += 1
            worst = max(worst, scorer.score_pair(a, b).match_probability)
    assert checked > 500
    assert worst < LINK_THRESHOLD


def test_household_worst_case_by_construction(model: MatchModel, scorer: OnlineScorer) -> None:
    """The strongest surname+address agreement the model can express, with first name and
    birth date at their best *disagreeing* levels, stays below the link threshold."""
    rarest_surname = min(model.term_frequencies["last_name"], key=model.term_frequencies["last_name"].get)
    rarest_street = min(model.term_frequencies["street"], key=model.term_frequencies["street"].get)
    base = {"last_name": rarest_surname, "street": rarest_street, "postcode": "ZZ1 1ZZ", "city": "c"}
    for first_l, first_r in (("kieran", "katherine"), ("aisha", "sophia"), ("anna", "zed")):
        for dob_r in ("1987-08-19", "1950-12-28", "1990-01-01"):
            a = {**base, "first_name": first_l, "date_of_birth": "1987-11-28"}
            b = {**base, "first_name": first_r, "date_of_birth": dob_r}
            assert scorer.score_pair(a, b).match_probability < LINK_THRESHOLD


def test_model_json_round_trip_and_starter_metadata(tmp_path, model: MatchModel) -> None:
    path = tmp_path / "m.json"
    save_model(model, path)
    again = load_model(path)
    assert again == model
    raw = json.loads(STARTER_MODEL_PATH.read_text())
    assert set(raw) == {"format", "version", "metadata", "settings", "term_frequencies"}
    assert raw["metadata"]["trained_on"] == "synthetic starter"
    assert STARTER_MODEL_PATH.stat().st_size < 2_000_000
    with pytest.raises(ValueError):
        MatchModel.from_dict({"format": "something else"})


def test_unsupported_sql_is_rejected_when_the_scorer_is_built(model: MatchModel) -> None:
    settings = json.loads(json.dumps(model.settings))
    settings["comparisons"][0]["comparison_levels"][2]["sql_condition"] = (
        "jaccard(first_name_l, first_name_r) >= 0.9"
    )
    with pytest.raises(UnsupportedModel):
        OnlineScorer(MatchModel("x", settings, model.term_frequencies))
