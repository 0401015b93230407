"""A buyer's first message opens a conversation, through the group commit.

Whichever path stores it, the buyer is told the same things in the same order
(conversation.opened, the ack, conversation.queued with a place), the conversation is
routed at once, and races between tabs or resends never make a second conversation.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from app.chat.models import Conversation, Message
from tests.conftest import buyer, online_agent


async def conversations_of(db, shop_id, buyer_id):
    async with db.read() as s:
        rows = await s.execute(
            select(Conversation).where(
                Conversation.shop_id == shop_id, Conversation.buyer_id == buyer_id
            )
        )
        return list(rows.scalars())


async def messages_in(db, conv_id):
    async with db.read() as s:
        rows = await s.execute(
            select(Message).where(Message.conversation_id == conv_id).order_by(Message.seq)
        )
        return list(rows.scalars())


def grouped(server) -> int:
    return server.ctx.appender.messages


async def test_a_first_message_opens_and_queues_the_conversation(server, shop, connect):
    b = await buyer(server, shop, connect, "opener-1")
    before = grouped(server)
    await b.send(
        {"type": "message.send", "client_msg_id": "first", "body": "在吗?大促的券还能用吗"}
    )
    opened = (await b.expect("conversation.opened"))["conversation"]
    ack = await b.expect("message.ack")
    queued = await b.expect("conversation.queued")
    # The frames say what the full path says: opened before its first message, then the place.
    assert opened["status"] == "queued" and opened["queue"] == "general" and opened["last_seq"] == 0
    assert (
        opened["buyer_name"] == "测试买家"
        and opened["agent_id"] is None
        and opened["shop"] == shop.slug
    )
    assert ack["message"]["seq"] == 1 and ack["message"]["conversation_id"] == opened["id"]
    assert queued == {
        "type": "conversation.queued",
        "conversation_id": opened["id"],
        "queue": "general",
        "position": 1,
    }
    assert grouped(server) == before + 1
    [conv] = await conversations_of(server.ctx.db, shop.shop_id, "opener-1")
    assert (conv.id, conv.status, conv.last_seq, conv.elder) == (opened["id"], "queued", 1, False)
    assert conv.last_buyer_message_at is not None and conv.queued_at == conv.opened_at
    assert [
        (m.seq, m.body, m.client_msg_id) for m in await messages_in(server.ctx.db, conv.id)
    ] == [(1, "在吗?大促的券还能用吗", "first")]
    # The next message goes into the conversation just opened.
    await b.send({"type": "message.send", "client_msg_id": "second", "body": "还有货吗"})
    assert (await b.expect("message.ack"))["message"]["seq"] == 2


async def test_an_opened_conversation_is_routed_to_an_online_agent_at_once(server, shop, connect):
    agent = await online_agent(server, shop, "agent1", connect)
    b = await buyer(server, shop, connect, "opener-2")
    await b.send({"type": "message.send", "client_msg_id": "hi", "body": "你好"})
    conv_id = (await b.expect("message.ack"))["message"]["conversation_id"]
    # No periodic sweep runs on this server: the open itself asked for a dispatch.
    assigned = (await agent.expect("conversation.assigned"))["conversation"]
    assert assigned["id"] == conv_id and assigned["status"] == "assigned"
    assert (await agent.expect("message.new"))["message"]["body"] == "你好"
    assert (await b.expect("conversation.assigned"))["conversation"]["agent_id"] == assigned[
        "agent_id"
    ]


async def test_an_elderly_buyer_opens_in_the_elderly_queue(server, shop, connect):
    b = await buyer(server, shop, connect, "opener-elder", age=72)
    await b.send({"type": "message.send", "client_msg_id": "e1", "body": "字太小了看不清"})
    opened = (await b.expect("conversation.opened"))["conversation"]
    assert opened["queue"] == "elderly" and opened["elder"] is True
    [conv] = await conversations_of(server.ctx.db, shop.shop_id, "opener-elder")
    assert conv.queue == "elderly" and conv.elder is True


async def test_a_surge_of_openers_each_get_one_conversation_and_a_place(server, shop, connect):
    n = 30
    buyers = [await buyer(server, shop, connect, f"surge-{i}") for i in range(n)]
    await asyncio.gather(
        *(
            b.send({"type": "message.send", "client_msg_id": "s", "body": f"第{i}个"})
            for i, b in enumerate(buyers)
        )
    )
    acks = [await b.expect("message.ack") for b in buyers]
    places = [(await b.expect("conversation.queued"))["position"] for b in buyers]
    conv_ids = {a["message"]["conversation_id"] for a in acks}
    assert len(conv_ids) == n and all(a["message"]["seq"] == 1 for a in acks)
    assert all(p >= 1 for p in places)
    # One node writes its batches one at a time: each opener sees everyone before it.
    assert sorted(places) == list(range(1, n + 1))
    for i in range(n):
        [conv] = await conversations_of(server.ctx.db, shop.shop_id, f"surge-{i}")
        assert [m.body for m in await messages_in(server.ctx.db, conv.id)] == [f"第{i}个"]


async def test_two_tabs_opening_at_once_share_one_conversation(server, shop, connect):
    tabs = [await buyer(server, shop, connect, "two-tabs") for _ in range(2)]
    await asyncio.gather(
        *(
            t.send({"type": "message.send", "client_msg_id": f"tab-{i}", "body": f"标签{i}"})
            for i, t in enumerate(tabs)
        )
    )
    acks = [(await t.expect("message.ack"))["message"] for t in tabs]
    assert acks[0]["conversation_id"] == acks[1]["conversation_id"]
    assert sorted(a["seq"] for a in acks) == [1, 2]
    [conv] = await conversations_of(server.ctx.db, shop.shop_id, "two-tabs")
    assert conv.last_seq == 2
    assert sorted(m.client_msg_id for m in await messages_in(server.ctx.db, conv.id)) == [
        "tab-0",
        "tab-1",
    ]


async def test_a_resent_first_message_opens_nothing_new(server, shop, connect):
    tabs = [await buyer(server, shop, connect, "resender") for _ in range(3)]
    frame = {"type": "message.send", "client_msg_id": "same-first", "body": "弱网重发"}
    await asyncio.gather(*(t.send(frame) for t in tabs))
    acks = [(await t.expect("message.ack"))["message"] for t in tabs]
    assert len({a["id"] for a in acks}) == 1 and acks[0]["seq"] == 1
    # Later, on a fresh socket that knows no conversation: still the original.
    late = await buyer(server, shop, connect, "resender")
    await late.send(frame)
    assert (await late.expect("message.ack"))["message"]["id"] == acks[0]["id"]
    [conv] = await conversations_of(server.ctx.db, shop.shop_id, "resender")
    assert [m.seq for m in await messages_in(server.ctx.db, conv.id)] == [1]
