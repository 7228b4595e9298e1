"""Real `identity-server` processes on one database (the replica tests and `bench/bench_replicas.py`),
a client that spreads calls over them as a load balancer would, and the graph invariants checked
from the stored tables afterwards."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from identity_graph.model import LinkKind
from identity_graph.store.base import GraphStore
from stubs.identity.v1 import identity_pb2 as ipb
from stubs.identity.v1 import identity_pb2_grpc as ipb_grpc
from stubs.session.v1 import session_pb2 as spb
from stubs.session.v1 import session_pb2_grpc as spb_grpc

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 120.0


@dataclass
class Replica:
    """One server process and a channel to it."""

    proc: subprocess.Popen[str]
    lines: queue.Queue[str]
    port: int = 0
    channel: grpc.Channel | None = None
    identity: ipb_grpc.IdentityServiceStub | None = None
    session: spb_grpc.SessionServiceStub | None = None
    pump: threading.Thread | None = None
    killed: bool = False

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no drain, no cleanup, as a crashed host."""
        self.killed = True  # before the signal: calls failing from now on were cut by it
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)


def database_args(backend: str, db_path: Path, neo4j: Any = None) -> tuple[list[str], dict[str, str]]:
    """The server arguments and environment for one database of `backend`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
    if backend == "sqlite":
        return ["--db", str(db_path)], env
    # the driver's routing scheme, as for a cluster (a single server answers it as a one-member one)
    uri = neo4j.uri.replace("bolt://", "neo4j://", 1)
    return ["--neo4j-uri", uri, "--neo4j-user", neo4j.user], {**env, "NEO4J_PASSWORD": neo4j.password}


def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line)


def start(n: int, db_args: Sequence[str], env: dict[str, str], extra: Sequence[str] = ()) -> list[Replica]:
    """Starts `n` servers on free loopback ports (all at once) and waits until each listens."""
    replicas = []
    for _ in range(n):
        proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "server.py"),
                "--address",
                "127.0.0.1:0",
                *db_args,
                "--housekeeping-interval",
                "0",
                "--grace",
                "2",
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=ROOT,
        )
        lines: queue.Queue[str] = queue.Queue()
        pump = threading.Thread(target=_pump, args=(proc, lines), daemon=True)
        pump.start()
        replicas.append(Replica(proc, lines, pump=pump))
    deadline = time.monotonic() + START_TIMEOUT_S
    for r in replicas:
        while not r.port:
            try:
                line = r.lines.get(timeout=1)
            except queue.Empty:
                if not r.alive or time.monotonic() > deadline:
                    stop(replicas)
                    raise AssertionError(f"a replica did not start (exit {r.proc.poll()})") from None
                continue
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if record.get("msg") == "listening":
                    r.port = int(record["port"])
        r.channel = grpc.insecure_channel(f"127.0.0.1:{r.port}")
        r.identity = ipb_grpc.IdentityServiceStub(r.channel)
        r.session = spb_grpc.SessionServiceStub(r.channel)
    return replicas


def stop(replicas: Sequence[Replica]) -> None:
    for r in replicas:
        if r.alive:
            r.proc.send_signal(signal.SIGTERM)
    for r in replicas:
        try:
            r.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            r.proc.kill()
            r.proc.wait()
        if r.channel is not None:
            r.channel.close()
        if r.pump is not None:
            r.pump.join(timeout=10)
        if r.proc.stdout is not None:
            r.proc.stdout.close()


@contextlib.contextmanager
def cluster(
    n: int, db_args: Sequence[str], env: dict[str, str], extra: Sequence[str] = ()
) -> Iterator[list[Replica]]:
    replicas = start(n, db_args, env, extra)
    try:
        yield replicas
    finally:
        stop(replicas)


def ident(key: str) -> ipb.Identifier:
    type_, _, value = key.partition(":")
    return ipb.Identifier(type=type_, value=value)


# ---- what must hold afterwards ------------------------------------------------------------------


@dataclass
class GraphCheck:
    """The graph's invariants, recomputed from the stored links (not from what servers said)."""

    identifiers: int = 0
    components: int = 0
    problems: list[str] = field(default_factory=list)


def check_graph(store: GraphStore) -> GraphCheck:
    """Every identifier's customer id is that of its component over active merging links between
    non-generic identifiers; one customer id per component, no id on two components, no customer
    record left without identifiers unless it became an alias (a duplicate); the event
    log's sequence numbers are 1..N without a gap."""
    tables = store.export_tables()
    nodes = {r["key"]: r for r in tables["identifiers"].to_pylist()}
    parent = {k: k for k in nodes}

    def root(k: str) -> str:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for lk in tables["links"].to_pylist():
        a, b = lk["a"], lk["b"]
        if (
            lk["removed_at"] is None
            and LinkKind.parse(lk["kind"]).merges
            and a in nodes
            and b in nodes
            and not nodes[a]["generic"]
            and not nodes[b]["generic"]
        ):
            parent[root(a)] = root(b)
    comps: dict[str, list[str]] = {}
    for k in nodes:
        comps.setdefault(root(k), []).append(k)
    out = GraphCheck(len(nodes), len(comps))
    owner: dict[str, str] = {}
    for members in comps.values():
        ids = {nodes[k]["customer_id"] for k in members}
        if len(ids) != 1 or None in ids:
            out.problems.append(f"component {sorted(members)[:4]} has customer ids {sorted(map(str, ids))}")
            continue
        cid = ids.pop()
        if cid in owner:
            out.problems.append(f"customer {cid} holds two components ({owner[cid]}, {members[0]})")
        owner[cid] = members[0]
    # A customer record that no identifier holds and that is no alias was a duplicate: a write
    # created it for a component that another write (settled from a stale read) gave another id.
    aliased = set(tables["aliases"].column("alias").to_pylist())
    for c in tables["customers"].column("id").to_pylist():
        if c not in owner and c not in aliased:
            out.problems.append(f"customer {c} holds no identifier and is no alias")
    seqs = tables["events"].column("seq").to_pylist()
    if sorted(seqs) != list(range(1, len(seqs) + 1)):
        out.problems.append(f"event seqs are not 1..{len(seqs)} (max {max(seqs, default=0)})")
    return out


# ---- a mixed, overlapping workload --------------------------------------------------------------

OK_REFUSALS = frozenset(
    {
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.PERMISSION_DENIED,
    }
)
"""Answers that are part of the workload (an unlink of a pair no longer linked, a split that leaves
one piece, a stale version), not failures."""

RPC_TIMEOUT_S = 60.0


@dataclass
class Acknowledged:
    """What the servers said they wrote (OK answers only): each must be in the store afterwards."""

    identifiers: set[str] = field(default_factory=set)
    links: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    conversations: dict[str, str] = field(default_factory=dict)  # id -> the cookie it came in on
    turns: dict[tuple[str, int], str] = field(default_factory=dict)  # (conversation, seq) -> text
    failures: list[str] = field(default_factory=list)
    refused: int = 0
    redirected: int = 0
    calls: int = 0


class Workload:
    """`n` overlapping Resolve / Link / Unlink / Split / StartOrResume / AppendTurn calls over a
    small set of identifiers (so that calls meet on the same customers), from `threads` client
    threads; call i goes to replica i mod len(replicas), and to the next live one when that one
    is down (as a load balancer retries a refused connection)."""

    def __init__(
        self, replicas: Sequence[Replica], n: int, *, threads: int = 12, seed: int = 7, universe: int = 12
    ) -> None:
        import random

        self.replicas = list(replicas)
        self.n = n
        self.threads = threads
        self.ack = Acknowledged()
        self.done = 0
        self.halfway = threading.Event()
        self._lock = threading.Lock()
        self._next = 0
        self._pairs: set[tuple[str, str]] = set()  # pairs some OK answer linked
        rng = random.Random(seed)
        self.cookies = [f"web_cookie:ck{i}" for i in range(universe)]
        self.emails = [f"email:p{i}@example.com" for i in range(universe)]
        self.phones = [f"phone:+1415555{i:04d}" for i in range(universe)]
        self.ops = [rng.random() for _ in range(n)]
        self.picks = [(rng.randrange(universe), rng.randrange(universe), rng.random()) for _ in range(n)]

    def run(self) -> Acknowledged:
        workers = [threading.Thread(target=self._worker) for _ in range(self.threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return self.ack

    def _worker(self) -> None:
        while True:
            with self._lock:
                i = self._next
                if i >= self.n:
                    return
                self._next += 1
            self._one(i)
            with self._lock:
                self.done += 1
                if self.done >= self.n // 2:
                    self.halfway.set()

    def _call(self, i: int, method: str, request: Any) -> Any:
        """The call on replica i mod N, or the next live one; None for a refusal in `OK_REFUSALS`."""
        for step in range(len(self.replicas)):
            r = self.replicas[(i + step) % len(self.replicas)]
            stub = r.identity if hasattr(r.identity, method) else r.session
            try:
                return getattr(stub, method)(request, timeout=RPC_TIMEOUT_S)
            except grpc.RpcError as e:
                code = e.code()  # type: ignore[attr-defined]
                if code in OK_REFUSALS:
                    with self._lock:
                        self.ack.refused += 1
                    return None
                if code is grpc.StatusCode.UNAVAILABLE and r.killed:
                    with self._lock:
                        self.ack.redirected += 1
                    continue  # a killed replica: its write may or may not have happened
                with self._lock:
                    self.ack.failures.append(
                        f"{method} on replica {(i + step) % len(self.replicas)}: {code.name} {e.details()}"
                    )  # type: ignore[attr-defined]
                return None
        with self._lock:
            self.ack.failures.append(f"{method}: no replica answered")
        return None

    def _linked_pair(self, x: float) -> tuple[str, str] | None:
        with self._lock:
            pairs = sorted(self._pairs)
        return pairs[int(x * len(pairs))] if pairs else None

    def _one(self, i: int) -> None:
        op, (a, b, x) = self.ops[i], self.picks[i]
        ack = self.ack
        with self._lock:
            ack.calls += 1
        if op < 0.30:  # a web form: a cookie with a typed email or phone (an observed link)
            other = self.emails[b] if x < 0.5 else self.phones[b]
            # half the visitors are new: a new cookie joins a customer that others change now
            keys = [self.cookies[a] if x < 0.25 or x >= 0.75 else f"web_cookie:new{i}", other]
            res = self._call(
                i, "Resolve", ipb.ResolveRequest(channel="web", identifiers=[ident(k) for k in keys])
            )
            if res is not None:
                with self._lock:
                    ack.identifiers.update(keys)
                    ack.links.update(lk.link_id for lk in res.links)
                    self._pairs.update(
                        (f"{lk.a.type}:{lk.a.value}", f"{lk.b.type}:{lk.b.value}") for lk in res.links
                    )
        elif op < 0.45:  # a returning visitor: one identifier (the read path when known)
            key = self.cookies[a]
            if (
                self._call(i, "Resolve", ipb.ResolveRequest(channel="web", identifiers=[ident(key)]))
                is not None
            ):
                with self._lock:
                    ack.identifiers.add(key)
        elif op < 0.55:  # a CRM record: email and phone of one person, verified
            req = ipb.LinkRequest(
                a=ident(self.emails[a]),
                b=ident(self.phones[b]),
                kind=ipb.LINK_KIND_VERIFIED,
                source="crm",
                actor="replica-test",
            )
            res = self._call(i, "Link", req)
            if res is not None:
                with self._lock:
                    ack.links.update(lk.link_id for lk in res.links)
                    if res.links:
                        ack.identifiers.update((self.emails[a], self.phones[b]))
                    self._pairs.update(
                        (f"{lk.a.type}:{lk.a.value}", f"{lk.b.type}:{lk.b.value}") for lk in res.links
                    )
        elif op < 0.63:  # an analyst removes a link that was made
            pair = self._linked_pair(x)
            if pair is not None:
                res = self._call(
                    i,
                    "Unlink",
                    ipb.UnlinkRequest(
                        a=ident(pair[0]), b=ident(pair[1]), actor="replica-test", reason="test"
                    ),
                )
                if res is not None:
                    with self._lock:
                        ack.removed.update(lk.link_id for lk in res.links)
        elif op < 0.68:  # an analyst splits a customer at a link
            pair = self._linked_pair(x)
            if pair is not None:
                self._call(
                    i,
                    "Split",
                    ipb.SplitRequest(
                        cut=[ipb.IdentifierPair(a=ident(pair[0]), b=ident(pair[1]))], actor="replica-test"
                    ),
                )
        elif op < 0.84:  # a chat starts or resumes on a cookie
            key = self.cookies[a]
            res = self._call(
                i, "StartOrResume", spb.StartOrResumeRequest(channel="web", identifiers=[ident(key)])
            )
            if res is not None:
                with self._lock:
                    ack.identifiers.add(key)
                    ack.conversations[res.conversation.conversation_id] = key
        else:  # a turn in a conversation some call started
            with self._lock:
                convs = sorted(ack.conversations.items())
            if not convs:
                return
            cid, key = convs[int(x * len(convs))]
            text = f"turn {i}"
            res = self._call(
                i,
                "AppendTurn",
                spb.AppendTurnRequest(
                    conversation_id=cid,
                    caller=spb.Caller(channel="web", identifier=ident(key)),
                    role=spb.ROLE_CUSTOMER,
                    text=text,
                ),
            )
            if res is not None:
                with self._lock:
                    ack.turns[(cid, res.turn.seq)] = text


def lost_writes(ack: Acknowledged, store: GraphStore, conversations: Any) -> list[str]:
    """What an OK answer said was written but the store does not hold."""
    lost: list[str] = []
    tables = store.export_tables()
    keys = set(tables["identifiers"].column("key").to_pylist())
    links = {r["link_id"]: r for r in tables["links"].to_pylist()}
    lost += [f"identifier {k}" for k in sorted(ack.identifiers - keys)]
    lost += [f"link {lid}" for lid in sorted(ack.links - set(links))]
    lost += [
        f"removal of {lid}"
        for lid in sorted(ack.removed)
        if lid not in links or links[lid]["removed_at"] is None
    ]
    for cid in sorted(ack.conversations):
        if conversations.get(cid) is None:
            lost.append(f"conversation {cid}")
    by_conv: dict[str, dict[int, str]] = {}
    for (cid, seq), text in ack.turns.items():
        if cid not in by_conv:
            by_conv[cid] = {t.seq: t.text for t in conversations.turns(cid)}
        if by_conv[cid].get(seq) != text:
            lost.append(f"turn {seq} of {cid}")
    return lost
