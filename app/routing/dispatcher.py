"""Runs routing's `dispatch` in the background: on request after commits, and as a sweep.

Requests for the same queue coalesce, so a surge of openers costs a few dispatch
transactions, not one each. The periodic sweep re-dispatches whatever a crash, a lost
request or another node left waiting, so no waiting buyer depends on one process.

Position announcements for a queue are throttled to one per `POSITIONS_EVERY_S`: in a
surge each small dispatch moves everyone up, and re-announcing every waiter each time
is quadratic. The last change is always announced, at most that long after it.

Queue positions are news sent from several transactions (and nodes), which the bus may
deliver out of order; the sweep re-reads each waiting queue and re-announces it when
its order differs from what this node last announced, and in full every
`FULL_REFRESH_SWEEPS` sweeps, so every waiting buyer converges on the record.
"""

from __future__ import annotations

import asyncio
import logging

from app.clock import Clock
from app.db import Database
from app.routing import actions as routing
from app.routing import hours

log = logging.getLogger(__name__)

FULL_REFRESH_SWEEPS = 10
# Positions of one queue are announced at most this often (the newest order wins).
POSITIONS_EVERY_S = 0.5


class Dispatcher:
    def __init__(self, db: Database, clock: Clock, sweep_s: float) -> None:
        self.db = db
        self.clock = clock
        self.sweep_s = sweep_s
        self._pending: set[tuple[str, str]] = set()
        self._positions: set[tuple[str, str]] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._announced: dict[tuple[str, str], int] = {}  # (shop, queue) -> order fingerprint
        self._positions_due: dict[tuple[str, str], float] = {}  # loop time the next may go out
        self._positions_deferred: set[tuple[str, str]] = set()

    def start(self, *, sweep: bool) -> None:
        self._tasks.append(asyncio.create_task(self._drain_forever(), name="dispatch-drain"))
        if sweep:
            self._tasks.append(asyncio.create_task(self._sweep_forever(), name="dispatch-sweep"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    @property
    def backlog(self) -> int:
        """Queues waiting for this dispatcher: to dispatch, and to announce positions of."""
        return len(self._pending) + len(self._positions) + len(self._positions_deferred)

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
                if n >= routing.DISPATCH_BATCH:
                    self._pending.add((shop_id, queue))  # more may fit: go round again
                else:
                    await self._tell_waiting(shop_id, queue)
            for pair in sorted(positions):
                await self._announce_when_due(pair)
        return total

    async def _tell_waiting(self, shop_id: str, queue: str) -> None:
        """Whoever still waits while nobody can answer is told so at once (留言, see
        routing.hours); the check is one read, the telling a write only when due."""
        try:
            if await self.db.query(hours.waiting_reason, shop_id, queue, self.clock.now()):
                await self.db.run(hours.tell_waiting, shop_id, queue, self.clock.now())
        except Exception:
            log.exception("telling waiting buyers failed for shop %s queue %s", shop_id, queue)

    async def _announce_when_due(self, pair: tuple[str, str]) -> None:
        """Announce the queue's positions now, or once POSITIONS_EVERY_S has passed since the last."""
        loop = asyncio.get_running_loop()
        wait = self._positions_due.get(pair, 0.0) - loop.time()
        if wait > 0:
            if pair not in self._positions_deferred:
                self._positions_deferred.add(pair)
                loop.call_later(wait, self._deferred_positions, pair)
            return
        self._positions_due[pair] = loop.time() + POSITIONS_EVERY_S
        await self.refresh_positions(pair, force=True)

    def _deferred_positions(self, pair: tuple[str, str]) -> None:
        self._positions_deferred.discard(pair)
        self.on_signal("positions", pair)

    async def refresh_positions(self, pair: tuple[str, str], *, force: bool) -> None:
        """Announce the queue's current order unless this node already announced exactly it."""
        try:
            order = await self.db.query(routing.waiting_order, *pair)
            fingerprint = hash(tuple(order))
            if not force and self._announced.get(pair) == fingerprint:
                return
            self._announced[pair] = await self.db.announce(routing.announce_positions, *pair)
        except Exception:
            log.exception("position update failed for shop %s queue %s", *pair)

    async def _drain_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.run_once()

    async def _sweep_forever(self) -> None:
        sweeps = 0
        while True:
            await asyncio.sleep(self.sweep_s)
            sweeps += 1
            try:
                waiting = await self.db.query(routing.waiting_queues)
            except Exception:
                log.exception("dispatch sweep could not list waiting queues")
                continue
            for pair in waiting:
                self.on_signal("dispatch", pair)
            await self.run_once()
            for pair in waiting:
                await self.refresh_positions(pair, force=sweeps % FULL_REFRESH_SWEEPS == 0)
