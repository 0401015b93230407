"""Buyers who abuse agents, through real sockets: one warning to the buyer, then the agent
may end the conversation with reason `abuse` (supervisors are told), and the buyer's rating
of it does not count against the agent's satisfaction rate."""

from __future__ import annotations

import httpx

from app.chat.models import Rating
from tests.conftest import buyer, online_agent
from tests.support.factories import login, make_shop


async def test_warn_once_then_the_agent_may_end_for_abuse(server, connect):
    kit = await make_shop(
        server.ctx.db,
        agents=(("agent1", "agent", ("general",)), ("sup", "supervisor", ("general",))),
    )
    sup = await online_agent(server, kit, "sup", connect)
    await sup.send({"type": "agent.status", "status": "busy"})
    await sup.expect("agent.status")
    agent = await online_agent(server, kit, "agent1", connect)
    b = await buyer(server, kit, connect, "rude")
    await b.send({"type": "message.send", "client_msg_id": "m1", "body": "快递怎么还没到"})
    await b.expect("message.ack")
    conv_id = (await agent.expect("conversation.assigned"))["conversation"]["id"]

    # Not established yet: the agent may not end it for abuse.
    await agent.send({"type": "conversation.close", "conversation_id": conv_id, "reason": "abuse"})
    assert (await agent.expect("error"))["code"] == "abuse_not_established"

    await b.send({"type": "message.send", "client_msg_id": "m2", "body": "你们客服都是白 痴"})
    await b.expect("message.ack")  # the buyer's message is stored and delivered as any
    warning = await b.expect(
        "message.new", lambda f: f["message"]["payload"].get("notice") == "abuse_warning"
    )
    assert warning["message"]["sender"] == "system"
    assert warning["message"]["conversation_id"] == conv_id
    await agent.send({"type": "conversation.close", "conversation_id": conv_id, "reason": "abuse"})
    assert (await agent.expect("error"))["code"] == "abuse_not_established"

    await b.send({"type": "message.send", "client_msg_id": "m3", "body": "滚蛋"})
    await b.expect("message.ack")
    told = await agent.expect("conversation.abuse")
    assert (told["conversation_id"], told["count"], told["may_end"]) == (conv_id, 2, True)
    assert (await sup.expect("conversation.abuse"))["buyer_id"] == "rude"
    # Warned once only.
    await b.send({"type": "message.send", "client_msg_id": "m4", "body": "傻逼"})
    await b.expect("message.ack")
    await agent.expect("conversation.abuse", lambda f: f["count"] == 3)
    later = [
        f
        for f in await b.drain()
        if f.get("type") == "message.new" and f["message"]["payload"].get("notice")
    ]
    assert later == []

    await agent.send({"type": "conversation.close", "conversation_id": conv_id, "reason": "abuse"})
    closed = await b.expect("conversation.closed")
    assert closed["reason"] == "abuse"
    await b.send({"type": "csat.submit", "conversation_id": conv_id, "score": 1})
    await b.drain()
    async with server.ctx.db.read() as s:
        assert (await s.get(Rating, conv_id)).score == 1  # rated, yet not counted below

    async with httpx.AsyncClient(base_url=server.http, timeout=30) as c:
        sup_h = {"Authorization": f"Bearer {await login(server.http, kit, 'sup')}"}
        r = await c.get("/api/v1/metrics/agents", headers=sup_h)
        row = next(x for x in r.json() if x["username"] == "agent1")
        assert row["handled"] == 1
        assert row["satisfaction_rate"] is None and row["dissatisfaction_rate"] is None
        r = await c.get("/api/v1/compliance/flags", headers=sup_h)
        assert [(f["sender"], f["category"]) for f in r.json()] == [("buyer", "abuse")] * 3
