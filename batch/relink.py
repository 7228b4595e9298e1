"""`identity-batch relink`: the nightly re-link of the whole graph with Splink on DuckDB.

The pipeline is six steps, each a function with its own progress bar:

    snapshot → model → predict → cluster → plan → apply

- **snapshot** copies identifiers, attributes, active links, customers and aliases into a private
  DuckDB database (in memory, or a temp file with `work_dir`). On SQLite the copy is read in one
  read transaction (WAL: beside a running server); on Neo4j it is repeated until the event log
  did not move while it was read.
- **model** loads a saved model (`--model`) or trains one (u by random sampling, m from the
  graph's verified/equivalent pairs, EM for the rest) and saves it as versioned JSON
  (`models/<version>.json`), the file the online engine's scorer loads.
- **predict** scores blocked pairs with Splink on DuckDB: `probable` at or above the link
  threshold, `possible` in the review band.
- **cluster** applies the customer rules (`identity_graph.rules.decide`) to the whole graph:
  every deterministic link (verified, equivalent, observed, from any source) and this run's
  scored pairs are proposed, strongest first; blocked values never link, a link over a per-type
  limit is refused (and removed when it was stored), a household bridge or junk value is marked
  generic, a probable link between clearly different people is kept only as `possible`.
  People's decisions (`batch.people`) hold: a cannot-linked pair is never linked and no
  component joins its two ends (the weakest link between them is not made); a must-link is a
  fixed edge, and its link is never re-scored away.
  Components map to stable ids by largest overlap, each id once; new ids are random.
- **plan** diffs the target against the snapshot, per *unit*: the new customers that share any old
  customer, so that a merge or split is always written whole.
- **apply** writes units in batches, one `store.apply` (one transaction) per batch, under the
  engine's `write_lock` when run in-process. A unit whose identifiers changed since the snapshot
  is skipped (left to the next run). Old batch links of earlier model versions are removed in
  the same change set as the new links of the same customers.

Re-running after a kill converges: links have deterministic ids, already-applied units diff to
nothing (their ids are in the store now), and the rest plans as before. A run on unchanged data
with the same model writes nothing.

Embedded store while `identity-server` runs: the SQLite file is in WAL mode, so the CLI reads
its snapshot beside the server; its batches wait for the server's write transactions (and the
server's online writes for them). Units the server changed meanwhile are skipped. The relink
can also run inside the server: `run_relink(graph, ...)` takes the server's `IdentityGraph`,
applies through its store under its `write_lock` (online calls interleave between batches,
never inside one), and is meant to be exposed as an admin RPC. On Neo4j the CLI and the server
can run side by side.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import signal
import tempfile
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
from tqdm import tqdm

from batch.components import labels as component_labels
from batch.evidence import RETAIN, waterfall_sql
from batch.people import label_pairs as people_labels
from batch.people import must_links, people
from batch.regions import (
    DETERMINISTIC,
    Outcome,
    RegionInput,
    decide_region,
    link_from,
    merged,
    person_records,
    sighting_rows_sql,
    sightings_of,
)
from identity_graph.attributes import BUILTIN_KINDS, Kind
from identity_graph.components import UnionFind
from identity_graph.config import GraphConfig
from identity_graph.guardrails import PERSON_ATTRIBUTES, Violation
from identity_graph.matching.model import MatchModel, load_model, save_model
from identity_graph.model import (
    ChangeSet,
    Customer,
    Event,
    Link,
    LinkKind,
    utcnow,
)
from identity_graph.records import record_columns_from, records_sql
from identity_graph.regionlock import RegionLocks
from identity_graph.rules import Rules
from identity_graph.store.base import GraphStore

if TYPE_CHECKING:
    from batch.engines import RelinkEngine
    from identity_graph.engine import IdentityGraph

log = logging.getLogger(__name__)

ACTOR = "identity-batch"
SOURCE = "batch"
MERGING = tuple(k.label for k in LinkKind if k.merges)
FAIL_ENV = "IDENTITY_BATCH_FAIL_AFTER_BATCHES"
LOCKED_BATCH = 2_000
"""Default identifiers per change set under a write lock (inside the server)."""


class SnapshotInUse(RuntimeError):
    """The embedded store is held by another process (normally the running identity-server)."""


@dataclass
class RelinkOptions:
    """What one relink run does. Defaults suit a nightly run."""

    model_path: str | None = None
    """Load this model instead of training one."""
    settings_path: str | None = None
    """JSON merged over the default Splink settings (training only)."""
    models_dir: str | None = "models"
    """Where a trained model is saved as `<version>.json`; None: not saved."""
    seed: int = 42
    max_training_records: int = 300_000
    max_label_pairs: int = 50_000
    min_label_pairs_for_m: int = 50
    """Fewer verified/equivalent pairs than this teach m nothing reliable: EM estimates it."""
    dry_run: bool = False
    batch_size: int | None = None
    """Identifiers per change set (whole units, so a batch may be larger); None: see
    `batch_size_for` (2,000 inside the server, larger standalone)."""
    apply_workers: int | None = None
    """Batches written at once; None: see `apply_workers_for` (2 on Neo4j standalone, else 1)."""
    fail_after_batches: int | None = None
    """Testing: kill this process (SIGKILL) after this many applied batches."""
    labels_path: str | None = None
    """Ground truth (parquet: key, cluster[, household]) for the quality section."""
    work_dir: str | None = None
    """A directory for the snapshot database; default in memory."""
    progress: bool = True
    samples: int = 10
    giant_cluster: int = 200
    """Warn about customers with more identifiers than this."""
    threshold_from_labels: bool = True
    """Choose the link threshold from labelled pairs when there are enough (`choose_threshold`);
    False: always the configured one."""
    precision_floor: float = 0.99
    """With labelled pairs, the link threshold is the one of best F1 at this precision or more."""
    min_label_pairs: int = 20
    """Fewer labelled true pairs than this: the configured link threshold is kept."""
    comparisons_per_record: float = 30.0
    """Comparison budget of prediction: blocking rules are kept, most specific first, while the
    pairs they make stay within this many per record (DESIGN "cost is bounded")."""
    charts: bool = True


@dataclass
class StepTimes:
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - t, 3)


def _bar(desc: str, total: int | None, enabled: bool, unit: str = "it") -> tqdm:
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, leave=False,
                dynamic_ncols=True)


# ==== snapshot =====================================================================================


@dataclass
class Snapshot:
    con: duckdb.DuckDBPyConnection
    last_seq: int
    taken_at: datetime
    backend: str
    path: str | None = None

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        return self.con.execute(sql, params).fetchall()[0][0]

    def run(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """A statement run to its end (DuckDB 2 keeps an unread result pending otherwise)."""
        self.con.execute(sql, params)
        self.con.complete()

    def close(self) -> None:
        self.con.close()
        if self.path:
            for p in (self.path, self.path + ".wal"):
                if os.path.exists(p):
                    os.remove(p)


_SNAPSHOT_SQL = {
    "identifiers": "SELECT key, type, value, first_seen, last_seen, customer_id, generic "
                   "FROM identifiers",
    "observations": "SELECT key, attribute, value, source, channel, observed_at FROM observations",
    "links": "SELECT link_id, a, b, kind, source, model_version, probability, match_weight, "
             "revision FROM links WHERE removed_at IS NULL",
    "customers": "SELECT id, created_at FROM customers",
    "aliases": "SELECT alias, customer_id FROM aliases",
    # kinds that ingest mappings declared for custom attributes (batch.ingest.KINDS_EVENT)
    "declared_kinds": "SELECT seq, payload FROM events WHERE type = 'attribute_kinds'",
    # refusals already in the event log: each is written once, not again every night
    "logged_violations": "SELECT seq, payload FROM events WHERE type = 'violation'",
    # people's decisions, withdrawn ones too (batch.people), and when earlier runs wrote
    "constraints": "SELECT constraint_id, kind, a, b, origin, link_id, created_at, withdrawn_at "
                   "FROM constraints",
    "relinks": "SELECT seq, at FROM events WHERE type = 'relink'",
}
_EVENTS_OF = {"declared_kinds": "attribute_kinds", "logged_violations": "violation", "relinks": "relink"}


def read_tables(store: GraphStore, progress: bool) -> tuple[dict[str, pa.Table], int]:
    """The tables the relink needs, consistent with each other, and the last event seq: one read
    transaction on SQLite (WAL: beside a running server), re-read until stable on Neo4j."""
    with store.database.snapshot() as snap:
        tables, last_seq = snap.tables, snap.last_seq
    out = {}
    for name, sql in _SNAPSHOT_SQL.items():
        cols = sql.split("SELECT ", 1)[1].split(" FROM")[0].split(", ")
        if name in _EVENTS_OF:
            t = tables["events"].filter(pa.compute.equal(tables["events"]["type"], _EVENTS_OF[name]))
        else:
            t = tables[name]
        if name == "links":
            t = t.filter(pa.compute.is_null(t["removed_at"]))
        out[name] = t.select(cols)
    return out, last_seq


def snapshot(store: GraphStore, options: RelinkOptions) -> Snapshot:
    """Step 1: a consistent copy of the graph in a private DuckDB database."""
    bar = _bar("snapshot", len(_SNAPSHOT_SQL) + 1, options.progress, "table")
    taken_at = utcnow()
    tables, last_seq = read_tables(store, options.progress)
    bar.update(1)
    snap = snapshot_of(tables, last_seq, taken_at, store.name, options, bar)
    bar.close()
    return snap


def snapshot_of(tables: dict[str, pa.Table], last_seq: int, taken_at: datetime, backend: str,
                options: RelinkOptions, bar: tqdm | None = None) -> Snapshot:
    """The snapshot's tables (as `read_tables` gives them) in a private DuckDB database."""
    path = None
    if options.work_dir:
        Path(options.work_dir).mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(suffix=".duckdb", dir=options.work_dir)
        os.close(fd)
        os.remove(path)
    snap = Snapshot(duckdb.connect(path or ":memory:"), last_seq, taken_at, backend, path)
    snap.run("SET TimeZone = 'UTC'")
    for name, table in tables.items():
        snap.con.register(f"_in_{name}", table)
        snap.run(f"CREATE TABLE {name} AS SELECT * FROM _in_{name}")
        snap.con.unregister(f"_in_{name}")
        if bar is not None:
            bar.update(1)
    return snap


def record_columns(snap: Snapshot) -> list[str]:
    """The built-in attributes (NULL where never observed: the model then leaves them out and
    says so) and every other attribute observed in the graph that can be a record column."""
    return record_columns_from(a for (a,) in snap.con.execute(
        "SELECT DISTINCT attribute FROM observations WHERE value <> ''").fetchall())


def attribute_kinds(snap: Snapshot, columns: Sequence[str]) -> dict[str, Kind]:
    """Each record column's kind: declared at ingest (latest declaration wins), else built-in,
    else text."""
    declared: dict[str, str] = {}
    for (payload,) in snap.con.execute("SELECT payload FROM declared_kinds ORDER BY seq").fetchall():
        try:
            declared.update(json.loads(payload).get("kinds", {}))
        except (ValueError, AttributeError):
            continue
    out = {}
    for c in columns:
        try:
            out[c] = Kind(declared[c]) if c in declared else BUILTIN_KINDS.get(c, Kind.TEXT)
        except ValueError:
            out[c] = BUILTIN_KINDS.get(c, Kind.TEXT)
    return out


def build_records(snap: Snapshot) -> int:
    """One Splink record per identifier that carries attributes, with a column for EVERY
    attribute the graph holds (`identity_graph.records.records_sql`, the SQL the Spark engine and
    the online engine run too). Returns the number of records."""
    snap.run(f"CREATE OR REPLACE TABLE records AS {records_sql(record_columns(snap), 'duckdb')}")
    return int(snap.scalar("SELECT count(*) FROM records"))


# ==== model ========================================================================================


def _label_pairs(snap: Snapshot, limit: int) -> list[tuple[str, str]]:
    """Pairs of attribute-carrying identifiers joined by verified/equivalent links (labels for m)."""
    con = snap.con
    nodes = con.execute("""
        SELECT key FROM (SELECT a AS key FROM links WHERE kind IN ('verified', 'equivalent')
                         UNION SELECT b FROM links WHERE kind IN ('verified', 'equivalent'))
        ORDER BY key""").fetchall()
    if not nodes:
        return []
    index = {k: i for i, (k,) in enumerate(nodes)}
    edges = con.execute("SELECT a, b FROM links WHERE kind IN ('verified', 'equivalent')").fetchall()
    lab = component_labels(len(index), [index[a] for a, _ in edges], [index[b] for _, b in edges])
    has_record = {k for (k,) in con.execute(
        "SELECT unique_id FROM records WHERE unique_id IN (SELECT a FROM links "
        "WHERE kind IN ('verified','equivalent') UNION SELECT b FROM links "
        "WHERE kind IN ('verified','equivalent'))").fetchall()}
    groups: dict[int, list[str]] = defaultdict(list)
    for (k,), g in zip(nodes, lab, strict=True):
        if k in has_record:
            groups[int(g)].append(k)
    pairs = []
    for members in groups.values():
        for other in members[1:]:
            pairs.append((members[0], other))
    pairs.sort(key=lambda p: hashlib.blake2b(f"{p[0]}\x1f{p[1]}".encode(), digest_size=8).digest())
    return pairs[:limit]


def load_settings_override(path: str | None, base: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """`base` (default: the default model's settings) with a deployment's Splink settings JSON
    merged over it (top-level keys): its comparisons may use any record column."""
    if not path:
        return None
    override = json.loads(Path(path).read_text())
    if not isinstance(override, dict):
        raise ValueError(f"{path}: Splink settings must be a JSON object")
    if base is None:
        from identity_graph.matching.settings import default_settings_dict

        base = default_settings_dict()
    settings = dict(base)
    settings.update(override)
    return settings


def _rule_sql(rule: Sequence[str]) -> dict[str, Any]:
    from splink import block_on

    return {"blocking_rule": block_on(*rule).get_blocking_rule("duckdb").blocking_rule_sql,
            "sql_dialect": "duckdb"}


def null_junk(snap: Snapshot, junk: dict[str, list[str]]) -> int:
    """Junk values (`00000`, a shop's email) as NULL in `records`: they say nothing about who a
    record is, and would make a blocking rule a cross-product. Returns the cells changed."""
    cols = {d[0] for d in snap.con.execute("SELECT * FROM records LIMIT 0").description}
    changed = 0
    for col, values in junk.items():
        if col in cols and values:
            n = snap.con.execute(f'SELECT count(*) FROM records WHERE "{col}" IN '
                                 f'(SELECT unnest(?::VARCHAR[]))', [list(values)]).fetchall()[0][0]
            snap.run(f'UPDATE records SET "{col}" = NULL WHERE "{col}" IN '
                     f'(SELECT unnest(?::VARCHAR[]))', [list(values)])
            changed += int(n)
    return changed


def select_rules(snap: Snapshot, candidates: Sequence[Sequence[str]], options: RelinkOptions,
                 tighten: Sequence[str] = ()) -> tuple[list[tuple[str, ...]], list[dict[str, Any]], int]:
    """The candidate blocking rules that fit the comparison budget on `records` (tightened
    with `tighten` where that makes them fit), with each rule's count and the budget."""
    from identity_graph.matching.builder import select_blocking_rules

    n = int(snap.scalar("SELECT count(*) FROM records"))
    budget = max(int(options.comparisons_per_record * n), 1)
    counts = select_blocking_rules(snap.con, "records", candidates, budget, tighten)
    return [c.rule for c in counts if c.kept], [c.as_dict() for c in counts], budget


def get_model(snap: Snapshot, options: RelinkOptions,
              db_api: Any = None) -> tuple[MatchModel, dict[str, Any]]:
    """Step 2: the given model, or one trained on this snapshot and saved as versioned JSON.

    The default model is built from the columns present (`identity_graph.matching.builder`);
    its prediction rules are those that fit the comparison budget on this snapshot. `db_api`:
    the Splink engine that trains (default DuckDB; the Spark engine passes its `SparkAPI`).
    """
    bar = _bar("model", 1, options.progress)
    info: dict[str, Any] = {}
    if options.model_path:
        model = load_model(options.model_path)
        info["source"] = str(options.model_path)
    else:
        from identity_graph.matching.training import plan_for_records, train_model, untrainable

        n = int(snap.scalar("SELECT count(*) FROM records"))
        limit = min(n, options.max_training_records)
        table = snap.con.sql(
            f"SELECT * FROM records ORDER BY hash(unique_id || '{int(options.seed)}'), unique_id "
            f"LIMIT {int(limit)}").to_arrow_table()
        kinds = attribute_kinds(snap, [c for c in table.column_names if c != "unique_id"])
        plan = plan_for_records(table, kinds)
        null_junk(snap, plan.junk)
        plan.blocking_rules, rule_counts, budget = select_rules(snap, plan.blocking_rules, options,
                                                                plan.tighten)
        sampled = set(table.column("unique_id").to_pylist())
        positive, negative = people_labels(snap)  # people's decisions: labels too
        labels = [p for p in [*positive, *_label_pairs(snap, options.max_label_pairs * 4)]
                  if p[0] in sampled and p[1] in sampled][: options.max_label_pairs]
        info["people_labels"] = {"positive": len(positive), "negative": len(negative)}
        if len(labels) < options.min_label_pairs_for_m:
            info["labels_not_used"] = (f"{len(labels)} verified/equivalent pairs, fewer than "
                                       f"{options.min_label_pairs_for_m}: m from EM alone")
            labels = []
        base = None
        if options.settings_path:
            base = plan.settings().get_settings("duckdb").as_dict()
        settings = load_settings_override(options.settings_path, base)
        try:
            model = train_model(table, options.seed, labels or None, settings=settings, plan=plan,
                                db_api=db_api,
                                metadata={"trained_on": "identity graph snapshot",
                                          "settings_override": options.settings_path,
                                          "kinds": {c: k.value for c, k in kinds.items()}})
        except (ValueError, ArithmeticError) as e:
            raise untrainable(n, e) from e
        info.update(source="trained", training_records=table.num_rows, label_pairs=len(labels),
                    blocking_rule_counts_on_training=rule_counts, comparison_budget=budget)
        if options.models_dir and not options.dry_run:
            out = Path(options.models_dir)
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"{model.version}.json"
            save_model(model, path)
            info["saved_to"] = str(path)
    bar.update(1)
    bar.close()
    info["version"] = model.version
    info["explain"] = explain_model(model)
    return model, info


def explain_text(explain: dict[str, Any]) -> str:
    """`explain_model` for a terminal: what is compared and how, what was left out and why."""
    lines = ["compared:"]
    kinds = {c["comparison"]: c for c in explain.get("compared_columns", [])}
    for c in explain["comparisons"]:
        col = kinds.get(c["comparison"], {})
        what = ", ".join(col.get("columns", [])) or c["comparison"]
        tf = f"  (term frequencies: {', '.join(c['term_frequencies'])})" if c["term_frequencies"] else ""
        lines.append(f"  {c['comparison']:<16}{col.get('kind', ''):<13}{what}{tf}")
        lines.append(f"  {'':<16}levels: {' > '.join(c['levels'])}")
    if explain.get("left_out"):
        lines.append("left out:")
        lines += [f"  {c}: {why}" for c, why in explain["left_out"].items()]
    if explain.get("junk_values"):
        lines.append("junk values (treated as missing):")
        lines += [f"  {c}: {', '.join(v[:5])}" for c, v in explain["junk_values"].items()]
    lines.append("blocking rules (prediction):")
    lines += [f"  {r}" for r in explain["blocking_rules"]]
    if explain.get("em_rules"):
        lines.append("EM blocked on: " + "; ".join(explain["em_rules"]))
    for n in explain.get("training_notes", []):
        lines.append(f"note: {n}")
    return "\n".join(lines)


def explain_model(model: MatchModel) -> dict[str, Any]:
    """What the model compares and how, what it left out, and how it blocks (for people)."""
    meta = model.metadata
    comparisons = []
    for cc in model.settings.get("comparisons", []):
        levels = [lv.get("label_for_charts") or lv["sql_condition"]
                  for lv in cc["comparison_levels"] if not lv.get("is_null_level")]
        comparisons.append({"comparison": cc["output_column_name"],
                            "description": cc.get("comparison_description", ""),
                            "levels": levels,
                            "term_frequencies": sorted({lv["tf_adjustment_column"]
                                                        for lv in cc["comparison_levels"]
                                                        if lv.get("tf_adjustment_column")})})
    return {
        "comparisons": comparisons,
        "compared_columns": meta.get("compared", []),
        "left_out": meta.get("left_out", {}),
        "junk_values": meta.get("junk_values", {}),
        "blocking_rules": [br["blocking_rule"] if isinstance(br, dict) else br
                           for br in model.settings.get("blocking_rules_to_generate_predictions", [])],
        "em_rules": meta.get("em_rules", []),
        "training_notes": meta.get("training_notes", []),
        "splink_warnings": meta.get("splink_warnings", []),
    }


# ==== predict ======================================================================================


def linker_on(con: duckdb.DuckDBPyConnection, model: MatchModel, table: str = "records",
              settings: dict[str, Any] | None = None) -> Any:
    """A Splink Linker over `table` in `con` with `model`'s parameters and TF tables.

    Same as `identity_graph.matching.training.linker_for_model`, but reads a DuckDB table in
    place instead of a list of dicts (no per-row Python at a million records).
    """
    from splink import DuckDBAPI, Linker

    db_api = DuckDBAPI(connection=con)
    linker = Linker(db_api.register(table), settings or model.settings, log_level=None)
    for col, tf_table in model.term_frequencies.items():
        tf = pa.table({
            col: pa.array(list(tf_table), type=pa.string()),
            f"tf_{col}": pa.array(list(tf_table.values()), type=pa.float64()),
        })
        linker.table_management.register_term_frequency_lookup(db_api.register(tf), col)
    return linker


PairScorer = Callable[[Snapshot, MatchModel, dict[str, Any], float, int], tuple[int, bool]]
"""Scores the blocked pairs of `records` with (snapshot, model, settings, threshold, n records)
into table `pairs` (a, b, probability, match_weight, comparisons) and returns (pairs scored,
exact count)."""


def predict(snap: Snapshot, model: MatchModel, config: GraphConfig,
            options: RelinkOptions, scorer: PairScorer | None = None) -> dict[str, Any]:
    """Step 3: scored pairs at or above the review threshold, in table `pairs`.

    The blocking rules are chosen here, within the comparison budget; `scorer` runs Splink
    (default `score_on_duckdb`; the Spark engine passes its own)."""
    bar = _bar("predict", 2, options.progress)
    n_records = int(snap.scalar("SELECT count(*) FROM records"))
    info: dict[str, Any] = {"records": n_records}
    if n_records < 2:
        snap.run("CREATE OR REPLACE TABLE pairs (a VARCHAR, b VARCHAR, probability DOUBLE, "
                         "match_weight DOUBLE, comparisons VARCHAR)")
        info.update(pairs_scored=0, pairs_kept=0)
        bar.close()
        return info
    info["junk_values_nulled"] = null_junk(snap, model.metadata.get("junk_values") or {})
    settings = dict(model.settings)
    candidates = _candidate_rules(model)
    if candidates is None:
        info["blocking"] = {"note": "the model's blocking rules are not equalities; used as given"}
    else:
        kept, counts, budget = select_rules(snap, candidates, options,
                                            model.metadata.get("tighten_blocking_with") or ())
        settings["blocking_rules_to_generate_predictions"] = [_rule_sql(r) for r in kept]
        info["blocking"] = {
            "budget": budget, "comparisons_per_record": options.comparisons_per_record,
            "rules": counts,
            "comparisons_before": sum(c["comparisons"] for c in counts
                                      if not c["reason"].startswith("tightened")),
            "comparisons_after": sum(c["comparisons"] for c in counts if c["kept"]),
        }
        dropped = [c["rule"] for c in counts if not c["kept"]]
        if dropped:
            log.info("relink: blocking rules over the comparison budget left out: %s", dropped)
    if not settings.get("blocking_rules_to_generate_predictions"):
        # no rule fits the budget: compare nothing rather than everything
        snap.run("CREATE OR REPLACE TABLE pairs (a VARCHAR, b VARCHAR, probability DOUBLE, "
                 "match_weight DOUBLE, comparisons VARCHAR)")
        info.update(pairs_scored=0, pairs_scored_exact=True, pairs_kept=0)
        bar.close()
        return info
    info["pairs_scored"], info["pairs_scored_exact"] = (scorer or score_on_duckdb)(
        snap, model, settings, config.review_threshold, n_records)
    bar.update(1)
    info["pairs_kept"] = int(snap.scalar("SELECT count(*) FROM pairs"))
    bar.update(1)
    bar.close()
    return info


def score_on_duckdb(snap: Snapshot, model: MatchModel, settings: dict[str, Any], threshold: float,
                    n_records: int) -> tuple[int, bool]:
    """Splink on the snapshot's DuckDB: the pairs at or above `threshold` into table `pairs`."""
    linker = linker_on(snap.con, model, settings=settings | RETAIN)
    counted = count_pairs(linker, settings, n_records)
    df = linker.inference.predict(threshold_match_probability=threshold)
    comparisons = waterfall_sql(model, (c.name for c in df.columns))
    snap.run(f"""
        CREATE OR REPLACE TABLE pairs AS
        SELECT least(unique_id_l, unique_id_r) AS a, greatest(unique_id_l, unique_id_r) AS b,
               match_probability AS probability, match_weight,
               {comparisons}::VARCHAR AS comparisons
        FROM {df.physical_name} ORDER BY a, b""")
    df.drop_table_from_database_and_remove_from_cache()
    return counted


def _candidate_rules(model: MatchModel) -> list[tuple[str, ...]] | None:
    """The model's prediction rules, then the builder's other candidates, as column expressions;
    None when a rule of the model is not a conjunction of equalities."""
    from identity_graph.matching.scorer import UnsupportedModel, blocking_rule_parts

    out: list[tuple[str, ...]] = []
    try:
        for br in model.settings.get("blocking_rules_to_generate_predictions", []):
            out.append(tuple(blocking_rule_parts(br["blocking_rule"] if isinstance(br, dict) else br)))
    except UnsupportedModel:
        return None
    for r in model.metadata.get("candidate_blocking_rules", []):
        if tuple(r) not in out:
            out.append(tuple(r))
    return out


def count_pairs(linker: Any, settings: dict[str, Any], n_records: int) -> tuple[int, bool]:
    """Pairs the blocking rules generate (exact up to 200k records, else from a 10% sample)."""
    try:
        from splink.blocking_analysis import count_comparisons_from_blocking_rules
    except ImportError:  # pragma: no cover
        return -1, False
    rules = [br["blocking_rule"] if isinstance(br, dict) else br
             for br in settings.get("blocking_rules_to_generate_predictions", [])]
    if not rules:
        return 0, True
    exact = n_records <= 200_000
    sdf = linker._input_tables_dict[next(iter(linker._input_tables_dict))]
    recs = count_comparisons_from_blocking_rules(
        sdf, blocking_rules=rules, link_type="dedupe_only",
        record_sample_proportion=1.0 if exact else 0.1)
    last = recs[-1]
    value = last["cumulative_comparison_count"] if isinstance(last, dict) else \
        last.cumulative_comparison_count
    return int(value), exact


def _labelled_truth(snap: Snapshot, options: RelinkOptions) -> tuple[dict[str, str], str]:
    """key -> true person, from `--labels`, else from the graph's verified/equivalent links
    (identifiers in one such component are one person; two components, two people)."""
    if options.labels_path:
        from batch.quality import read_labels

        truth, _ = read_labels(options.labels_path)
        return {k: str(v) for k, v in truth.items() if v is not None}, "labels file"
    out: dict[str, str] = {}
    pairs = _label_pairs(snap, 1_000_000)
    if not pairs:
        return out, "verified/equivalent links"
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for a, b in pairs:  # _label_pairs gives star pairs per component: one root each
        parent[b] = a
        parent.setdefault(a, a)
    for k in parent:
        out[k] = root(k)
    return out, "verified/equivalent links"


def choose_threshold(snap: Snapshot, config: GraphConfig,
                     options: RelinkOptions) -> tuple[float, dict[str, Any]]:
    """Step 3b: the link threshold. With enough labelled pairs, the threshold of best pairwise
    F1 whose precision is at least `options.precision_floor` (never below the review
    threshold: pairs under it were not kept); otherwise the configured one."""
    truth, source = _labelled_truth(snap, options) if options.threshold_from_labels else ({}, "off")
    positive, negative = people_labels(snap) if options.threshold_from_labels else ([], [])
    decided = {**dict.fromkeys(positive, True), **dict.fromkeys(negative, False)}
    info: dict[str, Any] = {"default": config.link_threshold, "chosen": config.link_threshold,
                            "source": "configured", "labels": source,
                            "precision_floor": options.precision_floor,
                            "people_labels": {"positive": len(positive), "negative": len(negative)}}
    if not truth and not decided:
        return config.link_threshold, info
    t = pa.table({"key": pa.array(list(truth), pa.string()),
                  "person": pa.array(list(truth.values()), pa.string())})
    snap.con.register("_truth", t)
    try:
        total = int(snap.scalar(
            "SELECT coalesce(sum(n * (n - 1) // 2), 0) FROM (SELECT count(*) AS n FROM _truth "
            "JOIN records ON records.unique_id = _truth.key GROUP BY person)"))
        found = {(a, b): (p, same) for a, b, p, same in snap.con.execute("""
            SELECT p.a, p.b, p.probability, ta.person = tb.person AS same
            FROM pairs p JOIN _truth ta ON ta.key = p.a JOIN _truth tb ON tb.key = p.b""").fetchall()}
        if decided:  # a person's judgement of a scored pair wins over the components'
            scored = dict(((a, b), p) for a, b, p in snap.con.execute(
                "SELECT a, b, probability FROM pairs").fetchall())
            total += sum(1 for pair in positive if not found.get(pair, (0, False))[1])
            found.update({pair: (scored[pair], same) for pair, same in decided.items() if pair in scored})
        rows = sorted(found.values(), key=lambda r: -r[0])
    finally:
        snap.con.unregister("_truth")
    info["labelled_true_pairs"] = total
    if total < options.min_label_pairs:
        info["note"] = f"{total} labelled true pairs, fewer than {options.min_label_pairs}"
        return config.link_threshold, info
    curve = []
    tp = fp = 0
    best: tuple[float, float] | None = None
    i = 0
    while i < len(rows):
        p = rows[i][0]
        while i < len(rows) and rows[i][0] == p:  # every pair at this probability
            tp += rows[i][1]
            fp += not rows[i][1]
            i += 1
        precision, recall = tp / (tp + fp), tp / total
        f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
        curve.append((p, precision, recall, f1))
        if precision >= options.precision_floor and (best is None or f1 > best[1]):
            best = (p, f1)
    grid = (0.999, 0.995, 0.99, 0.98, 0.95, 0.9, 0.85, 0.8)
    info["curve"] = [
        {"threshold": g, "precision": round(pr, 6), "recall": round(rc, 6), "f1": round(f, 6)}
        for g in grid if g >= config.review_threshold
        for (_, pr, rc, f) in [next((c for c in reversed(curve) if c[0] >= g), (g, 1.0, 0.0, 0.0))]]
    if best is None:
        info["note"] = f"no threshold reaches precision {options.precision_floor}"
        return config.link_threshold, info
    chosen = max(min(best[0], 1.0), config.review_threshold)
    info.update(chosen=chosen, source="labelled pairs", f1_at_chosen=round(best[1], 6))
    return chosen, info


# ==== cluster ======================================================================================


@dataclass
class Target:
    """The state the relink wants, derived only from the snapshot and the model."""

    keys: list[str]
    previous: list[str | None]
    component: list[int]
    """node -> component number (components numbered by their smallest key)."""
    ids: dict[int, str]
    """component -> customer id"""
    created: set[str]
    merges: dict[str, list[str]]
    """survivor -> retired ids (each retired id becomes an alias of the survivor)"""
    splits: dict[str, list[str]]
    """original id -> ids of the other parts"""
    links: dict[str, Link]
    """every batch link the target holds, by id"""
    generic_new: list[str]
    violations: list[Violation]
    sizes: Counter[int]
    removed: dict[str, str] = field(default_factory=dict)
    """link id -> reason: stored links the target drops (refused by the rules, or a probable or
    possible link of another source, re-scored here as a batch link)"""


def identifying_columns(snap: Snapshot) -> tuple[str, ...]:
    """Record columns declared of kind `code` (a national ID): `Similarity.identifying`."""
    have = [d[0] for d in snap.con.execute("SELECT * FROM records LIMIT 0").description]
    kinds = attribute_kinds(snap, [c for c in have if c != "unique_id"])
    return tuple(c for c, k in kinds.items() if k is Kind.CODE)


def rules_with(rules: Rules, identifying: Sequence[str]) -> Rules:
    """`rules` whose similarity also compares the identifying columns (a national ID)."""
    return dataclasses.replace(rules, similarity=dataclasses.replace(
        rules.similarity, identifying=tuple(identifying)))


def _profiles(snap: Snapshot, identifying: Sequence[str] = ()
              ) -> tuple[dict[str, dict[str, str | None]], dict[str, list[dict[str, str]]]]:
    """Each identifier's record (the `records` table: `identity_graph.records`) as a person's
    description, with the identifying columns, and the sightings of those whose own
    observations name more than one person (a family phone, a junk value), as the rules
    compare them (`batch.regions`)."""
    have = {d[0] for d in snap.con.execute("SELECT * FROM records LIMIT 0").description}
    cols = [c for c in (*PERSON_ATTRIBUTES, *identifying) if c in have]
    records = person_records(snap.con.execute(
        f"SELECT unique_id, {', '.join(cols)} FROM records").fetchall(), cols) if cols else {}
    return records, sightings_of(snap.con.execute(sighting_rows_sql()).fetchall())


def rescored(snap: Snapshot, model: MatchModel, config: GraphConfig) -> list[tuple]:
    """Probable and possible links of other sources (online Resolve) whose pair prediction did
    not produce, scored here under this run's model: (a, b, probability, match weight,
    comparisons JSON), those at or above the review threshold."""
    from identity_graph.engine import waterfall
    from identity_graph.matching.scorer import OnlineScorer, UnsupportedModel

    missing = snap.con.execute(f"""
        SELECT DISTINCT l.a, l.b FROM links l
        WHERE l.kind IN ('probable', 'possible') AND l.source <> '{SOURCE}'
          AND NOT EXISTS (SELECT 1 FROM pairs p WHERE p.a = l.a AND p.b = l.b)
          AND l.link_id NOT IN (SELECT link_id FROM constraints
                                WHERE kind = 'must_link' AND withdrawn_at IS NULL)
        ORDER BY 1, 2""").fetchall()
    if not missing:
        return []
    try:
        scorer = OnlineScorer(model)
    except UnsupportedModel:
        log.warning("relink: the model cannot score single pairs; %d online links left to expire",
                    len(missing))
        return []
    keys = sorted({k for pair in missing for k in pair})
    table = snap.con.execute("SELECT * FROM records WHERE unique_id IN (SELECT unnest(?::VARCHAR[]))",
                             [keys]).to_arrow_table().to_pylist()
    records = {r["unique_id"]: r for r in table}
    out = []
    for a, b in missing:
        if a in records and b in records:
            score = scorer.score_pair(records[a], records[b])
            if score.match_probability >= config.review_threshold:
                comps = json.dumps(waterfall(score))
                out.append((a, b, float(score.match_probability), float(score.match_weight), comps))
    return out


def cluster(snap: Snapshot, model: MatchModel, config: GraphConfig,
            options: RelinkOptions) -> Target:
    """Step 4: the rules (`identity_graph.rules.decide`) over the whole graph: the target.

    Every active merging link of a deterministic kind (verified, equivalent, observed: online,
    ingested or trusted) is proposed again, so the per-type limits, household and junk rules
    hold whatever wrote it; every probable and possible link, whatever its source, is replaced
    by this run's scores under this run's model, except a link people fixed (`batch.people`).
    The whole graph is one region here (`batch.regions.decide_region`); the Spark engine
    decides it region by region.
    """
    con = snap.con
    bar = _bar("cluster", 3, options.progress)
    rows = con.execute("SELECT key, customer_id, generic FROM identifiers ORDER BY key").fetchall()
    identifying = identifying_columns(snap)
    records, seen = _profiles(snap, identifying)
    kinds = ", ".join(f"'{k}'" for k in DETERMINISTIC)
    stored = con.execute(f"SELECT link_id, a, b, kind, source FROM links WHERE kind IN ({kinds})").fetchall()
    scored = con.execute("SELECT a, b, probability, match_weight, comparisons FROM pairs").fetchall()
    scored += rescored(snap, model, config)
    who = people(snap)
    region = RegionInput(
        keys=[r[0] for r in rows], previous={r[0]: r[1] for r in rows},
        generic={r[0] for r in rows if r[2]}, records=records, sightings=seen,
        created_at=dict(con.execute("SELECT id, created_at FROM customers").fetchall()),
        stored=stored, scored=scored, cannot=who.cannot, must=who.must,
        fixed=must_links(snap, who))
    bar.update(1)
    outcome = decide_region(region, rules_with(Rules.of(config), identifying), model.version,
                            config.link_threshold, snap.taken_at)
    bar.update(1)
    target = target_of(snap, model, [outcome])
    bar.update(1)
    bar.close()
    return target


def target_of(snap: Snapshot, model: MatchModel, outcomes: Sequence[Outcome]) -> Target:
    """The target from the decisions on regions that cover the snapshot's identifiers."""
    con = snap.con
    rows = con.execute("SELECT key, customer_id FROM identifiers ORDER BY key").fetchall()
    keys = [r[0] for r in rows]
    previous = [r[1] for r in rows]
    index = {k: i for i, k in enumerate(keys)}
    who = people(snap)
    o = merged(outcomes)
    made = (link_from(r, model.version, snap.taken_at) for r in o["links"])
    links = {lk.id: lk for lk in made}
    removed = dict(o["removed"])
    for lid, kind in con.execute(
            f"SELECT link_id, kind FROM links WHERE kind IN ('probable', 'possible') "
            f"AND source <> '{SOURCE}'").fetchall():
        if lid not in who.must_link_ids:  # fixed by a person: never re-scored away
            removed[lid] = f"{kind} link re-scored by relink with model {model.version}"
    comps = o["components"]
    covered = sum(len(c) for c in comps)
    if covered != len(keys):
        raise RuntimeError(f"the regions decided cover {covered} identifiers, the snapshot holds {len(keys)}")
    component = [0] * len(keys)
    ids: dict[int, str] = {}
    for comp, cid in zip(comps, o["ids"], strict=True):
        label = min(index[k] for k in comp)
        ids[label] = cid
        for k in comp:
            component[index[k]] = label
    return Target(keys, previous, component, ids, set(o["created"]), dict(o["merges"]),
                  dict(o["splits"]), links, sorted(o["generic"]),
                  [Violation(*v) for v in o["violations"]], Counter(len(c) for c in comps), removed)


# ==== plan =========================================================================================


@dataclass
class Unit:
    """New customers that share old ones: written together, in one change set."""

    comps: list[int]
    keys: list[int]
    changes: ChangeSet
    expected: dict[str, str | None]
    """key -> customer id the snapshot saw; the unit is skipped if the store differs."""


@dataclass
class Plan:
    units: list[Unit]
    links_added: int = 0
    links_removed: int = 0
    assignments: int = 0
    customers_created: int = 0
    merges: list[dict[str, Any]] = field(default_factory=list)
    splits: list[dict[str, Any]] = field(default_factory=list)
    generic: int = 0
    violations_logged: int = 0
    """violation events this run writes (refusals not in the event log yet)"""


def plan(snap: Snapshot, target: Target, model: MatchModel, options: RelinkOptions) -> Plan:
    """Step 5: the difference between the snapshot and the target, as units of change."""
    bar = _bar("plan", 3, options.progress)
    keys, comp, ids = target.keys, target.component, target.ids
    index = {k: i for i, k in enumerate(keys)}
    # units: components joined by a shared previous customer id
    uf = UnionFind(set(comp))
    find = uf.find
    first_holder: dict[str, int] = {}
    for i, cid in enumerate(target.previous):
        if cid is None:
            continue
        c = comp[i]
        uf.union(first_holder.setdefault(cid, c), c)
    bar.update(1)

    unit_of_comp = {}
    now = snap.taken_at
    changes: dict[int, ChangeSet] = defaultdict(ChangeSet)
    # assignments
    for i, k in enumerate(keys):
        cid = ids[comp[i]]
        if target.previous[i] != cid:
            changes[find(comp[i])].assignments[k] = cid
    # links: add the target's new ones, remove active batch links it does not hold
    existing: dict[str, tuple[str, str]] = {}
    revised: dict[str, str] = {}
    """first revision's id -> the active revision's id (a batch link linked again after an unlink)"""
    for lid, a, b, kind, mv, rev in snap.con.execute(
            f"SELECT link_id, a, b, kind, model_version, revision FROM links "
            f"WHERE source = '{SOURCE}'").fetchall():
        existing[lid] = (a, b)
        if rev:
            revised[Link(a, b, LinkKind.parse(kind), source=SOURCE, model_version=mv).id] = lid
    kept = {revised[lid] for lid in target.links if lid in revised}
    n_added = n_removed = 0
    for lid, lk in target.links.items():
        if lid not in existing and revised.get(lid) not in existing:
            changes[find(comp[index[lk.a]])].links_added.append(lk)
            n_added += 1
    reason = f"replaced by relink with model {model.version}"
    ends = dict(existing)
    if target.removed:
        ends.update({lid: (a, b) for lid, a, b in snap.con.execute(
            "SELECT link_id, a, b FROM links WHERE link_id IN (SELECT unnest(?::VARCHAR[]))",
            [sorted(target.removed)]).fetchall()})
    dropped = {lid: reason for lid in existing if lid not in target.links and lid not in kept}
    dropped.update(target.removed)
    for lid, why in sorted(dropped.items()):
        a, b = ends[lid]
        i = index.get(a, index.get(b))
        if i is None:
            continue
        changes[find(comp[i])].links_removed.append((lid, now, ACTOR, why))
        n_removed += 1
    bar.update(1)
    comp_of_id = {cid: c for c, cid in ids.items()}
    for cid in sorted(target.created):
        changes[find(comp_of_id[cid])].customers_created.append(Customer(cid, now))
    out = Plan([], links_added=n_added, links_removed=n_removed)
    for survivor, retired in sorted(target.merges.items()):
        cs = changes[find(comp_of_id[survivor])]
        payload = {"survivor": survivor, "retired": retired, "actor": ACTOR,
                   "model_version": model.version}
        cs.events.append(Event("merge", payload, survivor, now))
        for r in retired:
            cs.aliases[r] = survivor
            cs.events.append(Event("alias", {"alias": r, "customer_id": survivor}, survivor, now))
        out.merges.append(payload)
    for original, others in sorted(target.splits.items()):
        keeper = comp_of_id.get(original)
        cs = changes[find(keeper if keeper is not None else comp_of_id[others[0]])]
        payload = {"original": original, "new_ids": others, "kept": original in comp_of_id,
                   "actor": ACTOR, "model_version": model.version}
        cs.events.append(Event("split", payload, original, now))
        out.splits.append(payload)
    for k in target.generic_new:
        cs = changes[find(comp[index[k]])]
        cs.generic[k] = True
        cs.events.append(Event("generic", {"key": k, "generic": True, "actor": ACTOR},
                               ids[comp[index[k]]], now))
    logged = _logged_violations(snap)
    for v in target.violations:
        if (v.kind in ("blocked", "limit", "chain", "generic", "junk") and v.key in index
                and (v.kind, v.key, v.other) not in logged):
            logged.add((v.kind, v.key, v.other))
            out.violations_logged += 1
            changes[find(comp[index[v.key]])].events.append(Event(
                "violation", {"kind": v.kind, "key": v.key, "other": v.other, "reason": v.reason,
                              "actor": ACTOR}, "", now))
    for cid in sorted(target.created):
        changes[find(comp_of_id[cid])].events.append(
            Event("customer_created", {"customer_id": cid, "actor": ACTOR}, cid, now))
    # keys of each unit, for the conflict check; only units with real changes
    dirty = {u for u, cs in changes.items() if _substantive(cs)}
    unit_keys: dict[int, list[int]] = defaultdict(list)
    for i in range(len(keys)):
        u = find(comp[i])
        if u in dirty:
            unit_keys[u].append(i)
    for u in sorted(dirty, key=lambda u: keys[unit_keys[u][0]] if unit_keys[u] else ""):
        cs = changes[u]
        members = unit_keys[u]
        unit_of_comp[u] = u
        out.units.append(Unit(sorted({comp[i] for i in members}), members, cs,
                              {keys[i]: target.previous[i] for i in members}))
        out.assignments += len(cs.assignments)
    out.customers_created = len(target.created)
    out.generic = len(target.generic_new)
    bar.update(1)
    bar.close()
    return out


def _substantive(cs: ChangeSet) -> bool:
    """A change set that writes anything, a violation event alone included: a refusal that
    changes no state (a pair refused by a limit) is still reported, once (`_logged_violations`)."""
    return any((cs.links_added, cs.links_removed, cs.customers_created, cs.assignments,
                cs.aliases, cs.generic, cs.events))


def _logged_violations(snap: Snapshot) -> set[tuple[str, str, str]]:
    """(kind, key, other) of the violations the event log holds already."""
    out = set()
    for (payload,) in snap.con.execute("SELECT payload FROM logged_violations").fetchall():
        try:
            p = json.loads(payload)
            out.add((p["kind"], p["key"], p.get("other", "")))
        except (ValueError, KeyError, TypeError):
            continue
    return out


# ==== apply ========================================================================================


@dataclass
class ApplyResult:
    batches: int = 0
    units_applied: int = 0
    units_skipped: int = 0
    skipped_keys: list[str] = field(default_factory=list)
    events: int = 0


def batch_size_for(options: RelinkOptions, store: GraphStore, write_lock: Any) -> int:
    """Identifiers per change set: `options.batch_size`, or by default `LOCKED_BATCH` under a
    write lock (inside the server, where online calls wait for the batch being written), else
    the database's standalone size (`Database.bulk_batch`): each transaction has a fixed cost (on
    DuckDB, the assignment UPDATE joins the whole identifiers table), so a standalone run
    writes fewer, larger ones."""
    if options.batch_size:
        return options.batch_size
    if write_lock is not None:
        return LOCKED_BATCH
    return store.database.bulk_batch


def apply_workers_for(options: RelinkOptions, store: GraphStore, write_lock: Any) -> int:
    """Batches in flight at once: `options.apply_workers`, or by default 2 on Neo4j without a
    write lock (the server commits one batch while this process prepares and sends the next),
    else 1."""
    if options.apply_workers:
        return options.apply_workers
    return store.database.apply_workers if write_lock is None else 1


def apply(store: GraphStore, the_plan: Plan, options: RelinkOptions,
          write_lock: Any = None, summary: Event | None = None) -> ApplyResult:
    """Step 6: write the plan in batches of whole units, each batch one transaction.

    Batches hold disjoint units, so with several workers they commit in any order; the run's
    summary event is written after all of them.
    """
    result = ApplyResult()
    fail_after = options.fail_after_batches
    if fail_after is None and os.environ.get(FAIL_ENV):
        fail_after = int(os.environ[FAIL_ENV])
    bar = _bar("apply", len(the_plan.units), options.progress, "unit")
    lock = write_lock if write_lock is not None else nullcontext()
    limit = batch_size_for(options, store, write_lock)
    workers = apply_workers_for(options, store, write_lock)

    def batches() -> Iterator[list[Unit]]:
        pending: list[Unit] = []
        size = 0
        for unit in the_plan.units:
            pending.append(unit)
            size += max(len(unit.keys), 1)
            if size >= limit:
                yield pending
                pending, size = [], 0
        if pending:
            yield pending

    def write(pending: list[Unit]) -> ApplyResult:
        with lock:
            return store.database.run_transaction(lambda: write_locked(pending))

    def write_locked(pending: list[Unit]) -> ApplyResult:
        """One batch in one transaction that first locks its customers (as an online write
        does: `identity_graph.regionlock`), so servers on the same database never interleave
        with it, and checks under those locks which units changed since the snapshot."""
        out = ApplyResult(batches=1)
        expected = {k: v for u in pending for k, v in u.expected.items()}
        current = {k: n.customer_id
                   for k, n in RegionLocks(store.database).cover_keys(store, expected).items()}
        ok = []
        for u in pending:
            if all(k in current and current[k] == v for k, v in u.expected.items()):
                ok.append(u)
            else:
                out.units_skipped += 1
                out.skipped_keys.extend(sorted(u.expected)[:3])
        cs = _combine([u.changes for u in ok])
        cs.links_added = store.revise(cs.links_added)  # a pair unlinked since: a new revision
        out.events += len(store.apply(cs)) if cs else 0
        out.units_applied += len(ok)
        return out

    def done(pending: list[Unit], out: ApplyResult) -> None:
        result.batches += out.batches
        result.units_applied += out.units_applied
        result.units_skipped += out.units_skipped
        result.skipped_keys.extend(out.skipped_keys)
        result.events += out.events
        bar.update(len(pending))
        if fail_after is not None and result.batches >= fail_after:
            log.error("relink: killing itself after %d batches (testing)", result.batches)
            os.kill(os.getpid(), signal.SIGKILL)

    if workers <= 1:
        for pending in batches():
            done(pending, write(pending))
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="relink-apply") as pool:
            in_flight: deque[tuple[list[Unit], Future[ApplyResult]]] = deque()
            for pending in batches():
                if len(in_flight) >= workers:
                    first, fut = in_flight.popleft()
                    done(first, fut.result())
                in_flight.append((pending, pool.submit(write, pending)))
            while in_flight:
                first, fut = in_flight.popleft()
                done(first, fut.result())
    if summary is not None:
        with lock:
            result.events += len(store.apply(ChangeSet(events=[summary])))
    bar.close()
    return result


def _combine(sets: Sequence[ChangeSet]) -> ChangeSet:
    out = ChangeSet()
    for cs in sets:
        out.links_added.extend(cs.links_added)
        out.links_removed.extend(cs.links_removed)
        out.customers_created.extend(cs.customers_created)
        out.assignments.update(cs.assignments)
        out.aliases.update(cs.aliases)
        out.generic.update(cs.generic)
        out.events.extend(cs.events)
    return out


# ==== the whole run ================================================================================


@dataclass
class RelinkResult:
    report: dict[str, Any]
    target: Target | None = None
    plan: Plan | None = None
    model: MatchModel | None = None
    """the model the run applied (or, dry, would apply): `--save-model` saves it as is"""


def relink(
    store: GraphStore,
    config: GraphConfig | None = None,
    options: RelinkOptions | None = None,
    *,
    write_lock: Any = None,
    on_step: Callable[[str], None] | None = None,
    engine: RelinkEngine | None = None,
) -> RelinkResult:
    """Runs the whole pipeline on `store` and returns the run report (a JSON-able dict).

    Args:
        store: the graph store (either backend).
        config: thresholds, blocked values and limits.
        options: see `RelinkOptions`.
        write_lock: held around each batch write (the engine's `write_lock` in-process).
        on_step: called with each step's name as it starts (for logs or an admin RPC).
        engine: where snapshot, records, model and predict run (`batch.engines`; default
            DuckDB in this process, or `batch.engines.spark.SparkEngine`).
    Returns:
        The report (see `batch.report`), with the target and plan for callers and tests.
    """
    from batch.people import report as people_report
    from batch.report import build_report

    config = config or GraphConfig()
    options = options or RelinkOptions()
    times = StepTimes()
    started = utcnow()
    run_id = "relink-" + started.strftime("%Y%m%dT%H%M%SZ")

    def step(name: str) -> Any:
        if on_step:
            on_step(name)
        return times.step(name)

    if engine is None:
        from batch.engines import DuckDBEngine

        engine = DuckDBEngine()
    steps = _bar("relink", 6, options.progress, "step")
    with step("snapshot"):
        snap = engine.snapshot(store, options)
        n_records = engine.build_records(snap)
    steps.update(1)
    try:
        with step("model"):
            model, model_info = engine.get_model(snap, options)
        steps.update(1)
        with step("predict"):
            predict_info = engine.predict(snap, model, config, options)
        steps.update(1)
        threshold, predict_info["threshold"] = choose_threshold(snap, config, options)
        with step("cluster"):
            target = engine.cluster(snap, model, dataclasses.replace(config, link_threshold=threshold),
                                    options)
        steps.update(1)
        with step("plan"):
            the_plan = plan(snap, target, model, options)
        steps.update(1)
        applied = ApplyResult()
        summary_counts = {
            "run_id": run_id, "model_version": model.version, "actor": ACTOR,
            "links_added": the_plan.links_added, "links_removed": the_plan.links_removed,
            "assignments": the_plan.assignments, "merges": len(the_plan.merges),
            "splits": len(the_plan.splits), "customers_created": the_plan.customers_created,
        }
        with step("apply"):
            if not options.dry_run:
                summary = Event("relink", summary_counts, "", utcnow()) if the_plan.units else None
                applied = apply(store, the_plan, options, write_lock, summary)
        engine.completed()
        steps.update(1)
        steps.close()
        with step("report"):
            report = build_report(
                snap=snap, model=model, model_info=model_info, predict_info=predict_info,
                target=target, plan=the_plan, applied=applied, config=config, options=options,
                run_id=run_id, started=started, times=times.seconds, n_records=n_records,
                backend=store.name)
            report["people"] = people_report(snap, target)
            report["engine"] = engine.name
    finally:
        snap.close()
    return RelinkResult(report, target, the_plan, model)


def run_relink(graph: IdentityGraph, options: RelinkOptions | None = None,
               on_step: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The relink inside a running process (the identity-server): the single-writer path.

    Applies through `graph.store` under `graph.write_lock`, so online Resolve calls interleave
    between batches and see each customer either before or after its change, never half of it.
    An admin RPC can call this in a worker thread and return (or stream) the report.

    Returns:
        The run report.
    """
    return relink(graph.store, graph.config, options, write_lock=graph.write_lock,
                  on_step=on_step).report


__all__ = [
    "ApplyResult",
    "Plan",
    "RelinkOptions",
    "RelinkResult",
    "SnapshotInUse",
    "Target",
    "apply",
    "apply_workers_for",
    "batch_size_for",
    "build_records",
    "cluster",
    "get_model",
    "linker_on",
    "plan",
    "predict",
    "relink",
    "run_relink",
    "snapshot",
]
