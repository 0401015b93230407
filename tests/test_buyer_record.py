"""What a buyer's socket records about them on connect, and when it writes nothing."""

from __future__ import annotations

from app.shops.models import Buyer
from tests.conftest import buyer


async def record(server, kit, sub):
    async with server.ctx.db.read() as s:
        return await s.get(Buyer, (kit.shop_id, sub))


async def test_reconnects_write_only_what_changed_or_a_stale_last_seen(server, shop, connect):
    b = await buyer(server, shop, connect, "rec-1", name="小王", vip=1)
    first = await record(server, shop, "rec-1")
    assert (first.name, first.vip) == ("小王", 1)
    await b.close()

    server.clock.advance(minutes=5)
    b = await buyer(server, shop, connect, "rec-1", name="小王", vip=1)
    same = await record(server, shop, "rec-1")
    assert same.last_seen_at == first.last_seen_at  # nothing new: nothing written
    await b.close()

    b = await buyer(server, shop, connect, "rec-1", name="王小明", vip=3)
    renamed = await record(server, shop, "rec-1")
    assert (renamed.name, renamed.vip) == ("王小明", 3)  # the token's facts always land
    assert renamed.last_seen_at > first.last_seen_at
    await b.close()

    server.clock.advance(minutes=11)
    b = await buyer(server, shop, connect, "rec-1", name="王小明", vip=3)
    later = await record(server, shop, "rec-1")
    assert later.last_seen_at > renamed.last_seen_at  # seen again after the resolution
    await b.close()
