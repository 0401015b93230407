"""Two nodes on one database and one Redis: an entry added on one is matched on the other at
once (the bus announces the new version; the other node rebuilds its index unasked)."""

from __future__ import annotations

import asyncio
import secrets

import httpx

from tests.conftest import buyer
from tests.support.factories import login, make_shop


async def wait_for(pred, timeout, what):
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_entry_added_on_one_node_is_matched_on_the_other(start_server, redis_url, connect):
    channel = f"homing:test:{secrets.token_hex(4)}"
    node1, node2 = [
        await start_server(
            run_jobs=False,
            REDIS_URL=redis_url,
            HOMING_BUS_CHANNEL=channel,
            HOMING_BUS_PUBLISH_TIMEOUT_S="5",  # a loaded test machine is not a Redis outage
        )
        for _ in range(2)
    ]
    kit = await make_shop(node1.ctx.db)
    token = await login(node1.http, kit, "admin")
    auth = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=node1.http, headers=auth, timeout=60) as one,
        httpx.AsyncClient(base_url=node2.http, headers=auth, timeout=60) as two,
    ):
        await one.put("/api/v1/bot/settings", json={"mode": "bot_first"})
        r = await one.post(
            "/api/v1/bot/faqs", json={"question": "什么时候发货", "answer": "48小时内。"}
        )
        assert r.status_code == 201
        # Both nodes have built the shop's index (and loaded the matcher) at this version.
        assert len((await one.get("/api/v1/bot/match", params={"q": "几时发货"})).json()) == 1
        assert len((await two.get("/api/v1/bot/match", params={"q": "几时发货"})).json()) == 1
        version = node1.ctx.bot.known_version(kit.shop_id)
        assert version and node2.ctx.bot.known_version(kit.shop_id) == version
        rebuilt = node2.ctx.bot.rebuilds

        r = await one.post(
            "/api/v1/bot/faqs",
            json={"question": "包邮吗", "similar": ["运费多少"], "answer": "满99元包邮。"},
        )
        assert r.status_code == 201
        faq_id = r.json()["id"]
        # Node 2 rebuilds on the announcement, before anyone asks it anything.
        started = asyncio.get_running_loop().time()
        await wait_for(
            lambda: (node2.ctx.bot.known_version(kit.shop_id) or 0) > version, 5, "node 2's rebuild"
        )
        took = asyncio.get_running_loop().time() - started
        assert node2.ctx.bot.rebuilds == rebuilt + 1
        assert (await two.get("/api/v1/bot/match", params={"q": "运费多少钱"})).json()[0][
            "faq_id"
        ] == faq_id
        print(f"node 2 rebuilt its index {took * 1000:.0f} ms after the entry was added")

    # A buyer on node 2 is answered from the entry added on node 1.
    b = await buyer(node2, kit, connect)
    await b.send({"type": "message.send", "client_msg_id": "m1", "body": "运费多少"})
    await b.expect("message.ack")
    answer = await b.expect("message.new", lambda f: f["message"]["sender"] == "bot")
    assert answer["message"]["body"] == "满99元包邮。"
