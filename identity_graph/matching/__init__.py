"""Probabilistic matching: one Splink model (versioned JSON) for batch and online scoring.

Training (`identity_graph.matching.training`), the model builder that derives comparisons and
rules from the columns present (`identity_graph.matching.builder`) and the starter settings
(`identity_graph.matching.settings`) import Splink; these re-exports do not.
"""

from identity_graph.matching.model import (
    MatchModel,
    load_model,
    load_starter_model,
    save_model,
)
from identity_graph.matching.scorer import (
    ComparisonScore,
    OnlineScorer,
    PairScore,
    UnsupportedModel,
)

__all__ = [
    "ComparisonScore",
    "MatchModel",
    "OnlineScorer",
    "PairScore",
    "UnsupportedModel",
    "load_model",
    "load_starter_model",
    "save_model",
]
