"""`Privacy`: erasure ("forget"), the data-subject export, suppression and the audit log."""

from __future__ import annotations

import contextlib
import heapq
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from identity_graph.errors import FailedPrecondition, InvalidArgument
from identity_graph.model import Event, Link
from privacy.store.base import (
    AUDIT_ACTIONS,
    EVENT_ACTIONS,
    MAX_AUDIT_PAGE,
    AuditRecord,
    PrivacyStore,
)

if TYPE_CHECKING:
    from identity_graph.engine import IdentityGraph
    from session.model import Conversation, Handoff
    from session.store.base import ConversationStore

ACTIONS = EVENT_ACTIONS + AUDIT_ACTIONS
DEFAULT_AUDIT_PAGE = 100
REDACTED = "[erased]"


class Scope(StrEnum):
    IDENTIFIER = "identifier"
    CUSTOMER = "customer"


@dataclass(frozen=True)
class ForgetResult:
    """What an erasure removed or rewrote, per kind, and its audit record's id."""

    counts: dict[str, int]
    audit_id: str


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log: from the event log (merge, split) or the audit table."""

    id: str
    action: str
    actor: str
    at: datetime
    subject: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)


class Privacy:
    """Erasure, export and the audit log over the identity graph, the conversation store beside it
    and a `PrivacyStore`, through their public methods only.

    Args:
        graph: the engine; its `write_lock` serialises an erasure with every other graph write.
        conversations: the conversation store beside the graph store.
        store: suppression list and audit table.
        caller: the authenticated caller of the current call, if any (the server passes
            `current_caller.get`); it wins over an actor named in a request.
    """

    def __init__(
        self,
        graph: IdentityGraph,
        conversations: ConversationStore,
        store: PrivacyStore,
        caller: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.graph = graph
        self.conversations = conversations
        self.store = store
        self.caller = caller

    # ---- helpers ----------------------------------------------------------------------------

    def actor(self, requested: str = "", default: str = "") -> str:
        return self.caller() or requested or default

    def is_suppressed(self, key: str) -> bool:
        """Whether the normalised identifier `key` was erased (the hook Resolve and ingest use)."""
        return self.store.is_suppressed(key)

    def _audit(self, action: str, actor: str, subject: str, detail: Mapping[str, Any]) -> AuditRecord:
        record = AuditRecord("aud_" + secrets.token_hex(10), action, actor, self.graph.clock(),
                             self.store.hash(subject) if subject else "", dict(detail))
        self.store.append_audit(record)
        return record

    # ---- forget -----------------------------------------------------------------------------

    def forget(self, type_: str, value: str, scope: Scope | str, *, actor: str = "",
               reason: str = "") -> ForgetResult:
        """Erases an identifier, or its whole customer, on this backend.

        Removes identifiers, their attribute observations and every link touching them; the
        conversations anchored at them with turns, consents, seals, handoffs and step-ups; outbox
        messages to them; turns typed through them elsewhere are blanked; events that name them
        (or the erased customer) keep only seq, type and time; a customer left without
        identifiers goes with its aliases. The identifiers' hashes go on the suppression list
        first, so nothing recreates them meanwhile. An identifier erased alone is first detached
        from its customer (a split), so the rest of the customer stays consistent. All of it,
        the audit record included, is one transaction; a checkpoint follows, so that the erased
        values leave the database's logs on disk.

        Args:
            type_: the identifier's type.
            value: its value (normalised here).
            scope: `identifier` or `customer`.
            actor: who asks (the authenticated caller wins).
            reason: why; kept in the audit record with any erased value blanked out.
        Returns:
            Counts per kind and the audit record's id.
        Raises:
            InvalidArgument: a bad identifier or scope.
        """
        try:
            scope = Scope(scope)
        except ValueError as e:
            raise InvalidArgument("scope", "one of identifier, customer") from e
        key = self.graph.identifier(type_, value, "identifier").key
        who = self.actor(actor, "admin")
        graph, gstore = self.graph, self.graph.store
        counts: dict[str, int] = {}
        # One transaction for all of it, on both backends: a crash anywhere leaves everything as
        # it was, and running Forget again erases it all.
        with graph.write_lock, gstore.database.transaction():
            node = graph.lock_keys([key]).get(key)  # no server writes this customer meanwhile
            customer_id = node.customer_id if node is not None else None
            if scope is Scope.CUSTOMER and customer_id:
                keys = sorted(set(gstore.members(customer_id)) | {key})
            else:
                keys = [key]
                if node is not None and any(lk.kind.merges for lk in gstore.links([key])):
                    with contextlib.suppress(FailedPrecondition):  # its links held nothing together
                        graph.links.split(detach=[key], actor=who)
                    node = gstore.get_identifier(key)
                    customer_id = node.customer_id if node is not None else None
            erased_customers: list[str] = []
            if customer_id and set(gstore.members(customer_id)) <= set(keys):
                erased_customers = [customer_id, *gstore.aliases_of(customer_id)]
            values = sorted({k.partition(":")[2] for k in keys})
            counts["suppressed"] = self.store.suppress(keys, graph.clock())
            erased = self.conversations.erase_for(keys)
            counts.update(conversations=erased.conversations, turns_redacted=erased.turns_redacted,
                          outbox=erased.outbox)
            deleted = gstore.delete_identifiers(keys)
            counts.update(identifiers=deleted.identifiers, observations=deleted.observations,
                          links=deleted.links)
            counts["events"] = gstore.erase_event_payloads([*keys, *erased_customers],
                                                           erased_customers)
            counts["customers"], counts["aliases"] = gstore.delete_customers(erased_customers)
            for secret in sorted([*keys, *values, *erased_customers], key=len, reverse=True):
                reason = reason.replace(secret, REDACTED) if secret else reason
            record = self._audit("erasure", who, key, {
                "scope": str(scope), "identifiers": len(keys), "reason": reason[:500],
                "counts": counts,
            })
        # Deleted rows are zeroed in the file (secure_delete) or unused in the store files; the
        # checkpoint moves them out of the write-ahead / transaction logs too.
        gstore.database.checkpoint()
        return ForgetResult(counts, record.id)

    # ---- export -----------------------------------------------------------------------------

    def export_customer(self, ref: str, *, actor: str = "") -> tuple[str, dict[str, Any]]:
        """Everything held about a customer, as one JSON-ready document.

        Args:
            ref: a customer id, an alias of one, or an identifier key (`type:value`).
            actor: who asks (the authenticated caller wins).
        Returns:
            (customer id, document)
        Raises:
            NotFound: no such customer.
        """
        view = self.graph.customers.get(ref)
        gstore = self.graph.store
        keys = [n.key for n in view.identifiers]
        links = {lk.id: lk for lk in gstore.links(keys, include_removed=True)}
        history = self.conversations.export_for(keys)
        conversations = [
            {**_conversation_doc(conv), "turns": [
                {"seq": t.seq, "role": str(t.role), "channel": t.channel, "identifier": t.identifier,
                 "text": t.text, "intent": t.intent, "topic": t.topic, "at": _iso(t.at)}
                for t in turns
            ]}
            for conv, turns in history.conversations
        ]
        events = gstore.events_mentioning([*keys, view.customer_id, *view.aliases],
                                          [view.customer_id, *view.aliases])
        doc: dict[str, Any] = {
            "customer_id": view.customer_id,
            "created_at": _iso(view.created_at),
            "aliases": list(view.aliases),
            "identifiers": [
                {"key": n.key, "type": n.type, "value": n.value, "first_seen": _iso(n.first_seen),
                 "last_seen": _iso(n.last_seen), "generic": n.generic}
                for n in view.identifiers
            ],
            "links": [_link_doc(lk) for lk in sorted(links.values(), key=lambda lk: (lk.a, lk.b, lk.id))],
            "attributes": [
                {"identifier": o.key, "name": o.attribute, "value": o.value, "source": o.source,
                 "channel": o.channel, "observed_at": _iso(o.observed_at)}
                for o in view.observations
            ],
            "conversations": conversations,
            "consents": [
                {"identifier": c.identifier, "channel": c.channel, "purpose": c.purpose,
                 "granted": c.granted, "source": c.source, "at": _iso(c.at)}
                for c in history.consents
            ],
            "events": [_event_doc(e) for e in events],
        }
        self._audit("export", self.actor(actor, "admin"), view.customer_id, {
            "identifiers": len(doc["identifiers"]), "links": len(doc["links"]),
            "attributes": len(doc["attributes"]), "conversations": len(conversations),
            "consents": len(doc["consents"]), "events": len(events),
        })
        return view.customer_id, doc

    # ---- audit ------------------------------------------------------------------------------

    def record_handoff_redemption(self, handoff: Handoff, conversation: Conversation, key: str,
                                  actor: str = "") -> None:
        """The `Sessions.on_handoff_redeemed` hook: an audit record without personal data."""
        self._audit("handoff_redemption", self.actor(actor, "session"), conversation.id, {
            "channel": handoff.channel, "linked": key != conversation.anchor,
        })

    def audit(self, start: datetime | None = None, end: datetime | None = None,
              actions: Sequence[str] = (), page_size: int = DEFAULT_AUDIT_PAGE,
              page_token: str = "") -> tuple[list[AuditEntry], str]:
        """Merges and splits from the event log with the audit table's records, oldest first.

        Returns:
            (entries, next page token; empty on the last page)
        Raises:
            InvalidArgument: an unknown action, a bad page size or token, or end <= start.
        """
        unknown = sorted(set(actions) - set(ACTIONS))
        if unknown:
            raise InvalidArgument("actions", f"unknown {unknown}; known: {', '.join(ACTIONS)}")
        if not 0 < page_size <= MAX_AUDIT_PAGE:
            raise InvalidArgument("page_size", f"must be between 1 and {MAX_AUDIT_PAGE}")
        if start is not None and end is not None and end <= start:
            raise InvalidArgument("end", "must be after start")
        wanted = set(actions) or set(ACTIONS)
        ev_after: tuple[datetime, int] | None = None
        au_after: tuple[datetime, str] | None = None
        if page_token:
            at, source, key = _decode_token(page_token)
            # Merged order is (at, source, key): events (0) before audit records (1) at one time.
            ev_after = (at, int(key) if source == 0 else 2**62)
            au_after = (at, key if source == 1 else "")
        types = [t for t in EVENT_ACTIONS if t in wanted]
        recs = [a for a in AUDIT_ACTIONS if a in wanted]
        events = self.graph.store.events_between(types, start, end, ev_after, page_size + 1)
        records = self.store.audit(start, end, recs, au_after, page_size + 1) if recs else []
        merged = heapq.merge(
            ((e.at, 0, f"{e.seq:020d}", _event_entry(e)) for e in events),
            ((r.at, 1, r.id, AuditEntry(r.id, r.action, r.actor, r.at, r.subject, r.detail))
             for r in records),
            key=lambda t: t[:3],
        )
        rows = list(merged)
        page = rows[:page_size]
        token = ""
        if len(rows) > page_size:
            at, source, key, _ = page[-1]
            token = _encode_token(at, source, key)
        return [entry for *_, entry in page], token


# ---- documents ------------------------------------------------------------------------------


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _link_doc(lk: Link) -> dict[str, Any]:
    return {
        "link_id": lk.id, "a": lk.a, "b": lk.b, "kind": lk.kind.label, "source": lk.source,
        "channel": lk.channel, "event_id": lk.event_id, "model_version": lk.model_version,
        "probability": lk.probability, "match_weight": lk.match_weight,
        "comparisons": dict(lk.comparisons) if lk.comparisons is not None else None,
        "created_at": _iso(lk.created_at), "actor": lk.actor, "active": lk.active,
        "removed_at": _iso(lk.removed_at), "removed_by": lk.removed_by,
        "removal_reason": lk.removal_reason, "claimant": lk.claimant,
    }


def _conversation_doc(c: Conversation) -> dict[str, Any]:
    return {
        "id": c.id, "anchor": c.anchor, "status": str(c.status), "channels": list(c.channels),
        "context": {"topic": c.context.topic, "intent": c.context.intent, "slots": dict(c.context.slots)},
        "state": {"flow": c.state.flow, "step": c.state.step, "data": dict(c.state.data)},
        "version": c.version, "created_at": _iso(c.created_at), "updated_at": _iso(c.updated_at),
        "closed_at": _iso(c.closed_at), "escalation_reason": c.escalation_reason,
        "participant": dict(c.participant),
    }


def _event_doc(e: Event) -> dict[str, Any]:
    return {"seq": e.seq, "type": e.type, "customer_id": e.customer_id, "at": _iso(e.at),
            "payload": dict(e.payload)}


def _event_entry(e: Event) -> AuditEntry:
    actor = e.payload.get("actor", "") if isinstance(e.payload, Mapping) else ""
    return AuditEntry(f"event:{e.seq}", e.type, str(actor or ""), e.at, e.customer_id, dict(e.payload))


def _encode_token(at: datetime, source: int, key: str) -> str:
    return f"{at.isoformat()}|{source}|{key}"


def _decode_token(token: str) -> tuple[datetime, int, str]:
    try:
        at, source, key = token.split("|", 2)
        if source not in ("0", "1"):
            raise ValueError(source)
        return datetime.fromisoformat(at), int(source), key
    except ValueError as e:
        raise InvalidArgument("page_token", "not a token from a previous page") from e


def document_json(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, default=str)


__all__ = ["ACTIONS", "AuditEntry", "ForgetResult", "Privacy", "Scope", "document_json"]
