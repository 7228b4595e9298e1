"""`SQLiteConversationStore`: conversations, turns, handoffs, step-ups, consents, outbox and seals
in the `SQLiteDatabase` beside the graph (schema: `identity_graph.store.sqlite_schema`)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from identity_graph.errors import Conflict, FailedPrecondition, NotFound
from identity_graph.store.sqlite import SQLiteDatabase, from_us, in_list, to_us
from identity_graph.store.sqlite_schema import SESSION_TABLES, columns
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

_CONV_COLS = columns("conversations")
_TURN_COLS = columns("turns")
_HANDOFF_COLS = columns("handoffs")
_STEP_UP_COLS = columns("step_ups")


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _context_json(context: Context) -> str:
    return _json({"topic": context.topic, "intent": context.intent, "slots": dict(context.slots)})


def _state_json(state: State) -> str:
    return _json({"flow": state.flow, "step": state.step, "data": dict(state.data)})


def _conversation(row: Sequence[Any]) -> Conversation:
    (id_, anchor, status, channels, context, state, version, created_at, updated_at, closed_at,
     escalation_reason, carried_from, resumed_count, turn_count, last_channel,
     channel_switches, participant) = row
    ctx, st = json.loads(context), json.loads(state)
    return Conversation(
        id=id_, anchor=anchor, status=Status(status), channels=tuple(json.loads(channels)),
        context=Context(ctx["topic"], ctx["intent"], ctx["slots"]),
        state=State(st["flow"], st["step"], st["data"]),
        version=version, created_at=from_us(created_at), updated_at=from_us(updated_at),  # type: ignore[arg-type]
        closed_at=from_us(closed_at), escalation_reason=escalation_reason, carried_from=carried_from,
        resumed_count=resumed_count, turn_count=turn_count, last_channel=last_channel,
        channel_switches=channel_switches, participant=json.loads(participant) if participant else {},
    )


def _turn(row: Sequence[Any]) -> Turn:
    conversation_id, seq, role, channel, identifier, text, intent, topic, at = row
    return Turn(conversation_id, seq, Role(role), channel, identifier, text, intent, topic,
                from_us(at))  # type: ignore[arg-type]


def _handoff(row: Sequence[Any]) -> Handoff:
    (code_hash, conversation_id, channel, created_at, expires_at, redeemed_at, redeemed_by,
     link_hash) = row
    return Handoff(code_hash, conversation_id, channel, from_us(created_at), from_us(expires_at),  # type: ignore[arg-type]
                   from_us(redeemed_at), redeemed_by, link_hash or "")


def _step_up(row: Sequence[Any]) -> StepUp:
    id_, requester, target, code_hash, channel, created_at, expires_at, attempts, completed_at = row
    return StepUp(id_, requester, target, code_hash, channel, from_us(created_at),  # type: ignore[arg-type]
                  from_us(expires_at), attempts, from_us(completed_at))  # type: ignore[arg-type]


class SQLiteConversationStore(ConversationStore):
    """Conversation tables in the database's one file. A read-check-write runs inside one
    `transaction()`, which holds the file's write lock (`BEGIN IMMEDIATE`) from its start."""

    name = "sqlite"

    def __init__(self, database: SQLiteDatabase) -> None:
        self.database = database

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.database.rows(sql, params)

    # ---- conversations -----------------------------------------------------------------------

    def _create(self, conversation: Conversation) -> None:
        c = conversation
        try:
            with self.database.transaction() as con:
                con.execute(f"INSERT INTO conversations ({_CONV_COLS}) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                    c.id, c.anchor, str(c.status), _json(list(c.channels)), _context_json(c.context),
                    _state_json(c.state), c.version, to_us(c.created_at), to_us(c.updated_at),
                    to_us(c.closed_at), c.escalation_reason, c.carried_from, c.resumed_count,
                    c.turn_count, c.last_channel, c.channel_switches,
                    _json(dict(c.participant)) if c.participant else None,
                ])
        except sqlite3.IntegrityError as e:
            raise Conflict(f"conversation {c.id} exists already") from e

    def _get(self, conversation_ids: Sequence[str]) -> list[Conversation]:
        cond, params = in_list("id", conversation_ids)
        rows = self._rows(f"SELECT {_CONV_COLS} FROM conversations WHERE {cond} ORDER BY id", params)
        return [_conversation(r) for r in rows]

    def _by_anchors(self, anchors: Sequence[str], statuses: Sequence[Status], channel: str,
                    after: tuple[datetime, str] | None, limit: int) -> list[Conversation]:
        # Newest first; ties on updated_at by ascending id, matching the keyset condition.
        cond, params = in_list("anchor", anchors)
        sql = f"SELECT {_CONV_COLS} FROM conversations WHERE {cond}"
        if statuses:  # `+status`: filter the anchors' rows; never scan by the status index instead
            c, p = in_list("+status", [str(s) for s in statuses])
            sql += f" AND {c}"
            params += p
        if channel:
            sql += " AND EXISTS (SELECT 1 FROM json_each(channels) WHERE value = ?)"
            params.append(channel)
        if after is not None:
            sql += " AND (updated_at < ? OR (updated_at = ? AND id > ?))"
            params += [to_us(after[0]), to_us(after[0]), after[1]]
        sql += " ORDER BY updated_at DESC, id LIMIT ?"
        params.append(limit)
        return [_conversation(r) for r in self._rows(sql, params)]

    @staticmethod
    def _current(con: sqlite3.Connection, conversation_id: str) -> Conversation:
        rows = con.execute(f"SELECT {_CONV_COLS} FROM conversations WHERE id = ?",
                           [conversation_id]).fetchall()
        if not rows:
            raise NotFound(f"unknown conversation {conversation_id}")
        return _conversation(rows[0])

    def _append_turn(self, conversation_id: str, turn: Turn) -> Turn:
        with self.database.transaction() as con:
            conv = self._current(con, conversation_id)
            if conv.status == Status.CLOSED:
                raise FailedPrecondition(f"conversation {conversation_id} is closed")
            seq = conv.turn_count + 1
            at = to_us(turn.at)
            channels = list(conv.channels)
            if turn.channel not in channels:
                channels.append(turn.channel)
            switched = bool(conv.last_channel) and conv.last_channel != turn.channel
            status = Status.ACTIVE if conv.status == Status.INACTIVE else conv.status
            con.execute(f"INSERT INTO turns ({_TURN_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                conversation_id, seq, str(turn.role), turn.channel, turn.identifier, turn.text,
                turn.intent, turn.topic, at,
            ])
            con.execute("UPDATE conversations SET turn_count = ?, channels = ?, last_channel = ?, "
                        "channel_switches = channel_switches + ?, status = ?, "
                        "updated_at = max(updated_at, ?) WHERE id = ?",
                        [seq, _json(channels), turn.channel, int(switched), str(status), at,
                         conversation_id])
        return replace(turn, conversation_id=conversation_id, seq=seq, at=from_us(at))

    def _turns(self, conversation_id: str, after_seq: int, limit: int) -> list[Turn]:
        rows = self._rows(f"SELECT {_TURN_COLS} FROM turns WHERE conversation_id = ? AND seq > ? "
                          "ORDER BY seq LIMIT ?", [conversation_id, after_seq, limit])
        return [_turn(r) for r in rows]

    def _update(self, conversation_id: str, expected_version: int, context: Context | None,
                state: State | None, at: datetime) -> Conversation:
        with self.database.transaction() as con:
            rows = con.execute(
                "UPDATE conversations SET context = coalesce(?, context), "
                "state = coalesce(?, state), version = version + 1, "
                "updated_at = max(updated_at, ?) "
                f"WHERE id = ? AND version = ? RETURNING {_CONV_COLS}",
                [None if context is None else _context_json(context),
                 None if state is None else _state_json(state), to_us(at), conversation_id,
                 expected_version],
            ).fetchall()
            if rows:
                return _conversation(rows[0])
            current = self._current(con, conversation_id)  # raises NotFound
        raise Conflict(f"conversation {conversation_id} is at version {current.version}, "
                       f"not {expected_version}")

    def _set_status(self, conversation_id: str, status: Status, at: datetime, reason: str,
                    resumed: bool) -> Conversation:
        with self.database.transaction() as con:
            conv = self._current(con, conversation_id)
            if conv.status == Status.CLOSED and status != Status.CLOSED:
                raise FailedPrecondition(f"conversation {conversation_id} is closed")
            rows = con.execute(
                "UPDATE conversations SET status = ?, updated_at = max(updated_at, ?), "
                "closed_at = CASE WHEN ? = 'closed' THEN coalesce(closed_at, ?) ELSE closed_at END, "
                "escalation_reason = CASE WHEN ? = 'escalated' AND ? <> '' THEN ? "
                "ELSE escalation_reason END, "
                "resumed_count = resumed_count + ? "
                f"WHERE id = ? RETURNING {_CONV_COLS}",
                [str(status), to_us(at), str(status), to_us(at), str(status), reason, reason,
                 int(resumed), conversation_id],
            ).fetchall()
        return _conversation(rows[0])

    def _mark_idle(self, idle_before: datetime, close_before: datetime, at: datetime) -> int:
        # Idling first, so a conversation untouched since `close_before` closes in one sweep.
        # Usually nothing is due: a read (no write lock) saves the write transaction.
        due = self._rows("SELECT 1 FROM conversations WHERE (status = 'active' AND updated_at < ?) "
                         "OR (status = 'inactive' AND updated_at < ?) LIMIT 1",
                         [to_us(idle_before), to_us(close_before)])
        if not due:
            return 0
        with self.database.transaction() as con:
            idled = con.execute("UPDATE conversations SET status = 'inactive' "
                                "WHERE status = 'active' AND updated_at < ? RETURNING id",
                                [to_us(idle_before)]).fetchall()
            closed = con.execute("UPDATE conversations SET status = 'closed', closed_at = ? "
                                 "WHERE status = 'inactive' AND updated_at < ? RETURNING id",
                                 [to_us(at), to_us(close_before)]).fetchall()
        return len({i for (i,) in idled} | {i for (i,) in closed})

    # ---- handoffs, step-ups ------------------------------------------------------------------

    def _put_handoff(self, handoff: Handoff) -> None:
        h = handoff
        try:
            with self.database.transaction() as con:
                con.execute(f"INSERT INTO handoffs ({_HANDOFF_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            [h.code_hash, h.conversation_id, h.channel, to_us(h.created_at),
                             to_us(h.expires_at), to_us(h.redeemed_at), h.redeemed_by, h.link_hash])
        except sqlite3.IntegrityError as e:
            raise Conflict("a handoff with this code exists already") from e

    def _redeem_handoff(self, code_hash: str, channel: str, by: str, at: datetime) -> Handoff | None:
        with self.database.transaction() as con:
            rows = con.execute("UPDATE handoffs SET redeemed_at = ?, redeemed_by = ? "
                               "WHERE (code_hash = ? OR (link_hash = ? AND link_hash <> '')) "
                               "AND channel = ? AND redeemed_at IS NULL AND expires_at > ? "
                               f"RETURNING {_HANDOFF_COLS}",
                               [to_us(at), by, code_hash, code_hash, channel, to_us(at)]).fetchall()
        return _handoff(rows[0]) if rows else None

    def _count(self, limits: Sequence[tuple[str, int]], delta: int, expires_at: datetime,
               at: datetime) -> bool:
        # `transaction()` holds the file's write lock from BEGIN IMMEDIATE: no other writer, in
        # this process or another, comes in between the read of the counters and their update.
        keys = [k for k, _ in limits]
        now = to_us(at)
        key_in, params = in_list("key", keys)
        with self.database.transaction() as con:
            current = {k: (n if e > now else 0) for k, n, e in con.execute(
                f"SELECT key, n, expires_at FROM attempt_counters WHERE {key_in}", params).fetchall()}
            if delta > 0 and any(current.get(k, 0) + delta > cap for k, cap in limits):
                return False
            con.executemany(
                "INSERT INTO attempt_counters (key, n, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET n = CASE WHEN attempt_counters.expires_at > ? "
                "THEN max(attempt_counters.n + ?, 0) ELSE max(?, 0) END, "
                "expires_at = CASE WHEN attempt_counters.expires_at > ? "
                "THEN attempt_counters.expires_at ELSE excluded.expires_at END",
                [(k, max(delta, 0), to_us(expires_at), now, delta, delta, now) for k in keys])
        return True

    def _put_step_up(self, step_up: StepUp) -> None:
        s = step_up
        try:
            with self.database.transaction() as con:
                con.execute(f"INSERT INTO step_ups ({_STEP_UP_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            [s.id, s.requester, s.target, s.code_hash, s.channel, to_us(s.created_at),
                             to_us(s.expires_at), s.attempts, to_us(s.completed_at)])
        except sqlite3.IntegrityError as e:
            raise Conflict(f"step-up {s.id} exists already") from e

    def _get_step_up(self, step_up_id: str) -> StepUp | None:
        rows = self._rows(f"SELECT {_STEP_UP_COLS} FROM step_ups WHERE id = ?", [step_up_id])
        return _step_up(rows[0]) if rows else None

    def _complete_step_up(self, step_up_id: str, code_hash: str, at: datetime) -> StepUp | None:
        with self.database.transaction() as con:
            rows = con.execute("UPDATE step_ups SET attempts = attempts + 1 WHERE id = ? "
                               f"RETURNING {_STEP_UP_COLS}", [step_up_id]).fetchall()
            if not rows:
                return None
            step = _step_up(rows[0])
            if step.completed_at is not None or step.expires_at <= at or step.code_hash != code_hash:
                return None
            rows = con.execute(f"UPDATE step_ups SET completed_at = ? WHERE id = ? "
                               f"RETURNING {_STEP_UP_COLS}", [to_us(at), step_up_id]).fetchall()
        return _step_up(rows[0])

    # ---- consents, outbox --------------------------------------------------------------------

    def _add_consent(self, consent: Consent) -> None:
        c = consent
        with self.database.transaction() as con:
            con.execute("INSERT INTO consents (seq, identifier, channel, purpose, granted, source, at) "
                        "SELECT coalesce(max(seq), 0) + 1, ?, ?, ?, ?, ?, ? FROM consents",
                        [c.identifier, c.channel, c.purpose, int(c.granted), c.source, to_us(c.at)])

    def _consents(self, identifiers: Sequence[str]) -> list[Consent]:
        cond, params = in_list("identifier", identifiers)
        rows = self._rows("SELECT identifier, channel, purpose, granted, source, at FROM consents "
                          f"WHERE {cond} ORDER BY at, seq", params)
        return [Consent(i, ch, p, bool(g), s, from_us(at)) for i, ch, p, g, s, at in rows]  # type: ignore[arg-type]

    def _outbox_put(self, message: OutboxMessage) -> None:
        m = message
        try:
            with self.database.transaction() as con:
                con.execute("INSERT INTO outbox (id, seq, channel, recipient, text, created_at) "
                            "SELECT ?, coalesce(max(seq), 0) + 1, ?, ?, ?, ? FROM outbox",
                            [m.id, m.channel, m.recipient, m.text, to_us(m.created_at)])
        except sqlite3.IntegrityError as e:
            raise Conflict(f"outbox message {m.id} exists already") from e

    def _outbox(self, recipient: str) -> list[OutboxMessage]:
        rows = self._rows("SELECT id, channel, recipient, text, created_at FROM outbox "
                          "WHERE recipient = ? ORDER BY created_at, seq", [recipient])
        return [OutboxMessage(i, ch, r, t, from_us(at)) for i, ch, r, t, at in rows]  # type: ignore[arg-type]

    # ---- metrics, erasure --------------------------------------------------------------------

    def _conversations_between(self, start: datetime, end: datetime) -> list[Conversation]:
        rows = self._rows(f"SELECT {_CONV_COLS} FROM conversations "
                          "WHERE created_at >= ? AND created_at < ? ORDER BY created_at, id",
                          [to_us(start), to_us(end)])
        return [_conversation(r) for r in rows]

    def _delete_for(self, anchors: Sequence[str]) -> int:
        anchor_in, p_anchor = in_list("anchor", anchors)
        with self.database.transaction() as con:
            ids = [i for (i,) in con.execute(f"SELECT id FROM conversations WHERE {anchor_in}",
                                             p_anchor).fetchall()]
            if ids:
                conv_in, p_conv = in_list("conversation_id", ids)
                con.execute(f"DELETE FROM turns WHERE {conv_in}", p_conv)
                con.execute(f"DELETE FROM handoffs WHERE {conv_in}", p_conv)
            by_in, p_by = in_list("redeemed_by", anchors)
            con.execute(f"DELETE FROM handoffs WHERE {by_in}", p_by)
            req_in, p_req = in_list("requester", anchors)
            tgt_in, p_tgt = in_list("target", anchors)
            con.execute(f"DELETE FROM step_ups WHERE {req_in} OR {tgt_in}", p_req + p_tgt)
            ident_in, p_ident = in_list("identifier", anchors)
            con.execute(f"DELETE FROM consents WHERE {ident_in}", p_ident)
            con.execute(f"DELETE FROM seals WHERE {anchor_in}", p_anchor)
            # Counters are keyed "<cap>|<identifier>": an erased identifier's go with it.
            con.executemany("DELETE FROM attempt_counters WHERE substr(key, instr(key, '|') + 1) = ?",
                            [(a,) for a in anchors])
            if ids:
                id_in, p_id = in_list("id", ids)
                con.execute(f"DELETE FROM conversations WHERE {id_in}", p_id)
        return len(ids)

    def _redact_turns(self, identifiers: Sequence[str]) -> int:
        cond, params = in_list("identifier", identifiers)
        with self.database.transaction() as con:
            return con.execute(f"UPDATE turns SET identifier = '', text = '' WHERE {cond}",
                               params).rowcount

    def _delete_outbox(self, recipients: Sequence[str]) -> int:
        cond, params = in_list("recipient", recipients)
        with self.database.transaction() as con:
            return con.execute(f"DELETE FROM outbox WHERE {cond}", params).rowcount

    def _seal(self, anchor: str, before: datetime, reason: str, actor: str, at: datetime) -> int:
        with self.database.transaction() as con:
            con.execute("INSERT INTO seals (anchor, sealed_before, reason, actor, at) "
                        "VALUES (?, ?, ?, ?, ?)", [anchor, to_us(before), reason, actor, to_us(at)])
            closed = con.execute("UPDATE conversations SET status = 'closed', "
                                 "closed_at = coalesce(closed_at, ?) WHERE anchor = ? "
                                 "AND created_at < ? AND status <> 'closed' RETURNING id",
                                 [to_us(at), anchor, to_us(before)]).fetchall()
        return len(closed)

    def _seals(self, anchors: Sequence[str]) -> dict[str, datetime]:
        cond, params = in_list("anchor", anchors)
        rows = self._rows(f"SELECT anchor, max(sealed_before) FROM seals WHERE {cond} "
                          "GROUP BY anchor", params)
        return {a: from_us(t) for a, t in rows}  # type: ignore[misc]

    def _clear(self) -> None:
        with self.database.transaction() as con:
            for table in SESSION_TABLES:
                con.execute(f"DELETE FROM {table}")


__all__ = ["SQLiteConversationStore"]
