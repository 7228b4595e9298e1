"""The gRPC face of the identity graph: servicers, proto conversions and the error mapping."""

from identity_graph.api.errors import handle_errors, status_for
from identity_graph.api.identity_servicer import IdentityServicer

__all__ = ["IdentityServicer", "handle_errors", "status_for"]
