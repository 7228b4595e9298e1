"""How the event log is searched for, and rewritten after, an erasure: shared by every backend."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

ERASED_PAYLOAD: Mapping[str, Any] = {"erased": True}


def mention(value: str) -> str:
    """How `value` appears inside an event payload (JSON text written with `json.dumps`)."""
    return json.dumps(value)


def eraser(values: Iterable[str]) -> Callable[[str], str]:
    """A rewrite of an event payload (JSON text) to `{"erased": true}`, keeping the event's
    `actor` (a calling service) only when it names none of the erased `values` (identifier keys,
    their bare values, customer ids), compared case-insensitively."""
    raw = sorted({v for v in values if v})
    secrets = [v.lower() for v in raw] + [v.partition(":")[2].lower() for v in raw if ":" in v]

    def rewrite(payload: str) -> str:
        try:
            old = json.loads(payload)
        except ValueError:
            old = None
        out: dict[str, Any] = dict(ERASED_PAYLOAD)
        actor = old.get("actor") if isinstance(old, dict) else None
        if isinstance(actor, str) and actor and not any(s and s in actor.lower() for s in secrets):
            out["actor"] = actor
        return json.dumps(out, sort_keys=True)

    return rewrite


__all__ = ["ERASED_PAYLOAD", "eraser", "mention"]
