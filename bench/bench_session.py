"""StartOrResume and AppendTurn throughput and latency through the real gRPC server, per backend,
on a store preloaded with ~100k identifiers (`preload.py`) and 100k conversations with their turns.

Setup: the identifiers come from `preload.ensure` (cached parquet). The conversations are built once
per (identifiers, seed, conversations, turns) and cached under `bench/.cache/sessions-…/` with times
stored as offsets before "now"; every run writes them set-wise into the conversation tables of a
fresh store (SQLite: one executemany per table in one transaction; Neo4j: UNWIND batches of 10k), not
through 100k RPCs. Each non-generic identifier anchors one conversation and the rest go to random
ones. About 70 % are active (last touched 0-20 min ago), 20 % inactive (1-20 h ago, still inside
the 72 h resume window), 10 % closed (3-30 days ago). Each has `--turns` turns.

Then `server.py` runs as a subprocess (no match model; session housekeeping every 30 s as by
default) and this process is the client: one grpc.aio channel, N workers, closed loop (each worker
sends its next call when the previous returns) or open loop (`--rate`: calls scheduled at a fixed
rate, at most N in flight, latency counted from the scheduled time).

Modes:
  start   StartOrResume from the anchor identifier of a random open conversation (a known
          identifier, on its own channel): resolves it and resumes the customer's conversation.
  append  AppendTurn to a random open conversation, as its anchor identifier (a caller that may
          see it).

    .venv/bin/python bench/bench_session.py --backend sqlite --runs 2
    .venv/bin/python bench/bench_session.py --backend neo4j --neo4j-dir /tmp/sess-neo4j --runs 2
    .venv/bin/python bench/bench_session.py --backend sqlite --profile 300 --no-server
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import preload
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from bench_resolve import Result, free_port, neo4j_pid, proc_cpu, wait_serving
from grpc_health.v1 import health_pb2, health_pb2_grpc

from identity_graph.store import open_store
from stubs.identity.v1 import identity_pb2 as ipb
from stubs.session.v1 import session_pb2 as pb
from stubs.session.v1 import session_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parent.parent
LAYOUT_VERSION = 1
BATCH = 10_000
TOPICS = ("delivery", "returns", "product", "billing", "order", "dimensions")
TEXTS = (
    "Where is my order?", "Can I return the fridge?", "How wide is the FR-200?",
    "I was charged twice.", "Let me check that for you.", "Your parcel leaves the depot today.",
)
CHANNEL_OF_TYPE = {"phone": "sms", "whatsapp": "whatsapp", "email": "email"}  # anything else: web


def channel_of(key: str) -> str:
    return CHANNEL_OF_TYPE.get(key.partition(":")[0], "web")


def _json(value: Any) -> str:  # as session/store/*: _json
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


# ---- the cached conversations ---------------------------------------------------------------


def session_cache_dir(directory: Path, n: int, turns: int, seed: int) -> Path:
    return preload.CACHE / f"sessions-{directory.name}-n{n}-t{turns}-s{seed}-v{LAYOUT_VERSION}"


def build_conversations(directory: Path, n: int, turns: int, seed: int) -> dict[str, pa.Table]:
    """Conversations and turns with times as milliseconds before the load ("*_off_ms")."""
    rng = random.Random(seed)
    keys = preload.identifier_keys(directory, generic=False)
    anchors = list(keys) if n >= len(keys) else rng.sample(keys, n)
    anchors += [rng.choice(keys) for _ in range(n - len(anchors))]
    rng.shuffle(anchors)
    minute, hour, day = 60_000, 3_600_000, 86_400_000
    conv: dict[str, list[Any]] = {c: [] for c in (
        "id", "anchor", "status", "channels", "context", "state", "created_off_ms",
        "updated_off_ms", "closed_off_ms", "turn_count", "last_channel")}
    trn: dict[str, list[Any]] = {c: [] for c in (
        "conversation_id", "seq", "role", "channel", "identifier", "text", "intent", "topic",
        "at_off_ms")}
    state = _json({"flow": "", "step": "", "data": {}})
    for i, anchor in enumerate(anchors):
        r = rng.random()
        if r < 0.7:
            status, updated = "active", rng.randrange(0, 20 * minute)
        elif r < 0.9:
            status, updated = "inactive", rng.randrange(1 * hour, 20 * hour)
        else:
            status, updated = "closed", rng.randrange(3 * day, 30 * day)
        created = updated + rng.randrange(1 * minute, 30 * minute)
        channel = channel_of(anchor)
        topic = rng.choice(TOPICS)
        cid = f"conv_bench{seed:02d}{i:09d}"
        conv["id"].append(cid)
        conv["anchor"].append(anchor)
        conv["status"].append(status)
        conv["channels"].append(_json([channel]))
        conv["context"].append(_json({"topic": topic, "intent": "", "slots": {}}))
        conv["state"].append(state)
        conv["created_off_ms"].append(created)
        conv["updated_off_ms"].append(updated)
        conv["closed_off_ms"].append(updated if status == "closed" else None)
        conv["turn_count"].append(turns)
        conv["last_channel"].append(channel)
        for seq in range(1, turns + 1):
            trn["conversation_id"].append(cid)
            trn["seq"].append(seq)
            trn["role"].append("customer" if seq % 2 else "bot")
            trn["channel"].append(channel)
            trn["identifier"].append(anchor)
            trn["text"].append(rng.choice(TEXTS))
            trn["intent"].append("")
            trn["topic"].append(topic)
            # spread between created and updated, the last one at updated
            trn["at_off_ms"].append(updated + (created - updated) * (turns - seq) // max(1, turns))
    return {"conversations": pa.table(conv), "turns": pa.table(trn)}


def ensure_conversations(directory: Path, n: int, turns: int, seed: int) -> Path:
    out = session_cache_dir(directory, n, turns, seed)
    if (out / "turns.parquet").exists():
        return out
    t0 = time.perf_counter()
    tables = build_conversations(directory, n, turns, seed)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=preload.CACHE))
    for name, table in tables.items():
        pq.write_table(table, tmp / f"{name}.parquet")
    tmp.rename(out)
    print(f"# built {out.name} in {time.perf_counter() - t0:.1f}s: "
          + ", ".join(f"{k}={t.num_rows}" for k, t in tables.items()), flush=True)
    return out


# ---- loading --------------------------------------------------------------------------------

_SQLITE_CONVERSATIONS = (
    "INSERT INTO conversations (id, anchor, status, channels, context, state, version, created_at, "
    "updated_at, closed_at, escalation_reason, carried_from, resumed_count, turn_count, last_channel, "
    "channel_switches) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, '', '', 0, ?, ?, 0)"
)
_SQLITE_TURNS = (
    "INSERT INTO turns (conversation_id, seq, role, channel, identifier, text, intent, topic, at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

_NEO_CONVERSATIONS = """
UNWIND $rows AS r
CREATE (c:Conversation)
SET c = {id: r.id, anchor: r.anchor, status: r.status, channels: [r.last_channel],
         doc: '{"context": ' + r.context + ', "state": ' + r.state + ', "version": 1}', version: 1,
         created_at: $now - duration({milliseconds: r.created_off_ms}),
         updated_at: $now - duration({milliseconds: r.updated_off_ms}),
         closed_at: CASE WHEN r.closed_off_ms IS NULL THEN NULL
                         ELSE $now - duration({milliseconds: r.closed_off_ms}) END,
         escalation_reason: '', carried_from: '', resumed_count: 0, turn_count: r.turn_count,
         last_channel: r.last_channel, channel_switches: 0}
WITH c, r
MATCH (i:Identifier {key: r.anchor})
CREATE (c)-[:CAME_IN_THROUGH]->(i)
"""

_NEO_TURNS = """
UNWIND $rows AS r
MATCH (c:Conversation {id: r.conversation_id})
CREATE (c)-[:HAS_TURN]->(t:Turn)
SET t = {conversation_id: r.conversation_id, seq: r.seq, role: r.role, channel: r.channel,
         identifier: r.identifier, text: r.text, intent: r.intent, topic: r.topic,
         at: $now - duration({milliseconds: r.at_off_ms})}
"""


def load_conversations(store: Any, sessions_dir: Path, now: datetime) -> dict[str, int]:
    """Writes the cached conversations and turns into the conversation tables of `store`,
    set-wise, with times relative to `now`."""
    from session.store import conversation_store_for

    conv_store = conversation_store_for(store)  # creates the schema
    conv_store.clear()
    convs = pq.read_table(sessions_dir / "conversations.parquet")
    turns = pq.read_table(sessions_dir / "turns.parquet")
    if store.name == "sqlite":
        us = int(now.timestamp() * 1_000_000)

        def ago(ms: int | None) -> int | None:
            return None if ms is None else us - ms * 1000

        with store.database.transaction() as con:
            con.executemany(_SQLITE_CONVERSATIONS, [
                (r["id"], r["anchor"], r["status"], r["channels"], r["context"], r["state"],
                 ago(r["created_off_ms"]), ago(r["updated_off_ms"]), ago(r["closed_off_ms"]),
                 r["turn_count"], r["last_channel"])
                for r in convs.to_pylist()
            ])
            con.executemany(_SQLITE_TURNS, [
                (r["conversation_id"], r["seq"], r["role"], r["channel"], r["identifier"], r["text"],
                 r["intent"], r["topic"], ago(r["at_off_ms"]))
                for r in turns.to_pylist()
            ])
    else:
        with store.database.session() as session:
            for table, query in ((convs, _NEO_CONVERSATIONS), (turns, _NEO_TURNS)):
                for off in range(0, table.num_rows, BATCH):
                    rows = table.slice(off, BATCH).to_pylist()
                    session.execute_write(lambda tx, q=query, r=rows: tx.run(q, rows=r, now=now).consume())
    return {"conversations": convs.num_rows, "turns": turns.num_rows}


def prepare_store(
    args: argparse.Namespace, directory: Path, sessions_dir: Path, workdir: Path
) -> dict[str, Any]:
    t0 = time.perf_counter()
    now = datetime.now(UTC)
    if args.backend == "sqlite":
        target: dict[str, Any] = {"db": str(workdir / "bench.db")}
    else:
        if not args.neo4j_uri:
            sys.exit("--backend neo4j needs --neo4j-uri or NEO4J_URI")
        target = {"neo4j_uri": args.neo4j_uri}
    with open_target(args, target) as store:
        if args.reuse and args.backend == "neo4j":
            with store.database.session() as session:
                n = session.run("MATCH (c:Conversation) RETURN count(c) AS n").single()["n"]
            if n >= args.conversations:
                print(f"# --reuse: {n} conversations already in Neo4j, not loading (the previous run's "
                      "resumes and turns stay)", flush=True)
                return target
        reuse_graph = (args.reuse and args.backend == "neo4j"
                       and store.get_identifier(preload.identifier_keys(directory)[0]) is not None)
        if args.backend == "neo4j" and not reuse_graph:
            store.clear()
        counts = {} if reuse_graph else preload.load_into(store, directory, now)
        t1 = time.perf_counter()
        counts.update(load_conversations(store, sessions_dir, datetime.now(UTC)))
    print(f"# loaded {args.backend} in {time.perf_counter() - t0:.1f}s (conversations and turns "
          f"{time.perf_counter() - t1:.1f}s): " + ", ".join(f"{k}={v}" for k, v in counts.items()),
          flush=True)
    return target


def touch_identifiers(args: argparse.Namespace, target: dict[str, Any]) -> None:
    """Sets every identifier's `last_seen` to now, so that Resolve of a known identifier takes the
    read-only path (`last_seen_granularity_s`, 300 s) for the next few minutes, however long the
    load took."""
    t0 = time.perf_counter()
    now = datetime.now(UTC)
    with open_target(args, target) as store:
        if store.name == "sqlite":
            with store.database.transaction() as con:
                con.execute("UPDATE identifiers SET last_seen = ?", [int(now.timestamp() * 1_000_000)])
        else:
            with store.database.session() as session:
                session.run("MATCH (i:Identifier) CALL (i) { SET i.last_seen = $now } "
                            "IN TRANSACTIONS OF 10000 ROWS", now=now).consume()
    print(f"# identifiers' last_seen set to now in {time.perf_counter() - t0:.1f}s", flush=True)


def open_target(args: argparse.Namespace, target: dict[str, Any]) -> Any:
    return open_store(target.get("db"), neo4j_uri=target.get("neo4j_uri"), neo4j_user=args.neo4j_user,
                      neo4j_password=args.neo4j_password)


# ---- requests -------------------------------------------------------------------------------


class Picker:
    """Random open conversations (their id and anchor), optionally from a working set."""

    def __init__(self, sessions_dir: Path, seed: int, hot: int) -> None:
        t = pq.read_table(sessions_dir / "conversations.parquet", columns=["id", "anchor", "status"])
        t = t.filter(pc.not_equal(t["status"], "closed"))
        self.rows = list(zip(t["id"].to_pylist(), t["anchor"].to_pylist(), strict=True))
        self.rng = random.Random(seed)
        if hot:
            self.rows = self.rng.sample(self.rows, min(hot, len(self.rows)))

    def pick(self) -> tuple[str, str]:
        return self.rng.choice(self.rows)


def _ident(key: str) -> ipb.Identifier:
    type_, _, value = key.partition(":")
    return ipb.Identifier(type=type_, value=value)


def start_request(picker: Picker) -> pb.StartOrResumeRequest:
    _, anchor = picker.pick()
    return pb.StartOrResumeRequest(channel=channel_of(anchor), identifiers=[_ident(anchor)])


def append_request(picker: Picker) -> pb.AppendTurnRequest:
    cid, anchor = picker.pick()
    rng = picker.rng
    return pb.AppendTurnRequest(
        conversation_id=cid, caller=pb.Caller(channel=channel_of(anchor), identifier=_ident(anchor)),
        role=pb.ROLE_CUSTOMER if rng.random() < 0.5 else pb.ROLE_BOT, text=rng.choice(TEXTS),
        topic=rng.choice(TOPICS))


# ---- load generator -------------------------------------------------------------------------


async def drive(call: Callable[[Any], Any], make: Callable[[], Any], concurrency: int, duration: float,
                rate: float | None, timeout: float, outcomes: Counter[str]) -> Result:
    """Closed loop, or open loop at `rate` with at most `concurrency` calls in flight. An open loop
    stops sending at the end of the window too: calls scheduled inside it but not sent by then
    (the server fell behind) are counted in `outcomes["unsent"]`, not measured."""
    res = Result(concurrency, 0.0)
    n = 0
    t0 = time.perf_counter()
    end = t0 + duration

    async def worker() -> None:
        nonlocal n
        while True:
            i = n
            n += 1
            if rate is not None:
                began = t0 + i / rate
                if began >= end:
                    return
                delay = began - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif time.perf_counter() >= end:
                    outcomes["unsent"] += 1
                    continue
            else:
                began = time.perf_counter()
            if began >= end:
                return
            try:
                reply = await call(make(), timeout=timeout)
            except grpc.aio.AioRpcError as e:
                res.errors[e.code().name] += 1
                continue
            res.latencies.append(time.perf_counter() - began)
            if isinstance(reply, pb.StartOrResumeResponse):
                outcomes["resumed" if reply.resumed else "started"] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    res.seconds = time.perf_counter() - t0
    return res


def start_server(args: argparse.Namespace, target: dict[str, Any], port: int,
                 root: Path = ROOT) -> subprocess.Popen:
    """`server.py` of the checkout at `root` (another one: its code first on PYTHONPATH)."""
    cmd = [sys.executable, str(root / "server.py"), "--address", f"127.0.0.1:{port}",
           "--log-level", args.server_log_level, "--housekeeping-interval", str(args.housekeeping_interval)]
    env = dict(os.environ)
    if root != ROOT:
        env["PYTHONPATH"] = str(root)
    if "db" in target:
        cmd += ["--db", target["db"]]
    else:
        cmd += ["--neo4j-uri", target["neo4j_uri"], "--neo4j-user", args.neo4j_user]
        env["NEO4J_PASSWORD"] = args.neo4j_password
    log = open(Path(tempfile.gettempdir()) / f"bench-session-server-{port}.log", "w")  # noqa: SIM115
    print(f"# server: {' '.join(cmd)}  (log {log.name})", flush=True)
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=log, cwd=root)


# ---- in-process profile ---------------------------------------------------------------------


def profile(args: argparse.Namespace, target: dict[str, Any], sessions_dir: Path, modes: list[str]) -> None:
    """`--profile` calls of each mode straight on `Sessions` (no gRPC), under cProfile."""
    from identity_graph.config import GraphConfig
    from identity_graph.engine import IdentityGraph
    from session.service import Caller, Sessions
    from session.store import conversation_store_for

    with open_target(args, target) as store:
        sessions = Sessions(IdentityGraph(store, GraphConfig()), conversation_store_for(store))
        for mode in modes:
            picker = Picker(sessions_dir, args.seed + 99, args.hot)
            # Distinct picks for the warm-up, the timed pass and the profiled pass, so that neither
            # pass finds the other's identifiers in the read cache.
            picks = [picker.pick() for _ in range(2 * args.profile + 20)]

            def one(cid: str, anchor: str, mode: str = mode) -> None:
                if mode == "start":
                    sessions.start_or_resume(channel_of(anchor), [tuple(anchor.split(":", 1))])
                else:
                    sessions.append_turn(cid, Caller(channel_of(anchor), anchor), "customer",
                                         "Where is my order?", topic="delivery")

            for cid, anchor in picks[:20]:  # warm the imports and the statement caches
                one(cid, anchor)
            timed, profiled = picks[20:20 + args.profile], picks[20 + args.profile:]
            t0 = time.perf_counter()
            for cid, anchor in timed:
                one(cid, anchor)
            plain = (time.perf_counter() - t0) / len(timed)
            prof = cProfile.Profile()
            prof.enable()
            for cid, anchor in profiled:
                one(cid, anchor)
            prof.disable()
            out = io.StringIO()
            stats = pstats.Stats(prof, stream=out)
            print(f"# profile backend={args.backend} mode={mode}: {len(profiled)} calls in-process, "
                  f"{plain * 1e3:.2f} ms per call without the profiler "
                  f"(loadavg={os.getloadavg()[0]:.1f})", flush=True)
            stats.sort_stats("cumulative").print_stats(args.profile_lines)
            print("\n".join(line for line in out.getvalue().splitlines()
                            if line.strip() and not line.startswith(("   Ordered", "         "))),
                  flush=True)


# ---- main -----------------------------------------------------------------------------------


async def measure(args: argparse.Namespace, servers: list[tuple[str, int, subprocess.Popen]],
                  sessions_dir: Path) -> None:
    """Every measurement on each server in turn (`--baseline-root`: after, then before)."""
    options = [("grpc.max_concurrent_streams", 1000)]
    for _label, port, proc in servers:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
            await wait_serving(channel, proc)
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) for _, port, _ in servers]
    try:
        for run_no in range(args.runs):
            for (label, _port, proc), channel in zip(servers, channels, strict=True):
                if len(servers) > 1:
                    print(f"# --- {label} (pid {proc.pid}) ---", flush=True)
                await measure_one(args, channel, proc, sessions_dir, run_no)
    finally:
        for channel in channels:
            await channel.close()


async def measure_one(args: argparse.Namespace, channel: grpc.aio.Channel, proc: subprocess.Popen,
                      sessions_dir: Path, run_no: int) -> None:
    levels = [int(c) for c in args.concurrency.split(",")]
    loops = [None if x == "closed" else args.rate for x in args.loops.split(",")]
    stub = pb_grpc.SessionServiceStub(channel)
    empty = health_pb2_grpc.HealthStub(channel).Check  # the ceiling: an empty unary RPC
    npid = neo4j_pid(args)
    for mode in args.mode.split(","):
        picker = Picker(sessions_dir, args.seed + (1 if mode == "start" else 2) + 10 * run_no, args.hot)
        call, make = ((stub.StartOrResume, lambda p=picker: start_request(p)) if mode == "start"
                      else (stub.AppendTurn, lambda p=picker: append_request(p)))
        print(f"# backend={args.backend} mode={mode} server=subprocess pid {proc.pid} "
              f"duration={args.duration}s warmup={args.warmup}s open-loop rate={args.rate}/s "
              f"picks={'all ' + str(len(picker.rows)) if not args.hot else 'hot ' + str(args.hot)} "
              f"open conversations cores={os.cpu_count()} loadavg={os.getloadavg()[0]:.1f}", flush=True)
        if args.hot:
            t0 = time.perf_counter()
            rows = list(picker.rows)
            for _cid, anchor in rows:  # one StartOrResume each: the working set's reads cached
                await stub.StartOrResume(pb.StartOrResumeRequest(
                    channel=channel_of(anchor), identifiers=[_ident(anchor)]), timeout=args.timeout)
            print(f"# working set: {len(rows)} conversations, one StartOrResume each in "
                  f"{time.perf_counter() - t0:.1f}s", flush=True)
        outcomes: Counter[str] = Counter()
        warm = await drive(call, make, max(levels), args.warmup, None, args.timeout, outcomes)
        print(f"# warm-up: {warm.calls} calls, {sum(warm.errors.values())} errors", flush=True)
        for rate in loops:
            for c in levels:
                outcomes.clear()
                cpu0, ncpu0 = proc_cpu(proc.pid), proc_cpu(npid)
                own0 = sum(os.times()[:2])
                res = await drive(call, make, c, args.duration, rate, args.timeout, outcomes)
                res.client_cpu_s = sum(os.times()[:2]) - own0
                cpu1, ncpu1 = proc_cpu(proc.pid), proc_cpu(npid)
                if cpu0 is not None and cpu1 is not None:
                    res.server_cpu_s = cpu1 - cpu0
                if ncpu0 is not None and ncpu1 is not None:
                    res.extra_cpu_s = ncpu1 - ncpu0
                loop = "closed" if rate is None else f"open@{rate:g}"
                extra = f" {dict(outcomes)}" if outcomes else ""
                print(f"run={run_no + 1} mode={mode} loop={loop} {res.line()}{extra} "
                      f"loadavg={os.getloadavg()[0]:.1f}", flush=True)
                if args.ceiling:
                    ceiling = await drive(empty, lambda: EMPTY, c, args.duration, rate,
                                          args.timeout, Counter())
                    print(f"run={run_no + 1} ceiling (empty health Check) loop={loop} "
                          f"{ceiling.line()} "
                          f"ratio={res.calls * ceiling.seconds / (res.seconds * ceiling.calls):.2f} "
                          f"loadavg={os.getloadavg()[0]:.1f}", flush=True)


EMPTY = health_pb2.HealthCheckRequest(service="")


def run(args: argparse.Namespace) -> int:
    directory = preload.ensure(args.identifiers, args.seed)
    sessions_dir = ensure_conversations(directory, args.conversations, args.turns, args.seed)
    modes = args.mode.split(",")
    with tempfile.TemporaryDirectory(prefix="bench-session-") as work:
        target = prepare_store(args, directory, sessions_dir, Path(work))
        if args.profile:
            touch_identifiers(args, target)
            profile(args, target, sessions_dir, modes)
        if args.no_server:
            return 0
        touch_identifiers(args, target)
        servers = []
        port = free_port()
        servers.append(("this version", port, start_server(args, target, port)))
        if args.baseline_root:
            port = free_port()
            servers.append((f"baseline {args.baseline_root}", port,
                            start_server(args, target, port, Path(args.baseline_root).resolve())))
        try:
            asyncio.run(measure(args, servers, sessions_dir))
        finally:
            for _, _, proc in servers:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ceiling", action="store_true",
                   help="after each level, the same load of empty RPCs (health Check): the ceiling")
    p.add_argument("--backend", choices=("sqlite", "neo4j"), default="sqlite")
    p.add_argument("--baseline-root",
                   help="a checkout of an earlier version: its server runs beside this one on the same "
                        "store; each run measures both in turn (before/after in one run)")
    p.add_argument("--mode", default="start,append", help="comma-separated: start, append")
    p.add_argument("-c", "--concurrency", default="16,64", help="comma-separated worker counts")
    p.add_argument("--loops", default="closed,open", help="comma-separated: closed, open")
    p.add_argument("--rate", type=float, default=500.0, help="open loop: calls per second")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per mode")
    p.add_argument("--runs", type=int, default=2, help="repeat every measurement this often")
    p.add_argument("--timeout", type=float, default=10.0, help="per-call deadline, seconds")
    p.add_argument("--identifiers", type=int, default=100_000, help="preloaded identifiers (about)")
    p.add_argument("--conversations", type=int, default=100_000, help="preloaded conversations")
    p.add_argument("--turns", type=int, default=4, help="turns per preloaded conversation")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--hot", type=int, default=0,
                   help="pick from a working set of this many open conversations (0: all), each "
                        "resumed once before the warm-up")
    p.add_argument("--housekeeping-interval", type=float, default=30.0,
                   help="the server's --housekeeping-interval (its default: 30)")
    p.add_argument("--profile", type=int, default=0,
                   help="before the server starts: this many calls per mode in-process under cProfile")
    p.add_argument("--profile-lines", type=int, default=30)
    p.add_argument("--no-server", action="store_true", help="load (and profile) only")
    p.add_argument("--reuse", action="store_true",  # also: the graph of an earlier bench_resolve run
                   help="neo4j: keep what a previous run loaded (identifiers' last_seen refreshed)")
    p.add_argument("--server-log-level", default="WARNING")
    p.add_argument("--neo4j-uri", default=os.environ.get("NEO4J_URI"))
    p.add_argument("--neo4j-user", default=os.environ.get("NEO4J_USER", "neo4j"))
    p.add_argument("--neo4j-password", default=os.environ.get("NEO4J_PASSWORD", ""))
    p.add_argument("--neo4j-dir", help="the scripts/neo4j.sh instance dir, to report Neo4j's CPU")
    args = p.parse_args(argv)
    if set(args.mode.split(",")) - {"start", "append"}:
        p.error("--mode: start and/or append")
    if set(args.loops.split(",")) - {"closed", "open"}:
        p.error("--loops: closed and/or open")
    return args


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
