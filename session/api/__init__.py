"""The gRPC face of the session service: the servicer and its proto conversions."""

from session.api.servicer import SessionServicer

__all__ = ["SessionServicer"]
