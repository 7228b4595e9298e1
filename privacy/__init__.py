"""Privacy: erasure (Forget), the data-subject export, suppression and the audit log.

A layer above `identity_graph` and `session`: it uses both through their public store methods
and neither imports it."""
