"""The blocking-key index: one row per identifier and blocking rule of the match model (rule key →
identifier), kept on every write and rebuilt when the model changes, so that the candidates of a
new identifier are one indexed probe per rule instead of an intersection of attribute lookups.

A row holds a digest of the rule's key (BLAKE2b, 128 bits, of rule name and value), not the value
itself: the index is exact for equality, fixed in size, and holds no readable personal data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from identity_graph.model import ATTRIBUTES, Observation
from identity_graph.records import record_of


class KeyedScorer(Protocol):
    """What the index needs of a scorer: its version and its blocking keys of a record."""

    @property
    def version(self) -> str: ...

    def blocking_keys(self, record: Mapping[str, Any]) -> list[tuple[str, str]]: ...


def digest(rule: str, value: str) -> str:
    """The stored form of one blocking key (32 hex digits)."""
    return hashlib.blake2b(f"{rule}\x1e{value}".encode(), digest_size=16).hexdigest()


def record(key: str, observations: Iterable[Observation]) -> dict[str, Any]:
    """An identifier's record as the engine scores it (`IdentityGraph.resolve.candidate_records`)."""
    return {**dict.fromkeys(ATTRIBUTES), **record_of(observations), "unique_id": key}


class BlockingIndex:
    """The blocking keys of one model; a store keeps its rows (`GraphStore.use_blocking`)."""

    def __init__(self, scorer: KeyedScorer) -> None:
        self.scorer = scorer
        self.version = f"blocking-v1:{scorer.version}"
        """What the stored rows were built by: a different model (or key format) rebuilds them."""

    def probes(self, record: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(rule, digest) of each rule `record` has a key for: the rows its candidates hold."""
        return sorted({(rule, digest(rule, value)) for rule, value in self.scorer.blocking_keys(record)})

    def rows(self, observations: Sequence[Observation]) -> dict[str, list[tuple[str, str]]]:
        """Identifier key → its complete (rule, digest) rows, from all its observations."""
        by_key: dict[str, list[Observation]] = {}
        for o in observations:
            by_key.setdefault(o.key, []).append(o)
        return {k: self.probes(record(k, obs)) for k, obs in by_key.items()}
