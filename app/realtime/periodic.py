"""A node-local loop that does one thing every few seconds and outlives its own errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class PeriodicTask:
    """Call `tick` every `interval_s` from `start()` until `stop()`.

    An error in one tick is logged with the task's name and the next tick runs as usual:
    the state each tick acts on is durable (the database) or rebuilt (the hub), so a
    failed tick is only a late one.
    """

    def __init__(self, name: str, interval_s: float, tick: Callable[[], Awaitable[None]]) -> None:
        self.name = name
        self.interval_s = interval_s
        self._tick = tick
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self._tick()
            except Exception:
                log.exception("%s failed; will retry", self.name)
