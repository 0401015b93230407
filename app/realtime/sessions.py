"""Agent sockets end with the session they were opened with, on every node.

A session ends by logout, a password change, a role change, deactivation or expiry.
The first four are news on the bus: the action that ends it emits a `session.revoke`
frame to the agent's topic after its commit, and each node's hub closes the matching
local sockets instead of forwarding the frame (clients never see it). Expiry needs no
news: every node closes its own sockets when their session's `expires_at` passes
(`SessionExpiry`, a cheap look at the local agent sockets, no database read). A node
that may have missed news (a bus outage) checks its agent sockets against the record
when it resyncs (`Connection._resync`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from app.clock import Clock
from app.realtime.periodic import PeriodicTask
from app.realtime.topics import agent_topic

# The close code for a socket whose credentials are not (or no longer) good, with one of
# the reasons below as the close reason.
CLOSE_UNAUTHORIZED = 4401

LOGOUT = "logout"
PASSWORD_CHANGED = "password_changed"
ROLE_CHANGED = "role_changed"
DEACTIVATED = "deactivated"
EXPIRED = "session_expired"
ENDED = "session_ended"  # found ended on a check against the record (the news was lost)

REVOKE = "session.revoke"  # internal: the hub acts on it and never sends it to a client


def revocation(
    agent_id: str, reason: str, *, session: str | None = None, keep: str | None = None
) -> tuple[str, dict[str, Any]]:
    """(topic, frame) ending the agent's sockets: of one session (its token hash), or all but `keep`."""
    return agent_topic(agent_id), {
        "type": REVOKE,
        "reason": reason,
        "session": session,
        "keep": keep,
    }


def revokes(frame: dict[str, Any], session_key: str | None) -> bool:
    """Whether a `session.revoke` frame ends a socket opened with the session `session_key`."""
    one, keep = frame.get("session"), frame.get("keep")
    return (one is None or session_key == one) and (keep is None or session_key != keep)


class EndsExpired(Protocol):
    """What `SessionExpiry` drives: the hub, which knows this node's agent sockets."""

    def end_expired(self, now: datetime) -> object: ...


class SessionExpiry:
    """Closes this node's agent sockets whose session has expired, within `tick_s` of expiry.

    The clock is the application's (tests move it); a look costs a comparison per agent
    socket on this node.
    """

    def __init__(self, hub: EndsExpired, clock: Clock, tick_s: float = 0.5) -> None:
        self.hub = hub
        self.clock = clock
        self.tick_s = tick_s
        self._loop = PeriodicTask("ending expired sessions", tick_s, self._end_expired)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _end_expired(self) -> None:
        self.hub.end_expired(self.clock.now())
