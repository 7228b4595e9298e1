"""The default model comes from the data: kinds, missing and constant columns, cost, checks."""

from __future__ import annotations

import copy
import csv
import json
import math
import random
from pathlib import Path

import duckdb
import pytest

from batch.cli import main as batch_main
from batch.ingest import Mapping_, ingest
from batch.relink import RelinkOptions, relink
from identity_graph.attributes import Kind
from identity_graph.matching.builder import swapped_names
from identity_graph.matching.model import MatchModel
from identity_graph.matching.scorer import OnlineScorer
from identity_graph.matching.settings import ATTRIBUTE_COLUMNS
from identity_graph.matching.training import (
    ModelCheckError,
    check_model,
    linker_for_model,
    plan_for_records,
    pool_weak_levels,
    records_table,
    train_model,
)
from identity_graph.store import GraphStore, open_store
from identity_graph.synthetic import generate, household_pairs, records_for_splink

LINK_THRESHOLD = 0.99


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return records_for_splink(generate(2500, seed=5))


@pytest.fixture(scope="module")
def trained(records) -> MatchModel:
    """The default model, trained without labels (EM) on generated data with households."""
    return train_model(records_table(records, ATTRIBUTE_COLUMNS), seed=1)


def _input(r: dict) -> dict:
    return {c: r.get(c) for c in ("unique_id", *ATTRIBUTE_COLUMNS)}


def test_default_model_compares_every_column_by_kind(trained: MatchModel) -> None:
    compared = {c["comparison"]: c for c in trained.metadata["compared"]}
    assert compared["first_name"]["columns"] == ["first_name", "last_name"]
    assert set(compared) == {"first_name", "last_name", "date_of_birth", "country", "address"}
    assert compared["address"]["columns"] == ["street", "postcode", "city"]
    assert compared["date_of_birth"]["kind"] == "date"
    assert set(trained.term_frequencies) == {"first_name", "last_name", "street"}
    assert trained.metadata["em_rules"] and trained.metadata["splink_warnings"] is not None


def test_online_scorer_equals_splink_on_the_default_model(trained: MatchModel, records) -> None:
    """Every comparison the builder emits, dates and swapped names included, scores exactly."""
    rng = random.Random(2)
    by_cluster: dict[str, list[dict]] = {}
    for r in records:
        if r["cluster"]:
            by_cluster.setdefault(r["cluster"], []).append(r)
    chosen = [r for rs in rng.sample([v for v in by_cluster.values() if len(v) >= 3], 12) for r in rs]
    for a, b in rng.sample(household_pairs(records), 20):
        chosen += [a, b]
    chosen += rng.sample(records, 20)
    chosen = [_input(r) for r in {r["unique_id"]: r for r in chosen}.values()]
    swapped = {**chosen[0], "unique_id": "swapped", "first_name": chosen[0]["last_name"],
               "last_name": chosen[0]["first_name"]}
    chosen.append(swapped)
    expected = linker_for_model(trained, chosen).inference.score_pairs(chosen, chosen).as_record_list()
    assert len(expected) >= 1000
    scorer = OnlineScorer(trained)
    by_id = {r["unique_id"]: r for r in chosen}
    levels = set()
    for row in expected:
        got = scorer.score_pair(by_id[row["unique_id_l"]], by_id[row["unique_id_r"]])
        assert abs(got.match_probability - row["match_probability"]) <= 1e-9
        for part in got.comparisons:
            assert part.comparison_vector_value == row[f"gamma_{part.comparison}"]
            levels.add((part.comparison, part.level))
    in_model = {(cc["output_column_name"], lv.get("label_for_charts"))
                for cc in trained.settings["comparisons"] for lv in cc["comparison_levels"]}
    if ("first_name", "first and last name swapped") in in_model:  # kept only when observed
        assert ("first_name", "first and last name swapped") in levels
    assert any(c == "date_of_birth" and "typo" in lv for c, lv in levels)


def test_household_pairs_stay_below_the_link_threshold(trained: MatchModel) -> None:
    """DESIGN: same surname and address, different first name AND birth date → not a link, with
    the model trained on the data (EM, no labels)."""
    scorer = OnlineScorer(trained)
    checked, worst = 0, 0.0
    for a, b in household_pairs(records_for_splink(generate(3000, seed=777))):
        if (a["last_name"] and a["last_name"] == b["last_name"] and a["street"]
                and a["street"] == b["street"] and a["postcode"] == b["postcode"]
                and None not in (a["first_name"], b["first_name"], a["date_of_birth"], b["date_of_birth"])
                and a["first_name"] != b["first_name"] and a["date_of_birth"] != b["date_of_birth"]):
            checked += 1
            worst = max(worst, scorer.score_pair(a, b).match_probability)
    assert checked > 300
    assert worst < LINK_THRESHOLD


def test_check_model_names_what_is_wrong(trained: MatchModel) -> None:
    assert check_model(trained) == []
    bad = copy.deepcopy(trained.to_dict())
    levels = bad["settings"]["comparisons"][0]["comparison_levels"]
    levels[1]["m_probability"], levels[1]["u_probability"] = 0.01, 0.5  # exact: −5.6 bits
    problems = check_model(MatchModel.from_dict(bad))
    assert any("weighs less than disagreement" in p for p in problems)
    bad = copy.deepcopy(trained.to_dict())
    bad["settings"]["comparisons"][1]["comparison_levels"][1]["u_probability"] = 1e-12
    assert any("beyond ±20" in p for p in check_model(MatchModel.from_dict(bad)))
    bad = copy.deepcopy(trained.to_dict())
    del bad["settings"]["comparisons"][2]["comparison_levels"][2]["m_probability"]
    assert any("no trained m and u" in p for p in check_model(MatchModel.from_dict(bad)))


def test_a_model_without_usable_columns_is_refused(records) -> None:
    rows = [{"unique_id": r["unique_id"], "country": "gb"} for r in records[:200]]
    with pytest.raises(ModelCheckError, match="no attribute column is usable"):
        train_model(records_table(rows, ["country"]), seed=1)


# ---- ingest + relink on data sets with missing and constant columns -----------------------------


def _ingest(store: GraphStore, tmp_path: Path, rows: list[dict], columns: list[str],
            attributes: dict | None = None) -> None:
    path = tmp_path / "src.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["record_id", *columns])
        for i, r in enumerate(rows):
            w.writerow([str(i), *(r.get(c) or "" for c in columns)])
    mapping = Mapping_.from_dict({"source": "src", "attributes": attributes or {c: c for c in columns}})
    result = ingest(store, path, mapping, progress=False)
    assert result.rejected == 0


def _relink(store: GraphStore, **kw) -> dict:
    return relink(store, options=RelinkOptions(models_dir=None, dry_run=True, progress=False,
                                               charts=False, **kw)).report


def _within_budget(report: dict) -> None:
    b = report["blocking"]
    assert b["comparisons_after"] <= b["budget"] == int(30 * report["counts"]["records_compared"])
    assert report["counts"]["pairs_scored"] <= b["budget"]


COLUMNS = ["first_name", "last_name", "date_of_birth", "street", "city", "postcode"]


@pytest.mark.parametrize("variant", ["no_postcode", "no_date_of_birth", "constant_postcode"])
def test_relink_adapts_to_missing_and_constant_columns(variant: str, tmp_path: Path, records) -> None:
    rows = [dict(r) for r in records[:2500]]
    columns = list(COLUMNS)
    if variant == "no_postcode":
        columns.remove("postcode")
    elif variant == "no_date_of_birth":
        columns.remove("date_of_birth")
    else:
        for r in rows:
            r["postcode"] = "00000"  # one source fills the field with a constant
    with open_store(str(tmp_path / "g.db")) as store:
        _ingest(store, tmp_path, rows, columns)
        report = _relink(store)
    _within_budget(report)
    explain = report["model"]["explain"]
    compared = {c for e in explain["compared_columns"] for c in e["columns"]}
    if variant == "no_postcode":
        assert "postcode" not in compared and "date_of_birth" in compared
    elif variant == "no_date_of_birth":
        assert "date_of_birth" not in compared
        assert not any("date_of_birth" in r for r in explain["blocking_rules"])
    else:
        assert "postcode" not in compared
        assert "one value only" in explain["left_out"]["postcode"]
    assert report["counts"]["batch_links_by_kind"].get("probable", 0) > 100


def test_junk_value_is_left_out_of_blocking(tmp_path: Path, records) -> None:
    rows = [dict(r) for r in records[:2500]]
    for r in rows[::2]:
        r["postcode"] = "00000"  # half the rows: a placeholder, far more than a person could be
    with open_store(str(tmp_path / "g.db")) as store:
        _ingest(store, tmp_path, rows, COLUMNS)
        report = _relink(store)
    _within_budget(report)
    assert report["model"]["explain"]["junk_values"] == {"postcode": ["00000"]}
    postcode_rule = next(r for r in report["blocking"]["rules"] if r["rule"] == "postcode")
    assert postcode_rule["comparisons"] < 20_000  # 1,250 × 1,249 / 2 ≈ 780k with the junk value


def test_custom_attribute_kind_is_compared_and_settings_may_use_it(tmp_path: Path, records) -> None:
    rows = [dict(r) for r in records[:1500]]
    ids: dict[str, str] = {}
    for r in rows:
        if r["cluster"]:
            ids.setdefault(r["cluster"], f"{len(ids):07d}")
        r["soc_sec_id"] = ids.get(r["cluster"], "")
    attributes = {c: c for c in COLUMNS}
    attributes["soc_sec_id"] = {"name": "national_id", "kind": "code"}
    with open_store(str(tmp_path / "g.db")) as store:
        _ingest(store, tmp_path, rows, [*COLUMNS, "soc_sec_id"], attributes)
        report = _relink(store)
        kinds = {e["comparison"]: e["kind"] for e in report["model"]["explain"]["compared_columns"]}
        assert kinds["national_id"] == "code"
        assert any("national_id" in r for r in report["model"]["explain"]["blocking_rules"])
        # a user's Splink settings may compare any record column, custom ones included
        settings = tmp_path / "settings.json"
        settings.write_text(json.dumps({"comparisons": [
            {"output_column_name": "national_id", "comparison_levels": [
                {"sql_condition": '"national_id_l" IS NULL OR "national_id_r" IS NULL',
                 "is_null_level": True},
                {"sql_condition": '"national_id_l" = "national_id_r"'},
                {"sql_condition": "ELSE"}]}]}))
        custom = _relink(store, settings_path=str(settings))
    names = [c["comparison"] for c in custom["model"]["explain"]["comparisons"]]
    assert names == ["national_id"]


def test_cli_explain_model_and_max_reject_rate(tmp_path: Path, records, capsys) -> None:
    db = str(tmp_path / "g.db")
    path = tmp_path / "people.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["record_id", "first_name", "last_name", "date_of_birth", "member_no"])
        for i, r in enumerate(records[:400]):
            dob = "not a date" if i % 10 == 0 else (r["date_of_birth"] or "")
            w.writerow([i, r["first_name"] or "", r["last_name"] or "", dob, f"M{i:05d}"])
    args = ["ingest", str(path), "--db", db, "--quiet", "--source", "crm",
            "--attribute", "first_name", "--attribute", "last_name", "--attribute", "date_of_birth",
            "--attribute", "member_no=member_number:code"]
    assert batch_main(args) == 4  # 10 % of rows had a bad date: more than the default 5 %
    out = json.loads(capsys.readouterr().out)
    assert out["loaded"] == 400 and out["rows_with_bad_values"] == 40
    assert batch_main([*args, "--max-reject-rate", "0.2"]) == 0
    capsys.readouterr()
    assert batch_main(["relink", "--db", db, "--quiet", "--explain-model"]) == 0
    text = capsys.readouterr().out
    assert "member_number" in text and "code" in text
    assert "date_of_birth" in text and "blocking rules" in text


def test_quality_counts_records_that_were_not_loaded() -> None:
    from batch.quality import pairwise_scores

    truth = {"a": "p1", "b": "p1", "c": "p2", "d": "p2"}
    loaded = {"a": "c1", "b": "c1", "c": "c2"}  # d was rejected at ingest
    scores = pairwise_scores(loaded, truth)
    assert scores["identifiers_evaluated"] == 4 and scores["identifiers_not_placed"] == 1
    assert scores["recall"] == 0.5 and scores["precision"] == 1.0


def test_threshold_is_chosen_from_labelled_pairs(tmp_path: Path) -> None:
    from batch.quality import load_synthetic
    from identity_graph.matching.model import STARTER_MODEL_PATH

    labels = tmp_path / "labels.parquet"
    with open_store(str(tmp_path / "g.db")) as store:
        load_synthetic(store, 400, seed=3, labels_out=labels)
        report = _relink(store, model_path=str(STARTER_MODEL_PATH), labels_path=str(labels))
        unlabelled = _relink(store, model_path=str(STARTER_MODEL_PATH))
    th = report["threshold"]
    assert th["source"] == "labelled pairs" and th["labelled_true_pairs"] >= 20
    assert 0.8 <= th["chosen"] <= 1.0
    at = [c for c in th["curve"] if c["threshold"] >= th["chosen"]]
    assert at and all(c["precision"] >= 0.99 for c in at)
    assert max(c["f1"] for c in th["curve"] if c["precision"] >= 0.99) <= th["f1_at_chosen"] + 1e-9
    assert unlabelled["threshold"]["source"] == "configured"
    assert unlabelled["threshold"]["chosen"] == 0.99


def test_expensive_rules_are_tightened_or_dropped_to_fit_the_budget(tmp_path: Path, records) -> None:
    with open_store(str(tmp_path / "g.db")) as store:
        _ingest(store, tmp_path, [dict(r) for r in records[:2500]], COLUMNS)
        report = _relink(store, comparisons_per_record=3)
    b = report["blocking"]
    n = report["counts"]["records_compared"]
    assert b["budget"] == 3 * n and b["comparisons_after"] <= b["budget"]
    assert report["counts"]["pairs_scored"] <= b["budget"]
    assert b["comparisons_before"] > b["budget"], "the budget really cut something"
    cut = [r for r in b["rules"] if not r["kept"]]
    assert cut and all("over budget" in r["reason"] for r in cut)
    tightened = [r for r in b["rules"] if r["reason"].startswith("tightened")]
    assert all(r["kept"] for r in tightened)


def test_m_comes_from_verified_pairs_when_there_are_enough(tmp_path: Path) -> None:
    from batch.quality import load_synthetic

    with open_store(str(tmp_path / "g.db")) as store:
        load_synthetic(store, 400, seed=9)
        report = _relink(store)
        few = _relink(store, min_label_pairs_for_m=10**9)
    meta = report["model"]["metadata"]
    assert report["model"]["label_pairs"] >= 50
    assert meta["n_label_pairs"] == report["model"]["label_pairs"] and meta["m_from_labels_levels"] > 0
    assert "fewer than" in few["model"]["labels_not_used"]
    assert few["model"]["metadata"]["n_label_pairs"] == 0


def test_address_lines_entered_the_other_way_round_are_their_own_level(records) -> None:
    """A second address line (kind address) adds "address lines swapped" to the one address
    comparison; the online scorer reproduces it, and the household's lines in order are not it."""
    rng = random.Random(4)
    rows, line2 = [], {}
    for r in records[:3000]:
        r = _input(r)
        street = r["street"]
        word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(8))
        r["address_2"] = line2.setdefault(street, word) if street else None
        if r["street"] and rng.random() < 0.1:
            r["street"], r["address_2"] = r["address_2"], r["street"]
        rows.append(r)
    table = records_table(rows, [*ATTRIBUTE_COLUMNS, "address_2"])
    plan = plan_for_records(table, {"address_2": Kind.ADDRESS})
    address = next(e for e in plan.explain if e["comparison"] == "address")
    assert address["columns"] == ["street", "postcode", "city", "address_2"]
    model = train_model(table, seed=3, plan=plan)
    a = next(r for r in rows if r["street"] and r["address_2"] and r["street"][0].isdigit())
    b = {**a, "unique_id": "b", "street": a["address_2"], "address_2": a["street"]}
    got = OnlineScorer(model).score_pair(a, b)
    assert {c.comparison: c.level for c in got.comparisons}["address"] == "address lines swapped"
    expected = linker_for_model(model, [a, b]).inference.score_pairs([a], [b]).as_record_list()
    assert abs(got.match_probability - expected[0]["match_probability"]) <= 1e-9
    same = OnlineScorer(model).score_pair(a, {**a, "unique_id": "c"})
    assert {c.comparison: c.level for c in same.comparisons}["address"] != "address lines swapped"


def test_a_partial_level_weighing_below_disagreement_is_pooled_with_it() -> None:
    """"Same year" trained below "different" (seen at 1M generated identifiers) is no evidence:
    pooled with ELSE at one weight, m still summing to 1; the exact level is never pooled."""
    def level(cond: str, m: float, u: float) -> dict:
        return {"sql_condition": cond, "label_for_charts": cond, "m_probability": m, "u_probability": u}

    settings = {"comparisons": [{"output_column_name": "date_of_birth", "comparison_levels": [
        {"sql_condition": "dob_l IS NULL", "is_null_level": True},
        level("exact", 0.80, 0.001), level("one typo", 0.10, 0.01),
        level("same year", 0.004, 0.05), level("ELSE", 0.09, 0.939)]}]}
    before = [lv["m_probability"] for lv in settings["comparisons"][0]["comparison_levels"][1:]]
    notes = pool_weak_levels(settings)
    levels = settings["comparisons"][0]["comparison_levels"][1:]
    assert [n.split(":")[0] for n in notes] == ["date_of_birth"] and "same year" in notes[0]
    weight = {lv["sql_condition"]: math.log2(lv["m_probability"] / lv["u_probability"]) for lv in levels}
    assert math.isclose(weight["same year"], weight["ELSE"], abs_tol=1e-12)
    assert weight["ELSE"] == pytest.approx(math.log2(0.094 / 0.989))
    assert weight["exact"] == pytest.approx(math.log2(800))
    assert weight["one typo"] == pytest.approx(math.log2(10))
    assert sum(lv["m_probability"] for lv in levels) == pytest.approx(sum(before))

    exact_low = {"comparisons": [{"output_column_name": "x", "comparison_levels": [
        level("exact", 0.01, 0.5), level("near", 0.5, 0.1), level("ELSE", 0.49, 0.4)]}]}
    assert pool_weak_levels(exact_low) == []  # left for check_model to refuse
    model = MatchModel(version="t", settings=exact_low, term_frequencies={}, metadata={})
    assert any("weighs less than disagreement" in p for p in check_model(model))


def test_names_in_the_other_field_are_blocked_levelled_and_scored_online(records) -> None:
    """Names entered the other way round, whole or half (one name moved, the other replaced):
    the first-name comparison has a level for each, blocking reaches a swapped pair that agrees
    on nothing else, and the online scorer and its blocking keys equal Splink's and DuckDB's."""
    rng = random.Random(3)
    rows = [_input(r) for r in records]
    surnames = [r["last_name"] for r in rows if r["last_name"]]
    extra = []
    for r in rows:
        if r["first_name"] and r["last_name"] and rng.random() < 0.06:
            if rng.random() < 0.5:
                extra.append({**r, "unique_id": f"{r['unique_id']}-swapped",
                              "first_name": r["last_name"], "last_name": r["first_name"]})
            else:
                extra.append({**r, "unique_id": f"{r['unique_id']}-moved",
                              "first_name": r["last_name"], "last_name": rng.choice(surnames)})
    table = records_table(rows + extra, ATTRIBUTE_COLUMNS)
    model = train_model(table, seed=1)
    labels = [lv.get("label_for_charts") for lv in model.settings["comparisons"][0]["comparison_levels"]]
    assert "first and last name swapped" in labels and "a name in the other name field" in labels
    assert labels.index("a name in the other name field") > labels.index("first and last name swapped")
    swap_rule = swapped_names("first_name", "last_name")
    assert any(swap_rule in br["blocking_rule"].replace("l.", "")
               for br in model.settings["blocking_rules_to_generate_predictions"])

    scorer = OnlineScorer(model)
    by_id = {r["unique_id"]: r for r in rows}
    pairs = [(by_id[e["unique_id"].rsplit("-", 1)[0]], e) for e in extra]
    stranger = {"unique_id": "x", "first_name": "zed", "last_name": None}
    chosen = [r for p in pairs[:40] for r in p] + rng.sample(rows, 40) + [stranger]
    expected = linker_for_model(model, chosen).inference.score_pairs(chosen, chosen).as_record_list()
    ids = {r["unique_id"]: r for r in chosen}
    hit = set()
    for row in expected:
        got = scorer.score_pair(ids[row["unique_id_l"]], ids[row["unique_id_r"]])
        assert abs(got.match_probability - row["match_probability"]) <= 1e-9
        hit |= {c.level for c in got.comparisons if c.comparison == "first_name"}
    assert {"first and last name swapped", "a name in the other name field"} <= hit

    chosen_table = records_table(chosen, ATTRIBUTE_COLUMNS)  # noqa: F841 (read by DuckDB below)
    keys = dict(duckdb.sql(f"SELECT unique_id, {swap_rule} FROM chosen_table").fetchall())
    assert keys["x"] is None and sum(v is not None for v in keys.values()) > 100
    for r in chosen:
        online = next((v for name, v in scorer.blocking_keys(r) if name.startswith("CASE")), None)
        assert online == keys[r["unique_id"]], r
    a, b = next((a, b) for a, b in pairs if b["unique_id"].endswith("-swapped"))
    assert {(n, v) for n, v in scorer.blocking_keys(a) if n.startswith("CASE")} == \
        {(n, v) for n, v in scorer.blocking_keys(b) if n.startswith("CASE")} != set()
