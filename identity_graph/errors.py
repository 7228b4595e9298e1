"""The project's error tree; one mapping in the server turns it into gRPC status codes.

    IdentityGraphError
    ├── InvalidArgument        bad input: names the field and the reason  → INVALID_ARGUMENT
    │   └── InvalidIdentifier  an identifier that cannot be normalised
    ├── NotFound               an identifier, customer or conversation that does not exist → NOT_FOUND
    ├── FailedPrecondition     a legal request the current state does not allow → FAILED_PRECONDITION
    ├── Conflict               a stale version or a lost race → ABORTED
    ├── PermissionDenied       assurance or scope too low → PERMISSION_DENIED
    ├── TooManyAttempts        a cap on codes or on starting step-ups is reached → RESOURCE_EXHAUSTED
    └── StoreError             a backend failed; wraps the driver's error → UNAVAILABLE / INTERNAL
"""

from __future__ import annotations


class IdentityGraphError(Exception):
    """Base of every error this project raises on purpose."""


class InvalidArgument(IdentityGraphError, ValueError):
    """Input that cannot be accepted; `field` says which part of the request is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class InvalidIdentifier(InvalidArgument):
    """An identifier value that does not normalise for its type."""


class NotFound(IdentityGraphError, LookupError):
    """The thing asked for does not exist (or no longer exists)."""


class FailedPrecondition(IdentityGraphError):
    """The request is well formed, but the current state does not allow it."""


class Conflict(IdentityGraphError):
    """A write named a version that is no longer current."""


class PermissionDenied(IdentityGraphError):
    """The caller may not see or do this."""


class TooManyAttempts(IdentityGraphError):
    """A cap on guessing codes (or on sending them) is reached for now; retry after the window."""


class StoreError(IdentityGraphError):
    """A storage backend failed; the cause is chained with `raise ... from`."""


__all__ = [
    "Conflict",
    "FailedPrecondition",
    "IdentityGraphError",
    "InvalidArgument",
    "InvalidIdentifier",
    "NotFound",
    "PermissionDenied",
    "StoreError",
    "TooManyAttempts",
]
