"""`Neo4jDatabase`: the Neo4j driver, the write tracker and the transaction that the graph store
and the stores of the layers above (conversations, privacy) on one Neo4j database share.

Each store call runs in a managed transaction of its own (re-run on transient errors), unless
the calling thread is inside `transaction()`: then every read and write of every store joins that
one explicit transaction, and commits or rolls back with it (Forget). Such a transaction is not
re-run on a transient error: the caller sees the error and runs the whole operation again.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, LiteralString, TypeVar

from neo4j import (
    WRITE_ACCESS,
    GraphDatabase,
    ManagedTransaction,
    NotificationDisabledClassification,
    RoutingControl,
    Session,
    Transaction,
)
from neo4j.exceptions import ClientError, DriverError, IncompleteCommit, Neo4jError, ResultFailedError

from identity_graph.errors import StoreError
from identity_graph.regionlock import stripes
from identity_graph.store.database import TRANSACTION_RETRY_S, Database, Snapshot, SnapshotScope

if TYPE_CHECKING:
    from identity_graph.store.neo4j import Neo4jStore

log = logging.getLogger(__name__)
T = TypeVar("T")

# Another client creating the same schema at the same moment: harmless.
_SCHEMA_RACES = frozenset({
    "Neo.ClientError.Schema.EquivalentSchemaRuleAlreadyExists",
    "Neo.ClientError.Schema.ConstraintAlreadyExists",
    "Neo.ClientError.Schema.IndexAlreadyExists",
})

_LAST_SEQ: LiteralString = "OPTIONAL MATCH (s:Sequence {name: 'events'}) RETURN coalesce(s.value, 0) AS seq"

# Region locks (`lock_region`): one node per stripe, written to lock it. A stripe number says
# nothing about the identifier or customer behind it, so the lock nodes hold no personal data.
_LOCK_SCHEMA: LiteralString = (
    "CREATE CONSTRAINT ig_region_lock IF NOT EXISTS FOR (l:RegionLock) REQUIRE l.stripe IS UNIQUE")
_LOCK: LiteralString = """
UNWIND $stripes AS s
MERGE (l:RegionLock {stripe: s})
SET l.writes = coalesce(l.writes, 0) + 1
"""

SNAPSHOT_TRIES = 5
CONNECT_TIMEOUT_S = 3.0
RETRY_TIME_S = 5.0


class Neo4jDatabase(Database):
    """One Neo4j database over one driver (one connection pool); see the module docstring."""

    name = "neo4j"
    bulk_batch = 10_000
    apply_workers = 2

    def __init__(self, uri: str, user: str, password: str, database: str = "neo4j", *,
                 connect_timeout_s: float = CONNECT_TIMEOUT_S, retry_time_s: float = RETRY_TIME_S) -> None:
        """Connects (the graph store creates its schema when first asked for).

        Args:
            uri: a Bolt URI, e.g. `bolt://127.0.0.1:7687` or `neo4j://host:7687`.
            user: the user name.
            password: the password.
            database: the database to use.
            connect_timeout_s: how long one connection attempt may take.
            retry_time_s: how long the driver re-runs a transaction that failed transiently
                (a deadlock, a lost connection). With the connect timeout it bounds how long a
                call waits for an unreachable server before it fails (driver defaults: 30 s
                each, about a minute per call).
        """
        super().__init__()
        self.uri = uri
        self.db_name = database
        # "Property key does not exist" (on an empty graph) is noise: not even logged.
        self._driver = GraphDatabase.driver(
            uri, auth=(user, password),
            notifications_disabled_classifications=[NotificationDisabledClassification.UNRECOGNIZED],
            connection_timeout=connect_timeout_s,
            connection_acquisition_timeout=connect_timeout_s + retry_time_s,
            max_transaction_retry_time=retry_time_s,
        )
        self._local = threading.local()
        self._graph: Neo4jStore | None = None
        self._checkpoint_missing = False
        self._lock_schema = False
        self.retry_s = retry_time_s

    # ---- plumbing shared by the stores --------------------------------------------------------

    def ensure_schema(self, statements: Sequence[LiteralString]) -> None:
        """Creates constraints and indexes, idempotently and safely against a concurrent creator,
        then waits for them to come online."""
        with self._driver.session(database=self.db_name) as session:
            for statement in statements:
                try:
                    session.run(statement).consume()
                except ClientError as e:
                    if e.code not in _SCHEMA_RACES:
                        raise
            session.run("CALL db.awaitIndexes(300)").consume()

    def session(self, access_mode: str = WRITE_ACCESS) -> Session:
        """A session chained (by bookmarks) to `read`: reads see earlier writes, on a cluster too."""
        return self._driver.session(
            database=self.db_name, default_access_mode=access_mode,
            bookmark_manager=self._driver.execute_query_bookmark_manager,
        )

    def _current(self) -> Transaction | None:
        return getattr(self._local, "tx", None)

    def in_transaction(self) -> bool:
        return self._current() is not None

    def read(self, query: LiteralString, **params: Any) -> list[Any]:
        """A read; inside this thread's `transaction()` it runs there and sees its writes."""
        tx = self._current()
        if tx is not None:
            return list(tx.run(query, params))
        return self._driver.execute_query(
            query, params, routing_=RoutingControl.READ, database_=self.db_name
        ).records

    def write(self, work: Callable[[ManagedTransaction], Any]) -> Any:
        """`work(tx)` in a managed write transaction (re-run on transient errors), or in this
        thread's `transaction()` when one is open."""
        tx = self._current()
        if tx is not None:
            return work(tx)  # type: ignore[arg-type]  # same `run` interface

        def attempt() -> Any:
            with self.session() as session:
                return session.execute_write(work)

        return retrying(attempt)

    def lock_region(self, names: Sequence[str]) -> None:
        """Writes the lock nodes of `names`' stripes, in ascending order, in this thread's
        transaction: Neo4j's write locks on them are held until it ends. Two writers that lock
        in this order cannot deadlock on these locks; a writer that extends its region later
        can, and Neo4j then fails one of them with a transient error (`run_transaction` re-runs
        it)."""
        tx = self._current()
        if tx is None:
            raise RuntimeError("lock_region needs an open transaction()")
        self._ensure_lock_schema()
        tx.run(_LOCK, {"stripes": stripes(names)}).consume()

    def _ensure_lock_schema(self) -> None:
        """The lock nodes' unique constraint (without it two MERGEs could make two nodes for one
        stripe, and lock nothing). Created with the graph's schema, before any transaction that
        locks: creating it from inside one would wait for that transaction's own locks."""
        if not self._lock_schema:
            self.ensure_schema([_LOCK_SCHEMA])
            self._lock_schema = True

    def is_transient(self, error: BaseException) -> bool:
        """A retryable driver or server error (deadlock, lock timeout, lost connection), also
        when a store wrapped it (`StoreError` from it) or the driver masked it
        (`ResultFailedError`). Not `IncompleteCommit`: that commit may have happened."""
        seen: BaseException | None = error
        while seen is not None:
            if isinstance(seen, IncompleteCommit):
                return False
            if isinstance(seen, Neo4jError | DriverError) and seen.is_retryable():
                return True
            seen = seen.__cause__
        return False

    def retry_window(self, error: BaseException) -> float:
        """A deadlock or lock timeout (the server answered: it is up, a region is busy) is worth
        `TRANSACTION_RETRY_S`; a lost or refused connection only the driver's own retry time, so
        that calls fail fast while the server is down (README, store unreachable)."""
        if not self.is_transient(error):
            return 0.0
        seen: BaseException | None = error
        while seen is not None:
            if isinstance(seen, Neo4jError):
                return TRANSACTION_RETRY_S
            seen = seen.__cause__
        return self.retry_s

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        tx = self._current()
        if tx is not None:  # joined: the outer block commits
            yield tx
            return
        with self.writes.writing(), self.session() as session, session.begin_transaction() as tx:
            self._local.tx = tx
            try:
                yield tx
                tx.commit()
            finally:
                self._local.tx = None

    def atomically(self, work: Callable[[], T]) -> T:
        """`run_transaction(work)`; an unreachable server is not waited for past the driver's
        retry time: the driver error becomes a `StoreError` (UNAVAILABLE to a caller)."""
        try:
            return self.run_transaction(work)
        except (Neo4jError, DriverError) as e:
            raise StoreError(f"neo4j: transaction failed: {type(e).__name__}") from e

    # ---- bulk, erasure ------------------------------------------------------------------------

    def last_seq(self) -> int:
        return int(self.read(_LAST_SEQ)[0]["seq"])

    @contextmanager
    def snapshot(self, scope: SnapshotScope | None = None) -> Iterator[Snapshot]:
        """Neo4j reads are read committed, so the tables are read again while events were written
        meanwhile (a few times; then the last read is used and the relink skips the units that
        changed since)."""
        store = self.graph_store()
        after = self.last_seq()
        for _attempt in range(SNAPSHOT_TRIES):
            before = after
            tables = store.export_tables()
            after = self.last_seq()
            if before == after:
                break
            log.warning("snapshot: %d events were written while reading; reading again",
                        after - before)
        else:
            log.warning("snapshot: the graph kept changing; using the last read")
        yield Snapshot(tables if scope is None else scope.narrow(tables), after)

    def checkpoint(self) -> None:
        """`CALL db.checkpoint()` where the server has it (Enterprise): a checkpoint lets Neo4j
        prune the transaction log files beyond the retention (`scripts/neo4j.sh`: 1 file, rotated
        at 1 MiB). Community has no such procedure; there the periodic checkpoint does it
        (`db.checkpoint.interval.time`, 10 s in `scripts/neo4j.sh`)."""
        if self._checkpoint_missing:
            return
        try:
            with self._driver.session(database=self.db_name) as session:
                session.run("CALL db.checkpoint()").consume()
        except ClientError as e:
            if e.code != "Neo.ClientError.Procedure.ProcedureNotFound":
                raise
            self._checkpoint_missing = True
            log.info("neo4j: no db.checkpoint() (Community); relying on the periodic checkpoint")

    # ---- the stores that live here -----------------------------------------------------------

    def graph_store(self) -> Neo4jStore:
        if self._graph is None:
            from identity_graph.store.neo4j import Neo4jStore

            try:
                self._graph = Neo4jStore(self)
                self._ensure_lock_schema()
            except Exception as e:
                raise StoreError(f"neo4j store: cannot open {self.uri}: {type(e).__name__}") from e
        return self._graph

    def close(self) -> None:
        self._driver.close()

    def __repr__(self) -> str:
        return f"Neo4jDatabase({self.uri!r}, database={self.db_name!r})"


_MASKED_RETRIES = 8


def retrying(attempt: Callable[[], Any]) -> Any:
    """Runs `attempt` (a managed transaction) again when the driver masked a transient error.

    When a statement fails while its records stream (a deadlock found at a lock, say), the
    driver's rollback re-reads the failed result and raises `ResultFailedError` in place of the
    `TransientError`, and `execute_read`/`execute_write` do not retry that, although the cause
    is retryable (seen with neo4j 6.4 under 20 writers on one node)."""
    for n in range(_MASKED_RETRIES):
        try:
            return attempt()
        except ResultFailedError as e:
            cause = e.__cause__
            if not (isinstance(cause, Neo4jError | DriverError) and cause.is_retryable()):
                raise
            if n == _MASKED_RETRIES - 1:
                raise cause from None
            log.info("retrying a transaction after a masked %s", type(cause).__name__)
            time.sleep(random.uniform(0, 0.05 * 2**n))
    raise AssertionError("unreachable")
