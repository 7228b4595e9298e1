"""The records and sightings of a region's identifiers, read from a store when the rules
(`identity_graph.rules.decide`) first ask for one: the engine and ingest feed them to it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from identity_graph.guardrails import sightings
from identity_graph.model import ChangeSet, Observation
from identity_graph.records import records_of
from identity_graph.store.base import GraphStore


class RegionObservations:
    """The records and sightings of a region's identifiers, read from the store (with the
    change's own observations) the first time the rules ask for one, then kept."""

    def __init__(self, store: GraphStore, keys: set[str], cs: ChangeSet) -> None:
        self._store, self._keys, self._cs = store, keys, cs
        self._records: dict[str, dict[str, str]] | None = None
        self._sightings: dict[str, list[dict[str, str]]] = {}
        self.records: Mapping[str, Mapping[str, str | None]] = _Lazy(self, "_records")
        self.sightings: Mapping[str, Sequence[Mapping[str, str | None]]] = _Lazy(self, "_sightings")

    def load(self) -> None:
        if self._records is not None:
            return
        by_key: dict[str, list[Observation]] = {}
        for o in self._store.observations(self._keys) if self._keys else ():
            by_key.setdefault(o.key, []).append(o)
        for up in self._cs.identifiers:
            for o in up.observations:
                by_key.setdefault(o.key, []).append(o)
        self._records = records_of(o for obs in by_key.values() for o in obs)
        self._sightings = {k: sightings(obs) for k, obs in by_key.items()}


class _Lazy(Mapping[str, Any]):
    def __init__(self, owner: RegionObservations, name: str) -> None:
        self._owner, self._name = owner, name

    def _data(self) -> dict[str, Any]:
        self._owner.load()
        return getattr(self._owner, self._name)

    def __getitem__(self, key: str) -> Any:
        return self._data()[key]

    def __iter__(self) -> Any:
        return iter(self._data())

    def __len__(self) -> int:
        return len(self._data())
