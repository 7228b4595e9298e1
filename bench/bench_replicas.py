"""Throughput of several `identity-server` processes on one database (README, "Several servers on
one database"), through real servers and real stubs.

    # --workers: known Resolve on the embedded store, 1 worker against 2, alternating rounds
    .venv/bin/python bench/bench_replicas.py workers --seconds 8 --rounds 3
    # Neo4j ($NEO4J_URI, $NEO4J_USER, $NEO4J_PASSWORD; the database is wiped!): known Resolve,
    # StartOrResume and a merge-heavy workload with 1, 2 and 3 replicas
    .venv/bin/python bench/bench_replicas.py neo4j --seconds 8 --rounds 2

The client keeps `--concurrency` calls in flight (futures, one thread) over one channel per
server connection; several channels to one port get their own TCP connections, which the kernel
spreads over `--workers` processes. Prints calls/s per round and the median per configuration,
with the load average (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from replica_cluster import cluster, database_args, ident  # noqa: E402

from stubs.identity.v1 import identity_pb2 as ipb  # noqa: E402
from stubs.identity.v1 import identity_pb2_grpc as ipb_grpc  # noqa: E402
from stubs.session.v1 import session_pb2 as spb  # noqa: E402
from stubs.session.v1 import session_pb2_grpc as spb_grpc  # noqa: E402

KNOWN = 200  # known identifiers the read workloads cycle through


def channels(ports: Sequence[int], per_port: int) -> list[grpc.Channel]:
    return [grpc.insecure_channel(f"127.0.0.1:{p}", options=[("grpc.use_local_subchannel_pool", 1)])
            for p in ports for _ in range(per_port)]


def drive(chans: Sequence[grpc.Channel], make: Callable[[int, grpc.Channel], Any], seconds: float,
          concurrency: int) -> float:
    """Calls/s: `make(i, channel)` starts call i (a future); `concurrency` stay in flight."""
    done = 0
    errors = 0
    lock = threading.Lock()
    slots = threading.Semaphore(concurrency)
    stop_at = time.monotonic() + seconds
    i = 0

    def finished(fut: Any) -> None:
        nonlocal done, errors
        with lock:
            if fut.exception() is None:
                done += 1
            else:
                errors += 1
        slots.release()

    started = time.monotonic()
    while time.monotonic() < stop_at:
        slots.acquire()
        make(i, chans[i % len(chans)]).add_done_callback(finished)
        i += 1
    for _ in range(concurrency):
        slots.acquire()
    elapsed = time.monotonic() - started
    if errors:
        print(f"  ({errors} calls failed)", file=sys.stderr)
    return done / elapsed


_KNOWN_RESOLVE = [
    ipb.ResolveRequest(channel="web", identifiers=[ident(f"web_cookie:known{k}")]).SerializeToString()
    for k in range(KNOWN)]


def resolve_known(i: int, ch: grpc.Channel) -> Any:
    """Pre-serialised request, unparsed response: the client spends as little CPU as it can
    (it shares the machine's two cores with the servers)."""
    call = ch.unary_unary("/identity.v1.IdentityService/Resolve")
    return call.future(_KNOWN_RESOLVE[i % KNOWN], timeout=60)


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU of `pids` and their children so far."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def server_pids(root: int) -> list[int]:
    """`root` and its children (the workers of `--workers N`)."""
    pids = [root]
    for task in Path(f"/proc/{root}/task").iterdir():
        pids += [int(p) for p in (task / "children").read_text().split()]
    return pids


def start_or_resume(i: int, ch: grpc.Channel) -> Any:
    key = f"web_cookie:known{i % KNOWN}"
    return spb_grpc.SessionServiceStub(ch).StartOrResume.future(
        spb.StartOrResumeRequest(channel="web", identifiers=[ident(key)]), timeout=60)


def merge_heavy(run: str) -> Callable[[int, grpc.Channel], Any]:
    """Every call merges: a new cookie with the email of an earlier call's customer, or a
    verified email-phone pair joining two customers (chains of 4, then a new chain)."""
    def make(i: int, ch: grpc.Channel) -> Any:
        chain, step = divmod(i, 4)
        stub = ipb_grpc.IdentityServiceStub(ch)
        if step % 2 == 0:
            return stub.Resolve.future(ipb.ResolveRequest(channel="web", identifiers=[
                ident(f"web_cookie:{run}-{i}"), ident(f"email:{run}-{chain}-{step // 2}@example.com")]),
                timeout=60)
        return stub.Link.future(ipb.LinkRequest(
            a=ident(f"email:{run}-{chain}-{step // 2}@example.com"),
            b=ident(f"email:{run}-{chain}-{(step // 2) + 1}@example.com" if step == 1
                    else f"phone:+1415{chain % 10_000_000:07d}"),
            kind=ipb.LINK_KIND_VERIFIED, source="crm", actor="bench"), timeout=60)
    return make


def preload(port: int) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = ipb_grpc.IdentityServiceStub(ch)
        sessions = spb_grpc.SessionServiceStub(ch)
        for k in range(KNOWN):
            stub.Resolve(ipb.ResolveRequest(channel="web", identifiers=[
                ident(f"web_cookie:known{k}"), ident(f"email:known{k}@example.com")]), timeout=60)
            sessions.StartOrResume(spb.StartOrResumeRequest(
                channel="web", identifiers=[ident(f"web_cookie:known{k}")]), timeout=60)


def busy_cores() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / tick, sum(fields) / tick


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[0]


def bench_workers(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    db_args, env = database_args("sqlite", tmp / "identity.db")
    with cluster(1, db_args, env) as (one,):
        preload(one.port)
    results: dict[int, list[float]] = {1: [], 2: []}
    for rnd in range(args.rounds):
        for workers in (1, 2):
            with cluster(1, db_args, env, ["--workers", str(workers)]) as (server,):
                chans = channels([server.port], 4)
                drive(chans, resolve_known, 1.0, args.concurrency)  # warm up every connection
                pids = server_pids(server.proc.pid)
                cpu, mine, machine, t0 = cpu_seconds(pids), os.times(), busy_cores(), time.monotonic()
                rate = drive(chans, resolve_known, args.seconds, args.concurrency)
                wall = time.monotonic() - t0
                per_call = (cpu_seconds(pids) - cpu) / (rate * args.seconds) * 1000
                after = os.times()
                client = ((after.user + after.system) - (mine.user + mine.system)) / (rate * wall) * 1000
                busy = (busy_cores()[0] - machine[0]) / wall
                for ch in chans:
                    ch.close()
            results[workers].append(rate)
            print(f"round {rnd + 1}: {workers} worker(s): {rate:7.0f} known Resolve/s, server CPU "
                  f"{per_call:.2f} ms/call, client CPU {client:.2f} ms/call, machine busy "
                  f"{busy:.2f} of {os.cpu_count()} cores (load {loadavg()})", flush=True)
    one, two = statistics.median(results[1]), statistics.median(results[2])
    print(f"median: 1 worker {one:.0f}/s, 2 workers {two:.0f}/s: x{two / one:.2f}")


def bench_workers_ghz(args: argparse.Namespace) -> None:
    """The same comparison driven by `ghz` (Go, 8 connections): a client far cheaper per call than
    Python's, so the servers, not the client, take the machine. One known cookie for every call."""
    import json

    ghz = ROOT / ".gotools" / "bin" / "ghz"
    tmp = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    db_args, env = database_args("sqlite", tmp / "identity.db")
    with cluster(1, db_args, env) as (one,):
        preload(one.port)
    data = json.dumps({"channel": "web", "identifiers": [{"type": "web_cookie", "value": "known7"}]})
    results: dict[int, list[float]] = {1: [], 2: []}
    for rnd in range(args.rounds):
        for workers in (1, 2):
            with cluster(1, db_args, env, ["--workers", str(workers)]) as (server,):
                pids = server_pids(server.proc.pid)

                def run(seconds: float) -> dict[str, Any]:
                    out = subprocess.run(
                        [str(ghz), "--insecure", "--call", "identity.v1.IdentityService.Resolve",
                         "-d", data, "--connections", "8", "-c", str(args.concurrency), "-z",
                         f"{seconds}s", "-O", "json", f"127.0.0.1:{server.port}"],
                        capture_output=True, text=True, check=True)
                    return json.loads(out.stdout)

                run(1.0)  # warm up
                cpu, machine, t0 = cpu_seconds(pids), busy_cores(), time.monotonic()
                report = run(args.seconds)
                wall = time.monotonic() - t0
                rate = float(report["rps"])
                per_call = (cpu_seconds(pids) - cpu) / (rate * wall) * 1000
                busy = (busy_cores()[0] - machine[0]) / wall
                errors = sum(v for k, v in report.get("statusCodeDistribution", {}).items() if k != "OK")
            results[workers].append(rate)
            print(f"round {rnd + 1}: {workers} worker(s): {rate:7.0f} known Resolve/s (ghz), server "
                  f"CPU {per_call:.2f} ms/call, machine busy {busy:.2f} of {os.cpu_count()} cores, "
                  f"{errors} errors (load {loadavg()})", flush=True)
    one, two = statistics.median(results[1]), statistics.median(results[2])
    print(f"median (ghz): 1 worker {one:.0f}/s, 2 workers {two:.0f}/s: x{two / one:.2f}")


def profile(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """py-spy, sampling `pid` (and its native grpc threads' Python frames) into collapsed stacks."""
    return subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid),
                             "--duration", str(int(seconds)), "--format", "raw", "--nonblocking",
                             "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


BUCKETS = (("neo4j driver (Bolt I/O, packstream)", "neo4j/"), ("grpc / asyncio", "grpc"),
           ("engine + stores", "identity_graph/"), ("session service", "session/"),
           ("protobuf", "protobuf"))


def summarise(collapsed: Path) -> str:
    """Where the samples were: the share of stacks through each part, and the top leaf frames."""
    total = 0
    buckets = dict.fromkeys((b for b, _ in BUCKETS), 0)
    leaves: dict[str, int] = {}
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        for name, needle in BUCKETS:
            if needle in stack:
                buckets[name] += n
                break
        leaf = stack.rsplit(";", 1)[-1]
        leaves[leaf] = leaves.get(leaf, 0) + n
    lines = [f"  {name}: {100 * n / max(total, 1):.0f}% of samples" for name, n in buckets.items()]
    top = sorted(leaves.items(), key=lambda kv: -kv[1])[:8]
    lines += [f"    leaf {100 * n / max(total, 1):4.1f}%  {leaf}" for leaf, n in top]
    return "\n".join(lines)


def bench_neo4j(args: argparse.Namespace) -> None:
    from identity_graph.store import open_store

    class Server:
        uri = os.environ["NEO4J_URI"]
        user = os.environ.get("NEO4J_USER", "neo4j")
        password = os.environ.get("NEO4J_PASSWORD", "")

    store = open_store(neo4j_uri=Server.uri, neo4j_user=Server.user, neo4j_password=Server.password)
    store.clear()
    store.close()
    db_args, env = database_args("neo4j", Path("."), Server)
    workloads: dict[str, Callable[[int, grpc.Channel], Any] | None] = {
        "known Resolve": resolve_known, "StartOrResume": start_or_resume, "merge-heavy": None}
    results: dict[tuple[str, int], list[float]] = {}
    with cluster(1, db_args, env) as (first,):
        preload(first.port)
    for rnd in range(args.rounds):
        for n in (1, 2, 3):
            with cluster(n, db_args, env) as replicas:
                chans = channels([r.port for r in replicas], 2)
                drive(chans, resolve_known, 1.0, args.concurrency)
                for name, make in workloads.items():
                    make = make or merge_heavy(f"r{rnd}n{n}")
                    spy = None
                    if args.profile and rnd == 0 and n == 1 and name != "merge-heavy":
                        out = Path(args.profile) / f"{name.replace(' ', '_')}.txt"
                        spy = profile(replicas[0].proc.pid, args.seconds, out)
                    rate = drive(chans, make, args.seconds, args.concurrency)
                    if spy is not None:
                        spy.wait()
                        print(f"profile of one replica, {name}:\n{summarise(out)}", flush=True)
                    results.setdefault((name, n), []).append(rate)
                    print(f"round {rnd + 1}: {n} replica(s): {name:14s} {rate:7.0f} calls/s "
                          f"(load {loadavg()})", flush=True)
                for ch in chans:
                    ch.close()
    for name in workloads:
        base = statistics.median(results[(name, 1)])
        row = ", ".join(f"{n}: {statistics.median(results[(name, n)]):.0f}/s "
                        f"(x{statistics.median(results[(name, n)]) / base:.2f})" for n in (1, 2, 3))
        print(f"median {name}: {row}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=("workers", "workers-ghz", "neo4j"))
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--profile", help="neo4j: py-spy the 1-replica read rounds into this folder")
    args = p.parse_args()
    {"workers": bench_workers, "workers-ghz": bench_workers_ghz, "neo4j": bench_neo4j}[args.mode](args)


if __name__ == "__main__":
    main()
