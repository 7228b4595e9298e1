"""The relink on Apache Spark: records, training, prediction and the customer rules.

Each step that grows with the data runs on Spark and leaves its output as parquet in a
checkpoint directory, with a manifest naming the steps completed:

    snapshot/<table>  records  model.json  pairs  regions  outcomes  manifest.json

- **snapshot**: the store's tables are read as the DuckDB engine reads them (one read
  transaction on SQLite; re-read until stable on Neo4j), written as parquet, and read back by
  Spark. The driver keeps the same tables in its private DuckDB for the steps that follow
  prediction. Always taken afresh, also on a resumed run, so the diff is against the graph as
  it is now and units already written diff to nothing.
- **records**: `identity_graph.records.records_sql`, the SQL the DuckDB engine runs, on Spark SQL.
- **model**: the given model, or `batch.steps.model.get_model` training with the `SparkAPI`; the
  model is saved in DuckDB's dialect (`identity_graph.matching.dialect`), so the online scorer
  and the DuckDB engine load it as they load any other.
- **predict**: the blocking rules chosen within the comparison budget (`batch.steps.predict.predict`),
  then Splink's prediction on Spark with the model's own TF tables; pairs at or above the
  review threshold, each with its waterfall (`batch.evidence.waterfall_sql` in Spark SQL), are
  written as parquet and collected to the driver.

- **cluster**: the customer rules and stable ids. The rules add links strongest first and
  refuse what breaks a per-type limit or joins clearly different people, an order-dependent
  walk no label propagation expresses; but it never looks past a region closed under the
  proposals and shared customer ids. So Spark finds the regions (Splink's connected components
  on Spark, over the proposals and identifier-to-customer edges) and each region is decided by
  `batch.regions.decide_region` (which calls `identity_graph.rules.decide`) in a Python worker
  (`applyInPandas`). People's decisions (`batch.people`: cannot-links, must-links and the links
  they fix) are a small table, broadcast to the joins that hand each region its own; a decision
  whose ends lie in two regions needs nothing, since no proposal joins them. The outcomes are
  parquet, and the driver assembles the target
  (`batch.steps.cluster.target_of`). Reused on a resumed run only when the graph has not moved since
  (same event seq), since the decision names the identifiers it covers.

The diff and the write-back are the DuckDB engine's own functions, on the driver.

A run killed or failed after a step resumes from it when started again with the same
checkpoint directory and the same options; a completed run clears the directory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from batch.engines.udfs import register_udfs, udf_jar
from batch.evidence import RETAIN, waterfall_sql
from batch.regions import DETERMINISTIC, Outcome, RegionInput, decide_region, sighting_rows_sql, sightings_of
from identity_graph.guardrails import PERSON_ATTRIBUTES
from identity_graph.matching.dialect import settings_for
from identity_graph.matching.model import MatchModel, load_model, save_model
from identity_graph.records import record_columns_from, records_sql
from identity_graph.rules import Rules

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from batch.steps.types import RelinkOptions, Snapshot, Target
    from identity_graph.config import GraphConfig
    from identity_graph.store.base import GraphStore

__all__ = ["SparkEngine", "log_to_file", "parse_conf", "spark_linker", "spark_session", "without_junk"]

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
STEPS = ("records", "model", "predict", "cluster")
MASTER_ENV = "SPARK_MASTER"
"""Default for `--spark-master` (Spark itself also reads `MASTER`, `PYSPARK_SUBMIT_ARGS` and
`$SPARK_CONF_DIR/spark-defaults.conf`)."""


def parse_conf(pairs: list[str] | None) -> dict[str, str]:
    """`k=v` strings (the CLI's `--conf`) as a dict.

    Raises:
        ValueError: a string has no `=` or an empty key.
    """
    out: dict[str, str] = {}
    for item in pairs or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--conf: expected KEY=VALUE, got {item!r}")
        out[key.strip()] = value
    return out


_LOG4J2 = """\
rootLogger.level = {level}
rootLogger.appenderRef.file.ref = file
appender.file.type = File
appender.file.name = file
appender.file.fileName = {path}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{{ISO8601}} %p %c{{1}}: %m%n
"""


def log_to_file(path: str | Path, level: str = "WARN") -> dict[str, str]:
    """Spark settings that send the driver's log to `path` instead of the console (written
    before the JVM starts; merge into `spark_session`'s `conf`)."""
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    props = path.with_suffix(".log4j2.properties")
    props.write_text(_LOG4J2.format(level=level, path=path))
    return {"spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{props}",
            "spark.ui.showConsoleProgress": "false"}


def spark_session(master: str | None = None, conf: Mapping[str, str] | None = None,
                  app_name: str = "identity-relink") -> SparkSession:
    """A SparkSession with the similarity UDFs (`batch.engines.udfs`) and Splink's UDF jar on
    `spark.jars` and registered (or the running session, which must have them on its jars).

    Args:
        master: a master URL (`local[2]`, `spark://host:7077`, `yarn`, `k8s://...`); default
            `$SPARK_MASTER`, else whatever spark-submit or Spark's defaults say.
        conf: Spark settings, applied over the defaults here.
    """
    from pyspark.sql import SparkSession
    from splink.backends.spark import similarity_jar_location

    conf = dict(conf or {})
    # the rules run in Python workers (applyInPandas): by default this interpreter, which has
    # this package (on a cluster, set PYSPARK_PYTHON to the executors' environment)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    master = master or os.environ.get(MASTER_ENV)
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    jars = [j for j in conf.pop("spark.jars", "").split(",") if j]
    builder = builder.config("spark.jars", ",".join([udf_jar(), similarity_jar_location(), *jars]))
    for k, v in conf.items():
        builder = builder.config(k, v)
    session = builder.getOrCreate()
    register_udfs(session)
    return session


@dataclass
class SparkEngine:
    """Records, training and prediction on Spark; see the module docstring.

    Args:
        spark: the session (`spark_session()`); the caller owns it.
        checkpoint_dir: where steps leave their output and the manifest (a local or shared
            path; on a cluster every executor must reach it).
        partitions: shuffle partitions for Splink's repartitioning (None: Spark's setting).
    """

    spark: SparkSession
    checkpoint_dir: str
    partitions: int | None = None
    name: str = "spark"
    seconds: dict[str, float] = field(default_factory=dict)
    _api: Any = None
    _manifest: dict[str, Any] = field(default_factory=dict)
    _fingerprint: str = ""
    _resumed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        from splink import SparkAPI

        Path(self.checkpoint_dir).mkdir(parents=True, exist_ok=True)
        if not self.spark.sparkContext.getCheckpointDir():
            self.spark.sparkContext.setCheckpointDir(str(Path(self.checkpoint_dir, "spark")))
        self._api = SparkAPI(spark_session=self.spark,
                             num_partitions_on_repartition=self.partitions)
        register_udfs(self.spark)

    # ---- checkpoint ------------------------------------------------------------------------

    def _path(self, *parts: str) -> str:
        return str(Path(self.checkpoint_dir, *parts))

    def _load_manifest(self, options: RelinkOptions) -> None:
        keys = {"model_path": options.model_path, "settings_path": options.settings_path,
                "seed": options.seed, "max_training_records": options.max_training_records,
                "max_label_pairs": options.max_label_pairs,
                "comparisons_per_record": options.comparisons_per_record}
        self._fingerprint = hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:16]
        try:
            manifest = json.loads(Path(self._path(MANIFEST)).read_text())
        except (OSError, ValueError):
            manifest = {}
        if manifest.get("fingerprint") != self._fingerprint:
            if manifest:
                log.info("spark relink: checkpoint is from other options; starting afresh")
            manifest = {"fingerprint": self._fingerprint, "steps": {}}
        elif manifest.get("steps"):
            log.info("spark relink: resuming after %s", ", ".join(manifest["steps"]))
        self._manifest = manifest

    def _done(self, step: str) -> dict[str, Any] | None:
        return self._manifest.get("steps", {}).get(step)

    def _mark(self, step: str, info: dict[str, Any]) -> None:
        self._manifest.setdefault("steps", {})[step] = info
        tmp = self._path(MANIFEST + ".tmp")
        Path(tmp).write_text(json.dumps(self._manifest, indent=1, default=str))
        os.replace(tmp, self._path(MANIFEST))

    @property
    def resumed_steps(self) -> list[str]:
        """Steps this run took from the checkpoint instead of running them."""
        return list(self._resumed)

    @contextmanager
    def _timed(self, step: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[step] = round(time.perf_counter() - t, 3)

    # ---- steps -----------------------------------------------------------------------------

    def snapshot(self, store: GraphStore, options: RelinkOptions) -> Snapshot:
        from batch.steps.snapshot import read_tables, snapshot_of
        from identity_graph.model import utcnow

        self._load_manifest(options)
        self._resumed = []
        with self._timed("snapshot"):
            taken_at = utcnow()
            tables, last_seq = read_tables(store, options.progress)
            for name in ("observations", "declared_kinds", "identifiers", "links", "customers",
                         "constraints"):
                self.spark.createDataFrame(_spark_safe(tables[name])).write.mode("overwrite") \
                    .parquet(self._path("snapshot", name))
                # prefixed where Splink registers a table of the same name (training: identifiers)
                view = name if name in ("observations", "declared_kinds") else f"snapshot_{name}"
                self.spark.read.parquet(self._path("snapshot", name)).createOrReplaceTempView(view)
            return snapshot_of(tables, last_seq, taken_at, store.name, options)

    def build_records(self, snap: Snapshot) -> int:
        with self._timed("records"):
            if not self._done("records"):
                names = [r[0] for r in self.spark.sql(
                    "SELECT DISTINCT attribute FROM observations WHERE value <> ''").collect()]
                columns = record_columns_from(names)
                self.spark.sql(records_sql(columns, "spark")).write.mode("overwrite") \
                    .parquet(self._path("records"))
                self._mark("records", {"columns": columns})
            else:
                self._resumed.append("records")
            records = self.spark.read.parquet(self._path("records"))
            records.createOrReplaceTempView("records")
            table = _to_arrow(records)
            snap.con.register("_in_records", table)
            snap.run("CREATE OR REPLACE TABLE records AS SELECT * FROM _in_records ORDER BY unique_id")
            snap.con.unregister("_in_records")
            return table.num_rows

    def get_model(self, snap: Snapshot, options: RelinkOptions) -> tuple[MatchModel, dict[str, Any]]:
        from batch.steps.model import explain_model, get_model

        with self._timed("model"):
            done = self._done("model")
            if done:
                self._resumed.append("model")
                model = load_model(self._path("model.json"))
                if done.get("junk_nulled"):
                    from batch.steps.blocking import null_junk

                    null_junk(snap, done["junk_nulled"])
                info = {**done["info"], "explain": explain_model(model)}
                return model, info
            # trains on the snapshot's sample (at most max_training_records) with the SparkAPI
            model, info = get_model(snap, options, db_api=self._api)
            save_model(model, self._path("model.json"))
            junk = {} if options.model_path else (model.metadata.get("junk_values") or {})
            self._mark("model", {"info": {k: v for k, v in info.items() if k != "explain"},
                                 "junk_nulled": junk})
            return model, info

    def predict(self, snap: Snapshot, model: MatchModel, config: GraphConfig,
                options: RelinkOptions) -> dict[str, Any]:
        from batch.steps.blocking import null_junk
        from batch.steps.predict import predict

        with self._timed("predict"):
            done = self._done("predict")
            if done:
                self._resumed.append("predict")
                null_junk(snap, model.metadata.get("junk_values") or {})
                self._collect_pairs(snap)
                return dict(done["info"])
            info = predict(snap, model, config, options, scorer=self._score)
            self._mark("predict", {"info": info})
            return info

    def _score(self, snap: Snapshot, model: MatchModel, settings: dict[str, Any],
               threshold: float, n_records: int) -> tuple[int, bool]:
        """Splink's prediction on Spark over `records` (junk values nulled, as on the driver)."""
        from batch.steps.blocking import count_pairs

        records = without_junk(self.spark.table("records"), model.metadata.get("junk_values") or {})
        spark_settings = settings_for(settings, "spark")
        linker = spark_linker(self._api, records, model, spark_settings | RETAIN)
        counted = count_pairs(linker, spark_settings, n_records)
        df = linker.inference.predict(threshold_match_probability=threshold)
        # each pair's evidence as the DuckDB engine writes it (`batch.evidence`)
        comparisons = waterfall_sql(model, (c.name for c in df.columns), "spark")
        pairs: DataFrame = self.spark.sql(f"""
            SELECT least(unique_id_l, unique_id_r) AS a, greatest(unique_id_l, unique_id_r) AS b,
                   match_probability AS probability, match_weight,
                   {comparisons} AS comparisons
            FROM {df.physical_name}""")
        pairs.write.mode("overwrite").parquet(self._path("pairs"))
        df.drop_table_from_database_and_remove_from_cache()
        self._collect_pairs(snap)
        return counted

    def _collect_pairs(self, snap: Snapshot) -> None:
        table = _to_arrow(self.spark.read.parquet(self._path("pairs")))
        snap.con.register("_in_pairs", table)
        snap.run("CREATE OR REPLACE TABLE pairs AS SELECT a, b, probability, match_weight, "
                 "comparisons FROM _in_pairs ORDER BY a, b")
        snap.con.unregister("_in_pairs")

    def cluster(self, snap: Snapshot, model: MatchModel, config: GraphConfig,
                options: RelinkOptions) -> Target:
        """The customer rules on Spark: the graph grouped into regions (connected components of
        proposals and shared customer ids, Splink's connected components on Spark), then
        `batch.regions.decide_region` per region on the executors (`applyInPandas`)."""
        from batch.steps.cluster import target_of

        with self._timed("cluster"):
            done = self._done("cluster")
            if done and done.get("last_seq") == snap.last_seq \
                    and done.get("link_threshold") == config.link_threshold:
                self._resumed.append("cluster")
            else:
                self._decide_regions(snap, model, config).write.mode("overwrite") \
                    .parquet(self._path("outcomes"))
                self._mark("cluster", {"link_threshold": config.link_threshold,
                                       "last_seq": snap.last_seq})
            rows = self.spark.read.parquet(self._path("outcomes")).toArrow()
            outcomes = [Outcome.from_json(t) for t in rows.column("outcome").to_pylist()]
            return target_of(snap, model, outcomes)

    def _decide_regions(self, snap: Snapshot, model: MatchModel, config: GraphConfig) -> DataFrame:
        from pyspark.sql import functions as F
        from splink.clustering import cluster_pairwise_predictions_at_threshold

        from batch.steps.cluster import identifying_columns, rescored, rules_with

        spark = self.spark
        tag = uuid.uuid4().hex[:8]
        ident = spark.table("snapshot_identifiers").select("key", "customer_id", "generic")
        keys = ident.select("key")

        def inside(df: DataFrame) -> DataFrame:  # proposals between the snapshot's identifiers
            return df.join(keys.withColumnRenamed("key", "a"), "a", "left_semi") \
                .join(keys.withColumnRenamed("key", "b"), "b", "left_semi")

        links = spark.table("snapshot_links")
        stored = inside(links.where(F.col("kind").isin(list(DETERMINISTIC)))
                        .select("link_id", "a", "b", "kind", "source"))
        # people's decisions (`batch.people`), a small table: broadcast to every join with it
        decided = F.broadcast(spark.table("snapshot_constraints").where(F.col("withdrawn_at").isNull())
                              .select("kind", F.least("a", "b").alias("a"), F.greatest("a", "b").alias("b"),
                                      "link_id"))
        must = decided.where(F.col("kind") == "must_link")
        # links a must-link fixes: proposed as they are, never re-scored
        fixed = inside(links.where(F.col("kind").isin("probable", "possible"))
                       .join(must.select("link_id").where(F.col("link_id").isNotNull()), "link_id",
                             "left_semi")
                       .select("link_id", "a", "b", "kind", "source"))
        pairs = spark.read.parquet(self._path("pairs")).select(
            "a", "b", "probability", "match_weight", "comparisons")
        extra = rescored(snap, model, config)
        if extra:
            pairs = pairs.unionByName(spark.createDataFrame(extra, pairs.schema))
        # no batch link of a must-linked pair is proposed beside the person's one
        pairs = inside(pairs).join(must.select("a", "b"), ["a", "b"], "left_anti")
        # regions: proposals and shared previous customer ids join identifiers
        owner = F.concat(F.lit("customer "), F.col("customer_id"))
        held = ident.where(F.col("customer_id").isNotNull())
        edges = stored.select(F.col("a").alias("node_l"), F.col("b").alias("node_r")) \
            .union(fixed.select(F.col("a").alias("node_l"), F.col("b").alias("node_r"))) \
            .union(pairs.select(F.col("a").alias("node_l"), F.col("b").alias("node_r"))) \
            .union(held.select(F.col("key").alias("node_l"), owner.alias("node_r")))
        nodes = keys.select(F.col("key").alias("node")).union(held.select(owner.alias("node")).distinct())
        cc = cluster_pairwise_predictions_at_threshold(
            self._api.register(nodes, table_name=f"region_nodes_{tag}"),
            self._api.register(edges, table_name=f"region_edges_{tag}"),
            self._api, "node", "node_l", "node_r")
        cc.as_spark_dataframe().select(F.col("node").alias("key"), F.col("cluster_id").alias("region")) \
            .write.mode("overwrite").parquet(self._path("regions"))
        cc.drop_table_from_database_and_remove_from_cache()
        region = spark.read.parquet(self._path("regions"))
        # each identifier with what the rules read of it
        identifying = identifying_columns(snap)
        person = [c for c in (*PERSON_ATTRIBUTES, *identifying) if c in spark.table("records").columns]
        records = without_junk(spark.table("records"), model.metadata.get("junk_values") or {})
        records = records.select(F.col("unique_id").alias("key"), *person)
        sighting = F.struct("observed_at", "source", "channel", "attribute", "value")
        sightings = spark.sql(sighting_rows_sql()).groupBy("key").agg(
            F.to_json(F.sort_array(F.collect_list(sighting))).alias("sightings"))
        created = spark.table("snapshot_customers").select(F.col("id").alias("customer_id"),
                                                  F.col("created_at").alias("created"))
        nodes_in = ident.join(region, "key").join(records, "key", "left") \
            .join(sightings, "key", "left").join(created, "customer_id", "left")
        def as_props(df: DataFrame, role: str) -> DataFrame:
            cols = {"link_id": "string", "kind": "string", "source": "string",
                    "probability": "double", "match_weight": "double", "comparisons": "string"}
            return df.select(F.lit(role).alias("role"), "a", "b", *(
                F.col(c) if c in df.columns else F.lit(None).cast(t).alias(c) for c, t in cols.items()))

        region_of_a = spark.read.parquet(self._path("regions")).withColumnRenamed("key", "a")
        props = as_props(stored, "stored").unionByName(as_props(fixed, "fixed")) \
            .unionByName(as_props(pairs, "scored")).join(region_of_a, "a")
        # each decision goes to its first end's region (a pair across regions can never join)
        props = props.unionByName(region_of_a.join(F.broadcast(as_props(decided, "decided")), "a"))
        decide_one = _region_decider(rules_with(Rules.of(config), identifying), person,
                                     model.version, config.link_threshold, snap.taken_at)
        buckets = 4 * int(self.partitions or spark.conf.get("spark.sql.shuffle.partitions"))
        bucket = (F.abs(F.hash("region")) % buckets).alias("bucket")
        return nodes_in.select("*", bucket).groupBy("bucket").cogroup(
            props.select("*", bucket).groupBy("bucket")).applyInPandas(
            decide_one, "region string, outcome string")

    def completed(self) -> None:
        """Everything is written: the checkpoint is no longer needed."""
        shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
        self._manifest = {}

    def close(self) -> None:
        return None


def _region_decider(rules: Rules, person: list[str], model_version: str, link_threshold: float,
                    now: datetime) -> Any:
    """The function `applyInPandas` runs per region: its rows as a `RegionInput`, decided.
    `person`: the record columns the rules compare (person attributes, identifying codes)."""

    def text(v: Any) -> str | None:
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)

    def one(region_id: str, nodes: list[Any], props: list[Any]) -> str:
        keys = sorted(r.key for r in nodes)
        inside = set(keys)
        previous, generic, records, created = {}, set(), {}, {}
        seen_rows = []
        for r in nodes:
            cid = text(r.customer_id)
            previous[r.key] = cid
            if r.generic is not None and r.generic == r.generic and bool(r.generic):
                generic.add(r.key)
            described = {a: text(getattr(r, a)) for a in person}
            if any(v is not None for v in described.values()):
                records[r.key] = described
            if cid is not None and text(r.created) is not None:
                created[cid] = _when(r.created)
            if text(r.sightings) is not None:
                seen_rows += [(r.key, s["attribute"], s["value"], s["source"], s["channel"],
                               s["observed_at"]) for s in json.loads(r.sightings)]
        stored, fixed, scored = [], [], []
        cannot, must = set(), set()
        for p in props:
            if p.role == "stored":
                stored.append((p.link_id, p.a, p.b, p.kind, p.source))
            elif p.role == "fixed":
                fixed.append((p.link_id, p.a, p.b, p.kind, p.source))
            elif p.role == "scored":
                scored.append((p.a, p.b, float(p.probability), float(p.match_weight),
                               text(p.comparisons)))
            elif p.b in inside:  # a person's decision whose two ends are in this region
                (cannot if p.kind == "cannot_link" else must).add((p.a, p.b))
        scored.sort(key=lambda t: (t[0], t[1]))
        region = RegionInput(keys, previous, generic, records, sightings_of(seen_rows), created,
                             stored, scored, cannot=cannot, must=must, fixed=fixed)
        return decide_region(region, rules, model_version, link_threshold, now).to_json()

    def run(nodes: Any, props: Any) -> Any:
        """One bucket of regions (a group per region would cost a pandas frame per customer)."""
        import pandas as pd

        by_region: dict[str, tuple[list[Any], list[Any]]] = {}
        for r in nodes.itertuples(index=False):
            by_region.setdefault(r.region, ([], []))[0].append(r)
        for p in props.itertuples(index=False):
            by_region.setdefault(p.region, ([], []))[1].append(p)
        ids = sorted(k for k, (n, _) in by_region.items() if n)
        return pd.DataFrame({"region": ids,
                             "outcome": [one(k, *by_region[k]) for k in ids]}, dtype=object)

    return run


def _when(text: str) -> datetime:
    """A snapshot timestamp as Spark holds it (`_spark_safe`'s text), as an aware datetime."""
    at = datetime.fromisoformat(str(text).replace(" ", "T"))
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def without_junk(records: DataFrame, junk: Mapping[str, list[str]]) -> DataFrame:
    """`records` with the model's junk values (`00000`) as NULL, as `batch.steps.blocking.null_junk`."""
    from pyspark.sql import functions as F

    for col, values in junk.items():
        if col in records.columns and values:
            records = records.withColumn(
                col, F.when(F.col(col).isin(list(values)), F.lit(None)).otherwise(F.col(col)))
    return records


def spark_linker(api: Any, records: DataFrame, model: MatchModel,
                 settings: dict[str, Any] | None = None) -> Any:
    """A Splink Linker on Spark over `records` with `model`'s parameters AND its TF tables
    (the Spark twin of `batch.steps.predict.linker_on`; settings are put in Spark's dialect)."""
    from splink import Linker

    tag = uuid.uuid4().hex[:8]  # Splink refuses a table name registered before on this api
    linker = Linker(api.register(records, table_name=f"records_in_{tag}"),
                    settings_for(settings or model.settings, "spark"), log_level=None)
    spark = api.spark
    for col, tf_table in model.term_frequencies.items():
        tf = pa.table({col: pa.array(list(tf_table), type=pa.string()),
                       f"tf_{col}": pa.array(list(tf_table.values()), type=pa.float64())})
        linker.table_management.register_term_frequency_lookup(
            api.register(spark.createDataFrame(tf), table_name=f"tf_lookup_{col}_{tag}"), col)
    return linker


def _spark_safe(table: pa.Table) -> pa.Table:
    """Spark reads no timezone-naive or nanosecond timestamps from Arrow safely: text instead
    (the relink only orders by them)."""
    cols = []
    for f in table.schema:
        col = table[f.name]
        if pa.types.is_timestamp(f.type) or pa.types.is_date(f.type):
            col = col.cast(pa.string())
        cols.append(col)
    return pa.table(cols, names=table.column_names)


def _to_arrow(df: DataFrame) -> pa.Table:
    return df.toArrow()
