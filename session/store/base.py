"""`ConversationStore`: conversations, turns, handoffs, step-ups, consents and the outbox.

Like `GraphStore`, public methods are written once and each backend implements private
primitives. A backend takes the backend's `Database`, the same object as the graph store's
(`session.store.conversation_store_for(graph)`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, final

from identity_graph.errors import IdentityGraphError, InvalidArgument, StoreError
from session.model import (
    Consent,
    Context,
    Conversation,
    ConversationHistory,
    ErasedConversations,
    Handoff,
    OutboxMessage,
    State,
    Status,
    StepUp,
    Turn,
)

if TYPE_CHECKING:
    from identity_graph.store.database import Database


class ConversationStore(ABC):
    name: str = "abstract"
    database: Database
    """The database the conversations live in (with the graph, in the server)."""

    # ---- primitives --------------------------------------------------------------------------

    @abstractmethod
    def _create(self, conversation: Conversation) -> None: ...

    @abstractmethod
    def _get(self, conversation_ids: Sequence[str]) -> list[Conversation]: ...

    @abstractmethod
    def _by_anchors(self, anchors: Sequence[str], statuses: Sequence[Status], channel: str,
                    after: tuple[datetime, str] | None, limit: int) -> list[Conversation]:
        """Conversations anchored at `anchors`, newest `updated_at` first (ties: id), starting
        after the `(updated_at, id)` cursor; `statuses`/`channel` empty means any."""

    @abstractmethod
    def _append_turn(self, conversation_id: str, turn: Turn) -> Turn:
        """Appends with the next seq (1, 2, ...), adds the channel to `channels`, counts a channel
        switch when it differs from `last_channel`, sets `last_channel`, bumps `turn_count` and
        `updated_at`, and re-activates an inactive conversation, in one transaction.
        Raises NotFound for an unknown id, FailedPrecondition for a closed one."""

    @abstractmethod
    def _turns(self, conversation_id: str, after_seq: int, limit: int) -> list[Turn]: ...

    @abstractmethod
    def _update(self, conversation_id: str, expected_version: int, context: Context | None,
                state: State | None, at: datetime) -> Conversation:
        """Sets context and/or state if the version is still `expected_version`, and bumps it.

        Raises:
            NotFound: unknown conversation.
            Conflict: the version moved on.
        """

    @abstractmethod
    def _set_status(self, conversation_id: str, status: Status, at: datetime, reason: str,
                    resumed: bool) -> Conversation: ...

    @abstractmethod
    def _mark_idle(self, idle_before: datetime, close_before: datetime, at: datetime) -> int:
        """active → inactive for conversations untouched since `idle_before`; inactive → closed
        for those untouched since `close_before`. Returns how many changed."""

    @abstractmethod
    def _put_handoff(self, handoff: Handoff) -> None: ...

    @abstractmethod
    def _redeem_handoff(self, code_hash: str, channel: str, by: str, at: datetime) -> Handoff | None:
        """Marks an unredeemed, unexpired handoff made for `channel` whose `code_hash` or
        `link_hash` is `code_hash` redeemed, and returns it; None otherwise (a code presented on
        another channel stays unredeemed). Exactly one of several concurrent redeemers gets it."""

    @abstractmethod
    def _put_step_up(self, step_up: StepUp) -> None: ...

    @abstractmethod
    def _get_step_up(self, step_up_id: str) -> StepUp | None: ...

    @abstractmethod
    def _complete_step_up(self, step_up_id: str, code_hash: str, at: datetime) -> StepUp | None:
        """Completes an open, unexpired step-up whose hash matches (counting the attempt either
        way); returns the completed step-up, or None."""

    @abstractmethod
    def _count(self, limits: Sequence[tuple[str, int]], delta: int, expires_at: datetime,
               at: datetime) -> bool:
        """Attempt counters, the one place where caps on codes are counted (step-ups, handoffs).

        In one transaction, and serialised with every other `_count` on the same keys: a counter
        whose window ended (its `expires_at` <= `at`) counts as 0 and, when written, starts a new
        window ending at `expires_at`; a missing counter is created that way. With `delta` > 0,
        adds `delta` to every counter of `limits` only if each stays within its limit, and says
        whether it did (all or none). With `delta` < 0, subtracts (never below 0) and returns True.
        `limits` comes sorted by key, so that concurrent callers lock counters in one order.
        """

    @abstractmethod
    def _add_consent(self, consent: Consent) -> None: ...

    @abstractmethod
    def _consents(self, identifiers: Sequence[str]) -> list[Consent]:
        """Every consent record of `identifiers`, oldest first."""

    @abstractmethod
    def _outbox_put(self, message: OutboxMessage) -> None: ...

    @abstractmethod
    def _outbox(self, recipient: str) -> list[OutboxMessage]: ...

    @abstractmethod
    def _conversations_between(self, start: datetime, end: datetime) -> list[Conversation]:
        """Conversations created in [start, end), for metrics."""

    @abstractmethod
    def _delete_for(self, anchors: Sequence[str]) -> int:
        """Deletes conversations anchored at `anchors` with their turns, consents and seals of
        `anchors`, handoffs and step-ups that name them, and attempt counters keyed
        `<kind>|<anchor>`. Returns the number of conversations."""

    @abstractmethod
    def _redact_turns(self, identifiers: Sequence[str]) -> int:
        """Turns typed through `identifiers` (in conversations anchored elsewhere): text and
        identifier are blanked; the turn's place in its conversation stays. Returns how many."""

    @abstractmethod
    def _delete_outbox(self, recipients: Sequence[str]) -> int:
        """Deletes outbox messages to `recipients` (bare values); returns how many."""

    @abstractmethod
    def _seal(self, anchor: str, before: datetime, reason: str, actor: str, at: datetime) -> int:
        """Records that conversations anchored at `anchor` created before `before` belong to an
        earlier holder of the identifier, and closes the open ones. Returns how many it closed."""

    @abstractmethod
    def _seals(self, anchors: Sequence[str]) -> dict[str, datetime]:
        """anchor -> the latest seal time, for those of `anchors` that were sealed."""

    @abstractmethod
    def _clear(self) -> None: ...

    # ---- public API --------------------------------------------------------------------------

    @contextmanager
    def _wrapped(self, what: str) -> Iterator[None]:
        try:
            yield
        except IdentityGraphError:
            raise
        except Exception as e:
            raise StoreError(f"{self.name} conversation store: {what} failed: {type(e).__name__}") from e

    @final
    def create(self, conversation: Conversation) -> None:
        with self._wrapped("create"):
            self._create(conversation)

    @final
    def get(self, conversation_id: str) -> Conversation | None:
        with self._wrapped("get"):
            found = self._get([conversation_id])
        return found[0] if found else None

    @final
    def by_anchors(self, anchors: Sequence[str], statuses: Sequence[Status] = (), channel: str = "",
                   after: tuple[datetime, str] | None = None, limit: int = 50) -> list[Conversation]:
        if not anchors:
            return []
        if not 0 < limit <= 1000:
            raise InvalidArgument("page_size", "must be between 1 and 1000")
        with self._wrapped("by_anchors"):
            return self._by_anchors(sorted(set(anchors)), list(statuses), channel, after, limit)

    @final
    def append_turn(self, conversation_id: str, turn: Turn) -> Turn:
        with self._wrapped("append_turn"):
            return self._append_turn(conversation_id, turn)

    @final
    def turns(self, conversation_id: str, after_seq: int = 0, limit: int = 1000) -> list[Turn]:
        with self._wrapped("turns"):
            return self._turns(conversation_id, after_seq, limit)

    @final
    def update(self, conversation_id: str, expected_version: int, *, context: Context | None = None,
               state: State | None = None, at: datetime) -> Conversation:
        if context is None and state is None:
            raise InvalidArgument("update", "nothing to update")
        with self._wrapped("update"):
            return self._update(conversation_id, expected_version, context, state, at)

    @final
    def set_status(self, conversation_id: str, status: Status, at: datetime, reason: str = "",
                   resumed: bool = False) -> Conversation:
        with self._wrapped("set_status"):
            return self._set_status(conversation_id, status, at, reason, resumed)

    @final
    def mark_idle(self, idle_before: datetime, close_before: datetime, at: datetime) -> int:
        with self._wrapped("mark_idle"):
            return self._mark_idle(idle_before, close_before, at)

    @final
    def put_handoff(self, handoff: Handoff) -> None:
        with self._wrapped("put_handoff"):
            self._put_handoff(handoff)

    @final
    def redeem_handoff(self, code_hash: str, channel: str, by: str, at: datetime) -> Handoff | None:
        if not code_hash:  # handoffs without a link token have link_hash ''
            return None
        with self._wrapped("redeem_handoff"):
            return self._redeem_handoff(code_hash, channel, by, at)

    @final
    def put_step_up(self, step_up: StepUp) -> None:
        with self._wrapped("put_step_up"):
            self._put_step_up(step_up)

    @final
    def get_step_up(self, step_up_id: str) -> StepUp | None:
        with self._wrapped("get_step_up"):
            return self._get_step_up(step_up_id)

    @final
    def complete_step_up(self, step_up_id: str, code_hash: str, at: datetime) -> StepUp | None:
        with self._wrapped("complete_step_up"):
            return self._complete_step_up(step_up_id, code_hash, at)

    @final
    def take_attempt(self, limits: Mapping[str, int], expires_at: datetime, at: datetime) -> bool:
        """Counts one attempt on every counter of `limits` (key -> cap within its window) if none
        is at its cap yet; all or nothing, atomic against concurrent callers.

        Returns:
            True when the attempt was counted and may go ahead; False when a cap is reached.
        """
        if not limits:
            return True
        with self._wrapped("take_attempt"):
            return self._count(sorted(limits.items()), 1, expires_at, at)

    @final
    def give_back_attempt(self, keys: Sequence[str], expires_at: datetime, at: datetime) -> None:
        """Uncounts an attempt taken with `take_attempt` (e.g. it succeeded, and only failures
        count against a cap)."""
        if keys:
            with self._wrapped("give_back_attempt"):
                self._count([(k, 0) for k in sorted(set(keys))], -1, expires_at, at)

    @final
    def add_consent(self, consent: Consent) -> None:
        with self._wrapped("add_consent"):
            self._add_consent(consent)

    @final
    def consents(self, identifiers: Sequence[str]) -> list[Consent]:
        if not identifiers:
            return []
        with self._wrapped("consents"):
            return self._consents(sorted(set(identifiers)))

    @final
    def outbox_put(self, message: OutboxMessage) -> None:
        with self._wrapped("outbox_put"):
            self._outbox_put(message)

    @final
    def outbox(self, recipient: str) -> list[OutboxMessage]:
        with self._wrapped("outbox"):
            return self._outbox(recipient)

    @final
    def conversations_between(self, start: datetime, end: datetime) -> list[Conversation]:
        with self._wrapped("conversations_between"):
            return self._conversations_between(start, end)

    @final
    def erase_for(self, identifiers: Sequence[str]) -> ErasedConversations:
        """Erases what the conversations hold of `identifiers` (keys `type:value`): the
        conversations anchored at them with their turns, consents, handoffs and step-ups, the
        text and identifier of turns typed through them in conversations anchored elsewhere, and
        outbox messages to their values.

        All in one `database.transaction()`, which joins the caller's when one is open, so that
        an erasure across the graph, the conversations and the privacy tables commits or rolls
        back as one (Forget).
        """
        keys = sorted(set(identifiers))
        if not keys:
            return ErasedConversations()
        recipients = sorted({k.partition(":")[2] for k in keys} - {""})
        with self._wrapped("erase_for"), self.database.transaction():
            conversations = self._delete_for(keys)
            turns = self._redact_turns(keys)
            outbox = self._delete_outbox(recipients) if recipients else 0
        return ErasedConversations(conversations, turns, outbox)

    @final
    def export_for(self, identifiers: Sequence[str]) -> ConversationHistory:
        """Every conversation anchored at `identifiers` with all its turns, and their consents:
        the conversation part of a data-subject export, read page by page."""
        if not identifiers:
            return ConversationHistory([], [])
        conversations: list[Conversation] = []
        after = None
        while True:
            page = self.by_anchors(identifiers, after=after, limit=1000)
            conversations.extend(page)
            if len(page) < 1000:
                break
            after = (page[-1].updated_at, page[-1].id)
        history = [(c, self._all_turns(c.id)) for c in conversations]
        return ConversationHistory(history, self.consents(identifiers))

    def _all_turns(self, conversation_id: str) -> list[Turn]:
        out: list[Turn] = []
        while True:
            page = self.turns(conversation_id, after_seq=out[-1].seq if out else 0)
            out.extend(page)
            if len(page) < 1000:
                return out

    @final
    def seal(self, anchor: str, before: datetime, reason: str, actor: str, at: datetime) -> int:
        with self._wrapped("seal"):
            return self._seal(anchor, before, reason, actor, at)

    @final
    def seals(self, anchors: Sequence[str]) -> dict[str, datetime]:
        if not anchors:
            return {}
        with self._wrapped("seals"):
            return self._seals(sorted(set(anchors)))

    @final
    def clear(self) -> None:
        with self._wrapped("clear"):
            self._clear()
