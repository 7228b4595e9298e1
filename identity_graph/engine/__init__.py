"""`IdentityGraph` and its namespaces (resolve, links, review, customers, events), with the
requests and results they take and give."""

from ._graph import IdentityGraph
from ._types import (
    CANDIDATE_LOOKUP_LIMIT,
    CHANNEL_OF_TYPE,
    MAX_IDENTIFIERS_PER_CALL,
    PROOF_KINDS,
    SUPPRESSED_REASON,
    ChangeResult,
    CustomerView,
    Explanation,
    Proof,
    ResolveRequest,
    ResolveResult,
    ReviewResult,
    Scorer,
    SplitPart,
    SplitPlan,
    UnlinkResult,
    waterfall,
)
from .customers import Customers
from .events import Events
from .links import Links
from .resolve import Resolve
from .review import Review

__all__ = [
    "CANDIDATE_LOOKUP_LIMIT",
    "CHANNEL_OF_TYPE",
    "MAX_IDENTIFIERS_PER_CALL",
    "PROOF_KINDS",
    "SUPPRESSED_REASON",
    "ChangeResult",
    "CustomerView",
    "Customers",
    "Events",
    "Explanation",
    "IdentityGraph",
    "Links",
    "Proof",
    "Resolve",
    "ResolveRequest",
    "ResolveResult",
    "Review",
    "ReviewResult",
    "Scorer",
    "SplitPart",
    "SplitPlan",
    "UnlinkResult",
    "waterfall",
]
