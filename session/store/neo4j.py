"""`Neo4jConversationStore`: conversations in the graph store's Neo4j database, on its driver.

Graph model (beside the identity graph of `identity_graph.store.neo4j`):

    (:Conversation {id, anchor, status, channels, doc, version, created_at, updated_at,
                    closed_at, escalation_reason, carried_from, resumed_count, turn_count,
                    last_channel, channel_switches, participant})
        id unique; indexes on anchor, created_at and (status, updated_at). `doc` is JSON text
        {version, context: {topic, intent, slots}, state: {flow, step, data}}; `channels` a list
        of strings in first-use order;
        `participant` JSON text {first_name, last_name, date_of_birth} or absent.
    (:Conversation)-[:CAME_IN_THROUGH]->(:Identifier)
        to the anchor's identifier node when it existed at creation (for analysts; the store
        itself reads `anchor`).
    (:Conversation)-[:HAS_TURN]->(:Turn {conversation_id, seq, role, channel, identifier, text,
                                        intent, topic, at})
        index on (conversation_id, seq); seqs run 1, 2, ... per conversation.
    (:Handoff {code_hash, conversation_id, channel, created_at, expires_at, redeemed_at,
               redeemed_by})                                 code_hash unique
    (:StepUp {id, requester, target, code_hash, channel, created_at, expires_at, attempts,
              completed_at})                                 id unique
    (:Consent {identifier, channel, purpose, granted, source, at, seq})   index on identifier
    (:OutboxMessage {id, channel, recipient, text, created_at, seq})      id unique
    `seq` on consents and outbox messages is the recording order, from the counter nodes
    (:Sequence {name: 'consents' | 'outbox'}). Times are DateTime values in UTC.

Concurrency: a write that reads before it decides first writes to the node it is about (which takes
the node's write lock until commit), and only then reads the properties it checks, so concurrent
writers of one conversation, handoff or step-up serialise and none acts on a stale read.

Reads take no locks, and Neo4j applies a commit property by property: a reader can see one
property from after a commit and another from before it (measured: 6 in 12k reads against a
writer). So the version, context and state, which callers read, modify and write back under
optimistic concurrency, live in the one `doc` property and are always read together. The separate
`version` property is what writers bump to take the lock; readers ignore it.

Example queries:

    // a customer's conversations, with the identifier each came in through
    MATCH (i:Identifier {customer_id: $customer_id})<-[:CAME_IN_THROUGH]-(c:Conversation)
    RETURN c.id, i.key, c.status, c.channels, c.updated_at ORDER BY c.updated_at DESC

    // one conversation's transcript
    MATCH (:Conversation {id: $id})-[:HAS_TURN]->(t:Turn)
    RETURN t.seq, t.role, t.channel, t.text ORDER BY t.seq
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, LiteralString

from neo4j import ManagedTransaction
from neo4j import time as neo4j_time
from neo4j.exceptions import ConstraintError

from identity_graph.errors import Conflict, FailedPrecondition, NotFound, StoreError
from identity_graph.store.neo4j_database import Neo4jDatabase
from session.model import (
    Consent,
    Context,
    Conversation,
    Handoff,
    OutboxMessage,
    Role,
    State,
    Status,
    StepUp,
    Turn,
)
from session.store.base import ConversationStore

SCHEMA: tuple[LiteralString, ...] = (
    "CREATE CONSTRAINT cs_conversation_id IF NOT EXISTS "
    "FOR (c:Conversation) REQUIRE c.id IS UNIQUE",
    "CREATE CONSTRAINT cs_handoff_code_hash IF NOT EXISTS "
    "FOR (h:Handoff) REQUIRE h.code_hash IS UNIQUE",
    "CREATE CONSTRAINT cs_step_up_id IF NOT EXISTS FOR (s:StepUp) REQUIRE s.id IS UNIQUE",
    "CREATE CONSTRAINT cs_attempt_counter_key IF NOT EXISTS "
    "FOR (k:AttemptCounter) REQUIRE k.key IS UNIQUE",
    "CREATE INDEX cs_handoff_link_hash IF NOT EXISTS FOR (h:Handoff) ON (h.link_hash)",
    "CREATE CONSTRAINT cs_outbox_id IF NOT EXISTS FOR (m:OutboxMessage) REQUIRE m.id IS UNIQUE",
    "CREATE CONSTRAINT ig_sequence_name IF NOT EXISTS FOR (s:Sequence) REQUIRE s.name IS UNIQUE",
    "CREATE INDEX cs_conversation_anchor IF NOT EXISTS FOR (c:Conversation) ON (c.anchor)",
    "CREATE INDEX cs_conversation_created_at IF NOT EXISTS FOR (c:Conversation) ON (c.created_at)",
    # For the housekeeping sweep (`_IDLE`, `_CLOSE_IDLE`: status = x AND updated_at < y), which
    # every StartOrResume runs: an index seek instead of a scan of all conversations.
    "CREATE INDEX cs_conversation_status_updated_at IF NOT EXISTS "
    "FOR (c:Conversation) ON (c.status, c.updated_at)",
    "CREATE INDEX cs_turn_conversation_seq IF NOT EXISTS FOR (t:Turn) ON (t.conversation_id, t.seq)",
    "CREATE INDEX cs_consent_identifier IF NOT EXISTS FOR (c:Consent) ON (c.identifier)",
    "CREATE INDEX cs_outbox_recipient IF NOT EXISTS FOR (m:OutboxMessage) ON (m.recipient)",
    "CREATE INDEX cs_seal_anchor IF NOT EXISTS FOR (s:Seal) ON (s.anchor)",
)

# ---- Cypher ----------------------------------------------------------------------------------

_CREATE: LiteralString = """
CREATE (c:Conversation)
SET c = $props
WITH c
OPTIONAL MATCH (i:Identifier {key: $props.anchor})
FOREACH (_ IN CASE WHEN i IS NULL THEN [] ELSE [1] END | CREATE (c)-[:CAME_IN_THROUGH]->(i))
"""

_GET: LiteralString = """
UNWIND $ids AS id
MATCH (c:Conversation {id: id})
RETURN c {.*} AS c ORDER BY c.id
"""

_BY_ANCHORS: LiteralString = """
UNWIND $anchors AS a
MATCH (c:Conversation {anchor: a})
WHERE (size($statuses) = 0 OR c.status IN $statuses)
  AND ($channel = '' OR $channel IN c.channels)
  AND ($after_at IS NULL OR c.updated_at < $after_at
       OR (c.updated_at = $after_at AND c.id > $after_id))
RETURN c {.*} AS c
ORDER BY c.updated_at DESC, c.id
LIMIT $limit
"""

# In-process writers to one conversation are serialised by one of this many locks (by id hash).
_STRIPES = 64

# Each write to a conversation first takes the node's write lock with a statement whose SET reads
# the property it writes (so Cypher locks before reading) and returns the node read under the lock.
# The caller decides in Python, then patches with `SET c += $changes` (no further reads: reading
# properties in a later SET clause of the same transaction invites lock-order deadlocks).
_LOCK_TURN: LiteralString = """
MATCH (c:Conversation {id: $id})
SET c.turn_count = c.turn_count + 1
RETURN c {.*} AS c
"""

_LOCK_VERSION: LiteralString = """
MATCH (c:Conversation {id: $id})
SET c.version = c.version + 1
RETURN c {.*} AS c
"""

_LOCK: LiteralString = """
MATCH (c:Conversation {id: $id})
SET c.status = c.status
RETURN c {.*} AS c
"""

_PATCH: LiteralString = """
MATCH (c:Conversation {id: $id})
SET c += $changes
RETURN c {.*} AS c
"""

_ADD_TURN: LiteralString = """
MATCH (c:Conversation {id: $id})
SET c += $changes
CREATE (c)-[:HAS_TURN]->(t:Turn)
SET t = $turn
"""

_TURNS: LiteralString = """
MATCH (t:Turn {conversation_id: $id})
WHERE t.seq > $after_seq
RETURN t {.*} AS t ORDER BY t.seq LIMIT $limit
"""

# Candidates are found without locks, then locked (`SET x = x`, which also puts the values read
# under the lock into the transaction) and checked again.
_CLOSE_IDLE: LiteralString = """
MATCH (c:Conversation {status: 'inactive'})
WHERE c.updated_at < $close_before
SET c.status = c.status, c.updated_at = c.updated_at
WITH c
WHERE c.status = 'inactive' AND c.updated_at < $close_before
SET c.status = 'closed', c.closed_at = $at
RETURN c.id AS id
"""

_IDLE: LiteralString = """
MATCH (c:Conversation {status: 'active'})
WHERE c.updated_at < $idle_before
SET c.status = c.status, c.updated_at = c.updated_at
WITH c
WHERE c.status = 'active' AND c.updated_at < $idle_before
SET c.status = 'inactive'
RETURN c.id AS id
"""

_PUT_HANDOFF: LiteralString = "CREATE (h:Handoff) SET h = $props"

_REDEEM_HANDOFF: LiteralString = """
OPTIONAL MATCH (a:Handoff {code_hash: $code_hash})
OPTIONAL MATCH (b:Handoff {link_hash: $code_hash})
WITH coalesce(a, b) AS h
WHERE h IS NOT NULL
SET h.redeemed_by = h.redeemed_by
WITH h
WHERE h.channel = $channel AND h.redeemed_at IS NULL AND h.expires_at > $at
SET h.redeemed_at = $at, h.redeemed_by = $by
RETURN h {.*} AS h
"""

_PUT_STEP_UP: LiteralString = "CREATE (s:StepUp) SET s = $props"

_GET_STEP_UP: LiteralString = "MATCH (s:StepUp {id: $id}) RETURN s {.*} AS s"

_COMPLETE_STEP_UP: LiteralString = """
MATCH (s:StepUp {id: $id})
SET s.attempts = s.attempts + 1
WITH s, s.completed_at IS NULL AND s.expires_at > $at AND s.code_hash = $code_hash AS ok
FOREACH (_ IN CASE WHEN ok THEN [1] ELSE [] END | SET s.completed_at = $at)
RETURN ok, s {.*} AS s
"""

# Each counter is written before it is read (`SET k.key = k.key` takes its write lock), so
# concurrent callers on one counter serialise; keys come sorted, so they lock in one order.
_COUNT: LiteralString = """
UNWIND $limits AS l
MERGE (k:AttemptCounter {key: l.key})
ON CREATE SET k.n = 0, k.expires_at = $expires_at
SET k.key = k.key
WITH k, l
SET k.n = CASE WHEN k.expires_at <= $at THEN 0 ELSE k.n END,
    k.expires_at = CASE WHEN k.expires_at <= $at THEN $expires_at ELSE k.expires_at END
WITH collect({k: k, cap: l.cap}) AS rows
WITH rows, ($delta <= 0 OR all(r IN rows WHERE r.k.n + $delta <= r.cap)) AS ok
CALL (rows, ok) {
  UNWIND CASE WHEN ok THEN rows ELSE [] END AS r
  WITH r.k AS k
  SET k.n = CASE WHEN k.n + $delta < 0 THEN 0 ELSE k.n + $delta END
}
RETURN ok
"""

_ADD_CONSENT: LiteralString = """
MERGE (q:Sequence {name: 'consents'})
ON CREATE SET q.value = 0
SET q.value = q.value + 1
CREATE (c:Consent)
SET c = $props, c.seq = q.value
"""

_CONSENTS: LiteralString = """
UNWIND $ids AS id
MATCH (c:Consent {identifier: id})
RETURN c {.*} AS c ORDER BY c.at, c.seq
"""

_OUTBOX_PUT: LiteralString = """
MERGE (q:Sequence {name: 'outbox'})
ON CREATE SET q.value = 0
SET q.value = q.value + 1
CREATE (m:OutboxMessage)
SET m = $props, m.seq = q.value
"""

_OUTBOX: LiteralString = """
MATCH (m:OutboxMessage {recipient: $recipient})
RETURN m {.*} AS m ORDER BY m.created_at, m.seq
"""

_BETWEEN: LiteralString = """
MATCH (c:Conversation)
WHERE c.created_at >= $start AND c.created_at < $end
RETURN c {.*} AS c ORDER BY c.created_at, c.id
"""

_DELETE_FOR: tuple[LiteralString, ...] = (
    """
    MATCH (t:Turn) WHERE t.conversation_id IN $ids
    DETACH DELETE t
    """,
    """
    MATCH (h:Handoff) WHERE h.conversation_id IN $ids OR h.redeemed_by IN $anchors
    DETACH DELETE h
    """,
    """
    MATCH (s:StepUp) WHERE s.requester IN $anchors OR s.target IN $anchors
    DETACH DELETE s
    """,
    """
    MATCH (s:Seal) WHERE s.anchor IN $anchors
    DETACH DELETE s
    """,
    """
    MATCH (k:AttemptCounter) WHERE any(a IN $anchors WHERE k.key ENDS WITH '|' + a)
    DETACH DELETE k
    """,
    """
    UNWIND $anchors AS a
    MATCH (c:Consent {identifier: a})
    DETACH DELETE c
    """,
    """
    UNWIND $ids AS id
    MATCH (c:Conversation {id: id})
    DETACH DELETE c
    """,
)

_REDACT_TURNS: LiteralString = """
MATCH (t:Turn)
WHERE t.identifier IN $keys
SET t.identifier = '', t.text = ''
RETURN count(t) AS n
"""

_DELETE_OUTBOX: LiteralString = """
UNWIND $recipients AS r
MATCH (m:OutboxMessage {recipient: r})
DETACH DELETE m
RETURN count(*) AS n
"""

_SEAL: LiteralString = """
CREATE (:Seal {anchor: $anchor, sealed_before: $before, reason: $reason, actor: $actor, at: $at})
WITH 1 AS one
OPTIONAL MATCH (c:Conversation {anchor: $anchor})
WHERE c.created_at < $before AND c.status <> 'closed'
SET c.status = 'closed', c.closed_at = coalesce(c.closed_at, $at)
RETURN count(c) AS closed
"""

_SEALS: LiteralString = """
UNWIND $anchors AS a
MATCH (s:Seal {anchor: a})
RETURN a AS anchor, max(s.sealed_before) AS before
"""

_CONVERSATION_IDS: LiteralString = """
UNWIND $anchors AS a
MATCH (c:Conversation {anchor: a})
RETURN c.id AS id
"""

_CLEAR: LiteralString = """
MATCH (n)
WHERE n:Conversation OR n:Turn OR n:Handoff OR n:StepUp OR n:Consent OR n:OutboxMessage OR n:Seal
   OR n:AttemptCounter
   OR (n:Sequence AND n.name IN ['consents', 'outbox'])
CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS
"""

# ---- conversions -----------------------------------------------------------------------------


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _doc_json(version: int, context: Context, state: State) -> str:
    return _json({
        "version": version,
        "context": {"topic": context.topic, "intent": context.intent, "slots": dict(context.slots)},
        "state": {"flow": state.flow, "step": state.step, "data": dict(state.data)},
    })


def _to_db_time(value: datetime | None) -> datetime | None:
    """A tz-aware UTC datetime for the driver (sent as a DateTime); naive values are taken as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _from_db_time(value: Any) -> datetime | None:
    """A Neo4j DateTime as a tz-aware UTC `datetime`."""
    if value is None:
        return None
    if isinstance(value, neo4j_time.DateTime):
        value = value.to_native()
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    raise StoreError(f"neo4j conversation store: expected a DateTime, got {type(value).__name__}")


def _time(value: Any) -> datetime:
    """A required time; a missing one means the node was written by something else."""
    out = _from_db_time(value)
    if out is None:
        raise StoreError("neo4j conversation store: a required time property is missing")
    return out


def _conversation(p: dict[str, Any]) -> Conversation:
    doc = json.loads(p["doc"])
    ctx, st = doc["context"], doc["state"]
    return Conversation(
        id=p["id"], anchor=p["anchor"], status=Status(p["status"]),
        channels=tuple(p.get("channels") or ()),
        context=Context(ctx["topic"], ctx["intent"], ctx["slots"]),
        state=State(st["flow"], st["step"], st["data"]),
        version=doc["version"], created_at=_time(p["created_at"]), updated_at=_time(p["updated_at"]),
        closed_at=_from_db_time(p.get("closed_at")),
        escalation_reason=p.get("escalation_reason") or "",
        carried_from=p.get("carried_from") or "", resumed_count=p.get("resumed_count") or 0,
        turn_count=p.get("turn_count") or 0, last_channel=p.get("last_channel") or "",
        channel_switches=p.get("channel_switches") or 0,
        participant=json.loads(p["participant"]) if p.get("participant") else {},
    )


def _conversation_props(c: Conversation) -> dict[str, Any]:
    return {
        "id": c.id, "anchor": c.anchor, "status": str(c.status), "channels": list(c.channels),
        "doc": _doc_json(c.version, c.context, c.state), "version": c.version,
        "created_at": _to_db_time(c.created_at), "updated_at": _to_db_time(c.updated_at),
        "closed_at": _to_db_time(c.closed_at), "escalation_reason": c.escalation_reason,
        "carried_from": c.carried_from, "resumed_count": c.resumed_count,
        "turn_count": c.turn_count, "last_channel": c.last_channel,
        "channel_switches": c.channel_switches,
        "participant": json.dumps(dict(c.participant), sort_keys=True) if c.participant else None,
    }


def _turn(p: dict[str, Any]) -> Turn:
    return Turn(p["conversation_id"], p["seq"], Role(p["role"]), p["channel"], p["identifier"],
                p["text"], p.get("intent") or "", p.get("topic") or "", _time(p["at"]))


def _handoff(p: dict[str, Any]) -> Handoff:
    return Handoff(p["code_hash"], p["conversation_id"], p["channel"], _time(p["created_at"]),
                   _time(p["expires_at"]), _from_db_time(p.get("redeemed_at")),
                   p.get("redeemed_by") or "", p.get("link_hash") or "")


def _step_up(p: dict[str, Any]) -> StepUp:
    return StepUp(p["id"], p["requester"], p["target"], p["code_hash"], p["channel"],
                  _time(p["created_at"]), _time(p["expires_at"]), p.get("attempts") or 0,
                  _from_db_time(p.get("completed_at")))


class Neo4jConversationStore(ConversationStore):
    """Conversation nodes in the graph store's Neo4j database; see the module docstring."""

    name = "neo4j"

    def __init__(self, database: Neo4jDatabase) -> None:
        """Uses `database`'s driver, and creates the missing constraints and indexes."""
        self.database = database
        # Writers to one conversation queue here rather than in Neo4j: under 20 concurrent
        # writers Neo4j reports lock cycles on the conversation node (its turns make it dense)
        # and the driver's retry backs off for a second or more. Other processes still meet in
        # Neo4j's locks, where the retry keeps them correct.
        self._stripes = [threading.Lock() for _ in range(_STRIPES)]
        database.ensure_schema(SCHEMA)

    # ---- helpers ------------------------------------------------------------------------------

    def _read(self, query: LiteralString, **params: Any) -> list[Any]:
        return self.database.read(query, **params)

    def _write(self, work: Callable[[ManagedTransaction], Any]) -> Any:
        return self.database.write(work)

    def _write_conversation(self, conversation_id: str,
                            work: Callable[[ManagedTransaction], Any]) -> Any:
        with self._stripes[hash(conversation_id) % _STRIPES]:
            return self.database.write(work)

    def _create_node(self, query: LiteralString, props: dict[str, Any], what: str) -> None:
        try:
            self._write(lambda tx: tx.run(query, props=props).consume())
        except ConstraintError as e:
            raise Conflict(f"{what} exists already") from e

    # ---- conversations ------------------------------------------------------------------------

    def _create(self, conversation: Conversation) -> None:
        self._create_node(_CREATE, _conversation_props(conversation),
                          f"conversation {conversation.id}")

    def _get(self, conversation_ids: Sequence[str]) -> list[Conversation]:
        return [_conversation(r["c"]) for r in self._read(_GET, ids=list(conversation_ids))]

    def _by_anchors(self, anchors: Sequence[str], statuses: Sequence[Status], channel: str,
                    after: tuple[datetime, str] | None, limit: int) -> list[Conversation]:
        records = self._read(
            _BY_ANCHORS, anchors=list(anchors), statuses=[str(s) for s in statuses],
            channel=channel, after_at=None if after is None else _to_db_time(after[0]),
            after_id="" if after is None else after[1], limit=limit,
        )
        return [_conversation(r["c"]) for r in records]

    def _locked(self, tx: ManagedTransaction, query: LiteralString,
                conversation_id: str) -> Conversation:
        """The conversation, write-locked by `query` and read under the lock."""
        record = tx.run(query, id=conversation_id).single()
        if record is None:
            raise NotFound(f"unknown conversation {conversation_id}")
        return _conversation(record["c"])

    def _append_turn(self, conversation_id: str, turn: Turn) -> Turn:
        at = _time(_to_db_time(turn.at))

        def work(tx: ManagedTransaction) -> int:
            conv = self._locked(tx, _LOCK_TURN, conversation_id)
            if conv.status == Status.CLOSED:
                raise FailedPrecondition(f"conversation {conversation_id} is closed")  # rolls back
            seq = conv.turn_count  # already incremented
            channels = list(conv.channels)
            if turn.channel not in channels:
                channels.append(turn.channel)
            switched = bool(conv.last_channel) and conv.last_channel != turn.channel
            changes = {
                "channels": channels, "last_channel": turn.channel,
                "channel_switches": conv.channel_switches + int(switched),
                "status": str(Status.ACTIVE if conv.status == Status.INACTIVE else conv.status),
                "updated_at": max(conv.updated_at, at),
            }
            props = {
                "conversation_id": conversation_id, "seq": seq, "role": str(turn.role),
                "channel": turn.channel, "identifier": turn.identifier, "text": turn.text,
                "intent": turn.intent, "topic": turn.topic, "at": at,
            }
            tx.run(_ADD_TURN, id=conversation_id, changes=changes, turn=props).consume()
            return seq

        seq = self._write_conversation(conversation_id, work)
        return Turn(conversation_id, seq, turn.role, turn.channel, turn.identifier, turn.text,
                    turn.intent, turn.topic, at)

    def _turns(self, conversation_id: str, after_seq: int, limit: int) -> list[Turn]:
        records = self._read(_TURNS, id=conversation_id, after_seq=after_seq, limit=limit)
        return [_turn(r["t"]) for r in records]

    def _update(self, conversation_id: str, expected_version: int, context: Context | None,
                state: State | None, at: datetime) -> Conversation:
        # The bump takes the lock; `doc`, read under it, still holds the version before this
        # write. A mismatch raises, which rolls the bump back.
        def work(tx: ManagedTransaction) -> Conversation:
            conv = self._locked(tx, _LOCK_VERSION, conversation_id)
            if conv.version != expected_version:
                raise Conflict(f"conversation {conversation_id} is at version {conv.version}, "
                               f"not {expected_version}")
            version = conv.version + 1
            doc = _doc_json(version, conv.context if context is None else context,
                            conv.state if state is None else state)
            changes: dict[str, Any] = {
                "doc": doc, "version": version,
                "updated_at": max(conv.updated_at, _time(_to_db_time(at))),
            }
            record = tx.run(_PATCH, id=conversation_id, changes=changes).single(strict=True)
            return _conversation(record["c"])

        return self._write_conversation(conversation_id, work)

    def _set_status(self, conversation_id: str, status: Status, at: datetime, reason: str,
                    resumed: bool) -> Conversation:
        at = _time(_to_db_time(at))

        def work(tx: ManagedTransaction) -> Conversation:
            conv = self._locked(tx, _LOCK, conversation_id)
            if conv.status == Status.CLOSED and status != Status.CLOSED:
                raise FailedPrecondition(f"conversation {conversation_id} is closed")
            changes: dict[str, Any] = {
                "status": str(status), "updated_at": max(conv.updated_at, at),
                "resumed_count": conv.resumed_count + int(resumed),
            }
            if status == Status.CLOSED and conv.closed_at is None:
                changes["closed_at"] = at
            if status == Status.ESCALATED and reason:
                changes["escalation_reason"] = reason
            record = tx.run(_PATCH, id=conversation_id, changes=changes).single(strict=True)
            return _conversation(record["c"])

        return self._write_conversation(conversation_id, work)

    def _mark_idle(self, idle_before: datetime, close_before: datetime, at: datetime) -> int:
        # Idling first, so a conversation untouched since `close_before` closes in one sweep.
        def work(tx: ManagedTransaction) -> int:
            idled = {r["id"] for r in tx.run(_IDLE, idle_before=_to_db_time(idle_before))}
            closed = {r["id"] for r in tx.run(_CLOSE_IDLE, close_before=_to_db_time(close_before),
                                              at=_to_db_time(at))}
            return len(idled | closed)

        return self._write(work)

    # ---- handoffs, step-ups -------------------------------------------------------------------

    def _put_handoff(self, handoff: Handoff) -> None:
        h = handoff
        props = {"code_hash": h.code_hash, "conversation_id": h.conversation_id,
                 "channel": h.channel, "created_at": _to_db_time(h.created_at),
                 "expires_at": _to_db_time(h.expires_at), "redeemed_at": _to_db_time(h.redeemed_at),
                 "redeemed_by": h.redeemed_by, "link_hash": h.link_hash}
        self._create_node(_PUT_HANDOFF, props, "a handoff with this code")

    def _redeem_handoff(self, code_hash: str, channel: str, by: str, at: datetime) -> Handoff | None:
        def work(tx: ManagedTransaction) -> Handoff | None:
            record = tx.run(_REDEEM_HANDOFF, code_hash=code_hash, channel=channel, by=by,
                            at=_to_db_time(at)).single()
            return None if record is None else _handoff(record["h"])

        return self._write(work)

    def _put_step_up(self, step_up: StepUp) -> None:
        s = step_up
        props = {"id": s.id, "requester": s.requester, "target": s.target,
                 "code_hash": s.code_hash, "channel": s.channel,
                 "created_at": _to_db_time(s.created_at), "expires_at": _to_db_time(s.expires_at),
                 "attempts": s.attempts, "completed_at": _to_db_time(s.completed_at)}
        self._create_node(_PUT_STEP_UP, props, f"step-up {s.id}")

    def _get_step_up(self, step_up_id: str) -> StepUp | None:
        records = self._read(_GET_STEP_UP, id=step_up_id)
        return _step_up(records[0]["s"]) if records else None

    def _complete_step_up(self, step_up_id: str, code_hash: str, at: datetime) -> StepUp | None:
        def work(tx: ManagedTransaction) -> StepUp | None:
            record = tx.run(_COMPLETE_STEP_UP, id=step_up_id, code_hash=code_hash,
                            at=_to_db_time(at)).single()
            return _step_up(record["s"]) if record is not None and record["ok"] else None

        return self._write(work)

    def _count(self, limits: Sequence[tuple[str, int]], delta: int, expires_at: datetime,
               at: datetime) -> bool:
        rows = [{"key": k, "cap": cap} for k, cap in limits]

        def work(tx: ManagedTransaction) -> bool:
            record = tx.run(_COUNT, limits=rows, delta=delta, expires_at=_to_db_time(expires_at),
                            at=_to_db_time(at)).single()
            return bool(record and record["ok"])

        return self._write(work)

    # ---- consents, outbox ---------------------------------------------------------------------

    def _add_consent(self, consent: Consent) -> None:
        c = consent
        props = {"identifier": c.identifier, "channel": c.channel, "purpose": c.purpose,
                 "granted": c.granted, "source": c.source, "at": _to_db_time(c.at)}
        self._write(lambda tx: tx.run(_ADD_CONSENT, props=props).consume())

    def _consents(self, identifiers: Sequence[str]) -> list[Consent]:
        records = self._read(_CONSENTS, ids=list(identifiers))
        return [
            Consent(p["identifier"], p["channel"], p["purpose"], bool(p["granted"]), p["source"],
                    _time(p["at"]))
            for p in (r["c"] for r in records)
        ]

    def _outbox_put(self, message: OutboxMessage) -> None:
        m = message
        props = {"id": m.id, "channel": m.channel, "recipient": m.recipient, "text": m.text,
                 "created_at": _to_db_time(m.created_at)}
        self._create_node(_OUTBOX_PUT, props, f"outbox message {m.id}")

    def _outbox(self, recipient: str) -> list[OutboxMessage]:
        return [
            OutboxMessage(p["id"], p["channel"], p["recipient"], p["text"], _time(p["created_at"]))
            for p in (r["m"] for r in self._read(_OUTBOX, recipient=recipient))
        ]

    # ---- metrics, erasure ---------------------------------------------------------------------

    def _conversations_between(self, start: datetime, end: datetime) -> list[Conversation]:
        records = self._read(_BETWEEN, start=_to_db_time(start), end=_to_db_time(end))
        return [_conversation(r["c"]) for r in records]

    def _delete_for(self, anchors: Sequence[str]) -> int:
        anchors = list(anchors)

        def work(tx: ManagedTransaction) -> int:
            ids = [r["id"] for r in tx.run(_CONVERSATION_IDS, anchors=anchors)]
            for query in _DELETE_FOR:
                tx.run(query, ids=ids, anchors=anchors).consume()
            return len(ids)

        return self._write(work)

    def _count_of(self, query: LiteralString, **params: Any) -> int:
        return int(self._write(lambda tx: tx.run(query, **params).single(strict=True)["n"]))

    def _redact_turns(self, identifiers: Sequence[str]) -> int:
        return self._count_of(_REDACT_TURNS, keys=list(identifiers))

    def _delete_outbox(self, recipients: Sequence[str]) -> int:
        return self._count_of(_DELETE_OUTBOX, recipients=list(recipients))

    def _seal(self, anchor: str, before: datetime, reason: str, actor: str, at: datetime) -> int:
        def work(tx: ManagedTransaction) -> int:
            record = tx.run(_SEAL, anchor=anchor, before=_to_db_time(before), reason=reason,
                            actor=actor, at=_to_db_time(at)).single()
            return int(record["closed"]) if record else 0

        return self._write(work)

    def _seals(self, anchors: Sequence[str]) -> dict[str, datetime]:
        return {r["anchor"]: _time(r["before"]) for r in self._read(_SEALS, anchors=list(anchors))}

    def _clear(self) -> None:
        with self.database.session() as session:
            session.run(_CLEAR).consume()


__all__ = ["SCHEMA", "Neo4jConversationStore"]
