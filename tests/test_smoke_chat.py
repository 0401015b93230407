"""A buyer and an agent chat both ways through a real server."""

from tests.conftest import buyer, online_agent


async def test_buyer_and_agent_chat_both_ways(server, shop, connect):
    agent = await online_agent(server, shop, "agent1", connect)
    b = await buyer(server, shop, connect, "b-1")
    await b.send({"type": "message.send", "client_msg_id": "m1", "body": "在吗?"})
    ack = await b.expect("message.ack")
    assert ack["message"]["seq"] == 1
    assigned = await agent.expect("conversation.assigned")
    conv_id = assigned["conversation"]["id"]
    first = await agent.expect("message.new")
    assert first["message"]["body"] == "在吗?"
    await agent.send(
        {
            "type": "message.send",
            "conversation_id": conv_id,
            "client_msg_id": "r1",
            "body": "在的,请问有什么可以帮您?",
        }
    )
    reply = await b.expect("message.new")
    assert reply["message"]["seq"] == 2 and reply["message"]["sender"] == "agent"
    assert (await b.expect("conversation.assigned"))["conversation"]["agent_name"] == "agent1 客服"
