"""留言 on two `homing serve` nodes sharing the database and a real Redis: buyers who write
on one node while nobody is online are told at once, once each; when an agent comes online
on the other node, the 留言 are assigned oldest first and marked as such."""

from __future__ import annotations

import secrets

import httpx

from tests.support.factories import login, make_shop
from tests.test_multinode import node_env


async def test_left_messages_are_assigned_oldest_first_across_nodes(
    server, database_url, redis_url, nodes, connect
):
    env = node_env(database_url, redis_url, f"homing:test:{secrets.token_hex(4)}")
    node1, node2 = await nodes(env), await nodes(env)
    kit = await make_shop(server.ctx.db, max_concurrent=2)
    token = await login(node1.http, kit, "admin")
    async with httpx.AsyncClient(
        base_url=node1.http, headers={"Authorization": f"Bearer {token}"}
    ) as admin:
        r = await admin.put("/api/v1/service-hours", json={"auto_reply": "稍后回复您"})
        assert r.status_code == 200 and r.json()["open_now"] is True
    waiting = []
    for n in range(3):
        # Buyers alternate nodes; both nodes' dispatchers look at the queue.
        node = (node1, node2)[n % 2]
        b = await connect(f"{node.ws}/ws/buyer?token={kit.buyer_token(f'lm-{n}')}")
        await b.expect("hello")
        await b.send({"type": "message.send", "client_msg_id": "m1", "body": f"留言 {n}"})
        conv_id = (await b.expect("message.ack"))["message"]["conversation_id"]
        told = await b.expect("conversation.queued", lambda f: "reason" in f)
        assert told["reason"] == "no_agent_online"
        reply = await b.expect("message.new", lambda f: f["message"]["sender"] == "system")
        assert reply["message"]["body"] == "稍后回复您"
        waiting.append((b, conv_id))
    for b, _ in waiting:
        await b.drain(0.5)
        assert sum("reason" in f for f in b.of_type("conversation.queued")) == 1, "told once"
        assert len([m for m in b.new_messages() if m["sender"] == "system"]) == 1
    agent_token = await login(node2.http, kit, "agent1")
    agent = await connect(f"{node2.ws}/ws/agent?token={agent_token}")
    await agent.expect("hello")
    await agent.send({"type": "agent.status", "status": "online"})
    first = (await agent.expect("conversation.assigned"))["conversation"]
    second = (await agent.expect("conversation.assigned"))["conversation"]
    assert [first["id"], second["id"]] == [waiting[0][1], waiting[1][1]], "oldest first"
    assert first["left_message"]["reason"] == "no_agent_online"
    # The buyer on the other node hears who serves them.
    await waiting[0][0].expect("conversation.assigned")
    # A slot frees: the third (written on node1) is next.
    await agent.send({"type": "conversation.close", "conversation_id": first["id"]})
    third = (await agent.expect("conversation.assigned"))["conversation"]
    assert third["id"] == waiting[2][1] and third["left_message"]["reason"] == "no_agent_online"
    kept = await agent.expect(
        "message.new",
        lambda f: (
            f["message"]["conversation_id"] == third["id"] and f["message"]["sender"] == "buyer"
        ),
    )
    assert kept["message"]["body"] == "留言 2"
