"""`Neo4jStore`: the identity graph on a Neo4j 5 server (Community or Enterprise), over Bolt.

Graph model (this is what analysts query with Cypher):

    (:Identifier {key, type, value, first_seen, last_seen, customer_id, generic})
        key unique (constraint `ig_identifier_key`); index on customer_id.
        A node with a `key` and no `type` is a placeholder: the end of a link or observation whose
        identifier was never upserted. The store's API does not return placeholders.
    (:Identifier)-[:OBSERVED_WITH]->(:Observation {id, key, attribute, value, source, channel,
                                                   observed_at})
        id unique; index on (attribute, value). `key` repeats the identifier's key.
    (:Identifier)-[:LINK {link_id, kind, source, channel, event_id, model_version, probability,
                          match_weight, comparisons, created_at, actor, removed_at, removed_by,
                          removal_reason, claimant}]->(:Identifier)
        One relationship per link, directed from `a` to `b` (a < b); the direction means nothing,
        so match it undirected. link_id unique (relationship uniqueness constraint). `kind` is the
        lower-case label (verified, equivalent, observed, probable, possible). `comparisons` is
        JSON text. A link is active while `removed_at IS NULL`; links are never edited otherwise.
        `claimant` is the key of the end that asserted the link; absent (links written before it
        was kept) or empty reads as both ends.
    (:Customer {id, created_at})                 id unique
    (:Alias {alias, customer_id})                alias unique: a retired customer id -> survivor;
                                                 index on customer_id
    (:Event {seq, type, customer_id, at, payload})
        seq unique, strictly increasing; `payload` is JSON text. Seqs come from the counter node
        (:Sequence {name: 'events', value}), incremented in the writing transaction.
    (:LinkConstraint {constraint_id, kind, a, b, origin, link_id, actor, reason, created_at,
                      withdrawn_at, withdrawn_by, withdrawal_reason})
        A decision by a person about the identifiers keyed `a` < `b`: kind `cannot_link` or
        `must_link` (then `link_id` names the link it fixes). constraint_id unique; indexes on
        a and b. It holds while `withdrawn_at IS NULL`.
    Times are Neo4j DateTime values in UTC.

Example queries:

    // the active links inside a customer, with their evidence
    MATCH (a:Identifier {customer_id: $customer_id})-[l:LINK]->(b:Identifier {customer_id: $customer_id})
    WHERE l.removed_at IS NULL
    RETURN a.key, l.kind, b.key, l.source, l.created_at ORDER BY a.key, b.key

    // identifiers observed with a last name, and their customers
    MATCH (i:Identifier)-[:OBSERVED_WITH]->(o:Observation {attribute: 'last_name', value: $name})
    RETURN i.key, i.customer_id, o.source, o.observed_at

    // a shortest chain of active, merging links between two identifiers
    MATCH p = SHORTEST 1 (a:Identifier {key: $a})
              (()-[l:LINK WHERE l.removed_at IS NULL AND l.kind <> 'possible']-())+
              (b:Identifier {key: $b})
    RETURN [n IN nodes(p) | n.key] AS keys, [r IN l | r.kind] AS kinds
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, LiteralString, cast

import pyarrow as pa
from neo4j import (
    READ_ACCESS,
    WRITE_ACCESS,
    ManagedTransaction,
    Session,
)

from identity_graph.errors import StoreError
from identity_graph.model import (
    ChangeSet,
    Constraint,
    ConstraintKind,
    Customer,
    DeleteCounts,
    Event,
    IdentifierNode,
    Link,
    LinkKind,
    Observation,
)
from identity_graph.store.base import GraphStore
from identity_graph.store.neo4j_database import Neo4jDatabase, retrying
from identity_graph.store.tables import TABLES

log = logging.getLogger(__name__)

BATCH = 10_000
"""Rows per UNWIND statement, and per transaction when loading."""

SCHEMA: tuple[LiteralString, ...] = (
    "CREATE CONSTRAINT ig_identifier_key IF NOT EXISTS "
    "FOR (n:Identifier) REQUIRE n.key IS UNIQUE",
    "CREATE INDEX ig_identifier_customer IF NOT EXISTS FOR (n:Identifier) ON (n.customer_id)",
    "CREATE CONSTRAINT ig_observation_id IF NOT EXISTS "
    "FOR (o:Observation) REQUIRE o.id IS UNIQUE",
    "CREATE INDEX ig_observation_attribute_value IF NOT EXISTS "
    "FOR (o:Observation) ON (o.attribute, o.value)",
    "CREATE CONSTRAINT ig_link_id IF NOT EXISTS "
    "FOR ()-[l:LINK]-() REQUIRE l.link_id IS UNIQUE",
    "CREATE CONSTRAINT ig_customer_id IF NOT EXISTS FOR (c:Customer) REQUIRE c.id IS UNIQUE",
    "CREATE CONSTRAINT ig_alias_alias IF NOT EXISTS FOR (a:Alias) REQUIRE a.alias IS UNIQUE",
    "CREATE INDEX ig_alias_customer IF NOT EXISTS FOR (a:Alias) ON (a.customer_id)",
    "CREATE CONSTRAINT ig_event_seq IF NOT EXISTS FOR (e:Event) REQUIRE e.seq IS UNIQUE",
    "CREATE CONSTRAINT ig_sequence_name IF NOT EXISTS FOR (s:Sequence) REQUIRE s.name IS UNIQUE",
    "CREATE CONSTRAINT ig_blocking_hash IF NOT EXISTS FOR (b:BlockingKey) REQUIRE b.hash IS UNIQUE",
    "CREATE CONSTRAINT ig_meta_name IF NOT EXISTS FOR (m:StoreMeta) REQUIRE m.name IS UNIQUE",
    "CREATE CONSTRAINT ig_link_constraint_id IF NOT EXISTS "
    "FOR (c:LinkConstraint) REQUIRE c.constraint_id IS UNIQUE",
    "CREATE INDEX ig_link_constraint_a IF NOT EXISTS FOR (c:LinkConstraint) ON (c.a)",
    "CREATE INDEX ig_link_constraint_b IF NOT EXISTS FOR (c:LinkConstraint) ON (c.b)",
    # the review queue pages through the active links of one kind (`possible`)
    "CREATE INDEX ig_link_kind IF NOT EXISTS FOR ()-[l:LINK]-() ON (l.kind)",
    "CALL db.createProperty('withdrawn_at')",
    # Property keys that only some links carry: created up front so that analysts' queries on a
    # new database (`WHERE l.removed_at IS NULL`) get no "property does not exist" warning.
    "CALL db.createProperty('removed_at')",
    "CALL db.createProperty('removed_by')",
    "CALL db.createProperty('removal_reason')",
    "CALL db.createProperty('probability')",
    "CALL db.createProperty('match_weight')",
    "CALL db.createProperty('comparisons')",
    "CALL db.createProperty('revision')",
)
CONSTRAINTS = ("ig_identifier_key", "ig_observation_id", "ig_link_id", "ig_customer_id",
               "ig_alias_alias", "ig_event_seq", "ig_sequence_name", "ig_blocking_hash", "ig_meta_name",
               "ig_link_constraint_id")
INDEXES = ("ig_identifier_customer", "ig_observation_attribute_value", "ig_alias_customer",
           "ig_link_constraint_a", "ig_link_constraint_b", "ig_link_kind")

# ---- Cypher fragments: times cross Bolt as epoch microseconds --------------------------------
# Packing and unpacking DateTime values is most of the driver's CPU time on bulk work, so times
# travel as integers (microseconds since 1970, UTC) and are converted on the server. Both
# conversions are exact over Python's datetime range (years 1-9999). The fragments are built
# from constants only: no data is ever formatted into Cypher text.


def _dt(x: str) -> LiteralString:
    """Cypher: epoch microseconds `x` (or null) -> a DateTime in UTC."""
    return cast(LiteralString,
                f"CASE WHEN {x} IS NULL THEN null ELSE datetime({{"
                f"epochSeconds: {x} / 1000000 - CASE WHEN {x} % 1000000 < 0 THEN 1 ELSE 0 END, "
                f"nanosecond: ({x} % 1000000 + 1000000) % 1000000 * 1000}}) END")


def _us(t: str) -> LiteralString:
    """Cypher: a DateTime `t` (or null) -> epoch microseconds. (`epochSeconds` rounds toward
    zero before 1970; `epochMillis` floors.)"""
    return cast(LiteralString,
                f"({t}.epochMillis / 1000 - CASE WHEN {t}.epochMillis % 1000 < 0 THEN 1 ELSE 0 END)"
                f" * 1000000 + {t}.microsecond")


# ---- Cypher: writes --------------------------------------------------------------------------

_UPSERT_IDENTIFIERS = """
UNWIND $rows AS row
WITH row, """ + _dt("row.seen_at") + """ AS seen
MERGE (n:Identifier {key: row.key})
ON CREATE SET n.type = row.type, n.value = row.value, n.first_seen = seen, n.last_seen = seen,
              n.generic = false
ON MATCH SET n.type = coalesce(n.type, row.type), n.value = coalesce(n.value, row.value),
             n.generic = coalesce(n.generic, false),
             n.first_seen = CASE WHEN n.first_seen IS NULL OR seen < n.first_seen
                                 THEN seen ELSE n.first_seen END,
             n.last_seen = CASE WHEN n.last_seen IS NULL OR seen > n.last_seen
                                THEN seen ELSE n.last_seen END
"""

_MERGE_OBSERVATIONS = """
UNWIND $rows AS row
MERGE (n:Identifier {key: row.key})
MERGE (o:Observation {id: row.id})
ON CREATE SET o.key = row.key, o.attribute = row.attribute, o.value = row.value,
              o.source = row.source, o.channel = row.channel,
              o.observed_at = """ + _dt("row.observed_at") + """
MERGE (n)-[:OBSERVED_WITH]->(o)
"""

# An existing link (same link_id) is never modified: its properties are set on create only.
_MERGE_LINKS = """
UNWIND $rows AS row
MERGE (a:Identifier {key: row.a})
MERGE (b:Identifier {key: row.b})
MERGE (a)-[l:LINK {link_id: row.link_id}]->(b)
ON CREATE SET l.kind = row.kind, l.source = row.source, l.channel = row.channel,
              l.event_id = row.event_id, l.model_version = row.model_version,
              l.probability = row.probability, l.match_weight = row.match_weight,
              l.comparisons = row.comparisons, l.created_at = """ + _dt("row.created_at") + """,
              l.actor = row.actor, l.removed_at = """ + _dt("row.removed_at") + """,
              l.removed_by = row.removed_by, l.removal_reason = row.removal_reason,
              l.claimant = row.claimant, l.revision = row.revision
"""

_REMOVE_LINKS = """
UNWIND $rows AS row
MATCH ()-[l:LINK {link_id: row.link_id}]->()
WHERE l.removed_at IS NULL
SET l.removed_at = """ + _dt("row.at") + """, l.removed_by = row.by,
    l.removal_reason = row.reason
"""

_MERGE_CUSTOMERS = """
UNWIND $rows AS row
MERGE (c:Customer {id: row.id})
ON CREATE SET c.created_at = """ + _dt("row.created_at") + """
"""

# ---- Cypher: the blocking-key index ------------------------------------------------------------
# (:BlockingKey {hash})-[:BLOCKS]->(:Identifier): one relationship per identifier and rule, the
# key node found by its unique `hash` (one index seek per probe). `StoreMeta {name:
# 'blocking_version'}` names the model the index is complete for; no such node: stale.

_BLOCKING_STALE: LiteralString = "MATCH (m:StoreMeta {name: 'blocking_version'}) DELETE m"

_BLOCKING_VERSION: LiteralString = "MATCH (m:StoreMeta {name: 'blocking_version'}) RETURN m.value AS version"

_SET_BLOCKING_VERSION: LiteralString = """
MERGE (m:StoreMeta {name: 'blocking_version'}) SET m.value = $version
"""

_REPLACE_BLOCKING: LiteralString = """
UNWIND $rows AS row
MATCH (n:Identifier {key: row.key})
OPTIONAL MATCH (n)<-[old:BLOCKS]-(:BlockingKey)
DELETE old
WITH DISTINCT n, row
UNWIND row.hashes AS h
MERGE (b:BlockingKey {hash: h})
MERGE (b)-[:BLOCKS]->(n)
"""

_ADD_BLOCKING: LiteralString = """
UNWIND $rows AS row
MATCH (n:Identifier {key: row.key})
UNWIND row.hashes AS h
MERGE (b:BlockingKey {hash: h})
CREATE (b)-[:BLOCKS]->(n)
"""

_DROP_BLOCKING: LiteralString = """
MATCH (b:BlockingKey)
CALL (b) { DETACH DELETE b } IN TRANSACTIONS OF 10000 ROWS
"""

# Key nodes that a delete left without any identifier go as well.
_DELETE_BLOCKING_ORPHANS: LiteralString = """
UNWIND $hashes AS h
MATCH (b:BlockingKey {hash: h})
WHERE NOT (b)-[:BLOCKS]->()
DELETE b
"""

_BLOCKING_OF: LiteralString = """
UNWIND $keys AS k
MATCH (:Identifier {key: k})<-[:BLOCKS]-(b:BlockingKey)
RETURN collect(DISTINCT b.hash) AS hashes
"""

_BLOCKING_PROBE: LiteralString = """
OPTIONAL MATCH (m:StoreMeta {name: 'blocking_version'})
WITH coalesce(m.value = $version, false) AS ready
UNWIND CASE WHEN ready THEN $hashes ELSE [null] END AS h
OPTIONAL MATCH (:BlockingKey {hash: h})-[:BLOCKS]->(n:Identifier)
WITH ready, h, n.key AS key ORDER BY key
WITH ready, h, collect(key)[..$limit] AS keys
RETURN ready, keys
"""

_IDENTIFIER_KEYS_AFTER: LiteralString = """
MATCH (n:Identifier) WHERE n.key > $after AND n.type IS NOT NULL
RETURN n.key AS key ORDER BY key LIMIT $limit
"""

_ASSIGN: LiteralString = """
UNWIND $rows AS row
MATCH (n:Identifier {key: row.key})
SET n.customer_id = row.customer_id
"""

_MERGE_ALIASES: LiteralString = """
UNWIND $rows AS row
MERGE (a:Alias {alias: row.alias})
SET a.customer_id = row.customer_id
"""

# A constraint is never modified once made: properties are set on create only.
_MERGE_CONSTRAINTS = """
UNWIND $rows AS row
MERGE (c:LinkConstraint {constraint_id: row.constraint_id})
ON CREATE SET c.kind = row.kind, c.a = row.a, c.b = row.b, c.origin = row.origin,
              c.link_id = row.link_id, c.actor = row.actor, c.reason = row.reason,
              c.created_at = """ + _dt("row.created_at") + """,
              c.withdrawn_at = """ + _dt("row.withdrawn_at") + """,
              c.withdrawn_by = row.withdrawn_by, c.withdrawal_reason = row.withdrawal_reason
"""

_WITHDRAW_CONSTRAINTS = """
UNWIND $rows AS row
MATCH (c:LinkConstraint {constraint_id: row.id})
WHERE c.withdrawn_at IS NULL
SET c.withdrawn_at = """ + _dt("row.at") + """, c.withdrawn_by = row.by,
    c.withdrawal_reason = row.reason
"""

_SET_GENERIC: LiteralString = """
UNWIND $rows AS row
MATCH (n:Identifier {key: row.key})
SET n.generic = row.generic
"""

# `SET s.value = s.value + n` reads and writes the same property, so Cypher takes the counter's
# write lock before it reads: concurrent writers serialise here, and seqs never repeat.
_APPEND_EVENTS = """
MERGE (s:Sequence {name: 'events'})
ON CREATE SET s.value = 0
SET s.value = s.value + size($rows)
WITH s.value - size($rows) AS base
UNWIND range(0, size($rows) - 1) AS i
WITH base + i + 1 AS seq, $rows[i] AS row
CREATE (e:Event {seq: seq, type: row.type, customer_id: row.customer_id,
                 at: """ + _dt("row.at") + """, payload: row.payload})
RETURN seq ORDER BY seq
"""

# ---- Cypher: reads ---------------------------------------------------------------------------

_IDENTIFIER_COLUMNS = """
RETURN n.key AS key, n.type AS type, n.value AS value,
       """ + _us("n.first_seen") + """ AS first_seen, """ + _us("n.last_seen") + """ AS last_seen,
       n.customer_id AS customer_id, coalesce(n.generic, false) AS generic
"""

_OBSERVATION_COLUMNS = """
RETURN o.id AS id, o.key AS key, o.attribute AS attribute, o.value AS value, o.source AS source,
       o.channel AS channel, """ + _us("o.observed_at") + """ AS observed_at
"""

_LINK_COLUMNS = """
RETURN l.link_id AS link_id, a.key AS a, b.key AS b, l.kind AS kind, l.source AS source,
       l.channel AS channel, l.event_id AS event_id, l.model_version AS model_version,
       l.probability AS probability, l.match_weight AS match_weight,
       l.comparisons AS comparisons, """ + _us("l.created_at") + """ AS created_at,
       l.actor AS actor, """ + _us("l.removed_at") + """ AS removed_at,
       l.removed_by AS removed_by, l.removal_reason AS removal_reason, l.claimant AS claimant,
       l.revision AS revision
"""

_CONSTRAINT_COLUMNS = """
RETURN c.constraint_id AS constraint_id, c.kind AS kind, c.a AS a, c.b AS b, c.origin AS origin,
       c.link_id AS link_id, c.actor AS actor, c.reason AS reason,
       """ + _us("c.created_at") + """ AS created_at, """ + _us("c.withdrawn_at") + """ AS withdrawn_at,
       c.withdrawn_by AS withdrawn_by, c.withdrawal_reason AS withdrawal_reason
"""

_CONSTRAINTS_TOUCHING = """
UNWIND $keys AS k
CALL (k) {
  MATCH (c:LinkConstraint {a: k}) RETURN c
  UNION
  MATCH (c:LinkConstraint {b: k}) RETURN c
}
WITH DISTINCT c
WHERE $include_withdrawn OR c.withdrawn_at IS NULL
""" + _CONSTRAINT_COLUMNS

_ALL_CONSTRAINTS = """
MATCH (c:LinkConstraint)
WHERE $include_withdrawn OR c.withdrawn_at IS NULL
""" + _CONSTRAINT_COLUMNS

_CONSTRAINTS_BY_ID = """
UNWIND $ids AS id
MATCH (c:LinkConstraint {constraint_id: id})
""" + _CONSTRAINT_COLUMNS

_LINKS_OF_KIND_BY_AGE = """
MATCH (a)-[l:LINK {kind: $kind}]->(b)
WHERE l.removed_at IS NULL
WITH a, l, b ORDER BY l.created_at, l.link_id SKIP $offset LIMIT $limit
""" + _LINK_COLUMNS

_LINKS_OF_KIND_BY_SCORE = """
MATCH (a)-[l:LINK {kind: $kind}]->(b)
WHERE l.removed_at IS NULL
WITH a, l, b ORDER BY l.probability DESC, l.created_at, l.link_id SKIP $offset LIMIT $limit
""" + _LINK_COLUMNS

_COUNT_LINKS_OF_KIND: LiteralString = """
MATCH ()-[l:LINK {kind: $kind}]->()
WHERE l.removed_at IS NULL
RETURN count(l) AS n
"""

_DELETE_CONSTRAINTS: LiteralString = """
UNWIND $keys AS k
CALL (k) {
  MATCH (c:LinkConstraint {a: k}) RETURN c
  UNION
  MATCH (c:LinkConstraint {b: k}) RETURN c
}
WITH DISTINCT c
DELETE c
"""

_CUSTOMER_COLUMNS = """
RETURN c.id AS id, """ + _us("c.created_at") + """ AS created_at
"""

_EVENT_COLUMNS = """
RETURN e.seq AS seq, e.type AS type, e.customer_id AS customer_id, """ + _us("e.at") + """ AS at,
       e.payload AS payload
"""

_EVENTS_BETWEEN = """
MATCH (e:Event)
WHERE e.type IN $types
  AND ($start IS NULL OR e.at >= """ + _dt("$start") + """)
  AND ($end IS NULL OR e.at < """ + _dt("$end") + """)
  AND ($after_at IS NULL OR e.at > """ + _dt("$after_at") + """
       OR (e.at = """ + _dt("$after_at") + """ AND e.seq > $after_seq))
WITH e ORDER BY e.at, e.seq LIMIT $limit
""" + _EVENT_COLUMNS

_MENTIONING: LiteralString = """
MATCH (e:Event)
WHERE e.customer_id IN $ids OR any(n IN $needles WHERE e.payload CONTAINS n)
"""

_EVENTS_MENTIONING = _MENTIONING + "WITH e ORDER BY e.seq\n" + _EVENT_COLUMNS

# Found and locked (`SET x = x`) in one statement, rewritten by seq in the next.
_LOCK_MENTIONING: LiteralString = _MENTIONING + """
SET e.payload = e.payload
RETURN e.seq AS seq, e.payload AS payload
"""

_REWRITE_EVENTS: LiteralString = """
UNWIND $rows AS row
MATCH (e:Event {seq: row.seq})
SET e.payload = row.payload,
    e.customer_id = CASE WHEN e.customer_id IN $ids THEN '' ELSE e.customer_id END
"""

_DELETE_ALIASES: LiteralString = """
MATCH (a:Alias)
WHERE a.alias IN $ids OR a.customer_id IN $ids
DETACH DELETE a
RETURN count(*) AS n
"""

_DELETE_CUSTOMERS: LiteralString = """
UNWIND $ids AS id
MATCH (c:Customer {id: id})
DETACH DELETE c
RETURN count(*) AS n
"""

_GET_IDENTIFIERS = """
UNWIND $keys AS k
MATCH (n:Identifier {key: k})
WHERE n.type IS NOT NULL
""" + _IDENTIFIER_COLUMNS

_CUSTOMERS_OF = """
UNWIND $keys AS k
MATCH (n:Identifier {key: k})
WHERE n.type IS NOT NULL
RETURN n.key AS key, n.customer_id AS customer_id
"""

_OBSERVATIONS = """
UNWIND $keys AS k
MATCH (:Identifier {key: k})-[:OBSERVED_WITH]->(o:Observation)
""" + _OBSERVATION_COLUMNS

_LINKS_TOUCHING = """
UNWIND $keys AS k
MATCH (:Identifier {key: k})-[l:LINK]-()
WHERE $include_removed OR l.removed_at IS NULL
WITH DISTINCT l
WITH l, startNode(l) AS a, endNode(l) AS b
""" + _LINK_COLUMNS

_LINKS_BY_ID = """
UNWIND $ids AS id
MATCH (a)-[l:LINK {link_id: id}]->(b)
""" + _LINK_COLUMNS

_CUSTOMERS = """
UNWIND $ids AS id
MATCH (c:Customer {id: id})
""" + _CUSTOMER_COLUMNS

_ALIASES: LiteralString = """
UNWIND $ids AS id
MATCH (a:Alias {alias: id})
RETURN a.alias AS alias, a.customer_id AS customer_id
"""

_ALIASES_TO: LiteralString = """
MATCH (a:Alias {customer_id: $customer_id})
RETURN a.alias AS alias
"""

# One round trip for `customer_subgraph`: the members, their active links and the nodes at both
# ends, as maps with the same fields as `_LINK_COLUMNS` and `_IDENTIFIER_COLUMNS`.
_CUSTOMER_SUBGRAPH = """
MATCH (m:Identifier {customer_id: $customer_id})
WHERE m.type IS NOT NULL
OPTIONAL MATCH (m)-[l:LINK]-()
WHERE l.removed_at IS NULL
WITH collect(DISTINCT m) AS members, collect(DISTINCT l) AS links
UNWIND members + [l IN links | startNode(l)] + [l IN links | endNode(l)] AS n
WITH members, links, collect(DISTINCT n) AS nodes
RETURN [m IN members | m.key] AS members,
       [l IN links | {link_id: l.link_id, a: startNode(l).key, b: endNode(l).key, kind: l.kind,
         source: l.source, channel: l.channel, event_id: l.event_id,
         model_version: l.model_version, probability: l.probability,
         match_weight: l.match_weight, comparisons: l.comparisons,
         created_at: """ + _us("l.created_at") + """, actor: l.actor,
         removed_at: """ + _us("l.removed_at") + """, removed_by: l.removed_by,
         removal_reason: l.removal_reason, claimant: l.claimant, revision: l.revision}] AS links,
       [n IN nodes WHERE n.type IS NOT NULL | {key: n.key, type: n.type, value: n.value,
         first_seen: """ + _us("n.first_seen") + """, last_seen: """ + _us("n.last_seen") + """,
         customer_id: n.customer_id, generic: coalesce(n.generic, false)}] AS nodes
"""

# The known-Resolve read: the presented identifier and its customer's subgraph, one round trip.
# The anchor joins `nodes` always (so a node without a customer still comes back).
_IDENTIFIER_SUBGRAPH = """
MATCH (a:Identifier {key: $key})
WHERE a.type IS NOT NULL
CALL (a) {
  OPTIONAL MATCH (m:Identifier {customer_id: a.customer_id})
  WHERE m.type IS NOT NULL
  OPTIONAL MATCH (m)-[l:LINK]-()
  WHERE l.removed_at IS NULL
  WITH collect(DISTINCT m) AS members, collect(DISTINCT l) AS links
  UNWIND [a] + members + [l IN links | startNode(l)] + [l IN links | endNode(l)] AS n
  WITH members, links, collect(DISTINCT n) AS nodes
  RETURN members, links, nodes
}
RETURN [m IN members | m.key] AS members,
       [l IN links | {link_id: l.link_id, a: startNode(l).key, b: endNode(l).key, kind: l.kind,
         source: l.source, channel: l.channel, event_id: l.event_id,
         model_version: l.model_version, probability: l.probability,
         match_weight: l.match_weight, comparisons: l.comparisons,
         created_at: """ + _us("l.created_at") + """, actor: l.actor,
         removed_at: """ + _us("l.removed_at") + """, removed_by: l.removed_by,
         removal_reason: l.removal_reason, claimant: l.claimant}] AS links,
       [n IN nodes WHERE n.type IS NOT NULL | {key: n.key, type: n.type, value: n.value,
         first_seen: """ + _us("n.first_seen") + """, last_seen: """ + _us("n.last_seen") + """,
         customer_id: n.customer_id, generic: coalesce(n.generic, false)}] AS nodes
"""

_MEMBERS: LiteralString = """
MATCH (n:Identifier {customer_id: $customer_id})
WHERE n.type IS NOT NULL
RETURN n.key AS key
"""

_EVENTS = """
MATCH (e:Event)
WHERE e.seq > $from_seq
WITH e ORDER BY e.seq LIMIT $limit
""" + _EVENT_COLUMNS + """
ORDER BY seq
"""

_KEYS_BY_ATTRIBUTE: LiteralString = """
UNWIND $values AS v
MATCH (n:Identifier)-[:OBSERVED_WITH]->(:Observation {attribute: $attribute, value: v})
WHERE n.type IS NOT NULL
WITH DISTINCT n.key AS key
RETURN key ORDER BY key LIMIT $limit
"""

_KEYS_BY_PREFIX: LiteralString = """
MATCH (n:Identifier)-[:OBSERVED_WITH]->(o:Observation {attribute: $attribute})
WHERE o.value STARTS WITH $prefix AND n.type IS NOT NULL
WITH DISTINCT n.key AS key
RETURN key ORDER BY key LIMIT $limit
"""

# ---- Cypher: delete, clear -------------------------------------------------------------------

_DELETE_COUNT_LINKS: LiteralString = """
UNWIND $keys AS k
MATCH (:Identifier {key: k})-[l:LINK]-()
RETURN count(DISTINCT l) AS n
"""

_DELETE_OBSERVATIONS: LiteralString = """
UNWIND $keys AS k
MATCH (:Identifier {key: k})-[:OBSERVED_WITH]->(o:Observation)
WITH DISTINCT o
DETACH DELETE o
RETURN count(*) AS n
"""

_PLACEHOLDER_NEIGHBOURS: LiteralString = """
UNWIND $keys AS k
MATCH (:Identifier {key: k})-[:LINK]-(m:Identifier)
WHERE m.type IS NULL
RETURN DISTINCT m.key AS key
"""

_DELETE_IDENTIFIERS: LiteralString = """
UNWIND $keys AS k
MATCH (n:Identifier {key: k})
WITH n, n.type IS NOT NULL AS real
DETACH DELETE n
RETURN count(CASE WHEN real THEN 1 END) AS n
"""

# Placeholders that a delete left without any relationship go as well.
_DELETE_ORPHANS: LiteralString = """
UNWIND $keys AS k
MATCH (n:Identifier {key: k})
WHERE n.type IS NULL AND NOT (n)--()
DELETE n
"""

_CLEAR: LiteralString = """
MATCH (n)
CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS
"""

# ---- Cypher: bulk export / load --------------------------------------------------------------
# Export pages through each label by its unique key (keyset pagination, index-ordered seeks).

_EXPORT: dict[str, LiteralString] = {
    "identifiers": """
MATCH (n:Identifier)
WHERE n.key > $after AND n.type IS NOT NULL
WITH n ORDER BY n.key LIMIT $limit
""" + _IDENTIFIER_COLUMNS,
    "observations": """
MATCH (o:Observation)
WHERE o.id > $after
WITH o ORDER BY o.id LIMIT $limit
""" + _OBSERVATION_COLUMNS,
    "links": """
MATCH (a)-[l:LINK]->(b)
WHERE l.link_id > $after
WITH a, l, b ORDER BY l.link_id LIMIT $limit
""" + _LINK_COLUMNS,
    "customers": """
MATCH (c:Customer)
WHERE c.id > $after
WITH c ORDER BY c.id LIMIT $limit
""" + _CUSTOMER_COLUMNS,
    "aliases": """
MATCH (a:Alias)
WHERE a.alias > $after
WITH a ORDER BY a.alias LIMIT $limit
RETURN a.alias AS alias, a.customer_id AS customer_id
""",
    "events": """
MATCH (e:Event)
WHERE e.seq > $after
WITH e ORDER BY e.seq LIMIT $limit
""" + _EVENT_COLUMNS,
    "constraints": """
MATCH (c:LinkConstraint)
WHERE c.constraint_id > $after
WITH c ORDER BY c.constraint_id LIMIT $limit
""" + _CONSTRAINT_COLUMNS,
}
_EXPORT_KEY = {"identifiers": "key", "observations": "id", "links": "link_id", "customers": "id",
               "aliases": "alias", "events": "seq", "constraints": "constraint_id"}

_LOAD_IDENTIFIERS = """
UNWIND $rows AS row
MERGE (n:Identifier {key: row.key})
SET n.type = row.type, n.value = row.value, n.first_seen = """ + _dt("row.first_seen") + """,
    n.last_seen = """ + _dt("row.last_seen") + """, n.customer_id = row.customer_id,
    n.generic = coalesce(row.generic, false)
"""

_LOAD_EVENTS = """
UNWIND $rows AS row
MERGE (e:Event {seq: row.seq})
SET e.type = row.type, e.customer_id = row.customer_id, e.at = """ + _dt("row.at") + """,
    e.payload = row.payload
WITH max(row.seq) AS top
MERGE (s:Sequence {name: 'events'})
ON CREATE SET s.value = 0
SET s.value = CASE WHEN s.value < top THEN top ELSE s.value END
"""

_LOAD: dict[str, LiteralString] = {
    "identifiers": _LOAD_IDENTIFIERS,
    "observations": _MERGE_OBSERVATIONS,
    "links": _MERGE_LINKS,
    "customers": _MERGE_CUSTOMERS,
    "aliases": _MERGE_ALIASES,
    "events": _LOAD_EVENTS,
    "constraints": _MERGE_CONSTRAINTS,
}
_LOAD_ORDER = ("customers", "aliases", "identifiers", "observations", "links", "events", "constraints")


# ---- conversions -----------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _to_us(value: datetime | None) -> int | None:
    """Epoch microseconds of a datetime; a naive one is taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // _MICROSECOND


def _from_us(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + timedelta(microseconds=value)


def _utc(value: int | None) -> datetime:
    """A required time; a missing one means the graph was written by something else."""
    if value is None:
        raise StoreError("neo4j store: a required time property is missing")
    return _EPOCH + timedelta(microseconds=value)


def _event(r: Any) -> Event:
    """An event from a record of `_EVENT_COLUMNS`."""
    return Event(type=r["type"], payload=json.loads(r["payload"]) if r["payload"] else {},
                 customer_id=r["customer_id"] or "", at=_utc(r["at"]), seq=r["seq"])


def _chunks(rows: Sequence[Any], size: int = BATCH) -> Iterator[Sequence[Any]]:
    for i in range(0, len(rows), size):
        yield rows[i:i + size]


def _link_row(link: Link) -> dict[str, Any]:
    return {
        "link_id": link.id,
        "a": link.a,
        "b": link.b,
        "kind": link.kind.label,
        "source": link.source,
        "channel": link.channel,
        "event_id": link.event_id,
        "model_version": link.model_version,
        "probability": link.probability,
        "match_weight": link.match_weight,
        "comparisons": link.comparisons_json(),
        "created_at": _to_us(link.created_at),
        "actor": link.actor,
        "removed_at": _to_us(link.removed_at),
        "removed_by": link.removed_by,
        "removal_reason": link.removal_reason,
        "claimant": link.claimant,
        "revision": link.revision or None,
    }


def _constraint_row(c: Constraint) -> dict[str, Any]:
    return {"constraint_id": c.id, "kind": c.kind.value, "a": c.a, "b": c.b, "origin": c.origin,
            "link_id": c.link_id, "actor": c.actor, "reason": c.reason,
            "created_at": _to_us(c.created_at), "withdrawn_at": _to_us(c.withdrawn_at),
            "withdrawn_by": c.withdrawn_by, "withdrawal_reason": c.withdrawal_reason}


def _constraint(r: Any) -> Constraint:
    return Constraint(kind=ConstraintKind.parse(r["kind"]), a=r["a"], b=r["b"], actor=r["actor"] or "",
                      reason=r["reason"] or "", origin=r["origin"] or "", link_id=r["link_id"] or "",
                      created_at=_utc(r["created_at"]), withdrawn_at=_from_us(r["withdrawn_at"]),
                      withdrawn_by=r["withdrawn_by"] or "",
                      withdrawal_reason=r["withdrawal_reason"] or "")


def _link(r: Any) -> Link:
    return Link(
        a=r["a"],
        b=r["b"],
        kind=LinkKind.parse(r["kind"]),
        source=r["source"] or "",
        channel=r["channel"] or "",
        event_id=r["event_id"] or "",
        model_version=r["model_version"] or "",
        probability=r["probability"],
        match_weight=r["match_weight"],
        comparisons=None if r["comparisons"] is None else json.loads(r["comparisons"]),
        created_at=_utc(r["created_at"]),
        actor=r["actor"] or "",
        removed_at=_from_us(r["removed_at"]),
        removed_by=r["removed_by"] or "",
        removal_reason=r["removal_reason"] or "",
        claimant=r.get("claimant") or "",
        revision=r.get("revision") or 0,
    )


def _subgraph(r: Any) -> tuple[list[str], list[Link], dict[str, IdentifierNode]]:
    links = sorted((_link(lk) for lk in r["links"]), key=_link_order)
    nodes = {
        n["key"]: IdentifierNode(key=n["key"], type=n["type"], value=n["value"],
                                 first_seen=_utc(n["first_seen"]), last_seen=_utc(n["last_seen"]),
                                 customer_id=n["customer_id"], generic=n["generic"])
        for n in r["nodes"]
    }
    return sorted(r["members"]), links, nodes


def _link_order(link: Link) -> tuple[str, str, datetime, str]:
    return (link.a, link.b, link.created_at, link.id)


def _arrow_rows(table: pa.Table) -> list[dict[str, Any]]:
    """Rows for UNWIND, with timestamp columns as epoch microseconds."""
    for i, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type):
            us = table.column(i).cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
            table = table.set_column(i, f.name, us)
    return table.to_pylist()


# ---- the store -------------------------------------------------------------------------------


class Neo4jStore(GraphStore):
    """The identity graph in a Neo4j database; see the module docstring for the graph model."""

    name = "neo4j"

    def __init__(self, database: Neo4jDatabase) -> None:
        """Creates the constraints and indexes that are missing.

        Raises:
            StoreError: the server cannot be reached, refuses the login, or the schema.
        """
        self.database = database
        self.database.ensure_schema(SCHEMA)

    def close(self) -> None:
        self.database.close()

    def _ping(self) -> None:
        self._read("RETURN 1 AS ok")

    def __repr__(self) -> str:
        return f"Neo4jStore({self.database!r})"

    # ---- plumbing -----------------------------------------------------------------------------

    def _read(self, query: LiteralString, **params: Any) -> list[Any]:
        return self.database.read(query, **params)

    def _session(self, access_mode: str = WRITE_ACCESS) -> Session:
        return self.database.session(access_mode)

    def _write(self, work: Callable[[ManagedTransaction], Any]) -> Any:
        return self.database.write(work)

    # ---- writes -------------------------------------------------------------------------------

    def _apply(self, changes: ChangeSet) -> list[int]:
        identifiers = [
            {"key": u.key, "type": u.type, "value": u.value, "seen_at": _to_us(u.seen_at)}
            for u in changes.identifiers
        ]
        observations = [
            {"id": o.id, "key": o.key, "attribute": o.attribute, "value": o.value,
             "source": o.source, "channel": o.channel, "observed_at": _to_us(o.observed_at)}
            for u in changes.identifiers for o in u.observations
        ]
        links = [_link_row(lk) for lk in changes.links_added]
        removals = [
            {"link_id": i, "at": _to_us(at), "by": by or "", "reason": reason or ""}
            for i, at, by, reason in changes.links_removed
        ]
        customers = [{"id": c.id, "created_at": _to_us(c.created_at)}
                     for c in changes.customers_created]
        assignments = [{"key": k, "customer_id": c} for k, c in changes.assignments.items()]
        aliases = [{"alias": a, "customer_id": c} for a, c in changes.aliases.items()]
        generic = [{"key": k, "generic": bool(g)} for k, g in changes.generic.items()]
        constraints = sorted((_constraint_row(c) for c in changes.constraints_added),
                             key=lambda r: r["constraint_id"])
        withdrawals = [{"id": i, "at": _to_us(at), "by": by or "", "reason": why or ""}
                       for i, at, by, why in changes.constraints_withdrawn]
        events = [
            {"type": e.type, "customer_id": e.customer_id or "", "at": _to_us(e.at),
             "payload": json.dumps(dict(e.payload), sort_keys=True)}
            for e in changes.events
        ]
        # One lock order (sorted keys) keeps deadlocks between concurrent writers rare; the driver
        # retries those that happen (DeadlockDetected is a transient error).
        identifiers.sort(key=lambda r: r["key"])
        observations.sort(key=lambda r: (r["key"], r["id"]))
        links.sort(key=lambda r: (r["a"], r["b"], r["link_id"]))
        steps: tuple[tuple[LiteralString, list[dict[str, Any]]], ...] = (
            (_UPSERT_IDENTIFIERS, identifiers),
            (_MERGE_OBSERVATIONS, observations),
            (_MERGE_CUSTOMERS, customers),
            (_MERGE_LINKS, links),
            (_REMOVE_LINKS, removals),
            (_ASSIGN, assignments),
            (_MERGE_ALIASES, aliases),
            (_SET_GENERIC, generic),
            (_MERGE_CONSTRAINTS, constraints),
            (_WITHDRAW_CONSTRAINTS, withdrawals),
        )

        blocking = None if changes.blocking is None else [
            {"key": k, "hashes": [h for _, h in rows]} for k, rows in sorted(changes.blocking.items())]
        stale = blocking is None and bool(observations)

        def work(tx: ManagedTransaction) -> list[int]:
            # The driver may run this again from the start after a transient error; the failed
            # attempt was rolled back, and every step is a MERGE or a conditional SET anyway.
            for query, rows in steps:
                for chunk in _chunks(rows):
                    tx.run(query, rows=chunk).consume()
            if stale:
                tx.run(_BLOCKING_STALE).consume()
            for chunk in _chunks(blocking or []):
                tx.run(_REPLACE_BLOCKING, rows=chunk).consume()
            seqs: list[int] = []
            for chunk in _chunks(events):
                seqs.extend(r["seq"] for r in tx.run(_APPEND_EVENTS, rows=chunk))
            return seqs

        return self._write(work)

    def _delete(self, keys: Sequence[str]) -> DeleteCounts:
        keys = list(keys)

        def work(tx: ManagedTransaction) -> DeleteCounts:
            links = tx.run(_DELETE_COUNT_LINKS, keys=keys).single(strict=True)["n"]
            tx.run(_DELETE_CONSTRAINTS, keys=keys).consume()
            observations = tx.run(_DELETE_OBSERVATIONS, keys=keys).single(strict=True)["n"]
            placeholders = [r["key"] for r in tx.run(_PLACEHOLDER_NEIGHBOURS, keys=keys)]
            hashes = tx.run(_BLOCKING_OF, keys=keys).single(strict=True)["hashes"]
            identifiers = tx.run(_DELETE_IDENTIFIERS, keys=keys).single(strict=True)["n"]
            if placeholders:
                tx.run(_DELETE_ORPHANS, keys=placeholders).consume()
            if hashes:
                tx.run(_DELETE_BLOCKING_ORPHANS, hashes=hashes).consume()
            return DeleteCounts(identifiers=identifiers, observations=observations, links=links)

        return self._write(work)

    def _clear(self) -> None:
        # CALL { } IN TRANSACTIONS needs an auto-commit transaction: `session.run`.
        with self._session() as session:
            session.run(_CLEAR).consume()

    # ---- the blocking-key index ----------------------------------------------------------------

    def _blocking_version(self) -> str | None:
        records = self._read(_BLOCKING_VERSION)
        return records[0]["version"] if records else None

    def _identifier_keys_after(self, after: str, limit: int) -> list[str]:
        return [r["key"] for r in self._read(_IDENTIFIER_KEYS_AFTER, after=after, limit=limit)]

    def _rebuild_blocking(self, version: str | None, rows: dict[str, list[tuple[str, str]]],
                          first: bool) -> None:
        if first:
            self._write(lambda tx: tx.run(_BLOCKING_STALE).consume())
            with self._session() as session:  # IN TRANSACTIONS: an auto-commit transaction
                session.run(_DROP_BLOCKING).consume()
        batch = [{"key": k, "hashes": [h for _, h in rs]} for k, rs in sorted(rows.items()) if rs]

        def work(tx: ManagedTransaction) -> None:
            for chunk in _chunks(batch):
                tx.run(_ADD_BLOCKING, rows=chunk).consume()
            if version is not None:
                tx.run(_SET_BLOCKING_VERSION, version=version).consume()

        self._write(work)

    def _blocking_probe(self, version: str, digests: Sequence[str], limit: int) -> list[str] | None:
        records = self._read(_BLOCKING_PROBE, version=version, hashes=list(digests), limit=limit)
        if not records or not records[0]["ready"]:
            return None
        return [k for r in records for k in r["keys"]]

    # ---- reads --------------------------------------------------------------------------------

    def _get_identifiers(self, keys: Sequence[str]) -> list[IdentifierNode]:
        return [
            IdentifierNode(key=r["key"], type=r["type"], value=r["value"],
                           first_seen=_utc(r["first_seen"]), last_seen=_utc(r["last_seen"]),
                           customer_id=r["customer_id"], generic=r["generic"])
            for r in self._read(_GET_IDENTIFIERS, keys=list(keys))
        ]

    def _customers_of(self, keys: Sequence[str]) -> list[tuple[str, str | None]]:
        return [(r["key"], r["customer_id"]) for r in self._read(_CUSTOMERS_OF, keys=list(keys))]

    def _observations(self, keys: Sequence[str]) -> list[Observation]:
        return [
            Observation(key=r["key"], attribute=r["attribute"], value=r["value"],
                        source=r["source"] or "", channel=r["channel"] or "",
                        observed_at=_utc(r["observed_at"]))
            for r in self._read(_OBSERVATIONS, keys=list(keys))
        ]

    def _links_touching(self, keys: Sequence[str], include_removed: bool) -> list[Link]:
        records = self._read(_LINKS_TOUCHING, keys=list(keys), include_removed=include_removed)
        return sorted((_link(r) for r in records), key=_link_order)

    def _links_by_id(self, link_ids: Sequence[str]) -> list[Link]:
        records = self._read(_LINKS_BY_ID, ids=list(link_ids))
        return sorted((_link(r) for r in records), key=_link_order)

    def _customers(self, customer_ids: Sequence[str]) -> list[Customer]:
        return [Customer(r["id"], _utc(r["created_at"]))
                for r in self._read(_CUSTOMERS, ids=list(customer_ids))]

    def _aliases(self, ids: Sequence[str]) -> dict[str, str]:
        return {r["alias"]: r["customer_id"] for r in self._read(_ALIASES, ids=list(ids))}

    def _aliases_to(self, customer_id: str) -> list[str]:
        return [r["alias"] for r in self._read(_ALIASES_TO, customer_id=customer_id)]

    def _customer_subgraph(self, customer_id: str) -> tuple[list[str], list[Link], dict[str, IdentifierNode]]:
        records = self._read(_CUSTOMER_SUBGRAPH, customer_id=customer_id)
        if not records:
            return [], [], {}
        return _subgraph(records[0])

    def _identifier_subgraph(self, key: str) -> tuple[IdentifierNode | None, tuple[list[str], list[Link],
                                                                                  dict[str, IdentifierNode]]]:
        records = self._read(_IDENTIFIER_SUBGRAPH, key=key)
        if not records:
            return None, ([], [], {})
        members, links, nodes = _subgraph(records[0])
        anchor = nodes.get(key)
        if not members:  # no customer: `nodes` holds the anchor alone
            return anchor, ([], [], {})
        return anchor, (members, links, nodes)

    def _members(self, customer_id: str) -> list[str]:
        return [r["key"] for r in self._read(_MEMBERS, customer_id=customer_id)]

    def _constraints(self, keys: Sequence[str] | None, include_withdrawn: bool) -> list[Constraint]:
        if keys is None:
            records = self._read(_ALL_CONSTRAINTS, include_withdrawn=include_withdrawn)
        else:
            records = self._read(_CONSTRAINTS_TOUCHING, keys=list(keys),
                                 include_withdrawn=include_withdrawn)
        return [_constraint(r) for r in records]

    def _constraints_by_id(self, ids: Sequence[str]) -> list[Constraint]:
        return [_constraint(r) for r in self._read(_CONSTRAINTS_BY_ID, ids=list(ids))]

    def _active_links_of_kind(self, kind: str, by_score: bool, limit: int,
                              offset: int) -> tuple[list[Link], int]:
        query = _LINKS_OF_KIND_BY_SCORE if by_score else _LINKS_OF_KIND_BY_AGE
        links = [_link(r) for r in self._read(query, kind=kind, limit=limit, offset=offset)]
        total = self._read(_COUNT_LINKS_OF_KIND, kind=kind)[0]["n"]
        return links, int(total)

    def _events(self, from_seq: int, limit: int) -> list[Event]:
        return [_event(r) for r in self._read(_EVENTS, from_seq=from_seq, limit=limit)]

    def _events_between(self, types: Sequence[str], start: datetime | None, end: datetime | None,
                        after: tuple[datetime, int] | None, limit: int) -> list[Event]:
        records = self._read(
            _EVENTS_BETWEEN, types=list(types), start=_to_us(start), end=_to_us(end),
            after_at=None if after is None else _to_us(after[0]),
            after_seq=0 if after is None else after[1], limit=limit,
        )
        return [_event(r) for r in records]

    def _events_mentioning(self, needles: Sequence[str], customer_ids: Sequence[str]) -> list[Event]:
        records = self._read(_EVENTS_MENTIONING, needles=list(needles), ids=list(customer_ids))
        return [_event(r) for r in records]

    def _erase_events(self, needles: Sequence[str], customer_ids: Sequence[str],
                      rewrite: Callable[[str], str]) -> int:
        ids = list(customer_ids)

        def work(tx: ManagedTransaction) -> int:
            found = list(tx.run(_LOCK_MENTIONING, needles=list(needles), ids=ids))
            rows = [{"seq": r["seq"], "payload": rewrite(r["payload"] or "{}")} for r in found]
            if rows:
                tx.run(_REWRITE_EVENTS, rows=rows, ids=ids).consume()
            return len(rows)

        return int(self._write(work))

    def _delete_customers(self, customer_ids: Sequence[str]) -> tuple[int, int]:
        ids = list(customer_ids)

        def work(tx: ManagedTransaction) -> tuple[int, int]:
            aliases = tx.run(_DELETE_ALIASES, ids=ids).single(strict=True)["n"]
            customers = tx.run(_DELETE_CUSTOMERS, ids=ids).single(strict=True)["n"]
            return int(customers), int(aliases)

        return self._write(work)

    def _keys_by_attribute(self, attribute: str, values: Sequence[str], limit: int) -> list[str]:
        records = self._read(_KEYS_BY_ATTRIBUTE, attribute=attribute, values=list(values),
                             limit=limit)
        return [r["key"] for r in records]

    def _keys_by_prefix(self, attribute: str, prefix: str, limit: int) -> list[str]:
        records = self._read(_KEYS_BY_PREFIX, attribute=attribute, prefix=prefix, limit=limit)
        return [r["key"] for r in records]

    # ---- bulk ---------------------------------------------------------------------------------

    def _export_tables(self) -> dict[str, pa.Table]:
        out: dict[str, pa.Table] = {}
        with self._session(READ_ACCESS) as session:
            for name, schema in TABLES.items():
                key = _EXPORT_KEY[name]
                after: Any = -1 if name == "events" else ""
                rows: list[list[Any]] = []
                while True:
                    page = retrying(lambda q=_EXPORT[name], a=after, cols=schema.names:
                                     session.execute_read(
                                         lambda tx: tx.run(q, after=a, limit=BATCH).values(*cols)))
                    rows.extend(page)
                    if len(page) < BATCH:
                        break
                    after = page[-1][schema.names.index(key)]
                columns = list(zip(*rows, strict=True)) if rows else [()] * len(schema)
                arrays = []
                for f, values in zip(schema, columns, strict=True):
                    if pa.types.is_timestamp(f.type):
                        arrays.append(pa.array(values, pa.int64()).cast(f.type))
                    else:
                        arrays.append(pa.array(values, f.type))
                out[name] = pa.Table.from_arrays(arrays, schema=schema)
        return out

    def _load_tables(self, tables: dict[str, pa.Table]) -> None:
        """Loads in batches of `BATCH` rows, one transaction each: not atomic as a whole. The
        blocking index is left stale (rebuilt by the next `use_blocking`)."""
        self._write(lambda tx: tx.run(_BLOCKING_STALE).consume())
        # Customers and identifiers first, so that links and observations find their nodes.
        with self._session() as session:
            for name in _LOAD_ORDER:
                table = tables.get(name)
                if table is None or table.num_rows == 0:
                    continue
                query = _LOAD[name]
                for start in range(0, table.num_rows, BATCH):
                    rows = _arrow_rows(table.slice(start, BATCH))
                    retrying(lambda q=query, rs=rows: session.execute_write(
                        lambda tx: tx.run(q, rows=rs).consume()))


__all__ = ["CONSTRAINTS", "INDEXES", "Neo4jStore"]

