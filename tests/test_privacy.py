"""Privacy through the real server on both backends: Forget leaves no trace of a customer in any
table or node, replays cannot bring it back, ExportCustomerData returns everything, and QueryAudit
lists merges, splits, erasures, exports and handoff redemptions without personal data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pyarrow.parquet as pq
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from batch.export import export
from batch.ingest import ingest
from identity_graph.engine import IdentityGraph
from identity_graph.store.base import GraphStore
from server import BackgroundServer
from session.model import OutboxMessage
from session.service import Sessions
from session.store import conversation_store_for
from stubs.identity.v1 import admin_pb2 as apb
from stubs.identity.v1 import admin_pb2_grpc as apb_grpc
from stubs.identity.v1 import identity_pb2 as ipb
from stubs.identity.v1 import identity_pb2_grpc as ipb_grpc
from stubs.session.v1 import session_pb2 as spb
from stubs.session.v1 import session_pb2_grpc as spb_grpc

TIMEOUT = 30.0

EMAIL = "email:zephyrine.quill@fernmoor.example"
PHONE = "phone:+14155550188"
WHATSAPP = "whatsapp:+447700900188"
COOKIE = "web_cookie:ck-zephyrine-7f3a"
COOKIE2 = "web_cookie:ck-zephyrine-b81c"
ZEPHYRINE = {
    "first_name": "Zephyrine",
    "last_name": "Quillfeather",
    "date_of_birth": "1961-07-23",
    "street": "17 Larkspur Wynd",
    "city": "Brackenholt",
    "postcode": "BH7 3QX",
}
TURN_1 = "My parcel for Larkspur Wynd never came, can you check order 99817?"
TURN_2 = "Continuing on WhatsApp: it was the blue teapot"
BYSTANDER = "email:ottoline.bystander@elsewhere.example"


@dataclass
class Api:
    store: GraphStore
    graph: IdentityGraph
    sessions: Sessions
    identity: ipb_grpc.IdentityServiceStub
    session: spb_grpc.SessionServiceStub
    admin: apb_grpc.AdminServiceStub


@pytest.fixture
def api(store: GraphStore) -> Iterator[Api]:
    graph = IdentityGraph(store)
    sessions = Sessions(graph, conversation_store_for(store))
    srv = BackgroundServer(graph, sessions=sessions, housekeeping_interval_s=None, timeout_s=TIMEOUT)
    channel = grpc.insecure_channel(f"127.0.0.1:{srv.port}")
    try:
        grpc.channel_ready_future(channel).result(TIMEOUT)
        yield Api(store, graph, sessions, ipb_grpc.IdentityServiceStub(channel),
                  spb_grpc.SessionServiceStub(channel), apb_grpc.AdminServiceStub(channel))
    finally:
        channel.close()
        srv.stop()


# ---- helpers --------------------------------------------------------------------------------


def ident(key: str) -> ipb.Identifier:
    type_, _, value = key.partition(":")
    return ipb.Identifier(type=type_, value=value)


CHANNEL_OF = {"web_cookie": "web", "phone": "sms", "whatsapp": "whatsapp", "email": "email"}


def as_caller(key: str) -> spb.Caller:
    return spb.Caller(channel=CHANNEL_OF[key.partition(":")[0]], identifier=ident(key))


def resolve(api: Api, *keys: str, attributes: dict[str, str] | None = None,
            actor: str = "web-frontend") -> ipb.ResolveResponse:
    req = ipb.ResolveRequest(channel="web", identifiers=[ident(k) for k in keys],
                             attributes=attributes or {}, actor=actor)
    return api.identity.Resolve(req, timeout=TIMEOUT)


def start(api: Api, channel: str, *keys: str) -> spb.StartOrResumeResponse:
    req = spb.StartOrResumeRequest(channel=channel, identifiers=[ident(k) for k in keys])
    return api.session.StartOrResume(req, timeout=TIMEOUT)


def say(api: Api, conversation_id: str, who: str, text: str) -> None:
    api.session.AppendTurn(spb.AppendTurnRequest(conversation_id=conversation_id, caller=as_caller(who),
                                                 role=spb.ROLE_CUSTOMER, text=text), timeout=TIMEOUT)


def forget(api: Api, key: str, scope: int, actor: str = "dpo-tool",
           reason: str = "erasure request 2024-117") -> apb.ForgetResponse:
    return api.admin.Forget(apb.ForgetRequest(identifier=ident(key), scope=scope, actor=actor,
                                              reason=reason), timeout=TIMEOUT)


def export_doc(api: Api, key: str, actor: str = "support-portal") -> tuple[str, dict[str, Any]]:
    r = api.admin.ExportCustomerData(apb.ExportCustomerDataRequest(identifier=ident(key), actor=actor),
                                     timeout=TIMEOUT)
    return r.customer_id, json.loads(r.document_json)


def audit(api: Api, **kw: Any) -> list[apb.AuditEntry]:
    return list(api.admin.QueryAudit(apb.QueryAuditRequest(**kw), timeout=TIMEOUT).entries)


def build_zephyrine(api: Api) -> str:
    """One customer with every kind of data: identifiers with attributes, links, a merge, a
    conversation with turns on two channels, a consent, a redeemed handoff, an outbox message
    and events. Returns its conversation id."""
    resolve(api, COOKIE2)  # an older customer, merged into below
    resolve(api, COOKIE, EMAIL, attributes=ZEPHYRINE)
    merged = resolve(api, EMAIL, COOKIE2)
    assert merged.merged
    conv = start(api, "sms", PHONE, EMAIL).conversation
    say(api, conv.conversation_id, PHONE, TURN_1)
    api.session.RecordConsent(spb.RecordConsentRequest(identifier=ident(PHONE), channel="sms",
                                                       purpose="delivery_updates", granted=True,
                                                       source="web form"), timeout=TIMEOUT)
    ticket = api.session.CreateHandoff(spb.CreateHandoffRequest(
        conversation_id=conv.conversation_id, caller=as_caller(PHONE), channel="whatsapp"), timeout=TIMEOUT)
    redeemed = api.session.RedeemHandoff(spb.RedeemHandoffRequest(
        code=ticket.code, channel="whatsapp", identifiers=[ident(WHATSAPP)], actor="wa-bot"), timeout=TIMEOUT)
    assert redeemed.resumed and redeemed.conversation.conversation_id == conv.conversation_id
    say(api, conv.conversation_id, WHATSAPP, TURN_2)
    api.sessions.store.outbox_put(OutboxMessage("msg_zeph", "email", EMAIL.partition(":")[2],
                                                "Your verification code is 123456", datetime.now(UTC)))
    return conv.conversation_id


def personal_values(doc: dict[str, Any]) -> list[str]:
    """What must vanish: identifier values, attribute values, turn texts, customer ids."""
    values = {i["value"] for i in doc["identifiers"]} | {a["value"] for a in doc["attributes"]}
    values |= {t["text"] for c in doc["conversations"] for t in c["turns"]}
    values |= {doc["customer_id"], *doc["aliases"]}
    return sorted(v for v in values if v)


def scan(store: GraphStore, values: list[str]) -> list[str]:
    """Every hit of any of `values` in every table and column (SQLite), or every node label and
    relationship type with every property (Neo4j)."""
    cells: list[tuple[str, str]] = []
    if store.name == "sqlite":
        rows = store.database.rows  # type: ignore[attr-defined]
        tables = rows("SELECT name FROM sqlite_master WHERE type = 'table'")
        assert {"identifiers", "events", "conversations", "turns", "audit_log", "suppressed"} <= {
            t for (t,) in tables
        }
        for (t,) in tables:
            cols = [r[1] for r in rows(f'PRAGMA table_info("{t}")')]
            for row in rows(f'SELECT {", ".join(f"CAST({json.dumps(c)} AS TEXT)" for c in cols)} '
                            f'FROM "{t}"'):
                cells.extend((f"{t}.{c}", str(v)) for c, v in zip(cols, row, strict=True))
    else:
        read = store.database.read  # type: ignore[attr-defined]
        nodes = read("MATCH (n) RETURN labels(n) AS l, properties(n) AS p")
        rels = read("MATCH ()-[r]->() RETURN type(r) AS t, properties(r) AS p")
        assert nodes
        for r in nodes:
            cells.extend((f"{':'.join(r['l'])}.{k}", str(v)) for k, v in r["p"].items())
            cells.extend(("label", lb) for lb in r["l"])
        for r in rels:
            cells.extend((f"{r['t']}.{k}", str(v)) for k, v in r["p"].items())
            cells.append(("type", r["t"]))
    return [f"{where}: {v!r}" for where, text in cells for v in values if v.lower() in text.lower()]


def scan_parquet(directory: Path, values: list[str]) -> list[str]:
    hits = []
    for path in sorted(directory.glob("*.parquet")):
        for row in pq.read_table(path).to_pylist():
            text = repr(row).lower()
            hits.extend(f"{path.name}: {v!r}" for v in values if v.lower() in text)
    return hits


# ---- forget a whole customer ----------------------------------------------------------------


def test_forget_a_customer_leaves_nothing_and_nothing_comes_back(api: Api, tmp_path: Path) -> None:
    bystander = resolve(api, BYSTANDER, attributes={"first_name": "Ottoline"})
    by_conv = start(api, "email", BYSTANDER).conversation
    say(api, by_conv.conversation_id, BYSTANDER, "Bystander asks about a refund")
    build_zephyrine(api)
    export(api.store, tmp_path / "before", progress=False)

    cid, doc = export_doc(api, EMAIL)
    values = personal_values(doc)
    assert {"zephyrine.quill@fernmoor.example", "+14155550188", "+447700900188", "zephyrine",
            TURN_1, TURN_2, cid} <= {v if v[0].isupper() and " " in v else v.lower() for v in values}
    assert len(doc["aliases"]) == 1
    assert scan(api.store, values)  # the scan does find them before
    assert scan_parquet(tmp_path / "before", values)

    r = forget(api, PHONE, apb.FORGET_SCOPE_CUSTOMER)
    c = dict(r.counts)
    assert c["identifiers"] == 5 and c["observations"] == len(ZEPHYRINE) and c["links"] >= 4
    assert c["conversations"] == 1 and c["outbox"] == 1 and c["customers"] == 2 and c["aliases"] == 1
    assert c["events"] > 0 and c["suppressed"] == 5 and r.audit_id.startswith("aud_")

    assert scan(api.store, values) == []

    # Replays recreate nothing: the suppressed identifiers are dropped, named by type only.
    again = resolve(api, COOKIE, EMAIL, attributes=ZEPHYRINE)
    assert again.customer_id == "" and not again.identifiers
    assert {(v.kind, v.identifier.type, v.identifier.value) for v in again.violations} == {
        ("suppressed", "web_cookie", ""), ("suppressed", "email", "")}
    with pytest.raises(grpc.RpcError) as info:
        start(api, "sms", PHONE)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as info:
        api.session.RedeemHandoff(spb.RedeemHandoffRequest(code="ABCDEFGH", channel="whatsapp",
                                                           identifiers=[ident(WHATSAPP)]), timeout=TIMEOUT)
    assert info.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION)
    link = api.identity.Link(ipb.LinkRequest(a=ident(EMAIL), b=ident(BYSTANDER), kind=ipb.LINK_KIND_VERIFIED,
                                             source="crm", actor="crm"), timeout=TIMEOUT)
    assert not link.links and [v.kind for v in link.violations] == ["suppressed"]
    assert api.store.get_identifiers([EMAIL, PHONE, COOKIE, COOKIE2, WHATSAPP]) == {}

    # Batch ingest rejects a row naming an erased identifier.
    csv_path = tmp_path / "crm.csv"
    csv_path.write_text("source,record_id,email,first_name\n"
                        "crm,r-1,Zephyrine.Quill@fernmoor.example,Zephyrine\n"
                        "crm,r-2,fresh@ok.example,Fresh\n")
    result = ingest(api.store, csv_path, progress=False, write_lock=api.graph.write_lock)
    assert (result.loaded, result.rejected) == (1, 1)
    rejects = Path(result.rejects_file or "").read_text()
    assert "suppressed" in rejects.splitlines()[1]
    assert api.store.get_identifier("email:fresh@ok.example") is not None
    assert scan(api.store, values) == []

    # The bystander is untouched.
    assert resolve(api, BYSTANDER).customer_id == bystander.customer_id
    _, by_doc = export_doc(api, BYSTANDER)
    assert [a["value"].lower() for a in by_doc["attributes"]] == ["ottoline"]
    assert [t["text"] for t in by_doc["conversations"][0]["turns"]] == ["Bystander asks about a refund"]

    # The next batch export holds none of the values; its audit table has the erasure.
    counts = export(api.store, tmp_path / "after", progress=False)
    assert counts["audit"] >= 1
    assert scan_parquet(tmp_path / "after", values) == []
    actions = {r["action"] for r in pq.read_table(tmp_path / "after" / "audit.parquet").to_pylist()}
    assert {"erasure", "export", "merge", "handoff_redemption"} <= actions


# ---- export ---------------------------------------------------------------------------------


def test_export_customer_data_returns_everything(api: Api) -> None:
    conv_id = build_zephyrine(api)
    cid, doc = export_doc(api, COOKIE)
    assert doc["customer_id"] == cid and doc["created_at"]
    assert {i["key"] for i in doc["identifiers"]} == {EMAIL, PHONE, WHATSAPP, COOKIE, COOKIE2}
    kinds = {(lk["a"], lk["b"]): lk for lk in doc["links"]}
    handoff = kinds[tuple(sorted((WHATSAPP, PHONE)))]
    assert handoff["kind"] == "verified" and handoff["source"] == "handoff" and handoff["created_at"]
    assert all(lk["kind"] and lk["source"] and lk["created_at"] and lk["actor"] for lk in doc["links"])
    attrs = {a["name"]: a for a in doc["attributes"]}
    assert attrs["first_name"]["value"].lower() == "zephyrine"
    assert set(attrs) == set(ZEPHYRINE)
    assert all(a["identifier"] == COOKIE and a["source"] == "web" and a["observed_at"]
               for a in attrs.values())
    [conv] = doc["conversations"]
    assert conv["id"] == conv_id and [t["text"] for t in conv["turns"]] == [TURN_1, TURN_2]
    assert [(c["identifier"], c["channel"], c["purpose"], c["granted"]) for c in doc["consents"]] == [
        (PHONE, "sms", "delivery_updates", True)]
    types = {e["type"] for e in doc["events"]}
    assert {"link", "merge", "alias", "customer_created"} <= types
    assert all(e["seq"] > 0 and e["at"] for e in doc["events"])
    # Any identifier, the customer id or an alias finds the same customer.
    assert export_doc(api, PHONE)[0] == cid
    by_id = api.admin.ExportCustomerData(apb.ExportCustomerDataRequest(customer_id=doc["aliases"][0],
                                                                       actor="dpo"),
                                         timeout=TIMEOUT)
    assert by_id.customer_id == cid


def test_admin_errors_map_to_codes(api: Api) -> None:
    def code(call: Any, req: Any) -> grpc.StatusCode:
        with pytest.raises(grpc.RpcError) as info:
            call(req, timeout=TIMEOUT)
        return info.value.code()

    INVALID = grpc.StatusCode.INVALID_ARGUMENT
    assert code(api.admin.Forget, apb.ForgetRequest(identifier=ident(EMAIL))) is INVALID  # no scope
    assert code(api.admin.Forget, apb.ForgetRequest(scope=apb.FORGET_SCOPE_CUSTOMER)) is INVALID
    bad_phone = apb.ForgetRequest(identifier=ident("phone:12"), scope=apb.FORGET_SCOPE_CUSTOMER,
                                  actor="dpo")
    assert code(api.admin.Forget, bad_phone) is INVALID
    # who erases or exports is on the audit record: without auth the request must name them
    unsigned = apb.ForgetRequest(identifier=ident(EMAIL), scope=apb.FORGET_SCOPE_CUSTOMER)
    assert code(api.admin.Forget, unsigned) is INVALID
    assert code(api.admin.ExportCustomerData, apb.ExportCustomerDataRequest(customer_id="cus_x")) is INVALID
    assert code(api.admin.ExportCustomerData, apb.ExportCustomerDataRequest()) is INVALID
    assert code(api.admin.ExportCustomerData,
                apb.ExportCustomerDataRequest(customer_id="cus_nobody", actor="dpo")
                ) is grpc.StatusCode.NOT_FOUND
    assert code(api.admin.QueryAudit, apb.QueryAuditRequest(actions=["nope"])) is INVALID
    assert code(api.admin.QueryAudit, apb.QueryAuditRequest(page_size=5000)) is INVALID
    assert code(api.admin.QueryAudit, apb.QueryAuditRequest(page_token="garbage")) is INVALID
    assert code(api.admin.QueryAudit, apb.QueryAuditRequest(start=Timestamp(seconds=2**62))) is INVALID


# ---- forget one identifier ------------------------------------------------------------------


def test_forgetting_one_identifier_leaves_the_rest_of_the_customer(api: Api) -> None:
    first = resolve(api, EMAIL, COOKIE, attributes=ZEPHYRINE)  # attributes are observed at EMAIL
    conv = start(api, "sms", PHONE, EMAIL).conversation
    say(api, conv.conversation_id, PHONE, TURN_1)
    say(api, conv.conversation_id, EMAIL.replace("email:", "email:"), "Sent from my email, about order 55")
    cid, before = export_doc(api, EMAIL)
    assert cid == first.customer_id

    r = forget(api, COOKIE, apb.FORGET_SCOPE_IDENTIFIER)
    assert dict(r.counts)["identifiers"] == 1 and dict(r.counts)["conversations"] == 0
    assert scan(api.store, ["ck-zephyrine-7f3a"]) == []

    cid_after, after = export_doc(api, PHONE)
    assert cid_after == cid
    assert {i["key"] for i in after["identifiers"]} == {EMAIL, PHONE}
    assert after["attributes"] == before["attributes"]
    assert [t["text"] for t in after["conversations"][0]["turns"]] == [
        TURN_1, "Sent from my email, about order 55"]
    assert {e["type"] for e in after["events"]} >= {"link", "customer_created"}
    assert resolve(api, EMAIL, PHONE).customer_id == cid
    assert [v.kind for v in resolve(api, COOKIE).violations] == ["suppressed"]

    # Forgetting an identifier that turns were typed through elsewhere blanks those turns.
    forget(api, EMAIL, apb.FORGET_SCOPE_IDENTIFIER)
    turns = export_doc(api, PHONE)[1]["conversations"][0]["turns"]
    assert [t["text"] for t in turns] == [TURN_1, ""] and turns[1]["identifier"] == ""
    assert scan(api.store, ["zephyrine.quill@fernmoor.example", "Zephyrine", "order 55"]) == []


def test_forgetting_a_bridge_identifier_splits_what_it_held_together(api: Api) -> None:
    resolve(api, EMAIL, COOKIE)
    cid = resolve(api, EMAIL, PHONE).customer_id
    forget(api, EMAIL, apb.FORGET_SCOPE_IDENTIFIER)
    nodes = api.store.get_identifiers([COOKIE, PHONE])
    assert set(nodes) == {COOKIE, PHONE}
    assert nodes[COOKIE].customer_id != nodes[PHONE].customer_id
    assert cid in {nodes[COOKIE].customer_id, nodes[PHONE].customer_id}
    for key, node in nodes.items():
        assert api.store.members(node.customer_id or "") == [key]


# ---- the audit log --------------------------------------------------------------------------


def test_audit_lists_merges_splits_erasures_exports_and_handoffs(api: Api) -> None:
    build_zephyrine(api)  # a merge and a handoff redemption
    resolve(api, "email:ingrid@fjord.example", "phone:+14155550199",
            attributes={"first_name": "Ingridunique"}, actor="crm-sync")
    api.identity.Split(ipb.SplitRequest(detach=[ident("phone:+14155550199")], actor="analyst-kim"),
                       timeout=TIMEOUT)
    export_doc(api, COOKIE, actor="support-portal")
    _, ingrid = export_doc(api, "email:ingrid@fjord.example")
    values = personal_values(ingrid)
    forget(api, "email:ingrid@fjord.example", apb.FORGET_SCOPE_CUSTOMER, actor="dpo-tool",
           reason="request from ingrid@fjord.example by phone")

    entries = audit(api)
    by_action: dict[str, list[apb.AuditEntry]] = {}
    for e in entries:
        by_action.setdefault(e.action, []).append(e)
    assert {"merge", "split", "erasure", "export", "handoff_redemption"} <= set(by_action)
    assert all(e.actor and e.at.seconds > 0 and e.id for e in entries)
    assert [e.at.ToDatetime() for e in entries] == sorted(e.at.ToDatetime() for e in entries)
    assert by_action["merge"][0].actor == "web-frontend" and by_action["merge"][0].subject.startswith("cus_")
    assert by_action["split"][0].actor == "analyst-kim"
    assert by_action["handoff_redemption"][0].actor == "wa-bot"
    assert [e.actor for e in by_action["export"]] == ["support-portal", "support-portal"]
    [erasure] = by_action["erasure"]
    assert erasure.actor == "dpo-tool"
    detail = json.loads(erasure.detail_json)
    assert detail["scope"] == "customer" and detail["counts"]["identifiers"] == 1
    assert "[erased]" in detail["reason"]
    text = str(erasure).lower()
    for v in values:
        assert v.lower() not in text
    assert scan(api.store, values) == []

    # Pages, the action filter and the time range.
    paged: list[str] = []
    token = ""
    while True:
        resp = api.admin.QueryAudit(apb.QueryAuditRequest(page_size=2, page_token=token), timeout=TIMEOUT)
        paged += [e.id for e in resp.entries]
        token = resp.next_page_token
        if not token:
            break
    assert paged == [e.id for e in entries]
    assert [e.action for e in audit(api, actions=["erasure", "split"])] == ["split", "erasure"]
    later = Timestamp()
    later.FromDatetime(datetime.now(UTC) + timedelta(minutes=1))
    assert audit(api, start=later) == []
