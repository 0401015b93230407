"""Agent presence across nodes: each node stamps `last_seen_at` for the agents it holds sockets for.

An agent none of whose sockets any node has stamped for longer than the grace period
is gone (`requeue_absent_agents` job). This runs on every serving node, jobs or not.
"""

from __future__ import annotations

import asyncio
import logging

from app.clock import Clock
from app.db import Database
from app.realtime.hub import Hub
from app.routing import actions as routing

log = logging.getLogger(__name__)


class PresenceHeartbeat:
    def __init__(self, db: Database, clock: Clock, hub: Hub, interval_s: float) -> None:
        self.db = db
        self.clock = clock
        self.hub = hub
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    async def beat(self, agent_ids: list[str] | None = None) -> None:
        """Stamp these agents (a socket of theirs just opened), or every agent held here."""
        ids = self.hub.local_agent_ids() if agent_ids is None else agent_ids
        if ids:
            await self.db.run(routing.touch_agents, ids, self.clock.now())

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="presence-heartbeat")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.beat()
            except Exception:
                log.exception("presence heartbeat failed; will retry")
