"""Agent presence across nodes: each node stamps `last_seen_at` for the agents it holds sockets for.

An agent none of whose sockets any node has stamped for longer than the grace period
is gone (`requeue_absent_agents` job). This runs on every serving node, jobs or not.
"""

from __future__ import annotations

from app.clock import Clock
from app.db import Database
from app.realtime.hub import Hub
from app.realtime.periodic import PeriodicTask
from app.routing import actions as routing


class PresenceHeartbeat:
    def __init__(self, db: Database, clock: Clock, hub: Hub, interval_s: float) -> None:
        self.db = db
        self.clock = clock
        self.hub = hub
        self.interval_s = interval_s
        self._loop = PeriodicTask("presence heartbeat", interval_s, self.beat)

    async def beat(self, agent_ids: list[str] | None = None) -> None:
        """Stamp these agents (a socket of theirs just opened), or every agent held here."""
        ids = self.hub.local_agent_ids() if agent_ids is None else agent_ids
        if ids:
            await self.db.run(routing.touch_agents, ids, self.clock.now())

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
