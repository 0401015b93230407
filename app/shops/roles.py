"""The agents' roles and what each may see, defined once for every domain and both transports."""

from __future__ import annotations

AGENT, SUPERVISOR, ADMIN = "agent", "supervisor", "admin"
ROLES = (AGENT, SUPERVISOR, ADMIN)
# Who watches the whole shop: every conversation, the agents, metrics, payout approvals,
# fan-group moderation, and the shop-wide news on sockets.
STAFF_ROLES = (SUPERVISOR, ADMIN)
# Who works the desk, so whose service the metrics measure one by one (admins configure).
MEASURED_ROLES = (AGENT, SUPERVISOR)


def is_staff(role: str) -> bool:
    """A supervisor or the admin."""
    return role in STAFF_ROLES
