"""Resolve throughput and latency through the real gRPC server, on a store preloaded with ~100k identifiers.

The server is `server.py` in a subprocess by default (`--in-process` runs it in this process's event
loop instead); this process is the client: one grpc.aio channel to 127.0.0.1, N concurrent workers,
each sending its next call when the previous one returns (closed loop), for a fixed duration after
a warm-up. `--rate` turns it into an open loop: calls are scheduled at a fixed rate and latency is
measured from the scheduled time, so a stall is not hidden (coordinated omission).

Modes:
  known  one identifier that exists (a random pick of the preloaded ones), no attributes: the
         read-only fast path.
  new    a new identifier (an email or a web cookie) with attributes of a preloaded person (or, for
         `--fresh-share` of calls, of a person the store has never seen): the write path with the
         probabilistic matching of the `--model` (the starter model by default).

    .venv/bin/python bench/bench_resolve.py --backend sqlite --mode known -c 16,64
    .venv/bin/python bench/bench_resolve.py --backend neo4j --mode new -c 1,16   # NEO4J_* env
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import preload
from grpc_health.v1 import health_pb2, health_pb2_grpc

from identity_graph.matching.model import STARTER_MODEL_PATH
from identity_graph.store import open_store
from identity_graph.synthetic import generate
from stubs.identity.v1 import identity_pb2 as pb
from stubs.identity.v1 import identity_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---- requests -------------------------------------------------------------------------------


def known_requests(directory: Path, n: int, seed: int, hot: int) -> tuple[list[pb.ResolveRequest], int]:
    """`n` calls for random preloaded identifiers (of a working set of `hot` if > 0), preceded by
    one call for each identifier of the working set; returns them and that prefix's length."""
    keys = preload.identifier_keys(directory)
    rng = random.Random(seed)
    prefix: list[str] = []
    if hot:
        keys = rng.sample(keys, min(hot, len(keys)))
        prefix = list(keys)

    def request(key: str) -> pb.ResolveRequest:
        type_, _, value = key.partition(":")
        channel = {"phone": "sms", "whatsapp": "whatsapp", "email": "email"}.get(type_, "web")
        return pb.ResolveRequest(channel=channel, identifiers=[pb.Identifier(type=type_, value=value)])

    return [request(k) for k in prefix] + [request(rng.choice(keys)) for _ in range(n)], len(prefix)


def new_requests(directory: Path, n: int, seed: int, fresh_share: float) -> list[pb.ResolveRequest]:
    people = preload.profiles(directory)
    strangers = [
        {c: p.get(c) for c in preload.PROFILE_COLUMNS}
        for p in generate(2000, seed + 10_000).customers
    ]
    rng = random.Random(seed)
    tag = f"{seed}{time.time_ns() % 10**9:09d}"
    out = []
    for i in range(n):
        person = rng.choice(strangers if rng.random() < fresh_share else people)
        attrs = {k: v for k, v in person.items() if k != "customer_id" and v}
        if rng.random() < 0.5:
            ident = pb.Identifier(type="email", value=f"bench.{tag}.{i}@new.example")
            channel = "email"
        else:
            ident = pb.Identifier(type="web_cookie", value=f"b{tag}{i:08d}")
            channel = "web"
        out.append(pb.ResolveRequest(channel=channel, identifiers=[ident], attributes=attrs,
                                     source="bench", event_id=f"bench-{tag}-{i}"))
    return out


# ---- load generator -------------------------------------------------------------------------


@dataclass
class Result:
    concurrency: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    server_cpu_s: float | None = None
    client_cpu_s: float = 0.0
    extra_cpu_s: float | None = None

    def pct(self, q: float) -> float:
        xs = sorted(self.latencies)
        if not xs:
            return float("nan")
        return xs[min(len(xs) - 1, int(q * len(xs)))]

    @property
    def calls(self) -> int:
        return len(self.latencies)

    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds else float("nan")

    def line(self) -> str:
        ms = 1e3
        cpu = "" if self.server_cpu_s is None else f" server_cpu={self.server_cpu_s / self.seconds:.2f}cores"
        if self.extra_cpu_s is not None:
            cpu += f" neo4j_cpu={self.extra_cpu_s / self.seconds:.2f}cores"
        errs = sum(self.errors.values())
        detail = f" ({dict(self.errors)})" if errs else ""
        return (f"c={self.concurrency:<3d} calls={self.calls:<6d} {self.calls / self.seconds:8.1f} calls/s  "
                f"p50={self.pct(0.50) * ms:7.2f}ms p90={self.pct(0.90) * ms:7.2f}ms "
                f"p99={self.pct(0.99) * ms:7.2f}ms max={max(self.latencies, default=0) * ms:7.2f}ms "
                f"errors={errs}{detail}{cpu} client_cpu={self.client_cpu_s / self.seconds:.2f}cores")


def memory(pid: int | None) -> str:
    """` server_rss=… peak=…` (MB, Linux /proc), or '' when unknown."""
    if pid is None:
        return ""
    try:
        status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    except (OSError, ValueError):
        return ""
    rss, peak = (int(status[k].split()[0]) // 1024 for k in ("VmRSS", "VmHWM"))
    return f" server_rss={rss}MB peak={peak}MB"


def proc_cpu(pid: int | None) -> float | None:
    """utime + stime of a process, in seconds (Linux /proc)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


async def drive(
    stub: pb_grpc.IdentityServiceStub | Callable[[Any, float], Awaitable[Any]],
    requests: list[pb.ResolveRequest],
    start: int,
    concurrency: int,
    duration: float,
    max_calls: int,
    rate: float | None,
    timeout: float,
) -> tuple[Result, int]:
    """Runs `concurrency` workers over `requests[start:]`; returns the result and the next index.
    `stub` is the Resolve stub, or any `call(request, timeout)` (the empty-RPC ceiling)."""
    call = stub if callable(stub) else stub.Resolve
    res = Result(concurrency, 0.0)
    nxt = start
    t0 = time.perf_counter()
    end = t0 + duration
    limit = min(len(requests), start + max_calls)

    async def worker() -> None:
        nonlocal nxt
        while True:
            i = nxt
            if i >= limit:
                return
            nxt += 1
            if rate is not None:
                began = t0 + (i - start) / rate
                delay = began - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                began = time.perf_counter()
            if began >= end:
                return
            try:
                await call(requests[i], timeout=timeout)
            except grpc.aio.AioRpcError as e:
                res.errors[e.code().name] += 1
                continue
            res.latencies.append(time.perf_counter() - began)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    res.seconds = time.perf_counter() - t0
    return res, nxt


# ---- the server -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_store(args: argparse.Namespace, directory: Path, workdir: Path) -> dict[str, Any]:
    """Loads the preload into a fresh store; returns how to open it again."""
    t0 = time.perf_counter()
    if args.backend == "sqlite":
        path = workdir / "bench.db"
        with open_store(str(path)) as store:
            counts = preload.load_into(store, directory)
        target: dict[str, Any] = {"db": str(path)}
    else:
        if not args.neo4j_uri:
            sys.exit("--backend neo4j needs --neo4j-uri or NEO4J_URI")
        with open_store(neo4j_uri=args.neo4j_uri, neo4j_user=args.neo4j_user,
                        neo4j_password=args.neo4j_password) as store:
            if args.reuse and store.get_identifier(preload.identifier_keys(directory)[0]) is not None:
                print("# --reuse: the preloaded graph is there already", flush=True)
                target = {"neo4j_uri": args.neo4j_uri}
                touch(args, target)
                return target
            store.clear()
            counts = preload.load_into(store, directory)
        target = {"neo4j_uri": args.neo4j_uri}
    print(f"# loaded {args.backend} in {time.perf_counter() - t0:.1f}s: "
          + ", ".join(f"{k}={v}" for k, v in counts.items()), flush=True)
    if args.model != "none":  # the blocking-key index for the model, as a server would build it
        import server as server_mod
        from identity_graph.blocking import BlockingIndex

        t0 = time.perf_counter()
        with open_store(target.get("db"), neo4j_uri=target.get("neo4j_uri"), neo4j_user=args.neo4j_user,
                        neo4j_password=args.neo4j_password) as store:
            store.use_blocking(BlockingIndex(server_mod.load_scorer(args.model)))
        print(f"# blocking-key index built in {time.perf_counter() - t0:.1f}s", flush=True)
    touch(args, target)
    return target


def touch(args: argparse.Namespace, target: dict[str, Any]) -> None:
    """Every `last_seen` to now: a known Resolve takes the read-only path however long the
    preparation took (`last_seen_granularity_s`, 300 s)."""
    from bench_session import touch_identifiers

    touch_identifiers(args, target)


def start_subprocess(args: argparse.Namespace, target: dict[str, Any], port: int,
                     root: Path = ROOT) -> subprocess.Popen:
    """`server.py` of the checkout at `root` (another one: its code first on PYTHONPATH)."""
    cmd = [sys.executable, str(root / "server.py"), "--address", f"127.0.0.1:{port}",
           "--log-level", args.server_log_level]
    if "db" in target:
        cmd += ["--db", target["db"]]
    env = dict(os.environ)
    if root != ROOT:
        env["PYTHONPATH"] = str(root)
    if "neo4j_uri" in target:
        cmd += ["--neo4j-uri", target["neo4j_uri"], "--neo4j-user", args.neo4j_user]
        env["NEO4J_PASSWORD"] = args.neo4j_password
    if args.model != "none":
        cmd += ["--model", args.model]
    log = open(Path(tempfile.gettempdir()) / f"bench-resolve-server-{port}.log", "w")  # noqa: SIM115
    print(f"# server: {' '.join(cmd)}  (log {log.name})", flush=True)
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=log, cwd=root)


def empty_call(channel: grpc.aio.Channel) -> Callable[[Any, float], Awaitable[Any]]:
    """The ceiling: an empty unary RPC (grpc health `Check`) on the same server and channel."""
    health = health_pb2_grpc.HealthStub(channel)
    empty = health_pb2.HealthCheckRequest(service="")

    def call(_request: Any, timeout: float) -> Awaitable[Any]:
        return health.Check(empty, timeout=timeout)

    return call


async def wait_serving(channel: grpc.aio.Channel, proc: subprocess.Popen | None, limit: float = 600) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + limit
    while True:
        if proc is not None and proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}")
        try:
            r = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
            if r.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.aio.AioRpcError:
            pass
        if time.monotonic() > deadline:
            sys.exit("server did not become healthy")
        await asyncio.sleep(0.2)


async def in_process_server(args: argparse.Namespace, target: dict[str, Any]) -> tuple[Any, Any, int]:
    import server as server_mod
    from identity_graph.config import GraphConfig
    from identity_graph.engine import IdentityGraph

    store = open_store(target.get("db"), neo4j_uri=target.get("neo4j_uri"), neo4j_user=args.neo4j_user,
                       neo4j_password=args.neo4j_password)
    scorer = server_mod.load_scorer(None if args.model == "none" else args.model)
    graph = IdentityGraph(store, GraphConfig(), scorer=scorer)
    srv, port = await server_mod.create_server(
        "127.0.0.1:0", graph, access_log_enabled=args.server_log_level.upper() == "INFO")
    await srv.start()
    return srv, store, port


def store_floor(args: argparse.Namespace, target: dict[str, Any], directory: Path, n: int = 2000) -> str:
    """The store's floor, measured from this process on the server's database while it runs: a
    point read of a random preloaded identifier, and a one-row write + commit (c=1)."""
    keys = preload.identifier_keys(directory)
    rng = random.Random(args.seed + 1)
    with open_store(target.get("db"), neo4j_uri=target.get("neo4j_uri"), neo4j_user=args.neo4j_user,
                    neo4j_password=args.neo4j_password) as store:
        database = store.database
        if "db" in target:
            def read(k: str) -> Any:
                return database.rows("SELECT key, customer_id FROM identifiers WHERE key = ?", [k])

            def commit(i: int) -> None:
                with database.transaction() as con:
                    con.execute("INSERT INTO meta (name, value) VALUES ('bench_floor', ?) "
                                "ON CONFLICT (name) DO UPDATE SET value = excluded.value", [str(i)])
        else:
            def read(k: str) -> Any:
                return database.read("MATCH (n:Identifier {key: $k}) RETURN n.customer_id AS c", k=k)

            def commit(i: int) -> None:
                database.write(lambda tx: tx.run("MERGE (m:StoreMeta {name: 'bench_floor'}) SET m.value = $v",
                                                 v=str(i)).consume())
        reads, writes = [], []
        for i in range(n):
            k = keys[rng.randrange(len(keys))]
            t = time.perf_counter()
            read(k)
            reads.append(time.perf_counter() - t)
            if i % 4 == 0:
                t = time.perf_counter()
                commit(i)
                writes.append(time.perf_counter() - t)
    reads.sort()
    writes.sort()

    def q(xs: list[float], p: float) -> float:
        return xs[min(len(xs) - 1, int(p * len(xs)))] * 1e6

    return (f"# store floor ({args.backend}, c=1, from the client process): "
            f"point read p50={q(reads, .5):.0f}us "
            f"p99={q(reads, .99):.0f}us; one-row write + commit p50={q(writes, .5):.0f}us "
            f"p99={q(writes, .99):.0f}us loadavg={os.getloadavg()[0]:.1f}")


# ---- main -----------------------------------------------------------------------------------


def neo4j_pid(args: argparse.Namespace) -> int | None:
    if not args.neo4j_dir:
        return None
    try:
        return int((Path(args.neo4j_dir) / "pid").read_text().strip())
    except (OSError, ValueError):
        return None


async def run(args: argparse.Namespace) -> int:
    levels = [int(c) for c in args.concurrency.split(",")]
    directory = preload.ensure(args.identifiers, args.seed)
    measured = len(levels) * args.runs * (2 if args.open_share else 1) * (2 if args.baseline_root else 1) + 1
    total = args.max_calls * measured
    if args.rate is None:
        per_level = int(args.duration * args.max_rate_guess) + args.max_rate_guess
        total = min(total, measured * per_level)
    prefix = 0
    if args.mode == "known":
        requests, prefix = known_requests(directory, total, args.seed, args.hot)
    else:
        requests = new_requests(directory, total, args.seed, args.fresh_share)

    with tempfile.TemporaryDirectory(prefix="bench-resolve-") as work:
        target = prepare_store(args, directory, Path(work))
        proc = None
        srv = store = None
        if args.in_process:
            srv, store, port = await in_process_server(args, target)
        else:
            port = free_port()
            proc = start_subprocess(args, target, port)
        options = [("grpc.max_concurrent_streams", 1000)]
        base_proc = None
        if args.baseline_root:
            base_port = free_port()
            base_proc = start_subprocess(args, target, base_port, Path(args.baseline_root).resolve())
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
                await wait_serving(channel, proc)
                stub = pb_grpc.IdentityServiceStub(channel)
                base_channel = base_stub = None
                if base_proc is not None:
                    base_channel = grpc.aio.insecure_channel(f"127.0.0.1:{base_port}", options=options)
                    await wait_serving(base_channel, base_proc)
                    base_stub = pb_grpc.IdentityServiceStub(base_channel)
                    print(f"# baseline server: {args.baseline_root} (pid {base_proc.pid}), same store",
                          flush=True)
                where = "in-process" if args.in_process else f"subprocess pid {proc.pid}"
                print(f"# backend={args.backend} mode={args.mode} model={args.model} server={where} "
                      f"duration={args.duration}s warmup={args.warmup}s rate={args.rate or 'closed-loop'} "
                      f"cores={os.cpu_count()} loadavg={os.getloadavg()[0]:.1f}", flush=True)
                idx = 0
                if prefix:
                    t0 = time.perf_counter()
                    touched, idx = await drive(stub, requests, 0, max(levels), 1e9, prefix, None,
                                               args.timeout)
                    print(f"# working set: {prefix} identifiers, each resolved once in "
                          f"{time.perf_counter() - t0:.1f}s ({touched.line()})", flush=True)
                warm, idx = await drive(stub, requests, idx, max(levels), args.warmup, args.max_calls,
                                        None, args.timeout)
                if args.floor:
                    print(store_floor(args, target, directory), flush=True)
                print(f"# warm-up: {warm.calls} calls, {sum(warm.errors.values())} errors", flush=True)
                spid = None if args.in_process else proc.pid
                npid = neo4j_pid(args)
                for run_no in range(args.runs):
                    for c in levels:
                        cpu0, ncpu0 = proc_cpu(spid), proc_cpu(npid)
                        own0 = sum(os.times()[:2])
                        res, idx = await drive(stub, requests, idx, c, args.duration, args.max_calls,
                                               args.rate, args.timeout)
                        res.client_cpu_s = sum(os.times()[:2]) - own0
                        cpu1, ncpu1 = proc_cpu(spid), proc_cpu(npid)
                        if cpu0 is not None and cpu1 is not None:
                            res.server_cpu_s = cpu1 - cpu0
                        if ncpu0 is not None and ncpu1 is not None:
                            res.extra_cpu_s = ncpu1 - ncpu0
                        print(f"run={run_no + 1} {res.line()} loadavg={os.getloadavg()[0]:.1f}"
                              f"{memory(spid)}", flush=True)
                        if args.ceiling:
                            ceiling, _ = await drive(empty_call(channel), requests, 0, c, args.duration,
                                                     args.max_calls, args.rate, args.timeout)
                            print(f"run={run_no + 1} ceiling (empty health Check) {ceiling.line()} "
                                  f"ratio={res.rate() / ceiling.rate():.2f} "
                                  f"loadavg={os.getloadavg()[0]:.1f}", flush=True)
                            if args.open_share and args.rate is None:
                                # open loop at a share of this run's ceiling rate, both calls
                                rate = args.open_share * ceiling.rate()
                                workers = max(c, 64)
                                opened, idx = await drive(stub, requests, idx, workers, args.duration,
                                                          args.max_calls, rate, args.timeout)
                                print(f"run={run_no + 1} open loop at {args.open_share:g} x ceiling "
                                      f"= {rate:.0f}/s: {opened.line()}", flush=True)
                                empty, _ = await drive(empty_call(channel), requests, 0, workers,
                                                       args.duration, args.max_calls, rate, args.timeout)
                                print(f"run={run_no + 1} open loop ceiling at {rate:.0f}/s: {empty.line()} "
                                      f"loadavg={os.getloadavg()[0]:.1f}", flush=True)
                        if base_stub is not None:  # the same level on the baseline server
                            b0 = proc_cpu(base_proc.pid)
                            base, idx = await drive(base_stub, requests, idx, c, args.duration,
                                                    args.max_calls, args.rate, args.timeout)
                            b1 = proc_cpu(base_proc.pid)
                            if b0 is not None and b1 is not None:
                                base.server_cpu_s = b1 - b0
                            bceil, _ = await drive(empty_call(base_channel), requests, 0, c, args.duration,
                                                   args.max_calls, args.rate, args.timeout)
                            print(f"run={run_no + 1} baseline {base.line()}\n"
                                  f"run={run_no + 1} baseline ceiling {bceil.line()} "
                                  f"ratio={base.rate() / bceil.rate():.2f} "
                                  f"loadavg={os.getloadavg()[0]:.1f}", flush=True)
                        if idx >= len(requests):
                            print("# ran out of prepared requests; raise --max-calls", flush=True)
                            return 1
        finally:
            if srv is not None:
                await srv.stop(1)
                store.close()
            if base_proc is not None:
                base_proc.send_signal(signal.SIGTERM)
                base_proc.wait(30)
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=("sqlite", "neo4j"), default="sqlite")
    p.add_argument("--mode", choices=("known", "new"), default="known")
    p.add_argument("-c", "--concurrency", default="16,64", help="comma-separated worker counts")
    p.add_argument("--duration", type=float, default=15.0, help="seconds per concurrency level")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up before measuring")
    p.add_argument("--runs", type=int, default=1, help="repeat every concurrency level this often")
    p.add_argument("--max-calls", type=int, default=60_000, help="at most this many calls per level")
    p.add_argument("--max-rate-guess", type=int, default=3000, help=argparse.SUPPRESS)
    p.add_argument("--ceiling", action="store_true",
                   help="after each level, the same load of empty RPCs (health Check): the ceiling")
    p.add_argument("--rate", type=float, help="open loop: calls per second (default: closed loop)")
    p.add_argument("--open-share", type=float, default=0.0,
                   help="with --ceiling: after each level, an open loop at this share of the ceiling's "
                        "rate (Resolve, then the empty call at the same rate)")
    p.add_argument("--baseline-root",
                   help="a checkout of an earlier version: its server runs beside this one on the same "
                        "store, and every level runs on both, alternating (before/after in one run)")
    p.add_argument("--reuse", action="store_true",
                   help="Neo4j: keep a graph an earlier run preloaded (its last_seen as it was then)")
    p.add_argument("--floor", action="store_true",
                   help="print the store floor (point read, one-row commit) before the levels")
    p.add_argument("--timeout", type=float, default=10.0, help="per-call deadline, seconds")
    p.add_argument("--identifiers", type=int, default=100_000, help="preloaded identifiers (about)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--hot", type=int, default=0,
                   help="known mode: pick from a working set of this many identifiers (0: all), "
                        "each resolved once before the warm-up")
    p.add_argument("--fresh-share", type=float, default=0.2,
                   help="new mode: share of calls with attributes of people the store has never seen")
    p.add_argument("--model", default=str(STARTER_MODEL_PATH), help="match model JSON, or 'none'")
    p.add_argument("--in-process", action="store_true", help="run the server in this process")
    p.add_argument("--server-log-level", default="WARNING",
                   help="server log level; INFO also writes one access-log line per call")
    p.add_argument("--neo4j-uri", default=os.environ.get("NEO4J_URI"))
    p.add_argument("--neo4j-user", default=os.environ.get("NEO4J_USER", "neo4j"))
    p.add_argument("--neo4j-password", default=os.environ.get("NEO4J_PASSWORD", ""))
    p.add_argument("--neo4j-dir", help="the scripts/neo4j.sh instance dir, to report Neo4j's CPU")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
