"""Bounded text input: one check for length and NUL bytes, so every field is refused the same way."""

from __future__ import annotations

from identity_graph.errors import InvalidArgument


def check_text(field: str, value: str, max_chars: int) -> str:
    """Returns `value` when it has at most `max_chars` characters and no NUL byte.

    NUL ends strings in C and in some log and export tools, so a value carrying one could show one
    text and store another; no channel sends one legitimately.

    Raises:
        InvalidArgument: naming `field`.
    """
    if len(value) > max_chars:
        raise InvalidArgument(field, f"at most {max_chars} characters")
    if "\x00" in value:
        raise InvalidArgument(field, "must not contain NUL bytes")
    return value


__all__ = ["check_text"]
