"""Deployment settings for linking, guardrails and disclosure, and the typed TOML reader that loads
them. DESIGN.md's *defaults* live here."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

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
    name_similarity: float = 0.8
    """The one measure of "clearly different people" (`guardrails.Similarity`): two first names
    fit when one is a prefix of the other or their difflib ratio is at least this."""
    junk_people: int = 3
    """An identifier that joins this many people whose names or birth dates contradict each
    other is junk: set apart (generic) without being listed (`a@a.com`, `1111111111`)."""
    disclosure_level: LinkKind = LinkKind.OBSERVED
    max_candidates: int = 50
    last_seen_granularity_s: float = 300.0
    default_region: str = "US"
    trusted_sources: tuple[str, ...] = ()
    """Sources whose pairs count as proof (e.g. the retailer's account system with verified
    emails): their observed links are recorded `verified`. Nothing is trusted by default."""
    channels: tuple[str, ...] = ("web", "sms", "whatsapp", "email", "app", "agent")
    """The channels a message can come in on (Resolve, StartOrResume, AppendTurn, Link): any
    other value is INVALID_ARGUMENT naming `channel`, so a typo cannot start a channel of its own."""
    max_label_length: int = 200
    """Longest `source`, `actor`, `event_id`, `channel` or `model_version` a call may record."""

    def __post_init__(self) -> None:
        if not 0 < self.review_threshold <= self.link_threshold <= 1:
            raise ValueError("need 0 < review_threshold <= link_threshold <= 1")
        if not 0 < self.name_similarity <= 1:
            raise ValueError("name_similarity: need 0 < name_similarity <= 1")
        if self.junk_people < 2:
            raise ValueError("junk_people: need at least 2")
        pattern = "|".join(fnmatch.translate(p.lower()) for p in self.blocked) or r"(?!)"
        object.__setattr__(self, "_blocked_re", re.compile(pattern))

    def is_trusted(self, source: str) -> bool:
        return bool(source) and source in self.trusted_sources

    def is_blocked(self, key: str) -> bool:
        return bool(self._blocked_re.match(key.lower()))  # type: ignore[attr-defined]

    @classmethod
    def from_file(cls, path: str | Path) -> GraphConfig:
        """The `[graph]` table of a TOML settings file (see `config.example.toml`).

        Raises:
            ConfigError: the file cannot be read, or a key is unknown or badly typed (named).
        """
        return from_table(cls, read_toml(path).get("graph", {}), "graph")


# ---- typed settings files ---------------------------------------------------------------------


class ConfigError(ValueError):
    """A settings file that cannot be used; the message names the key (`session.handoff_ttl`)."""


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`"90s"`, `"30m"`, `"1h30m"`, `"250ms"`, `"3d"` as a timedelta.

    Raises:
        ValueError: not a duration.
    """
    compact = text.replace(" ", "")
    parts = _DURATION.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(text)
    return timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in parts))


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file as a dict; a missing file or bad syntax is a `ConfigError` (the caller names
    the file)."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"not valid TOML: {e}") from e
    return data


T = TypeVar("T")


def from_table(cls: type[T], table: Any, path: str) -> T:
    """Builds the dataclass `cls` from a TOML table whose keys are its field names.

    Each value is checked against the field's type (bool, int, float, str, duration, link kind,
    tuples, tables, nested dataclasses); fields left out keep their defaults.

    Raises:
        ConfigError: an unknown key, a wrong type, or a value `cls` rejects, naming the key.
    """
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: expected a table")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    for name in table:
        if name not in known:
            raise ConfigError(f"{path}.{name}: unknown setting (known: {', '.join(sorted(known))})")
    values = {name: _convert(hints[name], raw, f"{path}.{name}") for name, raw in table.items()}
    for f in fields(cls):  # type: ignore[arg-type]
        if isinstance(values.get(f.name), dict) and f.default_factory is not MISSING:
            values[f.name] = {**f.default_factory(), **values[f.name]}  # a table amends its default
    try:
        return cls(**values)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{path}: {e}") from e


def _convert(tp: Any, raw: Any, path: str) -> Any:
    origin, args = get_origin(tp), get_args(tp)
    if tp is bool:
        if isinstance(raw, bool):
            return raw
        raise ConfigError(f"{path}: expected true or false")
    if tp is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        raise ConfigError(f"{path}: expected an integer")
    if tp is float:
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return float(raw)
        raise ConfigError(f"{path}: expected a number")
    if tp is str:
        if isinstance(raw, str):
            return raw
        raise ConfigError(f"{path}: expected a string")
    if tp is timedelta:
        try:
            return parse_duration(raw)
        except (ValueError, TypeError, AttributeError):
            raise ConfigError(f'{path}: expected a duration such as "30m", "24h" or "90s"') from None
    if tp is LinkKind:
        labels = ", ".join(k.label for k in LinkKind)
        if isinstance(raw, str) and raw.strip().upper() in LinkKind.__members__:
            return LinkKind[raw.strip().upper()]
        raise ConfigError(f"{path}: expected a link kind ({labels})")
    if origin is tuple:
        if not isinstance(raw, list):
            raise ConfigError(f"{path}: expected a list")
        return tuple(_convert(args[0], item, f"{path}[{i}]") for i, item in enumerate(raw))
    if origin is dict:
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a table")
        return {str(k): _convert(args[1], v, f"{path}.{k}") for k, v in raw.items()}
    if is_dataclass(tp):
        return from_table(tp, raw, path)
    raise ConfigError(f"{path}: settings of type {tp} cannot be read from a file")
