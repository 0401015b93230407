"""A message stored by a node that died before announcing it reaches the other side when
the sender retries it (same `client_msg_id`), not only at the other side's next sync."""

from __future__ import annotations

from app.chat import actions as chat_actions
from app.chat.schemas import message_public
from app.shops.models import Agent
from tests.conftest import buyer, online_agent
from tests.support.factories import make_shop


async def test_a_retried_message_is_announced_again(server, connect):
    kit = await make_shop(server.ctx.db)
    agent = await online_agent(server, kit, "agent1", connect)
    b = await buyer(server, kit, connect, "b-1")
    await b.send({"type": "message.send", "client_msg_id": "open", "body": "你好"})
    await b.expect("message.ack")
    conv_id = (await agent.expect("conversation.assigned"))["conversation"]["id"]
    await agent.expect("message.new")

    # The buyer's send is stored, and the node dies before announcing it: the action runs
    # in a unit of work whose events are dropped.
    me = chat_actions.BuyerIdentity(
        shop_id=kit.shop_id, shop_slug=kit.slug, buyer_id="b-1", name="测试买家"
    )
    out = chat_actions.Outgoing(client_msg_id="lost-news", body="还在吗?")

    async def stored_silently(uow):
        sent = await chat_actions.send_from_buyer(uow, me, out, server.clock.now())
        uow.events.clear()
        uow.signals.clear()
        return message_public(sent.message)

    stored = await server.ctx.db.run(stored_silently)
    assert stored["conversation_id"] == conv_id and stored["seq"] == 2
    await agent.drain(quiet=0.3)
    assert not [m for m in agent.new_messages(conv_id) if m["seq"] == 2]

    # The buyer never got an ack and retries: acked from the record, and announced again.
    retry = {"type": "message.send", "client_msg_id": "lost-news", "body": "还在吗?"}
    await b.send(retry)
    assert (await b.expect("message.ack"))["message"]["id"] == stored["id"]
    got = await agent.expect("message.new", lambda f: f["message"]["seq"] == 2, timeout=5)
    assert got["message"]["id"] == stored["id"] and got["message"]["body"] == "还在吗?"

    # Another retry is acked again; the agent, who has seq 2, is not shown it twice,
    # and the buyer never gets their own message back as message.new.
    await b.send(retry)
    assert (await b.expect("message.ack"))["message"]["id"] == stored["id"]
    await agent.drain(quiet=0.5)
    await b.drain(quiet=0.1)
    assert [m["seq"] for m in agent.new_messages(conv_id)] == [1, 2]
    assert not [m for m in b.new_messages(conv_id) if m["sender"] == "buyer"]


async def test_a_retried_agent_reply_is_announced_to_the_buyer(server, connect):
    kit = await make_shop(server.ctx.db)
    agent = await online_agent(server, kit, "agent1", connect)
    b = await buyer(server, kit, connect, "b-2")
    await b.send({"type": "message.send", "client_msg_id": "open", "body": "你好"})
    await b.expect("message.ack")
    conv_id = (await agent.expect("conversation.assigned"))["conversation"]["id"]
    await b.expect("conversation.assigned")

    async def stored_silently(uow):
        me = await uow.session.get(Agent, kit.agents["agent1"])
        sent = await chat_actions.send_from_agent(
            uow,
            me,
            conv_id,
            chat_actions.Outgoing(client_msg_id="reply-1", body="在的"),
            server.clock.now(),
        )
        uow.events.clear()
        return message_public(sent.message)

    stored = await server.ctx.db.run(stored_silently)
    await b.drain(quiet=0.3)
    assert not [m for m in b.new_messages(conv_id) if m["id"] == stored["id"]]
    await agent.send(
        {
            "type": "message.send",
            "conversation_id": conv_id,
            "client_msg_id": "reply-1",
            "body": "在的",
        }
    )
    assert (await agent.expect("message.ack"))["message"]["id"] == stored["id"]
    got = await b.expect("message.new", lambda f: f["message"]["id"] == stored["id"], timeout=5)
    assert got["message"]["sender"] == "agent"
