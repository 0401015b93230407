"""Compliance (违规词) through real servers: every platform rule and a shop's own words on a
real agent socket (a block stores nothing and answers `compliance_blocked`; a flag reaches
the buyer and the review list), the rules API and its permissions, the check endpoint the
composer calls, and the cache of every node dropped when the rules change."""

from __future__ import annotations

import asyncio
import secrets

import httpx
from sqlalchemy import func, select

from app.chat.models import Message
from app.compliance.models import ComplianceFlag
from tests.conftest import buyer, online_agent
from tests.support.factories import login, make_shop


def auth(token):
    return {"Authorization": f"Bearer {token}"}


async def chat(server, kit, connect, sub="b-1"):
    """An agent serving a buyer's conversation: (agent socket, buyer socket, conversation id)."""
    agent = await online_agent(server, kit, "agent1", connect)
    b = await buyer(server, kit, connect, sub)
    await b.send({"type": "message.send", "client_msg_id": "hi", "body": "在吗?"})
    await b.expect("message.ack")
    conv_id = (await agent.expect("conversation.assigned"))["conversation"]["id"]
    await agent.expect("message.new")
    return agent, b, conv_id


async def stored_bodies(server, conv_id):
    async with server.ctx.db.read() as s:
        rows = await s.execute(
            select(Message.body).where(Message.conversation_id == conv_id).order_by(Message.seq)
        )
        return list(rows.scalars())


BLOCKED = [
    ("1 3 8 0 0 1 3 8 0 0 0 打这个", "phone_number", "13800138000"),
    ("电话 138-0013-8000", "phone_number", "13800138000"),
    ("１３８００１３８０００", "phone_number", "13800138000"),
    ("一三八零零一三八零零零", "phone_number", "13800138000"),
    ("号码 13800l38ooo", "phone_number", "13800138000"),
    ("微信号:shop_helper88", "wechat_id", "微信号shophelper88"),
    ("我的QQ 12345678", "qq_id", "qq12345678"),
    ("亲可以加 微 信 聊", "contact_word", "加微信"),
    ("加V详聊", "contact_word", "加v"),
    ("付款走这里 https://pay.example.com/q/1", "payment_link", "https://pay.example.com/q/1"),
    ("好评返现5元哦", "forbidden_promise", "好评返现"),
    ("我们可以私下交易", "forbidden_promise", "私下交易"),
    ("你是白痴吗", "abuse", "白痴"),
]


async def test_block_rules_refuse_on_the_agent_socket_and_store_nothing(server, shop, connect):
    agent, b, conv_id = await chat(server, shop, connect)
    for i, (body, rule, matched) in enumerate(BLOCKED):
        await agent.send(
            {
                "type": "message.send",
                "conversation_id": conv_id,
                "client_msg_id": f"x{i}",
                "body": body,
            }
        )
        err = await agent.expect("error")
        assert (err["code"], err["ref"], err["rule"], err["matched"]) == (
            "compliance_blocked",
            f"x{i}",
            rule,
            matched,
        ), body
        assert rule in err["message"]
        await asyncio.sleep(0.2)  # well under the socket's frame rate limit (10 a second)
    # A clean message still goes through; nothing blocked was stored or reached the buyer.
    await agent.send(
        {
            "type": "message.send",
            "conversation_id": conv_id,
            "client_msg_id": "ok",
            "body": "订单 20241113800138000 已发货",
        }
    )
    await agent.expect("message.ack")
    assert (await b.expect("message.new", lambda f: f["message"]["sender"] == "agent"))["message"][
        "client_msg_id"
    ] == "ok"
    assert await stored_bodies(server, conv_id) == ["在吗?", "订单 20241113800138000 已发货"]


async def test_a_flagged_message_reaches_the_buyer_and_the_review_list(server, connect):
    kit = await make_shop(
        server.ctx.db,
        agents=(("agent1", "agent", ("general",)), ("sup", "supervisor", ("general",))),
    )
    sup = await online_agent(server, kit, "sup", connect)
    await sup.send({"type": "agent.status", "status": "busy"})
    await sup.expect("agent.status")
    agent, b, conv_id = await chat(server, kit, connect)
    await agent.send(
        {
            "type": "message.send",
            "conversation_id": conv_id,
            "client_msg_id": "f1",
            "body": "详情见 www.othershop.com",
        }
    )
    ack = await agent.expect("message.ack")
    got = await b.expect("message.new", lambda f: f["message"]["client_msg_id"] == "f1")
    assert got["message"]["id"] == ack["message"]["id"]
    news = await sup.expect("compliance.flagged")
    assert news["flag"]["message_id"] == ack["message"]["id"]
    # Resent with the same client_msg_id: the same message, one flag.
    await agent.send(
        {
            "type": "message.send",
            "conversation_id": conv_id,
            "client_msg_id": "f1",
            "body": "详情见 www.othershop.com",
        }
    )
    assert (await agent.expect("message.ack"))["message"]["id"] == ack["message"]["id"]
    async with httpx.AsyncClient(base_url=server.http, timeout=30) as c:
        sup_h = auth(await login(server.http, kit, "sup"))
        r = await c.get("/api/v1/compliance/flags", headers=sup_h)
        assert r.status_code == 200, r.text
        flags = r.json()
        assert [(f["rule"], f["matched"], f["sender"], f["message_id"]) for f in flags] == [
            ("outside_link", "www.othershop.com", "agent", ack["message"]["id"])
        ]
        r = await c.post(f"/api/v1/compliance/flags/{flags[0]['id']}/review", headers=sup_h)
        assert r.json()["reviewed_by"] == kit.agents["sup"]
        r = await c.get("/api/v1/compliance/flags", params={"reviewed": "false"}, headers=sup_h)
        assert r.json() == []
        # Agents do not read the review list.
        agent_h = auth(await login(server.http, kit, "agent1"))
        assert (await c.get("/api/v1/compliance/flags", headers=agent_h)).status_code == 403


async def test_shop_rules_api_check_endpoint_and_cache(server, shop, connect):
    agent, _b, conv_id = await chat(server, shop, connect)
    async with httpx.AsyncClient(base_url=server.http, timeout=30) as c:
        admin_h = auth(await login(server.http, shop, "admin"))
        agent_h = auth(await login(server.http, shop, "agent1"))
        r = await c.get("/api/v1/compliance/rules", headers=agent_h)
        assert r.status_code == 200 and r.json()["rules"] == [] and r.json()["version"] == 0
        assert {d["code"] for d in r.json()["defaults"]} >= {
            "phone_number",
            "abuse",
            "outside_link",
        }
        r = await c.post("/api/v1/compliance/check", json={"body": "返利群拉你"}, headers=agent_h)
        assert r.json() == {"ok": True, "decision": "pass", "hits": []}
        # The matcher is cached now; a change must still apply to the next message.
        rules_body = {
            "rules": [
                {"word": "返利群", "action": "block", "category": "custom"},
                {"word": "ＶＩＰ群", "action": "flag", "category": "custom"},
            ]
        }
        r = await c.put("/api/v1/compliance/rules", json=rules_body, headers=agent_h)
        assert r.status_code == 403
        r = await c.put("/api/v1/compliance/rules", json=rules_body, headers=admin_h)
        assert r.status_code == 200, r.text
        assert r.json()["version"] == 1
        assert [(x["word"], x["action"]) for x in r.json()["rules"]] == [
            ("返利群", "block"),
            ("ＶＩＰ群", "flag"),
        ]
        r = await c.post("/api/v1/compliance/check", json={"body": "返 利 群拉你"}, headers=agent_h)
        assert r.json() == {
            "ok": False,
            "decision": "block",
            "hits": [
                {"rule": "shop", "category": "custom", "action": "block", "matched": "返利群"}
            ],
        }
        r = await c.post("/api/v1/compliance/check", json={"body": "进vip群"}, headers=agent_h)
        assert r.json()["decision"] == "flag"
        bad = {"rules": [{"word": "x", "action": "delete", "category": "custom"}]}
        r = await c.put("/api/v1/compliance/rules", json=bad, headers=admin_h)
        assert r.status_code == 422 and r.json()["error"]["code"] == "bad_action"
        assert (await c.post("/api/v1/compliance/check", json={"body": "x"})).status_code == 401
    await agent.send(
        {
            "type": "message.send",
            "conversation_id": conv_id,
            "client_msg_id": "s1",
            "body": "来返利群",
        }
    )
    err = await agent.expect("error")
    assert (err["code"], err["rule"], err["matched"]) == ("compliance_blocked", "shop", "返利群")
    await agent.send(
        {
            "type": "message.send",
            "conversation_id": conv_id,
            "client_msg_id": "s2",
            "body": "来VIP群",
        }
    )
    await agent.expect("message.ack")
    async with server.ctx.db.read() as s:
        n = (
            await s.execute(select(func.count()).where(ComplianceFlag.conversation_id == conv_id))
        ).scalar_one()
    assert n == 1


async def test_a_rules_change_on_one_node_reaches_the_other_nodes_cache(
    start_server, redis_url, connect
):
    """Two nodes on one database and Redis: node B has the shop's rules cached (and would
    not read them again for 30 s); a change on node A is announced on the bus and B's
    next check already applies it."""
    channel = f"homing:test:{secrets.token_hex(4)}"
    node_a = await start_server(REDIS_URL=redis_url, HOMING_BUS_CHANNEL=channel, run_jobs=False)
    node_b = await start_server(REDIS_URL=redis_url, HOMING_BUS_CHANNEL=channel, run_jobs=False)
    kit = await make_shop(node_a.ctx.db)
    async with httpx.AsyncClient(timeout=30) as c:
        admin_h = auth(await login(node_a.http, kit, "admin"))
        agent_h = auth(await login(node_b.http, kit, "agent1"))

        async def decision_on_b() -> str:
            r = await c.post(
                f"{node_b.http}/api/v1/compliance/check", json={"body": "团购群"}, headers=agent_h
            )
            return str(r.json()["decision"])

        assert await decision_on_b() == "pass"  # cached on B now
        r = await c.put(
            f"{node_a.http}/api/v1/compliance/rules",
            json={"rules": [{"word": "团购群", "action": "block"}]},
            headers=admin_h,
        )
        assert r.status_code == 200
        for _ in range(50):
            if await decision_on_b() == "block":
                break
            await asyncio.sleep(0.05)
        assert await decision_on_b() == "block"


async def test_a_surge_on_a_cold_cache_reads_and_compiles_the_rules_once(server, shop, monkeypatch):
    """200 first messages at once to a shop this node has not cached: one read of the rules
    and one compiled matcher, which all of them use; a change heard meanwhile is not lost."""
    from app.compliance import cache as cache_module
    from app.compliance import service as compliance_service
    from app.compliance.cache import RulesCache

    reads = 0
    real = compliance_service.versioned_rules

    async def counted(s, shop_id):
        nonlocal reads
        reads += 1
        await asyncio.sleep(0.05)  # a slow read: the others arrive while it is in flight
        return await real(s, shop_id)

    monkeypatch.setattr(cache_module.service, "versioned_rules", counted)
    cache = RulesCache(server.ctx.db)
    matchers = await asyncio.gather(*(cache.matcher(shop.shop_id) for _ in range(200)))
    assert reads == 1
    assert all(m is matchers[0] for m in matchers)
    # News while a load is in flight: that load's result is not kept, the next caller reads.
    first = asyncio.ensure_future(cache.matcher(shop.shop_id + "x"))
    await asyncio.sleep(0.01)
    cache.on_news({"shop_id": shop.shop_id + "x", "version": 99})
    await first
    await cache.matcher(shop.shop_id + "x")
    assert reads == 3
