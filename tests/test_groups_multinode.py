"""Fan groups on two `homing serve` nodes sharing one database and one Redis."""

from __future__ import annotations

import asyncio
import secrets

import httpx

from tests.support.client import WSClient
from tests.support.factories import login, make_shop
from tests.test_multinode import node_env, pump, wait_for

MEMBERS = 100
COUPONS = 10


async def test_100_members_claim_10_coupons_at_once_on_two_nodes(
    server, database_url, redis_url, nodes
):
    env = node_env(database_url, redis_url, f"homing:test:{secrets.token_hex(4)}")
    node1, node2 = await nodes(env), await nodes(env)
    kit = await make_shop(server.ctx.db)
    admin_h = {"Authorization": f"Bearer {await login(node1.http, kit, 'admin')}"}
    limits = httpx.Limits(max_connections=MEMBERS)
    async with httpx.AsyncClient(timeout=60, limits=limits) as c:
        g = (
            await c.post(f"{node1.http}/api/v1/groups", json={"name": "福利群"}, headers=admin_h)
        ).json()
        heads = [{"Authorization": f"Bearer {kit.buyer_token(f'fan-{i}')}"} for i in range(MEMBERS)]
        nodes_for = [node1 if i % 2 else node2 for i in range(MEMBERS)]
        joins = await asyncio.gather(
            *[
                c.post(f"{n.http}/api/v1/groups/{g['id']}/join", headers=h)
                for n, h in zip(nodes_for, heads, strict=True)
            ]
        )
        assert {r.status_code for r in joins} == {200}
        r = await c.post(
            f"{node2.http}/api/v1/groups/{g['id']}/giveaways",
            headers=admin_h,
            json={"title": "限量券", "quantity": COUPONS, "coupon": {"amount_cents": 500}},
        )
        gw = r.json()
        start = asyncio.Event()

        async def claim(n, h):
            await start.wait()
            return await c.post(f"{n.http}/api/v1/giveaways/{gw['id']}/claim", headers=h)

        tasks = [asyncio.create_task(claim(n, h)) for n, h in zip(nodes_for, heads, strict=True)]
        await asyncio.sleep(0.1)
        start.set()
        rs = await asyncio.gather(*tasks)
        codes = [r.status_code for r in rs]
        assert codes.count(200) == COUPONS, [r.text for r in rs if r.status_code not in (200, 409)][
            :3
        ]
        assert {r.json()["error"]["code"] for r in rs if r.status_code != 200} == {"sold_out"}
        assert len(rs) - COUPONS == codes.count(409)
        winner = heads[codes.index(200)]
        again = await c.post(f"{node1.http}/api/v1/giveaways/{gw['id']}/claim", headers=winner)
        assert again.status_code == 409 and again.json()["error"]["code"] == "already_claimed"
        state = (await c.get(f"{node2.http}/api/v1/giveaways/{gw['id']}", headers=admin_h)).json()
        assert state["claimed"] == COUPONS and state["remaining"] == 0
        history = (
            await c.get(f"{node1.http}/api/v1/groups/{g['id']}/messages", headers=admin_h)
        ).json()
        assert [m.get("payload", {}).get("sold_out") for m in history].count(True) == 1


async def test_group_messages_reach_every_online_member_once_across_nodes(
    server, database_url, bus_url, nodes, connect
):
    env = node_env(database_url, bus_url, f"homing:test:{secrets.token_hex(4)}")
    node1, node2 = await nodes(env), await nodes(env)
    kit = await make_shop(server.ctx.db)
    admin_h = {"Authorization": f"Bearer {await login(node1.http, kit, 'admin')}"}
    async with httpx.AsyncClient(timeout=30) as c:
        g = (
            await c.post(f"{node1.http}/api/v1/groups", json={"name": "两节点群"}, headers=admin_h)
        ).json()
        members: list[WSClient] = []
        for i in range(20):
            n = node1 if i % 2 else node2
            ws = await connect(f"{n.ws}/ws/buyer?token={kit.buyer_token(f'm-{i}')}")
            await ws.expect("hello")
            r = await c.post(
                f"{n.http}/api/v1/groups/{g['id']}/join",
                headers={"Authorization": f"Bearer {kit.buyer_token(f'm-{i}')}"},
            )
            assert r.status_code == 200
            await ws.expect("group.joined")  # the socket listens to the group from here on
            members.append(ws)
    stop = asyncio.Event()
    readers = [asyncio.create_task(pump(m, stop)) for m in members]
    for k in range(5):
        await members[k].send(
            {
                "type": "group.send",
                "group_id": g["id"],
                "client_msg_id": f"x{k}",
                "body": f"第{k}条",
            }
        )

    def got(m):
        return [f["message"]["seq"] for f in m.frames if f.get("type") == "group.message"]

    await wait_for(
        lambda: all(len(got(m)) >= 5 for m in members), 20, "every member to get every message"
    )
    await asyncio.sleep(0.5)  # duplicates would have arrived by now
    stop.set()
    await asyncio.gather(*readers)
    for m in members:
        assert sorted(got(m)) == [1, 2, 3, 4, 5]
    acks = sorted(
        f["message"]["seq"] for m in members for f in m.frames if f.get("type") == "message.ack"
    )
    assert acks == [1, 2, 3, 4, 5]
    assert not [f for m in members for f in m.frames if f.get("type") == "error"]
