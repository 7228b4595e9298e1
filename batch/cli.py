"""`identity-batch`: ingest history, relink the whole graph nightly, export tables for analysts.

    identity-batch ingest FILE [--mapping MAP.toml | --identifier COL=TYPE ... --attribute COL[=NAME] ...]
    identity-batch relink [--model MODEL.json | --settings SETTINGS.json] [--dry-run] [--report-dir DIR]
                          [--engine duckdb|spark [--spark-master URL] [--conf K=V ...]]
    identity-batch export --out DIR
    identity-batch explain A B [--json]
    identity-batch graph CUSTOMER|IDENTIFIER [--format html|graphml|dot] [--out FILE]
    identity-batch graph --all [--kind KIND ...] [--type TYPE ...] --format graphml --out FILE
    identity-batch copy --to-neo4j URI [--replace]     (load an embedded graph into Neo4j to explore)
    identity-batch renormalise [--dry-run] [--json]   (stored keys against today's normalisers)
    identity-batch generate --customers N [--labels-out labels.parquet]   (synthetic data, for trials)
    identity-batch review list|accept|reject|constraints|withdraw ...   (people's decisions)

Stores: `--db PATH` (embedded SQLite, default ./identity.db) or `--neo4j-uri` (defaults from
NEO4J_URI / NEO4J_USER / NEO4J_PASSWORD). Exit codes: 0 ok, 2 bad usage or input, 4 ingest rejected
more than --max-reject-rate of its rows, 1 anything else. The SQLite file may be open in a running
identity-server meanwhile (WAL: export and the relink's snapshot read beside it; writes wait for
the server's transaction).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from tqdm import tqdm

from batch import review as review_cli
from identity_graph.config import ConfigError, GraphConfig
from identity_graph.errors import IdentityGraphError, InvalidArgument, NotFound
from identity_graph.store import GraphStore, choose_store, open_store

log = logging.getLogger("identity-batch")

DEFAULT_DB = "identity.db"


def _store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help=f"embedded SQLite file (default {DEFAULT_DB}, or $NEO4J_URI when set)")
    p.add_argument("--neo4j-uri", help="use Neo4j at this Bolt URI instead of a SQLite file")
    p.add_argument("--neo4j-user", default=os.environ.get("NEO4J_USER", "neo4j"))
    p.add_argument("--neo4j-password", default=os.environ.get("NEO4J_PASSWORD", ""))
    p.add_argument("--config", help="settings TOML; its [graph] table (thresholds, blocked values, "
                                    "limits, trusted sources) applies (see config.example.toml)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _open(args: argparse.Namespace) -> GraphStore:
    db, uri = choose_store(args.db, args.neo4j_uri, DEFAULT_DB)
    if uri:
        return open_store(neo4j_uri=uri, neo4j_user=args.neo4j_user,
                          neo4j_password=args.neo4j_password)
    args.db = db
    return open_store(db)


def _config(args: argparse.Namespace) -> GraphConfig:
    if not args.config:
        return GraphConfig()
    try:
        return GraphConfig.from_file(args.config)
    except ConfigError as e:
        raise ConfigError(f"{args.config}: {e}") from e


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="identity-batch", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    ing = sub.add_parser("ingest", help="load a CSV or parquet file of source records")
    ing.add_argument("file")
    _store_args(ing)
    ing.add_argument("--mapping", help="column mapping file (TOML or JSON; see batch.ingest.Mapping_)")
    ing.add_argument("--source", help="a constant source name for every row")
    ing.add_argument("--source-column", help="column with the source name (default 'source')")
    ing.add_argument("--record-id-column", help="column with the record id (default 'record_id')")
    ing.add_argument("--identifier", action="append", default=[], metavar="COL=TYPE",
                     help="an identifier column and its type (repeat)")
    ing.add_argument("--attribute", action="append", default=[], metavar="COL[=NAME][:KIND]",
                     help="an attribute column, optionally renamed, optionally of a declared kind "
                     "(person_name, date, code, address, postcode, city, text, exact) (repeat)")
    ing.add_argument("--delimiter", help="CSV field separator, e.g. ';' or 'tab' (default: detected)")
    ing.add_argument("--no-detect-columns", action="store_true",
                     help="map only the columns named by flags or --mapping (by default columns named "
                     "like an identifier type or a standard attribute are mapped too)")
    ing.add_argument("--observed-at-column", help="column of ISO observation timestamps")
    ing.add_argument("--observed-at", help="observation time for every row (ISO; default file mtime)")
    ing.add_argument("--date-format", action="append", default=[],
                     help="strptime format for date_of_birth, tried before ISO (repeat)")
    ing.add_argument("--region", help="default phone region, e.g. GB")
    ing.add_argument("--rejects", help="rejects CSV (default FILE.rejects.csv)")
    ing.add_argument("--max-reject-rate", type=float, default=None, metavar="SHARE",
                     help="exit 4 when more than this share of rows has a bad value or is rejected "
                     "(default 0.05); the good rows are loaded either way")

    rl = sub.add_parser("relink", help="re-link the whole graph with Splink and recompute customers")
    _store_args(rl)
    rl.add_argument("--model", help="use this saved model JSON instead of training; 'starter' is the "
                    "bundled starter model (for data sets too small to train on)")
    rl.add_argument("--settings", help="Splink settings JSON merged over the defaults (training)")
    rl.add_argument("--models-dir", default="models", help="where a trained model is saved")
    rl.add_argument("--seed", type=int, default=42)
    rl.add_argument("--dry-run", action="store_true", help="compute and report; write nothing")
    rl.add_argument("--save-model", action="store_true",
                    help="with --dry-run: save the previewed model in --models-dir, so that "
                    "`relink --model` applies exactly what was previewed")
    rl.add_argument("--explain-model", action="store_true",
                    help="print what the model compares and how (training it if no --model), "
                    "what it leaves out and why, and its blocking rules; write nothing")
    rl.add_argument("--configured-threshold", action="store_true",
                    help="use the configured link threshold even when labelled pairs (--labels, "
                    "verified links) could choose one")
    rl.add_argument("--precision-floor", type=float, default=0.99,
                    help="a threshold chosen from labelled pairs keeps at least this precision")
    rl.add_argument("--comparisons-per-record", type=float, default=30.0,
                    help="comparison budget of prediction, per record (default 30)")
    rl.add_argument("--batch-size", type=int, default=None,
                    help="identifiers per transaction (default 50000 on SQLite, 10000 on Neo4j)")
    rl.add_argument("--apply-workers", type=int, default=None,
                    help="batches written at once (default 2 on Neo4j, 1 on SQLite)")
    rl.add_argument("--report-dir", default="reports", help="where the JSON and HTML reports go")
    rl.add_argument("--labels", help="ground truth parquet (key, cluster[, household]) for P/R/F1")
    rl.add_argument("--work-dir", help="directory for the snapshot database (default in memory)")
    rl.add_argument("--no-charts", action="store_true")
    rl.add_argument("--fail-after-batches", type=int, help=argparse.SUPPRESS)
    rl.add_argument("--server", help="run the relink inside a running identity-server at HOST:PORT "
                    "(online reads then never see half a batch); paths are the server's")
    rl.add_argument("--reload-scorer", action="store_true",
                    help="with --server: score online with the run's model afterwards")
    rl.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb",
                    help="where records, training and prediction run (default duckdb; spark needs "
                         "`pip install .[spark]`)")
    rl.add_argument("--spark-master", help="Spark master URL (local[4], spark://host:7077, yarn, "
                    "k8s://...; default $SPARK_MASTER, else spark-submit's or Spark's default)")
    rl.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                    help="a Spark setting, as spark-submit's --conf (repeatable)")
    rl.add_argument("--checkpoint-dir", default="relink-checkpoint",
                    help="--engine spark: each step's output and manifest; a failed run started "
                         "again with the same options resumes from its last completed step")
    rl.add_argument("--spark-log", default=None,
                    help="--engine spark: Spark's log file (default <checkpoint-dir>.log)")

    ex = sub.add_parser("export", help="write parquet tables for analysts")
    _store_args(ex)
    ex.add_argument("--out", required=True)

    exp = sub.add_parser("explain", help="why two identifiers are (or are not) one customer")
    _store_args(exp)
    exp.add_argument("a", help="identifier key type:value")
    exp.add_argument("b", help="identifier key type:value")
    exp.add_argument("--json", action="store_true", help="JSON instead of text")

    gr = sub.add_parser("graph", help="a picture of one customer's graph, or the whole graph")
    _store_args(gr)
    gr.add_argument("subject", nargs="?", help="customer id (cus_…) or identifier key type:value")
    gr.add_argument("--all", action="store_true", help="the whole graph (with --kind/--type filters)")
    gr.add_argument("--kind", action="append", default=[],
                    help="with --all: only links of this kind (repeat)")
    gr.add_argument("--type", action="append", default=[],
                    help="with --all: only identifiers of this type")
    gr.add_argument("--format", choices=("html", "graphml", "dot"), default="html")
    gr.add_argument("--out", help="output file (default <subject>.<format>, or graph.<format> with --all)")

    cp = sub.add_parser("copy", help="load the whole graph into a Neo4j database, e.g. to explore it")
    _store_args(cp)
    cp.add_argument("--to-neo4j", required=True, metavar="URI", help="target Bolt URI")
    cp.add_argument("--to-user", default=os.environ.get("NEO4J_USER", "neo4j"))
    cp.add_argument("--to-password", default=os.environ.get("NEO4J_PASSWORD", ""))
    cp.add_argument("--replace", action="store_true", help="wipe the target database first")
    rn = sub.add_parser("renormalise", help="re-normalise stored identifier keys with today's rules "
                        "(once after an upgrade that changes a normaliser)")
    _store_args(rn)
    rn.add_argument("--dry-run", action="store_true", help="report what would change; write nothing")
    rn.add_argument("--json", action="store_true", help="print the report as JSON")

    review_cli.add_parser(sub, _store_args)

    gen = sub.add_parser("generate", help="load generated customers with ground truth (for trials)")
    _store_args(gen)
    gen.add_argument("--customers", type=int, required=True)
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--labels-out", default="labels.parquet")
    return p


def _cmd_ingest(args: argparse.Namespace) -> int:
    from batch.ingest import MAX_REJECT_RATE, Mapping_, ingest, load_mapping
    from identity_graph.attributes import parse_kind

    m = load_mapping(args.mapping) if args.mapping else Mapping_()
    if args.source:
        m.source = args.source
    if args.source_column:
        m.source_column = args.source_column
    if args.record_id_column:
        m.record_id_column = args.record_id_column
    for spec in args.identifier:
        col, sep, type_ = spec.partition("=")
        if not sep:
            raise InvalidArgument("--identifier", f"expected COL=TYPE, got {spec!r}")
        m.identifiers[col] = type_
    for spec in args.attribute:
        spec, colon, kind = spec.partition(":")
        col, _, name = spec.partition("=")
        m.attributes[col] = name or col
        if colon:
            m.kinds[name or col] = parse_kind(kind, "--attribute").value
    if args.delimiter:
        m.delimiter = "\t" if args.delimiter.lower() in ("tab", "\\t") else args.delimiter
    if args.no_detect_columns:
        m.detect_columns = False
    if args.observed_at_column:
        m.observed_at_column = args.observed_at_column
    if args.date_format:
        m.date_formats = list(args.date_format)
    if args.region:
        m.default_region = args.region
    observed_at = None
    if args.observed_at:
        observed_at = datetime.fromisoformat(args.observed_at)
        observed_at = observed_at.replace(tzinfo=UTC) if observed_at.tzinfo is None else observed_at
    with _open(args) as store:
        result = ingest(store, args.file, m, config=_config(args), rejects=args.rejects,
                        observed_at=observed_at, progress=not args.quiet,
                        max_reject_rate=(MAX_REJECT_RATE if args.max_reject_rate is None
                                         else args.max_reject_rate))
    print(json.dumps(result.as_dict(), indent=1))
    if result.rejected or result.values_dropped:
        print(f"{result.rejected} row(s) rejected, {result.values_dropped} value(s) dropped: "
              f"see {result.rejects_file}", file=sys.stderr)
    if result.too_many_rejects:
        print(f"identity-batch: {result.reject_rate:.1%} of rows had a bad value or were rejected, "
              f"more than --max-reject-rate {result.max_reject_rate:.1%}", file=sys.stderr)
        return 4
    return 0


def _relink_via_server(args: argparse.Namespace) -> int:
    import grpc

    from stubs.identity.v1 import batch_pb2, batch_pb2_grpc

    request = batch_pb2.RelinkRequest(
        model_path=args.model or "", settings_path=args.settings or "", models_dir=args.models_dir,
        dry_run=args.dry_run, report_dir=args.report_dir, seed=args.seed,
        reload_scorer=args.reload_scorer)
    with grpc.insecure_channel(args.server) as channel:
        stub = batch_pb2_grpc.BatchServiceStub(channel)
        with tqdm(total=7, desc="relink (server)", unit="step", disable=args.quiet) as bar:
            for progress in stub.Relink(request):
                if progress.step == "done":
                    bar.update(bar.total - bar.n)
                    bar.close()
                    print(progress.summary)
                    print(f"  report          {progress.report_html_path} (on the server)")
                else:
                    bar.set_postfix_str(progress.step)
                    bar.update(1)
    return 0


@contextmanager
def _engine(args: argparse.Namespace) -> Iterator[Any]:
    """The relink engine `--engine` names (a Spark session for `spark`, stopped afterwards)."""
    if args.engine != "spark":
        yield None
        return
    try:
        from batch.engines.spark import SparkEngine, log_to_file, parse_conf, spark_session
    except ImportError as e:
        raise InvalidArgument("engine", f"--engine spark needs PySpark: pip install '.[spark]' ({e})") from e
    conf = parse_conf(args.conf)
    log_file = args.spark_log or str(Path(args.checkpoint_dir).resolve()) + ".log"
    conf = {**log_to_file(log_file), **conf}
    session = spark_session(args.spark_master, conf)
    try:
        yield SparkEngine(session, args.checkpoint_dir)
    finally:
        session.stop()


def _cmd_relink(args: argparse.Namespace) -> int:
    from batch.relink import RelinkOptions, relink

    if args.server:
        return _relink_via_server(args)
    from batch.report import summary_text, write_report

    if args.model == "starter":
        from identity_graph.matching.model import STARTER_MODEL_PATH

        args.model = str(STARTER_MODEL_PATH)
    options = RelinkOptions(
        model_path=args.model, settings_path=args.settings, models_dir=args.models_dir,
        seed=args.seed, dry_run=args.dry_run or args.explain_model, batch_size=args.batch_size,
        comparisons_per_record=args.comparisons_per_record,
        threshold_from_labels=not args.configured_threshold, precision_floor=args.precision_floor,
        apply_workers=args.apply_workers,
        fail_after_batches=args.fail_after_batches, labels_path=args.labels,
        work_dir=args.work_dir, progress=not args.quiet, charts=not args.no_charts)
    if args.explain_model:
        from batch.steps.model import explain_text, get_model
        from batch.steps.records import build_records
        from batch.steps.snapshot import snapshot

        with _open(args) as store:
            snap = snapshot(store, options)
            try:
                build_records(snap)
                model, info = get_model(snap, options)
            finally:
                snap.close()
        print(f"model {model.version} ({info.get('source')})")
        print(explain_text(info["explain"]))
        return 0
    config = _config(args)
    with _open(args) as store, _engine(args) as engine:
        result = relink(store, config, options, engine=engine)
    json_path, html_path = write_report(result.report, args.report_dir)
    print(summary_text(result.report))
    print(f"  report          {json_path}\n                  {html_path}")
    if args.save_model and args.dry_run and result.model is not None:
        from identity_graph.matching.model import save_model

        saved = Path(args.models_dir) / f"{result.model.version}.json"
        if not saved.exists():
            saved.parent.mkdir(parents=True, exist_ok=True)
            save_model(result.model, saved)
        print(f"  model saved     {saved}  (apply it: identity-batch relink --model {saved})")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from batch.export import export

    with _open(args) as store:
        counts = export(store, args.out, progress=not args.quiet)
    for name, n in counts.items():
        print(f"{name:<14}{n:>12,}  {Path(args.out) / (name + '.parquet')}")
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from batch.explain import explanation_dict, explanation_text
    from identity_graph.engine import IdentityGraph

    with _open(args) as store:
        e = IdentityGraph(store, _config(args)).customers.explain(args.a, args.b)
    if args.json:
        print(json.dumps(explanation_dict(e), indent=1))
    else:
        print(explanation_text(e), end="")
    return 0


def _cmd_graph(args: argparse.Namespace) -> int:
    from batch.picture import customer_graph, whole_graph, write
    from identity_graph.identifiers import IdentifierTypes

    if bool(args.all) == bool(args.subject):
        raise InvalidArgument("subject", "give a customer id or identifier key, or --all")
    if (args.kind or args.type) and not args.all:
        raise InvalidArgument("--kind", "--kind and --type filter the whole graph (--all)")
    with _open(args) as store:
        if args.all:
            g = whole_graph(store, args.kind, args.type)
        else:
            g = customer_graph(store, args.subject, IdentifierTypes(_config(args).default_region))
    default = "graph" if args.all else re.sub(r"[^\w.-]", "_", args.subject)
    path = write(g, args.format, args.out or f"{default}.{args.format}")
    print(f"{path}: {g.number_of_nodes():,} identifiers, {g.number_of_edges():,} links ({args.format})")
    return 0


def _cmd_copy(args: argparse.Namespace) -> int:
    import tempfile

    # The source is the embedded file unless --neo4j-uri names one: an exported NEO4J_URI (as the
    # README's walkthrough leaves after starting the target) must not make the target its own source.
    if not args.db and not args.neo4j_uri:
        args.db = DEFAULT_DB
    if args.neo4j_uri and args.neo4j_uri == args.to_neo4j:
        raise InvalidArgument("--to-neo4j", "the target is the source")
    target = open_store(neo4j_uri=args.to_neo4j, neo4j_user=args.to_user, neo4j_password=args.to_password)
    with _open(args) as source, target, tempfile.TemporaryDirectory(prefix="identity-copy-") as tmp:
        if not args.replace and target.export_tables()["identifiers"].num_rows:
            raise InvalidArgument("--to-neo4j", "the target database is not empty; pass --replace to wipe it")
        with tqdm(total=3, desc="copy", unit="step", disable=args.quiet, leave=False) as bar:
            source.export_parquet(tmp)
            bar.update(1)
            if args.replace:
                target.clear()
            bar.update(1)
            counts = target.load_parquet(tmp)
            bar.update(1)
    print(", ".join(f"{n:,} {name}" for name, n in counts.items()) + f" copied to {args.to_neo4j}")
    return 0


def _cmd_renormalise(args: argparse.Namespace) -> int:
    from batch.renormalise import renormalise

    with _open(args) as store:
        out = renormalise(store, _config(args), dry_run=args.dry_run)
    if args.json:
        print(json.dumps(out.as_dict(), indent=2))
        return 0
    verb = "would get" if args.dry_run else "got"
    print(f"checked {out.checked:,} identifiers: {len(out.changed):,} normalise differently today, "
          f"{len(out.invalid):,} no longer normalise")
    waiting = {old for old, _, _ in out.skipped} | {old for old, _ in out.done}
    for old, new in out.applied if not args.dry_run else out.changed:
        if old not in waiting:
            print(f"  {old} {verb} its current form {new} (equivalent link)")
    for old, new in out.done:
        print(f"  {old} already has its current form {new}")
    for old, new, why in out.skipped:
        print(f"  {old} -> {new} left alone: {why}")
    for old, why in out.invalid:
        print(f"  {old} left alone: {why} (AdminService.Forget removes it)")
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from batch.quality import load_synthetic

    with _open(args) as store:
        data = load_synthetic(store, args.customers, args.seed, args.labels_out)
    print(f"loaded {len(data.identifiers):,} identifiers of {len(data.customers):,} customers; "
          f"labels in {args.labels_out}")
    return 0


def _cmd_review(args: argparse.Namespace) -> int:
    from identity_graph.engine import IdentityGraph

    scorer = None
    if getattr(args, "model", None):
        from identity_graph.matching import OnlineScorer
        from identity_graph.matching.model import load_model

        scorer = OnlineScorer(load_model(args.model))
    with _open(args) as store:
        return review_cli.run(args, IdentityGraph(store, _config(args), scorer=scorer))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    commands: dict[str, Any] = {"ingest": _cmd_ingest, "relink": _cmd_relink,
                                "export": _cmd_export, "generate": _cmd_generate,
                                "explain": _cmd_explain, "graph": _cmd_graph, "copy": _cmd_copy,
                                "renormalise": _cmd_renormalise, "review": _cmd_review}
    try:
        return int(commands[args.command](args))
    except (InvalidArgument, ValueError, FileNotFoundError, NotFound) as e:
        print(f"identity-batch: {e}", file=sys.stderr)
        return 2
    except IdentityGraphError as e:
        print(f"identity-batch: {e}", file=sys.stderr)
        return 1
    except grpc.RpcError as e:  # --server: the server's status, without a traceback
        print(f"identity-batch: server: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
