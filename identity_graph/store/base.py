"""`GraphStore`: the one storage interface, with algorithms written once over a few backend primitives.

Shape borrowed from Splink's `DatabaseAPI`: public methods are `@final`, validate and wrap errors;
each backend (`sqlite.py`, `neo4j.py`) implements only the private primitives below.
"""

from __future__ import annotations

import dataclasses
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import final

import pyarrow as pa
import pyarrow.parquet as pq

from identity_graph.blocking import BlockingIndex
from identity_graph.errors import IdentityGraphError, InvalidArgument, StoreError
from identity_graph.model import (
    AttributeMatch,
    ChangeSet,
    Component,
    Constraint,
    Customer,
    DeleteCounts,
    Event,
    IdentifierNode,
    IdentifierUpsert,
    Link,
    LinkKind,
    Observation,
    utcnow,
)
from identity_graph.paths import widest_paths
from identity_graph.store.database import Database
from identity_graph.store.erasure import eraser, mention
from identity_graph.store.tables import OPTIONAL_TABLES, TABLES
from identity_graph.writelock import WriteTracker

log = logging.getLogger(__name__)

MATCH_LOOKUP_CAP = 20_000
"""`keys_matching` reads at most this many keys per condition (a blocking value this common
blocks nothing useful)."""

MAX_TRAVERSAL = 20_000
"""A component or path search stops after this many identifiers: a giant component is a data
problem to report, not a reason to stall an online call."""


class GraphStore(ABC):
    """Identifiers, links with evidence, customers, aliases and the event log, on one backend."""

    name: str = "abstract"
    database: Database
    """The backend's database object: connection or driver, write tracker, transactions."""

    # ---- primitives each backend implements -------------------------------------------------

    @abstractmethod
    def _apply(self, changes: ChangeSet) -> list[int]:
        """Writes a change set in one transaction; returns the sequence numbers of its events."""

    @abstractmethod
    def _get_identifiers(self, keys: Sequence[str]) -> list[IdentifierNode]: ...

    @abstractmethod
    def _customers_of(self, keys: Sequence[str]) -> list[tuple[str, str | None]]: ...

    @abstractmethod
    def _observations(self, keys: Sequence[str]) -> list[Observation]: ...

    @abstractmethod
    def _links_touching(self, keys: Sequence[str], include_removed: bool) -> list[Link]: ...

    @abstractmethod
    def _links_by_id(self, link_ids: Sequence[str]) -> list[Link]: ...

    @abstractmethod
    def _customers(self, customer_ids: Sequence[str]) -> list[Customer]: ...

    @abstractmethod
    def _aliases(self, ids: Sequence[str]) -> dict[str, str]:
        """Retired id -> surviving id, for those of `ids` that are aliases."""

    def _aliases_to(self, customer_id: str) -> list[str]:
        """Retired ids whose alias points straight at `customer_id`."""
        raise NotImplementedError

    @abstractmethod
    def _members(self, customer_id: str) -> list[str]: ...

    @abstractmethod
    def _constraints(self, keys: Sequence[str] | None, include_withdrawn: bool) -> list[Constraint]:
        """Constraints with an end in `keys` (None: every one)."""

    @abstractmethod
    def _constraints_by_id(self, ids: Sequence[str]) -> list[Constraint]: ...

    @abstractmethod
    def _active_links_of_kind(self, kind: str, by_score: bool, limit: int,
                              offset: int) -> tuple[list[Link], int]:
        """A page of active links of `kind` (oldest first, or highest probability first) and
        how many there are in all."""

    @abstractmethod
    def _events(self, from_seq: int, limit: int) -> list[Event]: ...

    @abstractmethod
    def _keys_by_attribute(self, attribute: str, values: Sequence[str], limit: int) -> list[str]:
        """Identifier keys that were observed with `attribute` equal to one of `values`."""

    @abstractmethod
    def _keys_by_prefix(self, attribute: str, prefix: str, limit: int) -> list[str]:
        """Identifier keys that were observed with `attribute` starting with `prefix`."""

    @abstractmethod
    def _delete(self, keys: Sequence[str]) -> DeleteCounts:
        """Deletes the identifiers with their observations, links and blocking-key rows."""

    # Erasure (`privacy` calls these inside its one transaction; each joins the caller's
    # `database.transaction()` when one is open).

    @abstractmethod
    def _events_between(self, types: Sequence[str], start: datetime | None, end: datetime | None,
                        after: tuple[datetime, int] | None, limit: int) -> list[Event]:
        """Events of `types` with start <= at < end, ordered by (at, seq), after the cursor."""

    @abstractmethod
    def _events_mentioning(self, needles: Sequence[str], customer_ids: Sequence[str]) -> list[Event]:
        """Events whose payload contains one of `needles` (as JSON text) or whose customer id is
        one of `customer_ids`, by seq."""

    @abstractmethod
    def _erase_events(self, needles: Sequence[str], customer_ids: Sequence[str],
                      rewrite: Callable[[str], str]) -> int:
        """Replaces the payload of each event `_events_mentioning` finds by `rewrite(payload)`,
        and blanks its customer id where it is one of `customer_ids`, in one transaction; seq,
        type and time stay."""

    @abstractmethod
    def _delete_customers(self, customer_ids: Sequence[str]) -> tuple[int, int]:
        """Deletes customer records and every alias from or to them; returns (customers, aliases)."""

    # The blocking-key index (`identity_graph.blocking`): `_apply` writes `changes.blocking`
    # (replacing the rows of those keys), or marks the index stale when it writes observations
    # without it; `_clear`, `_load_tables` and `_delete` keep it consistent too.

    @abstractmethod
    def _blocking_version(self) -> str | None:
        """The version the blocking rows are complete for; None: none, or stale."""

    @abstractmethod
    def _identifier_keys_after(self, after: str, limit: int) -> list[str]:
        """The next `limit` identifier keys above `after`, in order (paging for a rebuild)."""

    @abstractmethod
    def _rebuild_blocking(self, version: str | None, rows: dict[str, list[tuple[str, str]]],
                          first: bool) -> None:
        """One page of a rebuild: `first` drops every row and the version; `rows` are written;
        a `version` (given with the last page) marks the index complete."""

    @abstractmethod
    def _blocking_probe(self, version: str, digests: Sequence[str], limit: int) -> list[str] | None:
        """The identifiers with any of `digests` (at most `limit` per digest, the smallest keys),
        one indexed probe per digest; None when the rows are not complete for `version`."""

    @abstractmethod
    def _export_tables(self) -> dict[str, pa.Table]: ...

    @abstractmethod
    def _load_tables(self, tables: dict[str, pa.Table]) -> None: ...

    @abstractmethod
    def _clear(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    def _ping(self) -> None:
        """Raises when the database cannot answer. Backends with a cheaper check override it."""
        self._get_identifiers(["ping:"])

    # ---- public API -------------------------------------------------------------------------

    @contextmanager
    def _wrapped(self, what: str) -> Iterator[None]:
        try:
            yield
        except IdentityGraphError:
            raise
        except Exception as e:  # a driver or database error: wrap it, keep the cause
            log.exception("%s store: %s failed", self.name, what)
            raise StoreError(f"{self.name} store: {what} failed: {type(e).__name__}") from e

    @final
    def ping(self) -> None:
        """One small round trip to the database, for health checks.

        Raises:
            StoreError: the database did not answer.
        """
        try:  # not `_wrapped`: a health check of a store that is down would log every round
            self._ping()
        except IdentityGraphError:
            raise
        except Exception as e:
            raise StoreError(f"{self.name} store: ping failed: {type(e).__name__}") from e

    @final
    def apply(self, changes: ChangeSet) -> list[int]:
        """Writes everything in `changes` atomically.

        Returns:
            The sequence numbers given to `changes.events`, in order.
        Raises:
            StoreError: the backend failed; nothing of the change set was written.
        """
        if not changes:
            return []
        with self._wrapped("apply"), self.writes.writing():
            if self.blocking is not None and changes.blocking is None:
                changes = self._with_blocking(changes, self.blocking)
            seqs = self._apply(changes)
        if seqs:
            self.database.after_commit(lambda: self._tell_listeners(seqs[-1]))
        return seqs

    # ---- the blocking-key index --------------------------------------------------------------

    blocking: BlockingIndex | None = None
    """The index this store keeps on write (`use_blocking`); None: writes of observations leave
    the stored rows stale."""

    def _with_blocking(self, changes: ChangeSet, index: BlockingIndex) -> ChangeSet:
        """`changes` with the complete blocking rows of every identifier it adds observations
        to (its stored observations read first: a row is a function of all of them)."""
        new = [o for up in changes.identifiers for o in up.observations]
        if not new:
            return changes
        keys = sorted({o.key for o in new})
        stored = {o.id: o for o in self._observations(keys)}
        stored.update((o.id, o) for o in new)
        rows = index.rows(list(stored.values()))
        return dataclasses.replace(changes, blocking={k: rows.get(k, []) for k in keys})

    @final
    def use_blocking(self, index: BlockingIndex | None) -> None:
        """Keeps `index` on every write from now on, and rebuilds the stored rows first when
        they were made by another model (or went stale). None stops keeping them."""
        self.blocking = index
        if index is not None and self.blocking_version() != index.version:
            self.rebuild_blocking()

    @final
    def blocking_version(self) -> str | None:
        with self._wrapped("blocking_version"):
            return self._blocking_version()

    @final
    def rebuild_blocking(self, page: int = 10_000) -> int:
        """Rewrites every blocking row from the observations with `self.blocking`, page by page
        (a crash midway leaves the index marked stale, not wrong); returns the identifiers read."""
        index = self.blocking
        if index is None:
            raise StoreError(f"{self.name} store: no blocking index to rebuild")
        after, n, first = "", 0, True
        with self._wrapped("rebuild_blocking"), self.writes.writing():
            while True:
                keys = self._identifier_keys_after(after, page)
                rows = index.rows(self._observations(keys)) if keys else {}
                last = len(keys) < page
                self._rebuild_blocking(index.version if last else None, rows, first)
                first, n = False, n + len(keys)
                if last:
                    break
                after = keys[-1]
        log.info("%s store: blocking index rebuilt for %s (%d identifiers)", self.name, index.version, n)
        return n

    @final
    def blocking_candidates(self, probes: Sequence[tuple[str, str]], limit: int) -> list[str] | None:
        """Identifier keys that share a blocking key with `probes` ((rule, digest) pairs of
        `BlockingIndex.probes`), the `limit` smallest per probe, sorted; None when the stored
        rows are not complete for this store's index (the caller looks candidates up another
        way)."""
        if self.blocking is None:
            return None
        digests = sorted({d for _, d in probes})
        if not digests:
            return []
        with self._wrapped("blocking_candidates"):
            found = self._blocking_probe(self.blocking.version, digests, limit)
        return None if found is None else sorted(set(found))
    def _tell_listeners(self, last_seq: int) -> None:
        for listener in tuple(self.__dict__.get("_event_listeners", ())):
            try:
                listener(last_seq)
            except Exception:  # a listener's bug must not fail a committed write
                log.exception("%s store: event listener failed", self.name)

    @property
    def writes(self) -> WriteTracker:
        """The database's write tracker: multi-statement reads use it to tell whether a write
        (through any store on this database) overlapped them (`identity_graph.writelock`)."""
        return self.database.writes

    @final
    def on_events(self, listener: Callable[[int], None]) -> Callable[[], None]:
        """Calls `listener(last_seq)` after each `apply` through this object that wrote events,
        in the writing thread, after the commit. Writes by other processes (or other store
        objects on the same database) are not seen: poll `events` for those.

        Returns:
            A function that removes the listener.
        """
        listeners: list[Callable[[int], None]] = self.__dict__.setdefault("_event_listeners", [])
        listeners.append(listener)

        def remove() -> None:
            if listener in listeners:
                listeners.remove(listener)

        return remove

    @final
    def upsert_identifiers(self, records: Sequence[IdentifierUpsert]) -> None:
        """Creates identifiers that are new, widens first/last seen, and adds observations."""
        self.apply(ChangeSet(identifiers=list(records)))

    @final
    def add_links(self, links: Sequence[Link], actor: str = "") -> None:
        """Adds links; a link with the same evidence (same id) that exists already is kept as is."""
        self.apply(ChangeSet(links_added=list(links)))

    @final
    def remove_links(self, link_ids: Sequence[str], actor: str, reason: str = "",
                     at: datetime | None = None) -> None:
        """Records the removal of active links; the links stay readable with `include_removed`."""
        at = at or utcnow()
        self.apply(ChangeSet(links_removed=[(i, at, actor, reason) for i in link_ids]))

    @final
    def get_identifiers(self, keys: Iterable[str]) -> dict[str, IdentifierNode]:
        keys = sorted(set(keys))
        if not keys:
            return {}
        with self._wrapped("get_identifiers"):
            return {n.key: n for n in self._get_identifiers(keys)}

    @final
    def customers_of(self, keys: Iterable[str]) -> dict[str, str | None]:
        """Each existing key's customer id (None: none yet): what a relink batch checks for
        a million keys, without building their nodes."""
        keys = sorted(set(keys))
        if not keys:
            return {}
        with self._wrapped("customers_of"):
            return dict(self._customers_of(keys))

    @final
    def get_identifier(self, key: str) -> IdentifierNode | None:
        return self.get_identifiers([key]).get(key)

    @final
    def observations(self, keys: Iterable[str]) -> list[Observation]:
        keys = sorted(set(keys))
        if not keys:
            return []
        with self._wrapped("observations"):
            return sorted(self._observations(keys), key=lambda o: (o.key, o.observed_at, o.attribute))

    @final
    def links(self, keys: Iterable[str], include_removed: bool = False) -> list[Link]:
        """Links that touch any of `keys`."""
        keys = sorted(set(keys))
        if not keys:
            return []
        with self._wrapped("links"):
            return self._links_touching(keys, include_removed)

    @final
    def links_by_id(self, link_ids: Iterable[str]) -> list[Link]:
        ids = sorted(set(link_ids))
        if not ids:
            return []
        with self._wrapped("links_by_id"):
            return self._links_by_id(ids)

    @final
    def revise(self, links: Iterable[Link]) -> list[Link]:
        """The links to add for `links`: one whose id is active already is left out (the same
        evidence twice); one whose id was removed takes the next free revision, so linking a
        removed pair again makes a new active link that the store and the engine both see."""
        pending = {lk.id: lk for lk in links}
        out: list[Link] = []
        while pending:
            stored = {lk.id: lk for lk in self.links_by_id(pending)}
            again: dict[str, Link] = {}
            for lid, lk in pending.items():
                old = stored.get(lid)
                if old is None:
                    out.append(lk)
                elif not old.active:
                    nxt = dataclasses.replace(lk, revision=lk.revision + 1)
                    again[nxt.id] = nxt
            pending = again
        return out

    @final
    def constraints(self, keys: Iterable[str] | None = None,
                    include_withdrawn: bool = False) -> list[Constraint]:
        """People's decisions (cannot-links, must-links) with an end in `keys` (None: all),
        oldest first."""
        wanted = None if keys is None else sorted(set(keys))
        if wanted == []:
            return []
        with self._wrapped("constraints"):
            found = self._constraints(wanted, include_withdrawn)
        return sorted(found, key=lambda c: (c.created_at, c.id))

    @final
    def constraints_by_id(self, ids: Iterable[str]) -> dict[str, Constraint]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        with self._wrapped("constraints_by_id"):
            return {c.id: c for c in self._constraints_by_id(wanted)}

    @final
    def active_links_of_kind(self, kind: LinkKind, *, by_score: bool = False, limit: int = 100,
                             offset: int = 0) -> tuple[list[Link], int]:
        """A page of the active links of `kind` (the review queue: `possible`), oldest first or
        highest probability first, and the total."""
        if limit <= 0 or offset < 0:
            raise InvalidArgument("page_size", "must be positive")
        with self._wrapped("active_links_of_kind"):
            return self._active_links_of_kind(kind.label, by_score, limit, offset)

    @final
    def neighbours(self, key: str, kinds: Iterable[LinkKind] | None = None) -> list[tuple[str, Link]]:
        """(neighbour key, link) for each active link of `key`, strongest first."""
        wanted = set(kinds) if kinds is not None else set(LinkKind)
        out = [(lk.other(key), lk) for lk in self.links([key]) if lk.kind in wanted]
        return sorted(out, key=lambda p: (-p[1].kind, p[0]))

    @final
    def customers(self, customer_ids: Iterable[str]) -> dict[str, Customer]:
        ids = sorted(set(customer_ids))
        if not ids:
            return {}
        with self._wrapped("customers"):
            return {c.id: c for c in self._customers(ids)}

    @final
    def canonical_customer_id(self, customer_id: str) -> str | None:
        """Follows aliases to the surviving id; None for an id that was never issued."""
        seen: set[str] = set()
        current = customer_id
        with self._wrapped("canonical_customer_id"):
            while current not in seen:
                seen.add(current)
                nxt = self._aliases([current]).get(current)
                if nxt is None:
                    return current if self._customers([current]) else None
                current = nxt
        raise StoreError(f"alias cycle at {customer_id}")

    @final
    def aliases_of(self, customer_id: str) -> list[str]:
        """Every retired id that resolves to `customer_id`, through chains of aliases too."""
        out: list[str] = []
        todo = [customer_id]
        with self._wrapped("aliases_of"):
            while todo:
                for alias in self._aliases_to(todo.pop()):
                    if alias not in out and alias != customer_id:
                        out.append(alias)
                        todo.append(alias)
        return sorted(out)

    @final
    def members(self, customer_id: str) -> list[str]:
        with self._wrapped("members"):
            return sorted(self._members(customer_id))

    @final
    def customer_subgraph(self, customer_id: str) -> tuple[list[str], list[Link], dict[str, IdentifierNode]]:
        """A customer's members (sorted), every active link that touches them (in `links`
        order), and the identifier nodes of the members and of the links' other ends: what
        `members`, `links` and `get_identifiers` return, in one read where the backend can."""
        with self._wrapped("customer_subgraph"):
            return self._customer_subgraph(customer_id)

    @final
    def identifier_subgraph(self, key: str) -> tuple[IdentifierNode | None, tuple[list[str], list[Link],
                                                                                dict[str, IdentifierNode]]]:
        """`key`'s node and, when it belongs to a customer, that customer's `customer_subgraph`
        (else empty parts): what a known Resolve reads, in one read where the backend can."""
        with self._wrapped("identifier_subgraph"):
            return self._identifier_subgraph(key)

    def _identifier_subgraph(self, key: str) -> tuple[IdentifierNode | None, tuple[list[str], list[Link],
                                                                                  dict[str, IdentifierNode]]]:
        nodes = self._get_identifiers([key])
        node = nodes[0] if nodes else None
        if node is None or node.customer_id is None:
            return node, ([], [], {})
        return node, self._customer_subgraph(node.customer_id)

    def _customer_subgraph(self, customer_id: str) -> tuple[list[str], list[Link], dict[str, IdentifierNode]]:
        members = sorted(self._members(customer_id))
        if not members:
            return [], [], {}
        links = self._links_touching(members, False)
        ends = sorted(set(members) | {lk.a for lk in links} | {lk.b for lk in links})
        return members, links, {n.key: n for n in self._get_identifiers(ends)}

    @final
    def events(self, from_seq: int = 0, limit: int = 1000) -> list[Event]:
        """Events with `seq > from_seq`, in order."""
        if limit <= 0 or limit > 100_000:
            raise InvalidArgument("limit", "must be between 1 and 100000")
        with self._wrapped("events"):
            return self._events(from_seq, limit)

    @final
    def keys_by_attribute(self, attribute: str, values: Iterable[str], limit: int = 1000) -> list[str]:
        vals = sorted({v for v in values if v})
        if not vals:
            return []
        with self._wrapped("keys_by_attribute"):
            return sorted(set(self._keys_by_attribute(attribute, vals, limit)))

    @final
    def keys_matching(self, conditions: Sequence[AttributeMatch], limit: int = 1000, *,
                      enough: int = 0) -> list[str]:
        """Identifier keys observed with every one of `conditions` (each on some observation),
        the first `limit` in key order.

        Each condition is looked up on its own (an indexed lookup on both backends) and the key
        sets are intersected here: one rule's candidates, instead of everybody who shares its
        most common part. The conditions that matched fewest keys before go first. With
        `enough`, the intersection stops once at most that many keys are left, and the result is
        a superset for the caller to check against the rest. A part that matches more than
        `MATCH_LOOKUP_CAP` keys is cut there."""
        conds = [c for c in conditions if c.value]
        if not conds:
            return []
        sizes: dict[tuple[str, bool], float] = self.__dict__.setdefault("_match_sizes", {})

        def expected(c: AttributeMatch) -> float:  # unknown: exact parts before prefixes
            return sizes.get((c.attribute, c.prefix), 1e4 if c.prefix else 1e3)

        keys: set[str] | None = None
        with self._wrapped("keys_matching"):
            for c in sorted(conds, key=expected):
                if keys is not None and len(keys) <= enough:
                    break
                if c.prefix:
                    found = self._keys_by_prefix(c.attribute, c.value, MATCH_LOOKUP_CAP)
                else:
                    found = self._keys_by_attribute(c.attribute, [c.value], MATCH_LOOKUP_CAP)
                seen = sizes.get((c.attribute, c.prefix))
                sizes[(c.attribute, c.prefix)] = len(found) if seen is None else 0.9 * seen + 0.1 * len(found)
                keys = set(found) if keys is None else keys & set(found)
                if not keys:
                    return []
        return sorted(keys or ())[:limit]

    @final
    def delete_identifiers(self, keys: Iterable[str]) -> DeleteCounts:
        """Removes identifiers with their observations and every link that touches them."""
        keys = sorted(set(keys))
        if not keys:
            return DeleteCounts()
        with self._wrapped("delete_identifiers"), self.writes.writing():
            return self._delete(keys)

    @final
    def events_between(self, types: Sequence[str], start: datetime | None = None,
                       end: datetime | None = None, after: tuple[datetime, int] | None = None,
                       limit: int = 100) -> list[Event]:
        """Events of `types` with start <= at < end, ordered by (at, seq), after the `(at, seq)`
        cursor: the event side of the audit log (merges, splits)."""
        if not types:
            return []
        if limit <= 0 or limit > 100_000:
            raise InvalidArgument("limit", "must be between 1 and 100000")
        with self._wrapped("events_between"):
            return self._events_between(sorted(set(types)), start, end, after, limit)

    @final
    def events_mentioning(self, values: Iterable[str], customer_ids: Iterable[str] = ()) -> list[Event]:
        """Events that name any of `values` (identifier keys, customer ids) in their payload, or
        belong to one of `customer_ids`, by seq (what a data-subject export shows)."""
        needles = sorted({mention(v) for v in values if v})
        ids = sorted({c for c in customer_ids if c})
        if not needles and not ids:
            return []
        with self._wrapped("events_mentioning"):
            return self._events_mentioning(needles, ids)

    @final
    def erase_event_payloads(self, values: Iterable[str], customer_ids: Iterable[str] = ()) -> int:
        """Rewrites the payloads of the events `events_mentioning` finds to `{"erased": true}`
        (plus the event's `actor`, a calling service, when it names none of the erased values)
        and blanks the erased customer ids, keeping seq, type and time, so the log stays ordered
        and complete without the personal data; returns how many. Joins the caller's transaction."""
        values = {v for v in values if v}
        ids = sorted({c for c in customer_ids if c})
        needles = sorted({mention(v) for v in values})
        if not needles and not ids:
            return 0
        with self._wrapped("erase_event_payloads"), self.writes.writing():
            return self._erase_events(needles, ids, eraser(values | set(ids)))

    @final
    def delete_customers(self, customer_ids: Iterable[str]) -> tuple[int, int]:
        """Deletes customer records and every alias from or to them (an erased customer left
        without identifiers); returns (customers, aliases). Joins the caller's transaction."""
        ids = sorted({c for c in customer_ids if c})
        if not ids:
            return 0, 0
        with self._wrapped("delete_customers"), self.writes.writing():
            return self._delete_customers(ids)

    @final
    def clear(self) -> None:
        """Deletes everything. For tests and demos."""
        with self._wrapped("clear"), self.writes.writing():
            self._clear()

    # ---- graph algorithms, written once ------------------------------------------------------

    @final
    def component(self, key: str) -> Component:
        """The customer that `key` belongs to: every identifier reachable over merging links.

        Generic identifiers belong to no one's component but their own: they end a traversal.
        """
        start = self.get_identifier(key)
        if start is None:
            return Component(None, frozenset())
        members = {key}
        if not start.generic:
            frontier = {key}
            while frontier and len(members) < MAX_TRAVERSAL:
                nxt: set[str] = set()
                for lk in self.links(frontier):
                    if lk.kind.merges:
                        nxt.add(lk.a)
                        nxt.add(lk.b)
                nxt -= members
                generic = {k for k, n in self.get_identifiers(nxt).items() if n.generic}
                members |= nxt - generic
                frontier = nxt - generic
        return Component(start.customer_id, frozenset(members))

    @final
    def bottleneck_path(self, a: str, b: str, max_nodes: int = MAX_TRAVERSAL) -> list[Link] | None:
        """The path from `a` to `b` whose weakest link is strongest (ties: fewest links).

        Paths never pass *through* a generic identifier. Returns [] when a == b, None when there
        is no path.
        """
        if self.get_identifier(a) is None:
            return None
        generic: dict[str, bool] = {}

        def is_generic(key: str) -> bool:
            if key not in generic:
                node = self.get_identifier(key)
                generic[key] = bool(node and node.generic)
            return generic[key]

        return widest_paths(a, self.links, is_generic, target=b, max_nodes=max_nodes).get(b)

    # ---- bulk --------------------------------------------------------------------------------

    @final
    def export_tables(self) -> dict[str, pa.Table]:
        """Every table of the store as Arrow, in the schemas of `tables.TABLES`."""
        with self._wrapped("export"):
            tables = self._export_tables()
        return {name: tables[name].select(schema.names).cast(schema) for name, schema in TABLES.items()}

    @final
    def export_parquet(self, directory: str | Path) -> dict[str, int]:
        """Writes one parquet file per table; returns the row counts."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        counts = {}
        for name, table in self.export_tables().items():
            pq.write_table(table, out / f"{name}.parquet")
            counts[name] = table.num_rows
        return counts

    @final
    def load_parquet(self, directory: str | Path) -> dict[str, int]:
        """Loads tables written by `export_parquet` into this (normally empty) store."""
        src = Path(directory)
        tables = {}
        for name, schema in TABLES.items():
            path = src / f"{name}.parquet"
            if not path.exists():
                if name in OPTIONAL_TABLES:  # exported before the table existed
                    tables[name] = schema.empty_table()
                    continue
                raise InvalidArgument("directory", f"{path} is missing")
            table = pq.read_table(path)
            for col, typ in (("claimant", pa.string()), ("revision", pa.int64())):
                if name == "links" and col not in table.column_names:  # exported before it existed
                    table = table.append_column(col, pa.nulls(table.num_rows, typ))
            tables[name] = table.select(schema.names).cast(schema)
        with self._wrapped("load"), self.writes.writing():
            self._load_tables(tables)
        if self.blocking is not None:  # the load left the index stale
            self.rebuild_blocking()
        return {name: t.num_rows for name, t in tables.items()}

    def __enter__(self) -> GraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
