"""The relink on Spark: one model scores the same on both engines, and `--engine spark` gives
the customers and ids `--engine duckdb` gives. Runs on the one local Spark of the test session."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from batch.engines.spark import SparkEngine, parse_conf, spark_linker
from batch.quality import load_synthetic
from batch.relink import RelinkOptions, relink
from identity_graph.matching.dialect import model_for, translate_sql
from identity_graph.matching.model import MatchModel, load_starter_model, save_model
from identity_graph.matching.scorer import OnlineScorer
from identity_graph.matching.settings import ATTRIBUTE_COLUMNS
from identity_graph.matching.training import linker_for_model, records_table, train_model
from identity_graph.store import open_store
from identity_graph.synthetic import generate, records_for_splink, true_pairs


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    return records_for_splink(generate(1200, seed=31))


@pytest.fixture(scope="module")
def spark_api(spark):
    from splink import SparkAPI

    return SparkAPI(spark_session=spark, num_partitions_on_repartition=2)


def _columns(model: MatchModel) -> list[str]:
    return sorted(set(ATTRIBUTE_COLUMNS) | set(OnlineScorer(model).columns) | set(model.term_frequencies))


Scores = dict[tuple[str, str], tuple[float, float]]


def _on_duckdb(model: MatchModel, records: list[dict[str, Any]]) -> Scores:
    rows = linker_for_model(model, records).inference.predict().as_record_list()
    return {(min(r["unique_id_l"], r["unique_id_r"]), max(r["unique_id_l"], r["unique_id_r"])):
            (r["match_probability"], r["match_weight"]) for r in rows}


def _on_spark(spark, api, model: MatchModel,
              records: list[dict[str, Any]]) -> Scores:
    df = spark.createDataFrame(records_table(records, _columns(model)))
    rows = spark_linker(api, df, model).inference.predict().as_record_list()
    return {(min(r["unique_id_l"], r["unique_id_r"]), max(r["unique_id_l"], r["unique_id_r"])):
            (r["match_probability"], r["match_weight"]) for r in rows}


def _assert_same_scores(a: dict, b: dict) -> None:
    assert len(a) > 1000
    assert a.keys() == b.keys()
    worst_p = max(abs(a[k][0] - b[k][0]) for k in a)
    worst_w = max(abs(a[k][1] - b[k][1]) for k in a)
    assert worst_p <= 1e-9, worst_p
    assert worst_w <= 1e-9, worst_w


def test_translation_round_trips_and_rejects_unknown_dialects() -> None:
    model = load_starter_model()
    spark_model = model_for(model, "spark")
    conditions = [lv["sql_condition"] for cc in spark_model.settings["comparisons"]
                  for lv in cc["comparison_levels"]]
    assert spark_model.settings["sql_dialect"] == "spark"
    assert any("ig_jaro_winkler(`first_name_l`" in c.lower() for c in conditions)
    assert not any("jaro_winkler_similarity" in c.lower() for c in conditions)
    back = model_for(spark_model, "duckdb")
    assert [lv["sql_condition"].lower() for cc in back.settings["comparisons"]
            for lv in cc["comparison_levels"]] == [
        lv["sql_condition"].lower() for cc in model.settings["comparisons"] for lv in cc["comparison_levels"]]
    with pytest.raises(ValueError, match="unknown SQL dialect 'postgres'"):
        translate_sql("a = b", "duckdb", "postgres")


def test_a_duckdb_model_scores_the_same_on_spark(spark, spark_api, records) -> None:
    model = train_model(records, 31, true_pairs(records, 2000, 31))
    _assert_same_scores(_on_duckdb(model, records), _on_spark(spark, spark_api, model, records))


def test_a_spark_model_scores_the_same_on_duckdb_and_online(spark, spark_api, records, tmp_path) -> None:
    model = train_model(records, 31, true_pairs(records, 2000, 31), db_api=spark_api)
    assert model.settings["sql_dialect"] == "duckdb"  # saved canonical, whoever trained it
    duck = _on_duckdb(model, records)
    _assert_same_scores(duck, _on_spark(spark, spark_api, model, records))
    # the online scorer loads it, saved or in Spark's dialect, and agrees with Splink
    save_model(model, tmp_path / "m.json")
    by_id = {r["unique_id"]: r for r in records}
    sample = sorted(duck)[:: max(1, len(duck) // 300)]
    for scorer in (OnlineScorer(model), OnlineScorer(model_for(model, "spark"))):
        worst = max(abs(scorer.score_pair(by_id[a], by_id[b]).match_probability - duck[(a, b)][0])
                    for a, b in sample)
        assert worst <= 1e-9, worst


def _kept(run: Any) -> int:
    return run.report["counts"]["pairs_above_review_threshold"]


def _customers(db: Path) -> dict[str, str | None]:
    with open_store(str(db)) as store:
        tables = store.export_tables()
    ids = tables["identifiers"]
    return dict(zip(ids["key"].to_pylist(), ids["customer_id"].to_pylist(), strict=True))


def _same_customers(a: dict[str, str | None], b: dict[str, str | None], old: set[str]) -> None:
    """The same customers, with the same ids where an id existed before the run (`old`); ids the
    run created are random, so those must only correspond one to one."""
    assert a.keys() == b.keys()
    renamed: dict[str, str | None] = {}
    for k, cid in a.items():
        if cid in old or b[k] in old:
            assert cid == b[k], k
        else:
            assert renamed.setdefault(cid, b[k]) == b[k], k
    assert len(set(renamed.values())) == len(renamed)


def _links(db: Path) -> set[tuple[str, str, str, str]]:
    with open_store(str(db)) as store:
        t = store.export_tables()["links"]
    return {(r["a"], r["b"], r["kind"], r.get("model_version") or "") for r in t.to_pylist()
            if r.get("removed_at") is None}


@pytest.mark.slow
def test_spark_and_duckdb_relinks_give_the_same_customers_and_ids(spark, tmp_path) -> None:
    """The generator's 50k-identifier data set: a first night on DuckDB trains a model and
    assigns ids; the second night, with the starter model (so customers merge and split), runs
    on each engine from the same copy and must give the same customers, ids and links."""
    a, b = tmp_path / "duck.db", tmp_path / "spark.db"
    with open_store(str(a)) as store:
        load_synthetic(store, 8700, seed=17)
        assert store.export_tables()["identifiers"].num_rows >= 50_000
    options = dict(progress=False, charts=False, models_dir=str(tmp_path / "models"))
    with open_store(str(a)) as store:
        first = relink(store, options=RelinkOptions(**options))
    old = set(_customers(a).values())
    shutil.copy(a, b)
    starter = tmp_path / "starter.json"
    save_model(load_starter_model(), starter)
    with open_store(str(a)) as store:
        duck = relink(store, options=RelinkOptions(model_path=str(starter), **options))
    engine = SparkEngine(spark, str(tmp_path / "ckpt"), partitions=4)
    with open_store(str(b)) as store:
        spark_run = relink(store, options=RelinkOptions(model_path=str(starter), **options),
                           engine=engine)
    assert first.report["counts"]["pairs_above_review_threshold"] > 10_000
    assert duck.report["counts"]["assignments_changed"] > 0  # the second night changed customers
    assert spark_run.report["engine"] == "spark"
    assert _kept(spark_run) == _kept(duck)
    _same_customers(_customers(a), _customers(b), old)
    assert _links(a) == _links(b)
    _same_waterfalls(_waterfalls(a), _waterfalls(b))
    assert not (tmp_path / "ckpt").exists()  # a completed run leaves no checkpoint


def _waterfalls(db: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """(a, b) -> the waterfall of each active batch link (`batch.evidence`)."""
    with open_store(str(db)) as store:
        t = store.export_tables()["links"]
    return {(r["a"], r["b"]): json.loads(r["comparisons"]) for r in t.to_pylist()
            if r.get("removed_at") is None and r["source"] == "batch"}


def _same_waterfalls(a: dict[tuple[str, str], dict[str, Any]],
                     b: dict[tuple[str, str], dict[str, Any]]) -> None:
    """The same levels, and bits within 1e-9 (two SQL engines' floating point)."""
    assert a.keys() == b.keys() and a
    for pair, w in a.items():
        s = b[pair]
        assert [(c["name"], c["level"]) for c in w["comparisons"]] == \
            [(c["name"], c["level"]) for c in s["comparisons"]], pair
        assert [c["bits"] for c in s["comparisons"]] == pytest.approx(
            [c["bits"] for c in w["comparisons"]], abs=1e-9), pair
        assert s["prior_match_weight"] == pytest.approx(w["prior_match_weight"], abs=1e-12)


def test_one_record_definition_online_duckdb_and_spark(spark) -> None:
    """The same observations give the same records on SQLite (online), DuckDB and Spark:
    most often observed, then latest, then smallest (code point order)."""
    import random
    from datetime import UTC, datetime, timedelta

    import duckdb
    import pyarrow as pa

    from identity_graph.model import Observation
    from identity_graph.records import record_columns_from, records_of, records_sql

    rng = random.Random(11)
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    values = ["Ann", "Anne", "anne", "Ánn", "中", "", "Bob"]
    obs = [Observation(f"email:p{i}@x.org", rng.choice(["first_name", "city", "loyalty_tier"]),
                       rng.choice(values), "crm", "", t0 + timedelta(seconds=rng.randint(0, 5)))
           for i in range(300) for _ in range(rng.randint(1, 8))]
    online = records_of(obs)
    assert any(len(r) > 1 for r in online.values())
    table = pa.table({"key": [o.key for o in obs], "attribute": [o.attribute for o in obs],
                      "value": [o.value for o in obs],
                      "observed_at": pa.array([o.observed_at for o in obs], pa.timestamp("us", "UTC"))})
    columns = record_columns_from(o.attribute for o in obs if o.value)
    con = duckdb.connect()
    con.register("observations", table)
    duck = con.sql(records_sql(columns, "duckdb")).to_arrow_table().to_pylist()
    spark.createDataFrame(table.to_pandas()).createOrReplaceTempView("record_test_obs")
    on_spark = [r.asDict() for r in spark.sql(records_sql(columns, "spark", "record_test_obs")).collect()]

    def as_records(rows: list[dict]) -> dict[str, dict[str, str]]:
        return {r["unique_id"]: {c: v for c, v in r.items() if c != "unique_id" and v is not None}
                for r in rows}

    assert as_records(duck) == online == as_records(on_spark)


def test_a_failed_spark_relink_resumes_from_its_last_step(spark, tmp_path) -> None:
    """Failed as the diff starts, the rerun takes records, model, pairs and the regions'
    decisions from the checkpoint and ends where an uninterrupted DuckDB run ends."""
    a, b = tmp_path / "duck.db", tmp_path / "spark.db"
    with open_store(str(a)) as store:
        load_synthetic(store, 400, seed=23)
    shutil.copy(a, b)
    model = tmp_path / "starter.json"
    save_model(load_starter_model(), model)
    opts = dict(progress=False, charts=False, model_path=str(model), models_dir=None)
    ckpt = tmp_path / "ckpt"

    def crash(step: str) -> None:
        if step == "plan":
            raise RuntimeError("crashed as the diff began")

    with open_store(str(b)) as store, pytest.raises(RuntimeError, match="crashed as the diff"):
        relink(store, options=RelinkOptions(**opts), engine=SparkEngine(spark, str(ckpt)), on_step=crash)
    manifest = json.loads((ckpt / "manifest.json").read_text())
    assert sorted(manifest["steps"]) == ["cluster", "model", "predict", "records"]
    engine = SparkEngine(spark, str(ckpt))
    with open_store(str(b)) as store:
        resumed = relink(store, options=RelinkOptions(**opts), engine=engine)
    assert engine.resumed_steps == ["records", "model", "predict", "cluster"]
    with open_store(str(a)) as store:
        duck = relink(store, options=RelinkOptions(**opts))
    assert _kept(resumed) == _kept(duck) > 0
    _same_customers(_customers(a), _customers(b), set())


def test_conf_passthrough_is_checked(tmp_path, capsys) -> None:
    from batch.cli import main

    assert parse_conf(["spark.sql.shuffle.partitions=8", "spark.x=a=b"]) == {
        "spark.sql.shuffle.partitions": "8", "spark.x": "a=b"}
    code = main(["relink", "--db", str(tmp_path / "g.db"), "--engine", "spark", "--conf", "nonsense",
                 "--quiet"])
    assert code == 2
    assert "--conf: expected KEY=VALUE, got 'nonsense'" in capsys.readouterr().err


def test_spark_similarity_functions_equal_duckdbs(spark) -> None:
    """Bit for bit, including strings where Splink's Scala Jaro differs from DuckDB's."""
    import random

    import duckdb

    rng = random.Random(5)
    alphabet = "abcdeilnorstu ßéü中"
    words = [("jutiette", "juliette"), ("rgers", "rrgers"), ("149 oxfod street", "179 oxford street"),
             ("", "abc"), ("ca", "abc"), ("straße", "strasse")]
    for _ in range(3000):
        a = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        b = list(a)
        for _ in range(rng.randint(0, 3)):
            i = rng.randint(0, max(len(b) - 1, 0))
            op = rng.random()
            if op < 0.3 and len(b) > 1:
                b[i - 1], b[i] = b[i], b[i - 1]
            elif op < 0.6:
                b.insert(i, rng.choice(alphabet))
            elif b:
                b[i] = rng.choice(alphabet)
        words.append((a, "".join(b)))
    df = spark.createDataFrame(words, "a string, b string")
    got = df.selectExpr("a", "b", "ig_jaro(a, b) AS j", "ig_jaro_winkler(a, b) AS jw",
                        "ig_levenshtein(a, b) AS l", "ig_damerau_levenshtein(a, b) AS d").collect()
    con = duckdb.connect()
    for r in got:
        want = con.execute("SELECT jaro_similarity($1, $2), jaro_winkler_similarity($1, $2), "
                           "levenshtein($1, $2), damerau_levenshtein($1, $2)", [r.a, r.b]).fetchone()
        assert (r.j, r.jw, r.l, r.d) == want, (r.a, r.b)


def test_peoples_decisions_hold_on_spark_as_on_duckdb(spark, tmp_path) -> None:
    """A cannot-link keeps a pair apart that the model links (0.9994), and a must-link (an
    accepted review) holds a pair together that the model leaves possible (0.868): the same
    customers, ids and links on `--engine spark` as on duckdb (without them: r1-r2, r3 apart)."""
    from test_people_decisions import BAND, PAT, R1, R2, R3
    from test_rules_paths import Case, online

    from identity_graph.engine import IdentityGraph
    from identity_graph.matching.model import STARTER_MODEL_PATH

    a, b, bare = tmp_path / "duck.db", tmp_path / "spark.db", tmp_path / "bare.db"
    opts = dict(progress=False, charts=False, model_path=str(STARTER_MODEL_PATH), models_dir=None)
    with open_store(str(bare)) as store:
        online(store, Case("pat", PAT, []), tmp_path)
        relink(store, BAND, RelinkOptions(**opts))
    plain = _customers(bare)  # without decisions: r1-r2 linked (0.9994), r3 apart (0.868, possible)
    assert plain[R1] == plain[R2] != plain[R3]
    shutil.copy(bare, a)
    with open_store(str(a)) as store:
        graph = IdentityGraph(store, BAND)
        [r13] = [i.link for i in graph.review.queue()[0] if (i.link.a, i.link.b) == (R1, R3)]
        graph.review.accept(r13.id, actor="analyst:lee", reason="same address history")
        graph.links.remove(R1, R2, actor="agent:kim", reason="two people")
        assert [c.kind.value for c in graph.review.constraints()] == ["must_link", "cannot_link"]
    old = set(_customers(a).values())
    shutil.copy(a, b)
    with open_store(str(a)) as store:
        duck = relink(store, BAND, RelinkOptions(**opts))
    with open_store(str(b)) as store:
        on_spark = relink(store, BAND, RelinkOptions(**opts),
                          engine=SparkEngine(spark, str(tmp_path / "ckpt"), partitions=2))
    for db, run in ((a, duck), (b, on_spark)):
        owner = _customers(db)
        assert owner[R1] == owner[R3] != owner[R2], run.report["engine"]
        assert not any({x, y} == {R1, R2} for x, y, _, _ in _links(db))
        assert [(v.key, v.other) for v in run.target.violations if v.kind == "cannot_link"] == [(R1, R2)]
        assert run.report["people"]["active_constraints"] == {"cannot_link": 1, "must_link": 1}
    _same_customers(_customers(a), _customers(b), old)
    assert _links(a) == _links(b) and any(lk[:3] == (R1, R3, "probable") for lk in _links(a))
    # each engine's batch links of this run carry the same waterfall
    _same_waterfalls(*({(lk.a, lk.b): lk.comparisons for lk in run.target.links.values()}
                       for run in (duck, on_spark)))


def test_a_shared_identifying_code_joins_on_spark_as_on_duckdb(spark, tmp_path) -> None:
    """Two people of one household by names and birth dates, sharing a number declared of kind
    `code` (`Similarity.identifying`): the rules let the scored link merge them on both engines;
    declared as plain text, the chain guard keeps it `possible` on Spark too."""
    import csv

    from batch.cli import main
    from identity_graph.config import GraphConfig
    from identity_graph.matching.model import STARTER_MODEL_PATH

    home = dict(last_name="Smith", street="1 High Street", city="Leeds", postcode="LS1 1AA",
                ssn="123-45-6789")
    rows = [dict(record_id="r1", mail="ann@x.example", first_name="Ann", date_of_birth="1970-01-01", **home),
            dict(record_id="r2", mail="bea@y.example", first_name="Bea", date_of_birth="1985-06-06", **home)]
    src = tmp_path / "crm.csv"
    with src.open("w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    low = GraphConfig(link_threshold=1e-6, review_threshold=1e-6)  # the pair scores 0.0026
    opts = dict(progress=False, charts=False, model_path=str(STARTER_MODEL_PATH), models_dir=None)
    r1, r2 = "source_record:crm/r1", "source_record:crm/r2"

    def ingested(kind: str) -> Path:
        db = tmp_path / f"{kind}.db"
        assert main(["ingest", str(src), "--db", str(db), "--source", "crm", "--quiet",
                     "--identifier", "mail=email", "--attribute", f"ssn=national_id:{kind}"]) == 0
        return db

    def night(db: Path, engine: SparkEngine | None) -> tuple[dict[str, str | None], Any]:
        with open_store(str(db)) as store:
            run = relink(store, low, RelinkOptions(**opts), engine=engine)
        return _customers(db), run

    code = ingested("code")
    shutil.copy(code, tmp_path / "code-spark.db")
    duck, _ = night(code, None)
    spark_code, run = night(tmp_path / "code-spark.db",
                            SparkEngine(spark, str(tmp_path / "c1"), partitions=2))
    assert duck[r1] == duck[r2] and spark_code[r1] == spark_code[r2]
    assert not [v for v in run.target.violations if v.kind == "chain"]
    text, run = night(ingested("text"), SparkEngine(spark, str(tmp_path / "c2"), partitions=2))
    assert text[r1] != text[r2]
    assert [v.kind for v in run.target.violations] == ["chain"]
