"""Buyer sockets opening at once share their reads and writes (app/chat/opening.py): each
still gets exactly what it would have got alone, and a bad token only its own refusal."""

from __future__ import annotations

import asyncio
import json

import websockets

from app.shops import actions as shop_actions
from app.shops.models import Buyer
from tests.conftest import buyer
from tests.support.factories import make_shop


async def stored(server, kit, sub):
    async with server.ctx.db.read() as s:
        return await s.get(Buyer, (kit.shop_id, sub))


async def hello_or_code(url: str) -> dict | int:
    async with websockets.connect(url, open_timeout=20) as ws:
        try:
            return json.loads(await asyncio.wait_for(ws.recv(), 20))
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else -1


async def test_one_batch_checks_every_token_alone_and_writes_what_changed(server, shop):
    openings = server.ctx.openings
    other = await make_shop(server.ctx.db)
    # Known buyers: one whose token says nothing new, one renamed, one in elder mode.
    now = server.clock.now()
    for sub, name in (("same", "老张"), ("renamed", "旧名"), ("elder", "长辈")):
        await server.ctx.db.run(
            shop_actions.touch_buyer,
            shop_id=shop.shop_id,
            buyer_id=sub,
            name=name,
            age=None,
            vip=None,
            now=now,
        )
    await server.ctx.db.run(
        shop_actions.set_elder_mode, shop_id=shop.shop_id, buyer_id="elder", on=True
    )
    before = await stored(server, shop, "same")
    tokens = {
        "same": shop.buyer_token("same", name="老张"),
        "renamed": shop.buyer_token("renamed", name="新名", vip=2),
        "elder": shop.buyer_token("elder", name="长辈"),
        "new": shop.buyer_token("new-one", name="新客"),
        "twice": shop.buyer_token("two-tabs", name="甲"),
        "twice2": shop.buyer_token("two-tabs", name="乙"),
        "other-shop": other.buyer_token("o1"),
        # Refused, each alone, though asked in the same batch as the rest:
        "expired": shop.buyer_token("late", exp_in=-5),
        "forged": shop.buyer_token("forged", secret="not-the-shop-secret-0123456789abcdef"),
        "garbage": "not.a.jwt",
        "none": None,
        # Signed with the right shop's secret but naming another shop: refused.
        "cross": other.buyer_token("x", secret=shop.buyer_secret),
    }
    batches = openings.identify.batches
    results = await asyncio.gather(
        *(openings.buyer(t) for t in tokens.values()), return_exceptions=True
    )
    got = dict(zip(tokens, results, strict=True))
    assert openings.identify.batches == batches + 1  # one read answered them all
    for refused in ("expired", "forged", "garbage", "none", "cross"):
        assert type(got[refused]).__name__ == "NotAuthenticated", refused
    assert (
        await stored(server, shop, "late") is None and await stored(server, shop, "forged") is None
    )
    assert got["same"].buyer_id == "same" and not got["same"].elder_mode
    assert got["elder"].elder_mode  # the record's, not the token's
    assert (got["renamed"].name, got["renamed"].vip) == ("新名", 2)
    assert got["other-shop"].shop_id == other.shop_id

    same = await stored(server, shop, "same")
    assert same.last_seen_at == before.last_seen_at  # nothing new: nothing written
    renamed = await stored(server, shop, "renamed")
    assert (renamed.name, renamed.vip) == ("新名", 2)  # the token's facts land
    elder = await stored(server, shop, "elder")
    assert elder.elder_mode  # a write keeps what the token does not say
    new = await stored(server, shop, "new-one")
    assert new.name == "新客" and new.first_seen_at == new.last_seen_at
    assert (await stored(server, shop, "two-tabs")).name == "乙"  # the later word wins
    async with server.ctx.db.read() as s:
        assert await s.get(Buyer, (other.shop_id, "o1")) is not None


async def test_a_token_is_checked_against_the_clock_each_time(server, shop):
    """Nothing about a token is kept between openings: once it has expired, a reconnect
    with it is refused although the same token opened a socket a moment before."""
    token = shop.buyer_token("expiring", exp_in=120)
    assert (await server.ctx.openings.buyer(token)).buyer_id == "expiring"
    server.clock.advance(minutes=3)
    assert await hello_or_code(f"{server.ws}/ws/buyer?token={token}") == 4401


async def test_many_sockets_opening_at_once_each_get_their_own_hello(server, connect):
    kit = await make_shop(server.ctx.db)  # its agent never comes online: conversations queue
    waiting = []
    for i in range(6):
        b = await buyer(server, kit, connect, f"w{i}", name=f"等{i}")
        await b.send({"type": "message.send", "client_msg_id": f"m{i}", "body": "在吗"})
        ack = await b.expect("message.ack")
        waiting.append(ack["message"]["conversation_id"])
        if i == 2:
            await b.send({"type": "elder_mode", "on": True})
            await b.expect("elder_mode")
        await b.close()
    subs = [f"w{i}" for i in range(6)] + [f"fresh{i}" for i in range(30)]
    urls = {s: f"{server.ws}/ws/buyer?token={kit.buyer_token(s, name='名' + s)}" for s in subs}
    urls["bad"] = f"{server.ws}/ws/buyer?token={kit.buyer_token('bad', exp_in=-1)}"
    hellos = dict(
        zip(urls, await asyncio.gather(*(hello_or_code(u) for u in urls.values())), strict=True)
    )
    assert hellos.pop("bad") == 4401
    for sub, hello in hellos.items():
        assert isinstance(hello, dict) and hello["type"] == "hello", (sub, hello)
        assert hello["buyer_id"] == sub
        if sub.startswith("w"):
            i = int(sub[1:])
            assert hello["conversation"]["id"] == waiting[i]
            assert hello["conversation"]["status"] == "queued"
            assert hello["position"] == i + 1
            assert hello["elder_mode"] is (i == 2)
        else:
            assert hello["conversation"] is None and hello["position"] is None
            assert hello["elder_mode"] is False
        assert hello["groups"] == []
    for s in subs:
        assert (await stored(server, kit, s)).name == "名" + s
