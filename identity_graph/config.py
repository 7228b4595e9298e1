"""Deployment settings for linking, guardrails and disclosure. DESIGN.md's *defaults* live here."""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from identity_graph.model import LinkKind

DEFAULT_BLOCKED = (
    "*:test@test.com",
    "*:test@example.com",
    "*:noemail@*",
    "*:null",
    "*:none",
    "*:anonymous",
    "*:unknown",
    "phone:+*0000000000",
    "whatsapp:+*0000000000",
    "phone:+*1234567890",
    "whatsapp:+*1234567890",
)


@dataclass(frozen=True)
class GraphConfig:
    """Linking thresholds, guardrails and the disclosure policy.

    `blocked` holds glob patterns over identifier keys (`type:value`, case-insensitive).
    """

    link_threshold: float = 0.99
    review_threshold: float = 0.80
    blocked: tuple[str, ...] = DEFAULT_BLOCKED
    limits: dict[str, int] = field(
        default_factory=lambda: {"email": 5, "phone": 5, "whatsapp": 5, "web_cookie": 50}
    )
    disclosure_level: LinkKind = LinkKind.OBSERVED
    max_candidates: int = 50
    last_seen_granularity_s: float = 300.0
    default_region: str = "US"
    max_label_length: int = 200
    """Longest `source`, `actor`, `event_id`, `channel` or `model_version` a call may record."""

    def __post_init__(self) -> None:
        if not 0 < self.review_threshold <= self.link_threshold <= 1:
            raise ValueError("need 0 < review_threshold <= link_threshold <= 1")
        pattern = "|".join(fnmatch.translate(p.lower()) for p in self.blocked) or r"(?!)"
        object.__setattr__(self, "_blocked_re", re.compile(pattern))

    def is_blocked(self, key: str) -> bool:
        return bool(self._blocked_re.match(key.lower()))  # type: ignore[attr-defined]

    @classmethod
    def from_file(cls, path: str | Path) -> GraphConfig:
        """Reads a JSON file whose keys are this class's field names."""
        raw: dict[str, Any] = json.loads(Path(path).read_text())
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown settings in {path}: {sorted(unknown)}")
        if "blocked" in raw:
            raw["blocked"] = tuple(raw["blocked"])
        if "disclosure_level" in raw:
            raw["disclosure_level"] = LinkKind.parse(raw["disclosure_level"])
        return cls(**raw)
