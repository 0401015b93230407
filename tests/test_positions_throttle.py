"""Queue positions: announced at most every POSITIONS_EVERY_S per queue, the last change always."""

from __future__ import annotations

import asyncio
import itertools

from app.routing.dispatcher import POSITIONS_EVERY_S


async def test_a_burst_of_position_changes_is_announced_twice_not_twenty_times(server, monkeypatch):
    dispatcher = server.ctx.dispatcher
    calls: list[float] = []

    async def counted(pair, *, force):
        calls.append(asyncio.get_running_loop().time())

    monkeypatch.setattr(dispatcher, "refresh_positions", counted)
    pair = ("shop-throttle", "general")
    loop = asyncio.get_running_loop()
    for _ in range(20):
        dispatcher.on_signal("positions", pair)
        await asyncio.sleep(0.01)
    last_change = loop.time()
    await asyncio.sleep(POSITIONS_EVERY_S * 2.5)
    assert 1 <= len(calls) <= 3  # the first at once, then what was deferred
    assert calls[-1] >= last_change - 0.02  # the newest state went out after the burst
    assert all(b - a >= POSITIONS_EVERY_S * 0.9 for a, b in itertools.pairwise(calls))
