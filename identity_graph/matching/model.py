"""The versioned match model: Splink settings, trained parameters and TF tables in one JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "FORMAT",
    "STARTER_MODEL_PATH",
    "MatchModel",
    "load_model",
    "load_starter_model",
    "save_model",
]

#: Identifies the JSON layout; bump when the layout (not the parameters) changes.
FORMAT = "identity_graph.match_model/1"
STARTER_MODEL_PATH = Path(__file__).with_name("starter_model.json")


@dataclass(frozen=True)
class MatchModel:
    """One trained Splink model, shared by the nightly batch and the online scorer.

    Attributes:
        version: a unique name for these parameters; links record it as their evidence.
        settings: a complete Splink 5 settings dict (`Linker(df, model.settings)` loads it),
            with trained `m_probability`/`u_probability` on every non-null level.
        term_frequencies: column → {value: relative frequency}, capped to the most frequent
            values. A value absent from its table gets no TF adjustment, as in Splink when a
            registered lookup has no row for it.
        metadata: free-form facts, e.g. `{"trained_on": "synthetic starter", ...}`.
    """

    version: str
    settings: dict[str, Any]
    term_frequencies: dict[str, dict[str, float]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": self.version,
            "metadata": self.metadata,
            "settings": self.settings,
            "term_frequencies": self.term_frequencies,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MatchModel:
        """Builds a model from its JSON form.

        Raises:
            ValueError: the dict is not a match model of a known format.
        """
        if data.get("format") != FORMAT:
            raise ValueError(f"not a match model of format {FORMAT!r}: {data.get('format')!r}")
        for key in ("version", "settings"):
            if key not in data:
                raise ValueError(f"match model has no {key!r}")
        return cls(
            version=str(data["version"]),
            settings=data["settings"],
            term_frequencies={
                col: {str(v): float(f) for v, f in table.items()}
                for col, table in data.get("term_frequencies", {}).items()
            },
            metadata=dict(data.get("metadata", {})),
        )

    @property
    def probability_two_random_records_match(self) -> float:
        return float(self.settings["probability_two_random_records_match"])


def save_model(model: MatchModel, path: str | Path) -> None:
    """Writes `model` as JSON (sorted TF tables keep diffs readable)."""
    Path(path).write_text(json.dumps(model.to_dict(), indent=1, sort_keys=False) + "\n")


def load_model(path: str | Path) -> MatchModel:
    """Reads a model written by `save_model`; needs no Linker or database."""
    return MatchModel.from_dict(json.loads(Path(path).read_text()))


def load_starter_model() -> MatchModel:
    """The packaged starter model, trained on synthetic data only (see its metadata)."""
    text = resources.files("identity_graph.matching").joinpath("starter_model.json").read_text()
    return MatchModel.from_dict(json.loads(text))
