"""Runs routing's `dispatch` in the background: on request after commits, and as a sweep.

Requests for the same queue coalesce, so a surge of openers costs a few dispatch
transactions, not one each. The periodic sweep re-dispatches whatever a crash, a lost
request or another node left waiting, so no waiting buyer depends on one process.
"""

from __future__ import annotations

import asyncio
import logging

from app.clock import Clock
from app.db import Database, UnitOfWork
from app.routing import actions as routing

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(self, db: Database, clock: Clock, sweep_s: float) -> None:
        self.db = db
        self.clock = clock
        self.sweep_s = sweep_s
        self._pending: set[tuple[str, str]] = set()
        self._positions: set[tuple[str, str]] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, *, sweep: bool) -> None:
        self._tasks.append(asyncio.create_task(self._drain_forever(), name="dispatch-drain"))
        if sweep:
            self._tasks.append(asyncio.create_task(self._sweep_forever(), name="dispatch-sweep"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def on_signal(self, name: str, arg: tuple[str, str]) -> None:
        if name == "dispatch":
            self._pending.add(arg)
        elif name == "positions":
            self._positions.add(arg)
        else:
            return
        self._wake.set()

    async def run_once(self) -> int:
        """Dispatch every requested queue until none can assign more; returns assignments."""
        total = 0
        while self._pending or self._positions:
            pending, self._pending = self._pending, set()
            positions, self._positions = self._positions, set()
            for shop_id, queue in sorted(pending):
                try:
                    n = await self.db.run(routing.dispatch, shop_id, queue, self.clock.now())
                except Exception:
                    log.exception("dispatch failed for shop %s queue %s", shop_id, queue)
                    continue
                total += n
                if n:
                    positions.discard((shop_id, queue))  # dispatch told the waiters already
                if n >= routing.DISPATCH_BATCH:
                    self._pending.add((shop_id, queue))  # more may fit: go round again
            for shop_id, queue in sorted(positions):
                try:
                    await self.db.run(_announce, shop_id, queue)
                except Exception:
                    log.exception("position update failed for shop %s queue %s", shop_id, queue)
        return total

    async def _drain_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.run_once()

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_s)
            try:
                async with self.db.read() as session:
                    uow = UnitOfWork(session, self.db.dialect)
                    waiting = await routing.waiting_queues(uow)
            except Exception:
                log.exception("dispatch sweep could not list waiting queues")
                continue
            for pair in waiting:
                self.on_signal("dispatch", pair)


async def _announce(uow: UnitOfWork, shop_id: str, queue: str) -> None:
    await routing.announce_positions(uow, shop_id, queue)
