"""Database.run_grouped: concurrent small writes share a transaction on SQLite, and an
error in one reaches only its caller, with nothing of it kept."""

from __future__ import annotations

import asyncio

import pytest

from app.errors import BadInput
from app.shops import actions as shop_actions
from app.shops.models import Buyer


async def test_grouped_writes_commit_together_and_fail_alone(server, shop):
    db = server.ctx.db
    now = server.clock.now()

    async def touch(uow, buyer_id):
        await shop_actions.touch_buyer(
            uow, shop_id=shop.shop_id, buyer_id=buyer_id, name=buyer_id, age=None, vip=None, now=now
        )
        uow.emit("t:grouped", {"type": "test", "buyer": buyer_id})
        return buyer_id

    async def touch_then_refuse(uow, buyer_id):
        await touch(uow, buyer_id)
        raise BadInput("no")

    groups_before = db.groups_committed
    calls = [db.run_grouped(touch, f"grp-{i}") for i in range(10)]
    calls.insert(5, db.run_grouped(touch_then_refuse, "grp-bad"))
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(results[5], BadInput)
    assert results[:5] + results[6:] == [f"grp-{i}" for i in range(10)]
    async with db.read() as s:
        assert await s.get(Buyer, (shop.shop_id, "grp-bad")) is None  # its half-done write is gone
        for i in range(10):
            assert await s.get(Buyer, (shop.shop_id, f"grp-{i}")) is not None
    if db.is_sqlite:
        # The group failed once (the refusal), was run again alone, one by one ...
        assert db.groups_committed == groups_before
        # ... and without a failure, waiting work shares one transaction.
        results = await asyncio.gather(*(db.run_grouped(touch, f"grp2-{i}") for i in range(10)))
        assert results == [f"grp2-{i}" for i in range(10)]
        assert db.groups_committed > groups_before


@pytest.mark.parametrize("n", [1, 30])
async def test_grouped_results_match_their_callers(server, shop, n):
    db = server.ctx.db

    async def echo(uow, value):
        await asyncio.sleep(0)
        return value * 2

    assert await asyncio.gather(*(db.run_grouped(echo, i) for i in range(n))) == [
        i * 2 for i in range(n)
    ]
