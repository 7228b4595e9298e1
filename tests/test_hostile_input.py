"""Hostile input through the real server on both backends: the request limits, every RPC fuzzed
with messages built from its descriptor, and injection-looking strings stored byte-for-byte."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory, text_format
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from identity_graph.api.wire import UNPARSEABLE_DETAIL
from identity_graph.attributes import MAX_ATTRIBUTE_LENGTH, MAX_ATTRIBUTES
from identity_graph.config import GraphConfig
from identity_graph.engine import MAX_IDENTIFIERS_PER_CALL, IdentityGraph
from identity_graph.identifiers import MAX_VALUE_LENGTH, IdentifierTypes
from identity_graph.store.base import GraphStore
from server import SERVICE_NAMES, BackgroundServer
from session.service import MAX_SLOTS, MAX_TURN_TEXT, Sessions
from session.store import conversation_store_for
from stubs.identity.v1 import batch_pb2
from stubs.identity.v1 import identity_pb2 as ipb
from stubs.identity.v1 import identity_pb2_grpc as ipb_grpc
from stubs.session.v1 import session_pb2 as spb
from stubs.session.v1 import session_pb2_grpc as spb_grpc

TIMEOUT = 30.0
# Examples per service per backend; each example calls every RPC of the service once.
FUZZ_EXAMPLES = int(os.environ.get("HOSTILE_FUZZ_EXAMPLES", "25"))
GRPC_MAX_MESSAGE = 4 * 1024 * 1024  # grpc's default max receive size, which the server keeps
STREAM_GRACE_S = 0.15  # a server stream still open after this was accepted
MAX_DEPTH = 4
MAX_PAGE_SIZE = 100

OK = grpc.StatusCode.OK
ALLOWED = {
    OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}

# Every service the server registers (an AdminService too, once server.py serves one).
_ = (ipb, spb, batch_pb2)  # imported for their descriptors
SERVICES = {
    name.rpartition(".")[2]: descriptor_pool.Default().FindServiceByName(name) for name in SERVICE_NAMES
}


# ---- a real server over the `store` fixture ----------------------------------------------------


@dataclass
class Client:
    store: GraphStore
    sessions: Sessions
    server: BackgroundServer
    channel: grpc.Channel
    identity: ipb_grpc.IdentityServiceStub
    session: spb_grpc.SessionServiceStub
    health: health_pb2_grpc.HealthStub


@pytest.fixture
def client(store: GraphStore) -> Iterator[Client]:
    """The real server (housekeeping off, so that only calls change the store) and its stubs."""
    graph = IdentityGraph(store)
    sessions = Sessions(graph, conversation_store_for(store))
    srv = BackgroundServer(
        graph, sessions=sessions, housekeeping_interval_s=None, poll_interval_s=0.02, timeout_s=TIMEOUT
    )
    channel = grpc.insecure_channel(f"127.0.0.1:{srv.port}")
    try:
        grpc.channel_ready_future(channel).result(TIMEOUT)
        yield Client(
            store,
            sessions,
            srv,
            channel,
            ipb_grpc.IdentityServiceStub(channel),
            spb_grpc.SessionServiceStub(channel),
            health_pb2_grpc.HealthStub(channel),
        )
    finally:
        channel.close()
        srv.stop()


def assert_serving(client: Client) -> None:
    assert client.server.thread.is_alive()
    for name in ("", *SERVICE_NAMES):
        resp = client.health.Check(health_pb2.HealthCheckRequest(service=name), timeout=TIMEOUT)
        assert resp.status == health_pb2.HealthCheckResponse.SERVING, name


# ---- what the store holds -----------------------------------------------------------------------

Snapshot = dict[str, list[str]]


def snapshot(store: GraphStore, mask_step_up_attempts: bool = False) -> Snapshot:
    """Everything the database holds: the graph tables (`export_tables`) and, read through the
    backend's own connection, every table (SQLite) or every node and relationship (Neo4j), which
    covers the conversation store that lives beside the graph."""
    out = {
        f"graph.{name}": sorted(repr(row) for row in table.to_pylist())
        for name, table in store.export_tables().items()
    }
    if store.name == "sqlite":
        rows: Callable[..., list[tuple[Any, ...]]] = store.database.rows  # type: ignore[attr-defined]
        tables = rows("SELECT name FROM sqlite_master WHERE type = 'table'")
        for (t,) in sorted(tables):
            if mask_step_up_attempts and t == "attempt_counters":
                continue
            cols = [r[1] for r in rows(f'PRAGMA table_info("{t}")')
                    if not (mask_step_up_attempts and t == "step_ups" and r[1] == "attempts")]
            select = ", ".join(f'"{c}"' for c in cols)
            out[f"db.{t}"] = sorted(repr(r) for r in rows(f'SELECT {select} FROM "{t}"'))
        return out

    def node(labels: list[str], props: dict[str, Any]) -> str:
        if mask_step_up_attempts and "StepUp" in labels:
            props = {k: v for k, v in props.items() if k != "attempts"}
        return repr((sorted(labels), sorted(props.items())))

    read = store.database.read  # type: ignore[attr-defined]
    nodes = read("MATCH (n) RETURN labels(n) AS l, properties(n) AS p")
    rels = read(
        "MATCH (a)-[r]->(b) RETURN type(r) AS t, properties(r) AS p, "
        "labels(a) AS la, properties(a) AS pa, labels(b) AS lb, properties(b) AS pb",
    )
    out["neo4j.nodes"] = sorted(
        node(r["l"], r["p"])
        for r in nodes
        if not (mask_step_up_attempts and "AttemptCounter" in r["l"])
    )
    out["neo4j.relationships"] = sorted(
        repr((r["t"], sorted(r["p"].items()), node(r["la"], r["pa"]), node(r["lb"], r["pb"])))
        for r in rels
    )
    return out


def assert_same(before: Snapshot, after: Snapshot, what: str) -> None:
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    if changed:
        diff = {
            k: {
                "removed": sorted(set(before.get(k, [])) - set(after.get(k, [])))[:3],
                "added": sorted(set(after.get(k, [])) - set(before.get(k, [])))[:3],
            }
            for k in changed
        }
        raise AssertionError(f"a rejected call changed the store: {what}\n{diff}")


# ---- calling any RPC by its descriptor --------------------------------------------------------


def show(request: Message) -> str:
    text = text_format.MessageToString(request, as_utf8=True, as_one_line=True)
    return text if len(text) < 1500 else f"{text[:1500]}… ({len(text)} chars)"


def request_class(method: MethodDescriptor) -> type[Message]:
    return message_factory.GetMessageClass(method.input_type)


def invoke(channel: grpc.Channel, method: MethodDescriptor, request: Message) -> tuple[grpc.StatusCode, str]:
    """Calls one RPC and returns its final status.

    A server stream that is still open after `STREAM_GRACE_S` was accepted (WatchEvents follows the
    log until cancelled): it is cancelled and counts as OK. A Relink that streams a step started a
    real relink, which the fuzz must never do.
    """
    path = f"/{method.containing_service.full_name}/{method.name}"
    response = message_factory.GetMessageClass(method.output_type)
    if not method.server_streaming:
        rpc = channel.unary_unary(
            path,
            request_serializer=type(request).SerializeToString,
            response_deserializer=response.FromString,
        )
        try:
            rpc(request, timeout=TIMEOUT)
        except grpc.RpcError as e:
            return e.code(), e.details() or ""
        return OK, ""
    stream = channel.unary_stream(
        path, request_serializer=type(request).SerializeToString, response_deserializer=response.FromString
    )(request, timeout=TIMEOUT)
    result: dict[str, Any] = {}

    def drain() -> None:
        try:
            for item in stream:
                if method.name == "Relink":
                    result["relink"] = item.step
                    stream.cancel()
            result["status"] = (OK, "")
        except grpc.RpcError as e:
            result["status"] = (e.code(), e.details() or "")

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    reader.join(STREAM_GRACE_S)
    cancelled = reader.is_alive()
    if cancelled:
        stream.cancel()
        reader.join(TIMEOUT)
    assert "relink" not in result, f"the fuzz started a relink ({result['relink']}) with {show(request)}"
    code, details = result["status"]
    if cancelled and code is grpc.StatusCode.CANCELLED:
        return OK, ""
    return code, details


# Calls whose refusal still counts an attempt, and the codes of those refusals.
COUNTED = {
    "CompleteStepUp": {grpc.StatusCode.PERMISSION_DENIED},
    "RedeemHandoff": {grpc.StatusCode.FAILED_PRECONDITION},
}
# Calls with caps on attempts (RESOURCE_EXHAUSTED "too many ..." once reached).
CAPPED = {"CompleteStepUp", "RedeemHandoff", "StartStepUp"}


class Checker:
    """Calls RPCs, checks each final status, and checks that every rejected call left the store as
    it was. The store is read again only after a call that succeeded (it may have written)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.before: Snapshot | None = None
        self.codes: dict[str, dict[str, int]] = {}

    def __call__(self, method: MethodDescriptor, request: Message) -> grpc.StatusCode:
        store = self.client.store
        if self.before is None:
            self.before = snapshot(store)
        # A wrong step-up or handoff code is counted (counting attempts is what stops guessing);
        # nothing else may move, so that call is also compared with the counts left out.
        counted = method.name in COUNTED
        masked = snapshot(store, mask_step_up_attempts=True) if counted else None
        code, details = invoke(self.client.channel, method, request)
        what = f"{method.name}({show(request)}) → {code.name} {details!r}"
        assert code in ALLOWED, what
        if code is grpc.StatusCode.RESOURCE_EXHAUSTED:  # grpc's limit on what was sent, or a cap
            assert request.ByteSize() > GRPC_MAX_MESSAGE or (
                method.name in CAPPED and details.startswith("too many")
            ), what
        assert "Traceback" not in details and 'File "' not in details, what
        if code is grpc.StatusCode.INVALID_ARGUMENT:
            assert details.partition(":")[0].strip(), f"no field named: {what}"
        per = self.codes.setdefault(method.name, {})
        per[code.name] = per.get(code.name, 0) + 1
        if code is OK:
            self.before = None
            return code
        after = snapshot(store)
        if masked is not None and code in COUNTED[method.name]:
            assert_same(masked, snapshot(store, mask_step_up_attempts=True), what)
        else:
            assert_same(self.before, after, what)
        self.before = after
        return code


# ---- strategies: any message, from its descriptor -----------------------------------------------

HOSTILE = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\t\n\r",
    "'); DROP TABLE identifiers; --",
    "' OR '1'='1",
    "MATCH (n) DETACH DELETE n",
    "}) MATCH (n) DETACH DELETE n //",
    "$param",
    "{x: 1}",
    "\\",
    "\\x00\\'",
    "\"'`",
    "😀👨‍👩‍👧‍👦",
    "\u202eevil\u202c",
    "שלום עולם",
    "مرحبا",
    "\ufeff\u200b\u200d",
    "\U0010fffd",
    "null",
    "NaN",
    "*",
    "%s%n%x",
    "../../../../etc/passwd",
    "cus_",
    "conv_",
]
ANY_CHAR = st.characters(exclude_categories=("Cs",))  # every code point a proto string may hold
RANDOM_TEXT = st.text(ANY_CHAR, max_size=40)
LONG_TEXT = st.builds(
    lambda unit, n: (unit * n)[:n],
    st.sampled_from(["a", "😀", "\x00", " ", "ש", "ab c"]),
    st.integers(min_value=200, max_value=10_000),
)
INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_ENUM: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
EDGE_INTS = (0, 1, -1, 2, 20, 21, 100, 101, 4000, 4001, 2**31 - 1, -(2**31), 2**53 + 1)


@dataclass
class Vocabulary:
    """Values that get past the first checks, by field name, so that fuzzing reaches deeper."""

    hints: dict[str, list[str]]

    def text(self, name: str) -> st.SearchStrategy[str]:
        parts = [st.sampled_from(HOSTILE), RANDOM_TEXT, RANDOM_TEXT, LONG_TEXT]
        if self.hints.get(name):
            parts += [st.sampled_from(self.hints[name])] * 4
        return st.one_of(parts)

    def scalar(self, f: FieldDescriptor, name: str) -> st.SearchStrategy[Any]:
        if f.type == FieldDescriptor.TYPE_STRING:
            return self.text(name)
        if f.type == FieldDescriptor.TYPE_BYTES:
            return st.binary(max_size=64)
        if f.type == FieldDescriptor.TYPE_BOOL:
            return st.booleans()
        if f.type == FieldDescriptor.TYPE_DOUBLE:
            return st.floats(allow_nan=True, allow_infinity=True)
        if f.type == FieldDescriptor.TYPE_FLOAT:
            return st.floats(allow_nan=True, allow_infinity=True, width=32)
        lo, hi = INT_RANGES[f.type]
        edges = [v for v in EDGE_INTS if lo <= v <= hi] + [lo, hi]
        if f.type == FieldDescriptor.TYPE_ENUM:  # known numbers, and unknown ones (proto3 keeps them)
            edges += [v.number for v in f.enum_type.values] * 3
        return st.one_of(st.sampled_from(edges), st.integers(lo, hi))


def fill(draw: Any, vocab: Vocabulary, msg: Message, depth: int = 0) -> Message:
    """Sets a random selection of `msg`'s fields, recursively, with values of any shape."""
    for f in msg.DESCRIPTOR.fields:
        if draw(st.booleans()):
            set_field(draw, vocab, msg, f, depth)
    return msg


def set_field(draw: Any, vocab: Vocabulary, msg: Message, f: FieldDescriptor, depth: int) -> None:
    many = st.integers(0, 30 if depth == 0 else 3)
    target = getattr(msg, f.name)
    if f.message_type is not None and f.message_type.GetOptions().map_entry:
        key_f, value_f = f.message_type.fields_by_name["key"], f.message_type.fields_by_name["value"]
        for _ in range(draw(many)):
            key = draw(vocab.scalar(key_f, f"{f.name}.key"))
            if value_f.message_type is None:
                target[key] = draw(vocab.scalar(value_f, f"{f.name}.value"))
            elif depth < MAX_DEPTH:
                fill(draw, vocab, target[key], depth + 1)
            else:
                target[key].SetInParent()
        return
    if f.is_repeated:
        for _ in range(draw(many)):
            if f.message_type is None:
                target.append(draw(vocab.scalar(f, f.name)))
            elif depth < MAX_DEPTH:
                fill(draw, vocab, target.add(), depth + 1)
            else:
                target.add()
        return
    if f.message_type is not None:
        target.SetInParent()
        if depth < MAX_DEPTH:
            fill(draw, vocab, target, depth + 1)
        return
    setattr(msg, f.name, draw(vocab.scalar(f, f.name)))


def mutate(draw: Any, vocab: Vocabulary, msg: Message, depth: int = 0) -> None:
    """Breaks one field of an otherwise valid message (perhaps one nested inside it)."""
    f = draw(st.sampled_from(list(msg.DESCRIPTOR.fields)))
    is_message = f.message_type is not None and not f.is_repeated
    if is_message and msg.HasField(f.name) and draw(st.booleans()):
        mutate(draw, vocab, getattr(msg, f.name), depth + 1)
        return
    msg.ClearField(f.name)
    if draw(st.integers(0, 4)):  # mostly a new value, sometimes just the field left out
        set_field(draw, vocab, msg, f, depth)


# ---- a seeded store, and requests that are valid against it -------------------------------------

COOKIE, EMAIL, PHONE = "web_cookie:hx-ck-1", "email:hx.ann@example.com", "phone:+14155550188"
ANN = {"first_name": "Ann", "last_name": "Lee", "date_of_birth": "1980-02-03"}


def ident(key: str) -> ipb.Identifier:
    type_, _, value = key.partition(":")
    return ipb.Identifier(type=type_, value=value)


def key_of(i: ipb.Identifier) -> str:
    return f"{i.type}:{i.value}"


def web(key: str = COOKIE) -> spb.Caller:
    return spb.Caller(channel="web", identifier=ident(key))


def ts(dt: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(dt)
    return out


@dataclass
class Seed:
    customer_id: str
    conversation_id: str
    handoff_code: str
    step_up_id: str


def seed(client: Client) -> Seed:
    """A customer with three identifiers, a conversation with a turn, consent, an open handoff code
    and an open step-up, written through the API."""
    resolved = client.identity.Resolve(
        ipb.ResolveRequest(
            channel="web", identifiers=[ident(k) for k in (COOKIE, EMAIL, PHONE)], attributes=ANN
        ),
        timeout=TIMEOUT,
    )
    started = client.session.StartOrResume(
        spb.StartOrResumeRequest(channel="web", identifiers=[ident(COOKIE)]), timeout=TIMEOUT
    )
    conv = started.conversation.conversation_id
    client.session.AppendTurn(
        spb.AppendTurnRequest(conversation_id=conv, caller=web(), role=spb.ROLE_CUSTOMER, text="hello"),
        timeout=TIMEOUT,
    )
    client.session.RecordConsent(
        spb.RecordConsentRequest(
            identifier=ident(PHONE), channel="sms", purpose="*", granted=True, source="seed"
        ),
        timeout=TIMEOUT,
    )
    ticket = client.session.CreateHandoff(
        spb.CreateHandoffRequest(conversation_id=conv, caller=web(), channel="sms"), timeout=TIMEOUT
    )
    step = client.session.StartStepUp(
        spb.StartStepUpRequest(caller=web(), conversation_id=conv, channel="sms"), timeout=TIMEOUT
    )
    return Seed(resolved.customer_id, conv, ticket.code, step.step_up_id)


def vocabulary(s: Seed) -> Vocabulary:
    types = list(IdentifierTypes.BUILT_IN)
    values = [key.partition(":")[2] for key in (COOKIE, EMAIL, PHONE)]
    return Vocabulary(
        {
            "type": [*types, "EMAIL", "email:", " phone", "twitter"],
            "value": [
                *values,
                "ann@example.com",
                "+1 415 555 0101",
                "whatsapp:+14155550101",
                "crm/1",
                "test@test.com",
                "0000000000",
                "anonymous",
                "x" * (MAX_VALUE_LENGTH + 1),
            ],
            "channel": [*GraphConfig().channels, "WEB", "web ", "telegram"],
            "kind": ["login", "otp", "handoff"],
            "customer_id": [s.customer_id, "cus_", "cus_missing", s.customer_id + "\x00"],
            "conversation_id": [s.conversation_id, "conv_missing", " " + s.conversation_id],
            "code": [s.handoff_code, s.handoff_code.lower(), "0" * 8, "x" * 65],
            "step_up_id": [s.step_up_id, "stp_missing"],
            "page_token": [
                "2024-01-01T00:00:00+00:00|conv_x",
                "2024-01-01|conv_x",
                "9999-12-31T23:59:59-14:00|conv_x",
                "0001-01-01T00:00:00+14:00|conv_x",
                "|",
                "x|y",
            ],
            "purpose": ["*", "delivery_updates", "p" * 65],
            "types": ["link", "merge", "split", "alias", "customer_created"],
            "attributes.key": [*ANN, "street", "postcode", "country", "nick_name", "1bad", "a" * 65],
            "attributes.value": ["Ann", "1980-02-30", "2999-01-01", "Lee", "x" * (MAX_ATTRIBUTE_LENGTH + 1)],
            "actor": ["fuzz", "agent-7"],
            "source": ["fuzz", "crm"],
            "reason": ["fuzz"],
            "model_path": ["/nonexistent/model.json", "a" * 300, "bad\x00path", "/", "."],
        }
    )


def valid_requests(s: Seed) -> dict[str, Callable[[], Message]]:
    """One request per RPC that the seeded store accepts (or refuses only for its state)."""
    now = datetime.now(UTC)
    state = spb.State(flow="return", step="label")
    state.data.update({"order": "A-1", "items": [1, 2]})
    caller = web()
    conv = s.conversation_id
    return {
        "Resolve": lambda: ipb.ResolveRequest(
            channel="web",
            identifiers=[ident(COOKIE), ident(EMAIL)],
            attributes={"first_name": "Ann"},
            actor="fuzz",
        ),
        "Link": lambda: ipb.LinkRequest(
            a=ident(COOKIE), b=ident("device_id:hx-dev-1"), kind=ipb.LINK_KIND_OBSERVED, source="fuzz",
            actor="fuzz"
        ),
        "Unlink": lambda: ipb.UnlinkRequest(a=ident(COOKIE), b=ident("device_id:hx-dev-1"), actor="fuzz"),
        "SetGeneric": lambda: ipb.SetGenericRequest(identifier=ident(EMAIL), generic=False, actor="fuzz"),
        "GetCustomer": lambda: ipb.GetCustomerRequest(customer_id=s.customer_id),
        "Explain": lambda: ipb.ExplainRequest(a=ident(COOKIE), b=ident(PHONE)),
        "PreviewSplit": lambda: ipb.SplitRequest(detach=[ident(PHONE)]),
        "Split": lambda: ipb.SplitRequest(detach=[ident(PHONE)], actor="fuzz"),
        "WatchEvents": lambda: ipb.WatchEventsRequest(from_seq=0, types=["link"]),
        "StartOrResume": lambda: spb.StartOrResumeRequest(channel="web", identifiers=[ident(COOKIE)]),
        "AppendTurn": lambda: spb.AppendTurnRequest(
            conversation_id=conv, caller=caller, role=spb.ROLE_CUSTOMER, text="where is my order?"
        ),
        "UpdateContext": lambda: spb.UpdateContextRequest(
            conversation_id=conv,
            caller=caller,
            expected_version=1,
            context=spb.Context(topic="returns", intent="start_return", slots={"order": "A-1"}),
        ),
        "UpdateState": lambda: spb.UpdateStateRequest(
            conversation_id=conv, caller=caller, expected_version=1, state=state
        ),
        "GetConversation": lambda: spb.GetConversationRequest(conversation_id=conv, caller=caller),
        "ListConversations": lambda: spb.ListConversationsRequest(caller=caller, page_size=5),
        "SuggestHandoff": lambda: spb.SuggestHandoffRequest(conversation_id=conv, caller=caller),
        "CreateHandoff": lambda: spb.CreateHandoffRequest(conversation_id=conv, caller=caller, channel="sms"),
        "RedeemHandoff": lambda: spb.RedeemHandoffRequest(
            code=s.handoff_code, channel="sms", identifiers=[ident(PHONE)], actor="fuzz"
        ),
        "StartStepUp": lambda: spb.StartStepUpRequest(caller=caller, conversation_id=conv, channel="sms"),
        "CompleteStepUp": lambda: spb.CompleteStepUpRequest(
            step_up_id=s.step_up_id, caller=caller, code="000000"
        ),
        "Escalate": lambda: spb.EscalateRequest(conversation_id=conv, caller=caller, reason="fuzz"),
        "Close": lambda: spb.CloseRequest(conversation_id=conv, caller=caller),
        "RecycleIdentifier": lambda: spb.RecycleIdentifierRequest(identifier=ident(PHONE), actor="fuzz"),
        "RecordConsent": lambda: spb.RecordConsentRequest(
            identifier=ident(PHONE), channel="sms", purpose="delivery_updates", granted=True, source="fuzz"
        ),
        "GetConsents": lambda: spb.GetConsentsRequest(identifier=ident(PHONE)),
        "GetMetrics": lambda: spb.GetMetricsRequest(
            start=ts(now - timedelta(days=1)), end=ts(now + timedelta(days=1))
        ),
        "Relink": lambda: batch_pb2.RelinkRequest(model_path="/nonexistent/model.json", dry_run=True),
        "Forget": lambda: admin_request(
            "ForgetRequest", identifier=ident(PHONE), scope=1, reason="fuzz", actor="fuzz"
        ),
        "ExportCustomerData": lambda: admin_request(
            "ExportCustomerDataRequest", customer_id=s.customer_id, actor="fuzz"
        ),
        "QueryAudit": lambda: admin_request("QueryAuditRequest", page_size=10),
    }


# Calls that would undo the seed for the rest of the run go out only with a field broken.
ALWAYS_BROKEN = {"Split", "Unlink", "Close", "RecycleIdentifier", "RedeemHandoff", "Escalate", "Forget"}


def admin_request(name: str, **fields: Any) -> Message:
    """A request of the AdminService, by its message name (the service may be newer than this file)."""
    cls = message_factory.GetMessageClass(
        descriptor_pool.Default().FindMessageTypeByName(f"identity.v1.{name}")
    )
    return cls(**fields)


def _never_a_model(path: str) -> str:
    """A model path that names no file, so that a Relink is always refused before it starts."""
    try:
        exists = Path(path).is_file()
    except (OSError, ValueError):
        exists = False
    return f"/nonexistent/{path}" if exists or not path else path


def requests_for(
    method: MethodDescriptor, vocab: Vocabulary, valid: dict[str, Callable[[], Message]]
) -> st.SearchStrategy[Message]:
    """Random messages of the method's request type, and valid ones with one field broken."""
    cls = request_class(method)

    @st.composite
    def random_message(draw: Any) -> Message:
        return fill(draw, vocab, cls())

    @st.composite
    def almost_valid(draw: Any) -> Message:
        msg = valid[method.name]() if method.name in valid else cls()
        if method.name in ALWAYS_BROKEN or draw(st.integers(0, 3)):
            mutate(draw, vocab, msg)
        return msg

    strategy = st.one_of(random_message(), almost_valid())
    if method.name == "Relink":
        return strategy.map(_relink_refused)
    return strategy


def _relink_refused(msg: Message) -> Message:
    msg.model_path = _never_a_model(msg.model_path)  # type: ignore[attr-defined]
    return msg


# ---- (b) fuzz every RPC of every service -------------------------------------------------------


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_fuzz_every_rpc(client: Client, service: str) -> None:
    """Every RPC of `service` gets random and almost-valid requests: each call ends in OK or a
    client-error status, never UNKNOWN, INTERNAL, UNAVAILABLE or DEADLINE_EXCEEDED; a rejected
    call changes nothing in the store; the server serves on afterwards."""
    s = seed(client)
    vocab = vocabulary(s)
    valid = valid_requests(s)
    methods = list(SERVICES[service].methods)
    check = Checker(client)

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.tuples(*(requests_for(m, vocab, valid) for m in methods)))
    def run(requests: tuple[Message, ...]) -> None:
        for method, request in zip(methods, requests, strict=True):
            check(method, request)

    run()
    if os.environ.get("HOSTILE_FUZZ_STATS"):
        print(f"\n{service} on {client.store.name}: {check.codes}")
    assert set(check.codes) == {m.name for m in methods}
    assert_serving(client)
    # Still usable, not only alive: a read of the seed customer goes through.
    got = client.identity.GetCustomer(ipb.GetCustomerRequest(customer_id=s.customer_id), timeout=TIMEOUT)
    assert got.customer.customer_id


# ---- (a) limits ----------------------------------------------------------------------------------


def rejected(client: Client, rpc: Callable[..., Any], request: Message, field: str) -> str:
    """Calls `rpc`, expects INVALID_ARGUMENT naming `field` in its details and an unchanged store."""
    before = snapshot(client.store)
    with pytest.raises(grpc.RpcError) as info:
        rpc(request, timeout=TIMEOUT)
    err = info.value
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT, (err.code(), err.details())
    assert err.details().partition(":")[0] == field, err.details()
    assert_same(before, snapshot(client.store), f"{field}: {err.details()}")
    return err.details()


def keys(prefix: str, n: int) -> list[ipb.Identifier]:
    return [ident(f"web_cookie:{prefix}-{i}") for i in range(n)]


def test_identifiers_per_request(client: Client) -> None:
    too_many = MAX_IDENTIFIERS_PER_CALL + 1
    rejected(
        client,
        client.identity.Resolve,
        ipb.ResolveRequest(channel="web", identifiers=keys("r", too_many)),
        "identifiers",
    )
    rejected(
        client,
        client.session.StartOrResume,
        spb.StartOrResumeRequest(channel="web", identifiers=keys("s", too_many)),
        "identifiers",
    )
    ok = client.identity.Resolve(
        ipb.ResolveRequest(channel="web", identifiers=keys("r", MAX_IDENTIFIERS_PER_CALL)), timeout=TIMEOUT
    )
    assert len(ok.identifiers) == MAX_IDENTIFIERS_PER_CALL
    rejected(client, client.identity.PreviewSplit, ipb.SplitRequest(detach=keys("r", too_many)), "detach")
    members = keys("r", 2)
    pairs = [ipb.IdentifierPair(a=members[0], b=members[1])] * too_many
    rejected(client, client.identity.Split, ipb.SplitRequest(cut=pairs, actor="ops"), "cut")


def test_redeem_handoff_refused_before_the_code_is_used(client: Client) -> None:
    """A redeem that breaks a limit or names a bad identifier is refused whole: its single-use code
    still works afterwards."""
    s = seed(client)
    bad = [
        (keys("h", MAX_IDENTIFIERS_PER_CALL + 1), "identifiers"),
        ([ident(PHONE), ipb.Identifier(type="email", value="not an email")], "identifiers[1].value"),
        ([ident("email:test@test.com")], "identifiers[0]"),  # blocked by default: it cannot link
    ]
    for identifiers, field in bad:
        req = spb.RedeemHandoffRequest(code=s.handoff_code, channel="sms", identifiers=identifiers)
        rejected(client, client.session.RedeemHandoff, req, field)
    done = client.session.RedeemHandoff(
        spb.RedeemHandoffRequest(code=s.handoff_code, channel="sms", identifiers=[ident(PHONE)]),
        timeout=TIMEOUT,
    )
    assert done.conversation.conversation_id == s.conversation_id


def test_attribute_limits(client: Client) -> None:
    def resolve(attributes: dict[str, str]) -> ipb.ResolveRequest:
        return ipb.ResolveRequest(channel="web", identifiers=[ident(COOKIE)], attributes=attributes)

    long = "x" * (MAX_ATTRIBUTE_LENGTH + 1)
    rejected(client, client.identity.Resolve, resolve({"first_name": long}), "attributes.first_name")
    rejected(client, client.identity.Resolve, resolve({"nick_name": long}), "attributes.nick_name")
    rejected(
        client,
        client.session.StartOrResume,
        spb.StartOrResumeRequest(channel="web", identifiers=[ident(COOKIE)], attributes={"city": long}),
        "attributes.city",
    )
    too_many = {f"custom_{i}": "v" for i in range(MAX_ATTRIBUTES + 1)}
    rejected(client, client.identity.Resolve, resolve(too_many), "attributes")
    rejected(client, client.identity.Resolve, resolve({"not a name": "v"}), "attributes")
    rejected(client, client.identity.Resolve, resolve({"first_name": "Ann\x00"}), "attributes.first_name")
    rejected(
        client, client.identity.Resolve, resolve({"date_of_birth": "1980-02-30"}), "attributes.date_of_birth"
    )
    at_limit = {f"custom_{i}": "v" * MAX_ATTRIBUTE_LENGTH for i in range(MAX_ATTRIBUTES)}
    assert client.identity.Resolve(resolve(at_limit), timeout=TIMEOUT).customer_id


def test_identifier_value_limit(client: Client) -> None:
    long = ipb.Identifier(type="web_cookie", value="c" * (MAX_VALUE_LENGTH + 1))
    rejected(
        client,
        client.identity.Resolve,
        ipb.ResolveRequest(channel="web", identifiers=[ident(COOKIE), long]),
        "identifiers[1].value",
    )
    rejected(client, client.identity.Explain, ipb.ExplainRequest(a=ident(COOKIE), b=long), "b.value")


def test_details_quoting_huge_input_stay_small(client: Client) -> None:
    """An error that quotes the request keeps its status and field: details are cut short, so
    grpc never drops the trailer (over 16 KiB it would answer RESOURCE_EXHAUSTED instead)."""
    for bad in ("😀" * 10_000, "t" * 20_000):
        req = ipb.ResolveRequest(channel="web", identifiers=[ipb.Identifier(type=bad, value="v")])
        details = rejected(client, client.identity.Resolve, req, "identifiers[0].type")
        assert len(details) <= 500
    if "AdminService" in SERVICES:  # QueryAudit quotes an unknown action
        method = SERVICES["AdminService"].methods_by_name["QueryAudit"]
        code, details = invoke(
            client.channel, method, admin_request("QueryAuditRequest", actions=["😀" * 10_000])
        )
        assert code is grpc.StatusCode.INVALID_ARGUMENT, (code, details)
        assert details.startswith("actions")


def test_turn_and_context_limits(client: Client) -> None:
    s = seed(client)

    def turn(**kw: Any) -> spb.AppendTurnRequest:
        fields = {"conversation_id": s.conversation_id, "caller": web(), "role": spb.ROLE_CUSTOMER,
                  "text": "hi"}
        return spb.AppendTurnRequest(**{**fields, **kw})

    rejected(client, client.session.AppendTurn, turn(text="t" * (MAX_TURN_TEXT + 1)), "text")
    rejected(client, client.session.AppendTurn, turn(text="😀" * (MAX_TURN_TEXT + 1)), "text")
    rejected(client, client.session.AppendTurn, turn(text=" \n\t"), "text")
    rejected(client, client.session.AppendTurn, turn(intent="i" * 201), "intent")
    rejected(client, client.session.AppendTurn, turn(topic="t" * 201), "topic")
    rejected(client, client.session.AppendTurn, turn(role=99), "role")
    at_limit = client.session.AppendTurn(turn(text="t" * MAX_TURN_TEXT), timeout=TIMEOUT).turn
    assert at_limit.text == "t" * MAX_TURN_TEXT

    slots = {f"s{i}": "v" for i in range(MAX_SLOTS + 1)}
    req = spb.UpdateContextRequest(
        conversation_id=s.conversation_id, caller=web(), expected_version=1, context=spb.Context(slots=slots)
    )
    rejected(client, client.session.UpdateContext, req, "context.slots")


def test_page_size_limits(client: Client) -> None:
    """page_size above 100 or negative is refused; 0 is "unset" in proto3 and means the server's
    default page (AIP-158), so it is served."""
    seed(client)
    for size in (MAX_PAGE_SIZE + 1, 10_000, -1, -(2**31)):
        rejected(
            client,
            client.session.ListConversations,
            spb.ListConversationsRequest(caller=web(), page_size=size),
            "page_size",
        )
    for size in (0, 1, MAX_PAGE_SIZE):
        got = client.session.ListConversations(
            spb.ListConversationsRequest(caller=web(), page_size=size), timeout=TIMEOUT
        )
        assert len(got.conversations) == 1
    for token in ("garbage", "9999-12-31T23:59:59-14:00|conv_x", "2024-13-01|x"):
        rejected(
            client,
            client.session.ListConversations,
            spb.ListConversationsRequest(caller=web(), page_token=token),
            "page_token",
        )


def test_watch_events_limits(client: Client) -> None:
    """WatchEvents has one limit: a negative `from_seq`. Its `types` filter takes any strings."""
    for from_seq in (-1, -(2**63)):
        stream = client.identity.WatchEvents(ipb.WatchEventsRequest(from_seq=from_seq), timeout=TIMEOUT)
        with pytest.raises(grpc.RpcError) as info:
            next(stream)
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.details().startswith("from_seq:")


def test_other_field_limits(client: Client) -> None:
    s = seed(client)
    consent = spb.RecordConsentRequest(identifier=ident(PHONE), channel="sms", purpose="p" * 65, granted=True)
    rejected(client, client.session.RecordConsent, consent, "purpose")
    redeem = spb.RedeemHandoffRequest(code="C" * 65, channel="sms", identifiers=[ident(PHONE)])
    rejected(client, client.session.RedeemHandoff, redeem, "code")
    now = datetime.now(UTC)
    rejected(client, client.session.GetMetrics, spb.GetMetricsRequest(start=ts(now), end=ts(now)), "end")
    for bad in (Timestamp(seconds=2**62), Timestamp(seconds=0, nanos=-1), Timestamp(seconds=-(2**40))):
        rejected(client, client.session.GetMetrics, spb.GetMetricsRequest(start=bad), "start")
        rejected(client, client.session.GetMetrics, spb.GetMetricsRequest(end=bad), "end")
    state = spb.State(flow="return")
    state.data.update({"n": float("nan")})
    for number in (float("nan"), float("inf"), float("-inf")):
        state.data["n"] = number
        req = spb.UpdateStateRequest(
            conversation_id=s.conversation_id, caller=web(), expected_version=1, state=state
        )
        rejected(client, client.session.UpdateState, req, "state.data")
    link = ipb.LinkRequest(
        a=ident(COOKIE),
        b=ident("device_id:d1"),
        kind=ipb.LINK_KIND_PROBABLE,
        source="s",
        actor="a",
        probability=float("nan"),
    )
    rejected(client, client.identity.Link, link, "probability")
    link.probability = 0.995
    link.match_weight = float("inf")
    rejected(client, client.identity.Link, link, "match_weight")
    typed = ipb.LinkRequest(
        a=ident(COOKIE),
        b=ipb.Identifier(type="web_cookie:x", value="y"),
        kind=ipb.LINK_KIND_OBSERVED,
        source="s",
        actor="a",
    )
    rejected(client, client.identity.Link, typed, "b.type")


def test_size_caps_name_the_field(client: Client) -> None:
    """Every free-text field has a cap (SessionPolicy / GraphConfig): state by its JSON size, so a
    customer's conversations stay readable by any client with grpc's default 4 MiB limit."""
    s = seed(client)
    policy = client.sessions.policy
    conv = client.session.GetConversation(
        spb.GetConversationRequest(conversation_id=s.conversation_id, caller=web()), timeout=TIMEOUT
    ).conversation

    def context(**kw: Any) -> spb.UpdateContextRequest:
        return spb.UpdateContextRequest(
            conversation_id=s.conversation_id, caller=web(), expected_version=conv.version,
            context=spb.Context(**kw),
        )  # fmt: skip

    def state(flow: str = "order", **data: Any) -> spb.UpdateStateRequest:
        st = spb.State(flow=flow)
        st.data.update(data)
        return spb.UpdateStateRequest(
            conversation_id=s.conversation_id, caller=web(), expected_version=conv.version, state=st
        )

    over = policy.max_state_bytes  # one value this long is over the cap once serialised
    rejected(client, client.session.UpdateState, state(blob="x" * over), "state.data")
    rejected(client, client.session.UpdateState, state(blob="é" * (over // 2)), "state.data")  # bytes
    rejected(client, client.session.UpdateState, state(flow="f" * (policy.max_flow + 1)), "state.flow")
    assert client.session.UpdateState(state(blob="x" * (over - 100)), timeout=TIMEOUT).conversation.version
    conv = client.session.GetConversation(
        spb.GetConversationRequest(conversation_id=s.conversation_id, caller=web()), timeout=TIMEOUT
    ).conversation
    update = client.session.UpdateContext
    rejected(client, update, context(topic="t" * (policy.max_topic + 1)), "context.topic")
    rejected(client, update, context(intent="i" * (policy.max_intent + 1)), "context.intent")
    long_value = {"size": "v" * (policy.max_slot_value + 1)}
    rejected(client, client.session.UpdateContext, context(slots=long_value), "context.slots.size")
    long_name = {"n" * (policy.max_slot_name + 1): "v"}
    rejected(client, client.session.UpdateContext, context(slots=long_name), "context.slots")
    reason = spb.EscalateRequest(conversation_id=s.conversation_id, caller=web(), reason="r" * 501)
    rejected(client, client.session.Escalate, reason, "reason")
    label = "l" * (client.sessions.graph.config.max_label_length + 1)
    for name in ("source", "actor", "channel", "event_id", "model_version"):
        link = ipb.LinkRequest(
            a=ident(COOKIE), b=ident("device_id:d9"), kind=ipb.LINK_KIND_OBSERVED, source="s", actor="a"
        )
        setattr(link, name, label)
        rejected(client, client.identity.Link, link, name)
    for name in ("source", "actor", "event_id"):
        resolve = ipb.ResolveRequest(channel="web", identifiers=[ident(COOKIE)])
        setattr(resolve, name, label)
        rejected(client, client.identity.Resolve, resolve, name)
    consent = spb.RecordConsentRequest(identifier=ident(PHONE), channel="sms", purpose="p", source=label)
    rejected(client, client.session.RecordConsent, consent, "source")


def test_explain_of_an_identifier_with_itself_is_invalid(client: Client) -> None:
    seed(client)
    for key in (COOKIE, "web_cookie:never-seen"):
        rejected(client, client.identity.Explain, ipb.ExplainRequest(a=ident(key), b=ident(key)), "b")
    same = ipb.ExplainRequest(a=ident(PHONE), b=ipb.Identifier(type="phone", value="(415) 555-0188"))
    rejected(client, client.identity.Explain, same, "b")  # the same once normalised


def test_nul_bytes_are_refused(client: Client) -> None:
    s = seed(client)
    conv = client.session.GetConversation(
        spb.GetConversationRequest(conversation_id=s.conversation_id, caller=web()), timeout=TIMEOUT
    ).conversation

    def turn(**kw: str) -> spb.AppendTurnRequest:
        fields = {"conversation_id": s.conversation_id, "caller": web(), "role": spb.ROLE_CUSTOMER,
                  "text": "hi"}
        return spb.AppendTurnRequest(**{**fields, **kw})

    for name in ("text", "intent", "topic"):
        rejected(client, client.session.AppendTurn, turn(**{name: NUL}), name)
    ctx = spb.UpdateContextRequest(
        conversation_id=s.conversation_id, caller=web(), expected_version=conv.version,
        context=spb.Context(slots={"size": NUL}),
    )  # fmt: skip
    rejected(client, client.session.UpdateContext, ctx, "context.slots.size")
    st = spb.State(flow="order")
    st.data.update({"nested": {"list": ["ok", NUL]}})
    req = spb.UpdateStateRequest(
        conversation_id=s.conversation_id, caller=web(), expected_version=conv.version, state=st
    )
    rejected(client, client.session.UpdateState, req, "state.data")
    link = ipb.LinkRequest(a=ident(COOKIE), b=ident("device_id:d9"), kind=ipb.LINK_KIND_OBSERVED, source=NUL,
                           actor="a")
    rejected(client, client.identity.Link, link, "source")
    consent = spb.RecordConsentRequest(identifier=ident(PHONE), channel="sms", purpose="p", source=NUL)
    rejected(client, client.session.RecordConsent, consent, "source")


CORRUPT = {
    "truncated varint": b"\x08\xff\xff\xff",
    "bad wire type": b"\x0f\x01",
    "length past the end": b"\x0a\x7fabc",
    "string not UTF-8": b"\x0a\x02\xc3\x28",
    "end group without start": b"\x0c",
}


def test_corrupt_wire_bytes_are_invalid_argument_without_internals(client: Client) -> None:
    """Raw bytes sent straight down the channel, to every RPC of every service: INVALID_ARGUMENT
    naming `request`, never UNKNOWN, never the parser's message or a type name; nothing stored.
    (The "not UTF-8" bytes are a string in field 1: sent where field 1 is a string.)"""
    seed(client)
    before = snapshot(client.store)
    for service in SERVICES.values():
        for method in service.methods:
            path = f"/{service.full_name}/{method.name}"
            for what, payload in CORRUPT.items():
                try:
                    if method.server_streaming:
                        next(iter(client.channel.unary_stream(path)(payload, timeout=TIMEOUT)))
                    else:
                        client.channel.unary_unary(path)(payload, timeout=TIMEOUT)
                except grpc.RpcError as e:
                    code, details = e.code(), e.details() or ""
                else:
                    code, details = grpc.StatusCode.OK, ""
                first = method.input_type.fields_by_number.get(1)
                string_first = first is not None and first.type == FieldDescriptor.TYPE_STRING
                if what == "string not UTF-8" and not string_first:
                    continue  # field 1 is no string here: these bytes may well parse
                assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, UNPARSEABLE_DETAIL), (path, what)
    assert_same(before, snapshot(client.store), "corrupt wire bytes")
    assert_serving(client)


def test_relink_refuses_bad_model_paths(client: Client) -> None:
    """Only the request checks: a model path that names no file is refused before any relink."""
    for path in ("/nonexistent/model.json", "a" * 300, "/" + "b" * 5000, "bad\x00path", "/", "."):
        stream = client.channel.unary_stream(
            "/identity.v1.BatchService/Relink",
            request_serializer=batch_pb2.RelinkRequest.SerializeToString,
            response_deserializer=batch_pb2.RelinkProgress.FromString,
        )(batch_pb2.RelinkRequest(model_path=path, dry_run=True), timeout=TIMEOUT)
        with pytest.raises(grpc.RpcError) as info:
            next(stream)
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT, (path[:40], info.value.details())
        assert info.value.details().startswith("model_path:")


def test_messages_beyond_grpc_max_size(client: Client) -> None:
    """A message over 4 MiB never reaches the servicers: grpc itself answers RESOURCE_EXHAUSTED
    (its receive limit), which is the accepted status for it. The store is unchanged and the
    server serves on."""
    s = seed(client)
    huge = "x" * (GRPC_MAX_MESSAGE + 1)
    requests: list[tuple[Callable[..., Any], Message]] = [
        (
            client.identity.Resolve,
            ipb.ResolveRequest(channel="web", identifiers=[ident(COOKIE)], attributes={"note": huge}),
        ),
        (
            client.session.AppendTurn,
            spb.AppendTurnRequest(
                conversation_id=s.conversation_id, caller=web(), role=spb.ROLE_CUSTOMER, text=huge
            ),
        ),
        (
            client.identity.Link,
            ipb.LinkRequest(a=ident(COOKIE), b=ident(EMAIL), kind=ipb.LINK_KIND_OBSERVED, source=huge,
                            actor="a"),
        ),
    ]
    before = snapshot(client.store)
    for rpc, request in requests:
        with pytest.raises(grpc.RpcError) as info:
            rpc(request, timeout=TIMEOUT)
        assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED, info.value.details()
    assert_same(before, snapshot(client.store), "messages over grpc's max size")
    assert_serving(client)


# ---- (c) strings that look like queries are data ------------------------------------------------

INJECTIONS = [
    "'); DROP TABLE identifiers; --",
    "Robert'); DROP TABLE conversations;--",
    "1' OR '1'='1",
    "MATCH (n) DETACH DELETE n",
    "}) MATCH (n) DETACH DELETE n //",
    "CALL db.clear() YIELD x RETURN x",
    "$param",
    "$1 ? :name",
    "{x: 1}",
    "${jndi:ldap://x}",
    "back\\slash \\\\ \\n \\x00",
    "quotes \" ' ` ''",
    "😀 👨‍👩‍👧‍👦 🏳️‍🌈",
    "\u202eRTL override\u202c שלום مرحبا",
    "zero\u200bwidth\ufeff",
    "/* comment */ -- dash # hash",
    "%s %d %n {0} {{}}",
]
CONTROL = ["tab\there", "line\nbreak\r\n", "bell\x07 esc\x1b[31m del\x7f"]
NUL = "nul\x00inside"  # refused in every text field (test_nul_bytes_are_refused)
COOKIES = [
    "');DROP_TABLE_identifiers;--",
    "MATCH(n)DETACH_DELETE_n",
    "$param",
    "{x:1}",
    "back\\slash\\\\",
    "q\"u'o`te",
    "😀👍",
    "ש-مرحبا",
    "%s%n",
    "a:b:c",
]


def test_injection_strings_round_trip(client: Client) -> None:
    """Query-looking text is stored and returned byte-for-byte: attribute values, cookie values,
    turn texts, slots, state data, consent purposes and sources, link evidence."""
    # Attribute values: custom attributes keep their text as given (known ones are case-folded).
    attrs = {f"note_{i}": s for i, s in enumerate(INJECTIONS)}
    attrs["street"] = "1 o'brien st; drop table identifiers; --"
    r = client.identity.Resolve(
        ipb.ResolveRequest(
            channel="web", identifiers=[ident(COOKIE)], attributes=attrs, source=INJECTIONS[0]
        ),
        timeout=TIMEOUT,
    )
    cus = client.identity.GetCustomer(
        ipb.GetCustomerRequest(customer_id=r.customer_id), timeout=TIMEOUT
    ).customer
    assert {a.name: a.value for a in cus.attributes} == attrs
    assert {a.source for a in cus.attribute_history} == {INJECTIONS[0]}

    # Web cookie values, as identifiers.
    for value in COOKIES:
        got = client.identity.Resolve(
            ipb.ResolveRequest(channel="web", identifiers=[ipb.Identifier(type="web_cookie", value=value)]),
            timeout=TIMEOUT,
        )
        assert [key_of(i) for i in got.identifiers] == [f"web_cookie:{value}"]
        found = client.identity.GetCustomer(
            ipb.GetCustomerRequest(identifier=ipb.Identifier(type="web_cookie", value=value)), timeout=TIMEOUT
        ).customer
        assert [key_of(i.identifier) for i in found.identifiers] == [f"web_cookie:{value}"]

    # Link evidence: source, actor, event id and model version (the channel is one of a list).
    for i, text in enumerate(INJECTIONS):
        b = ident(f"device_id:dev-{i}")
        req = ipb.LinkRequest(
            a=ident(COOKIE),
            b=b,
            kind=ipb.LINK_KIND_OBSERVED,
            source=text,
            actor=text,
            channel="agent",
            event_id=text,
            model_version=text,
        )
        made = client.identity.Link(req, timeout=TIMEOUT)
        (link,) = made.links
        assert (link.source, link.actor, link.event_id, link.model_version) == (text,) * 4
        assert any(e.payload["source"] == text and e.payload["actor"] == text for e in made.events)
        path = client.identity.Explain(ipb.ExplainRequest(a=ident(COOKIE), b=b), timeout=TIMEOUT).path
        assert [(lk.source, lk.actor) for lk in path] == [(text, text)]
    stored = client.identity.GetCustomer(
        ipb.GetCustomerRequest(customer_id=r.customer_id), timeout=TIMEOUT
    ).customer
    assert {lk.source for lk in stored.links} == set(INJECTIONS)

    # Conversations: turn texts, context, state.
    conv = client.session.StartOrResume(
        spb.StartOrResumeRequest(channel="web", identifiers=[ident(COOKIE)], actor=INJECTIONS[1]),
        timeout=TIMEOUT,
    ).conversation
    texts = INJECTIONS + CONTROL
    for text in texts:
        turn = client.session.AppendTurn(
            spb.AppendTurnRequest(
                conversation_id=conv.conversation_id,
                caller=web(),
                role=spb.ROLE_CUSTOMER,
                text=text,
                intent=text[:200],
            ),
            timeout=TIMEOUT,
        ).turn
        assert turn.text == text
    slots = {s: s for s in INJECTIONS + CONTROL}
    context = spb.Context(topic=INJECTIONS[3], intent=INJECTIONS[0], slots=slots)
    written = client.session.UpdateContext(
        spb.UpdateContextRequest(
            conversation_id=conv.conversation_id, caller=web(), expected_version=conv.version, context=context
        ),
        timeout=TIMEOUT,
    ).conversation
    state = spb.State(flow=INJECTIONS[3], step=INJECTIONS[6])
    state.data.update({s: s for s in INJECTIONS + CONTROL})
    state.data["nested"] = {"list": list(INJECTIONS), INJECTIONS[4]: {"deep": INJECTIONS[0]}}
    client.session.UpdateState(
        spb.UpdateStateRequest(
            conversation_id=conv.conversation_id, caller=web(), expected_version=written.version, state=state
        ),
        timeout=TIMEOUT,
    )
    got = client.session.GetConversation(
        spb.GetConversationRequest(conversation_id=conv.conversation_id, caller=web()), timeout=TIMEOUT
    ).conversation
    assert [t.text for t in got.turns] == texts
    assert [t.intent for t in got.turns] == [t[:200] for t in texts]
    assert got.context == context
    assert got.state == state

    # Consent purposes and sources.
    for text in INJECTIONS + CONTROL:
        purpose = text[:64]
        client.session.RecordConsent(
            spb.RecordConsentRequest(
                identifier=ident(COOKIE), channel="web", purpose=purpose, granted=True, source=text
            ),
            timeout=TIMEOUT,
        )
    consents = client.session.GetConsents(spb.GetConsentsRequest(identifier=ident(COOKIE)), timeout=TIMEOUT)
    assert [(c.purpose, c.source) for c in consents.history] == [(t[:64], t) for t in INJECTIONS + CONTROL]

    # The store is whole: nothing was dropped or deleted by any of it.
    tables = client.store.export_tables()
    assert tables["identifiers"].num_rows == 1 + len(COOKIES) + len(INJECTIONS)
    assert_serving(client)


def test_struct_types_round_trip(client: Client) -> None:
    """State data keeps its JSON types: strings that look like numbers stay strings, and the other
    way round."""
    s = seed(client)
    state = spb.State(flow="f")
    data = {
        "int": 42,
        "float": 1.5,
        "numeric_text": "42",
        "bool": True,
        "null": None,
        "empty": "",
        "list": [],
    }
    state.data.update(data)
    client.session.UpdateState(
        spb.UpdateStateRequest(
            conversation_id=s.conversation_id, caller=web(), expected_version=1, state=state
        ),
        timeout=TIMEOUT,
    )
    got = client.session.GetConversation(
        spb.GetConversationRequest(conversation_id=s.conversation_id, caller=web()), timeout=TIMEOUT
    ).conversation
    assert got.state == state
