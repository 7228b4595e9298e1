"""Region locks: a write excludes every other write that could change what it settles, across
processes, through the database.

A write (Resolve, Link, Unlink, Split, SetGeneric, a relink batch) changes the customers of the
identifiers it touches and nothing else. Inside its transaction it locks, in the database, one
name per customer it is about to read (`customer:<id>`) and one per identifier that has no
customer yet (`identifier:<key>`), re-reads those identifiers under the locks, and repeats while
the re-read names a customer it does not hold yet (a merge committed meanwhile). Only then does it
read the region and settle it. Another write touching any of those customers, on any server,
waits for the commit; writes on disjoint regions proceed in parallel.

Neo4j takes a write lock per name's stripe (`Neo4jDatabase.lock_region`); SQLite's
`BEGIN IMMEDIATE` already holds the file's single write lock, so its `lock_region` has nothing to
add. The engine's in-process lock stays in front as an optimisation: one process's writers queue
there rather than in the database.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING

from identity_graph.model import IdentifierNode

if TYPE_CHECKING:
    from identity_graph.store.base import GraphStore
    from identity_graph.store.database import Database

STRIPES = 1 << 16
"""Lock names share this many lock nodes. Two names on one stripe only wait for each other more
than needed; a stripe number (unlike a hash of a key) cannot be traced back to an identifier."""


def stripes(names: Iterable[str]) -> list[int]:
    """The sorted, distinct stripes of `names`: locking in this order cannot deadlock."""
    return sorted({zlib.crc32(n.encode()) % STRIPES for n in names})


def names_of(nodes: Mapping[str, IdentifierNode], keys: Iterable[str]) -> set[str]:
    """The lock names covering `keys`: each one's customer, or the key while it has none."""
    return names_for({k: n.customer_id for k, n in nodes.items()}, keys)


def names_for(customers: Mapping[str, str | None], keys: Iterable[str]) -> set[str]:
    """`names_of` from each key's customer id alone (`GraphStore.customers_of`)."""
    out: set[str] = set()
    for k in keys:
        cid = customers.get(k)
        out.add(f"customer:{cid}" if cid else f"identifier:{k}")
    return out


class RegionLocks:
    """The region locks one transaction holds (they end with it)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.held: set[str] = set()

    def cover(self, names: Collection[str]) -> bool:
        """Locks those of `names` not held yet. True when every one was held already, i.e. what
        was read to find `names` was read under their locks and is current."""
        missing = set(names) - self.held
        if not missing:
            return True
        self.database.lock_region(sorted(missing))
        self.held |= missing
        return False

    def cover_keys(self, store: GraphStore, keys: Iterable[str]) -> dict[str, IdentifierNode]:
        """Locks the customers of `keys` (and the keys without one) and returns their nodes as
        read under those locks."""
        wanted = sorted(set(keys))
        while True:
            nodes = store.get_identifiers(wanted)
            if self.cover(names_of(nodes, wanted)):
                return nodes

    def cover_customers(self, store: GraphStore, keys: Iterable[str]) -> dict[str, str | None]:
        """`cover_keys` for a caller that needs only each key's customer id (a relink batch
        checking 50k keys against its snapshot)."""
        wanted = sorted(set(keys))
        while True:
            customers = store.customers_of(wanted)
            if self.cover(names_for(customers, wanted)):
                return customers
