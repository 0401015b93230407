"""Several `homing serve` processes on one database and one Redis behave as one service.

The cross-node chat tests run twice (`bus_url`): on one Redis and on a Redis Cluster of 3
masters and 3 replicas, with the default sharded bus.

In the PostgreSQL pass the nodes share the run's PostgreSQL database; in the SQLite pass
they share the SQLite file (WAL). The bus is always a real Redis server.
"""

from __future__ import annotations

import asyncio
import secrets

import httpx
import websockets
from prometheus_client.parser import text_string_to_metric_families

from tests.support.client import WSClient
from tests.support.factories import login, make_shop
from tests.support.servers import RedisServer

N_EACH_WAY = 500


def node_env(database_url: str, redis_url: str, channel: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "HOMING_BUS_CHANNEL": channel,
        "HOMING_FRAMES_PER_SECOND": "2000",
        "HOMING_GAP_FILL_S": "0.5",
        "HOMING_DISPATCH_SWEEP_S": "0.5",
    }


async def wait_for(pred, timeout, what):
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def pump(client: WSClient, stop: asyncio.Event):
    """Keep reading frames into client.frames until told to stop."""
    while not stop.is_set():
        try:
            await client.recv(timeout=0.2)
        except TimeoutError:
            continue
        except websockets.ConnectionClosed:
            return


def seqs_from(client: WSClient, conv_id: str, sender: str) -> list[int]:
    return [m["seq"] for m in client.new_messages(conv_id) if m["sender"] == sender]


async def two_node_chat(server, database_url, redis_url, nodes, connect):
    channel = f"homing:test:{secrets.token_hex(4)}"
    env = node_env(database_url, redis_url, channel)
    node1, node2 = await nodes(env), await nodes(env)
    kit = await make_shop(server.ctx.db)
    token = await login(node2.http, kit, "agent1")
    agent = await connect(f"{node2.ws}/ws/agent?token={token}")
    await agent.expect("hello")
    await agent.send({"type": "agent.status", "status": "online"})
    await agent.expect("agent.status")
    b = await connect(f"{node1.ws}/ws/buyer?token={kit.buyer_token('cross-node')}")
    await b.expect("hello")
    await b.send({"type": "message.send", "client_msg_id": "hello", "body": "你好(节点1)"})
    conv_id = (await b.expect("message.ack"))["message"]["conversation_id"]
    assert (await agent.expect("conversation.assigned"))["conversation"]["id"] == conv_id
    assert (await agent.expect("message.new"))["message"]["body"] == "你好(节点1)"
    await b.expect("conversation.assigned")
    return node1, node2, kit, agent, b, conv_id


async def test_buyer_and_agent_on_different_nodes_exchange_1000_messages(
    server, database_url, bus_url, nodes, connect
):
    _node1, _node2, _kit, agent, b, conv_id = await two_node_chat(
        server, database_url, bus_url, nodes, connect
    )
    stop = asyncio.Event()
    readers = [asyncio.create_task(pump(c, stop)) for c in (agent, b)]

    async def send_all(client, who, extra):
        for i in range(N_EACH_WAY):
            await client.send(
                {
                    "type": "message.send",
                    "client_msg_id": f"{who}-{i}",
                    "body": f"{who} {i}",
                    **extra,
                }
            )
            if i % 50 == 49:
                await asyncio.sleep(0.02)  # a busy but human-shaped stream

    await asyncio.gather(
        send_all(b, "buyer", {}), send_all(agent, "agent", {"conversation_id": conv_id})
    )
    total = 2 * N_EACH_WAY + 1
    await wait_for(
        lambda: (
            len(seqs_from(agent, conv_id, "buyer")) >= N_EACH_WAY + 1
            and len(seqs_from(b, conv_id, "agent")) >= N_EACH_WAY
        ),
        90,
        "all messages to cross",
    )
    await asyncio.sleep(0.5)  # anything duplicated would have arrived by now
    stop.set()
    await asyncio.gather(*readers)
    to_agent, to_buyer = seqs_from(agent, conv_id, "buyer"), seqs_from(b, conv_id, "agent")
    assert len(to_agent) == len(set(to_agent)) == N_EACH_WAY + 1, (
        "agent got each buyer message once"
    )
    assert len(to_buyer) == len(set(to_buyer)) == N_EACH_WAY, "buyer got each agent message once"
    acks_b = [f["message"]["seq"] for f in b.of_type("message.ack")]
    acks_a = [f["message"]["seq"] for f in agent.of_type("message.ack")]
    assert sorted(acks_b + acks_a + to_agent + to_buyer) == sorted(
        list(range(1, total + 1)) + [s for s in range(1, total + 1)]
    ), "every seq 1..N is acked to its sender and delivered to the other side"
    errors = [f for c in (agent, b) for f in c.of_type("error")]
    assert not errors, errors[:3]


async def test_a_redis_restart_loses_and_duplicates_nothing(server, database_url, nodes, connect):
    redis = RedisServer().start()
    try:
        _node1, _node2, _kit, agent, b, conv_id = await two_node_chat(
            server, database_url, redis.url, nodes, connect
        )
        stop = asyncio.Event()
        readers = [asyncio.create_task(pump(c, stop)) for c in (agent, b)]

        async def exchange(tag, n):
            for i in range(n):
                await b.send(
                    {
                        "type": "message.send",
                        "client_msg_id": f"b-{tag}-{i}",
                        "body": f"买家 {tag} {i}",
                    }
                )
                await agent.send(
                    {
                        "type": "message.send",
                        "conversation_id": conv_id,
                        "client_msg_id": f"a-{tag}-{i}",
                        "body": f"客服 {tag} {i}",
                    }
                )

        await exchange("before", 5)
        await wait_for(
            lambda: len(seqs_from(b, conv_id, "agent")) == 5, 20, "messages before the outage"
        )
        redis.stop()
        await asyncio.sleep(0.5)
        await exchange("during", 5)  # stored and acked; the bus is down
        await wait_for(
            lambda: len([f for f in b.of_type("message.ack")]) == 11, 20, "acks during the outage"
        )
        redis.start()  # same port, empty: nodes must resubscribe and resync
        await exchange("after", 5)
        await wait_for(
            lambda: (
                len(seqs_from(b, conv_id, "agent")) == 15
                and len(seqs_from(agent, conv_id, "buyer")) == 16
            ),
            30,
            "every message after restart",
        )
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(*readers)
        to_buyer = [m["client_msg_id"] for m in b.new_messages(conv_id) if m["sender"] == "agent"]
        to_agent = [
            m["client_msg_id"] for m in agent.new_messages(conv_id) if m["sender"] == "buyer"
        ]
        expected_a = [f"a-{t}-{i}" for t in ("before", "during", "after") for i in range(5)]
        expected_b = ["hello"] + [
            f"b-{t}-{i}" for t in ("before", "during", "after") for i in range(5)
        ]
        assert sorted(to_buyer) == sorted(expected_a) and len(to_buyer) == 15
        assert sorted(to_agent) == sorted(expected_b) and len(to_agent) == 16
    finally:
        redis.stop()


async def test_two_nodes_never_assign_a_conversation_twice(
    server, database_url, redis_url, nodes, connect
):
    channel = f"homing:test:{secrets.token_hex(4)}"
    env = node_env(database_url, redis_url, channel)
    node1, node2 = await nodes(env), await nodes(env)
    kit = await make_shop(
        server.ctx.db,
        agents=tuple((f"ag{i}", "agent", ("general",)) for i in range(4)),
        max_concurrent=3,
    )
    agents = []
    for i in range(4):
        node = (node1, node2)[i % 2]
        a = await connect(f"{node.ws}/ws/agent?token={await login(node.http, kit, f'ag{i}')}")
        await a.expect("hello")
        await a.send({"type": "agent.status", "status": "online"})
        await a.expect("agent.status")
        agents.append(a)
    buyers = [
        await connect(f"{(node1, node2)[i % 2].ws}/ws/buyer?token={kit.buyer_token(f'rush-{i}')}")
        for i in range(30)
    ]
    for c in buyers:
        await c.expect("hello")
    await asyncio.gather(
        *(
            c.send({"type": "message.send", "client_msg_id": "go", "body": "抢购问题"})
            for c in buyers
        )
    )
    for c in buyers:
        await c.expect("message.ack")
    stop = asyncio.Event()
    readers = [asyncio.create_task(pump(c, stop)) for c in agents]
    try:
        await wait_for(
            lambda: sum(len(a.of_type("conversation.assigned")) for a in agents) >= 12,
            60,
            "12 assignments",
        )
    except AssertionError:
        from sqlalchemy import select

        from app.chat.models import Conversation
        from app.shops.models import Agent

        async with server.ctx.db.read() as s:
            convs = (
                await s.execute(
                    select(Conversation.status, Conversation.agent_id).where(
                        Conversation.shop_id == kit.shop_id
                    )
                )
            ).all()
            ags = (
                await s.execute(
                    select(Agent.username, Agent.status, Agent.active_count).where(
                        Agent.shop_id == kit.shop_id
                    )
                )
            ).all()
        raise AssertionError(
            f"frames: {[len(a.of_type('conversation.assigned')) for a in agents]}; "
            f"db: {sorted(convs)}; agents: {ags}"
        ) from None
    await asyncio.sleep(1.5)
    stop.set()
    await asyncio.gather(*readers)
    assigned = [f["conversation"]["id"] for a in agents for f in a.of_type("conversation.assigned")]
    assert len(assigned) == 12 == len(set(assigned)), "4 agents x 3 slots, each conversation once"
    for a in agents:
        assert len(a.of_type("conversation.assigned")) == 3


async def test_a_sender_gets_its_ack_and_never_its_own_echo(
    server, database_url, bus_url, nodes, connect
):
    _node1, node2, kit, _agent, b, conv_id = await two_node_chat(
        server, database_url, bus_url, nodes, connect
    )
    other_tab = await connect(f"{node2.ws}/ws/buyer?token={kit.buyer_token('cross-node')}")
    await other_tab.expect("hello")
    for i in range(20):
        await b.send({"type": "message.send", "client_msg_id": f"e{i}", "body": f"echo? {i}"})
    for i in range(20):
        await b.expect("message.ack", lambda f, i=i: f["client_msg_id"] == f"e{i}")
        await other_tab.expect(
            "message.new", lambda f, i=i: f["message"]["client_msg_id"] == f"e{i}"
        )
    await asyncio.sleep(0.5)
    await b.drain()
    assert not [m for m in b.new_messages(conv_id) if m["sender"] == "buyer"], (
        "no echo of my own sends"
    )


async def bus_counters(node) -> dict[str, float]:
    """A node's `homing_bus_*` samples from its /metrics."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(node.http + "/metrics", timeout=5)).text
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("homing_bus_")
    }


async def test_a_node_hears_its_own_news_once_and_drops_its_copy_from_redis(
    server, database_url, bus_url, nodes, connect
):
    """The buyer's second tab is on the buyer's node: it gets each message once, from the
    node itself, and the copy Redis sends back to the node is counted and dropped."""
    node1, _node2, kit, agent, b, conv_id = await two_node_chat(
        server, database_url, bus_url, nodes, connect
    )
    other_tab = await connect(f"{node1.ws}/ws/buyer?token={kit.buyer_token('cross-node')}")
    await other_tab.expect("hello")
    before = await bus_counters(node1)
    for i in range(10):
        await b.send({"type": "message.send", "client_msg_id": f"o{i}", "body": f"两个标签 {i}"})
    for i in range(10):
        await b.expect("message.ack", lambda f, i=i: f["client_msg_id"] == f"o{i}")
        await other_tab.expect(
            "message.new", lambda f, i=i: f["message"]["client_msg_id"] == f"o{i}"
        )
        await agent.expect("message.new", lambda f, i=i: f["message"]["client_msg_id"] == f"o{i}")

    async def echoed() -> float:
        after = await bus_counters(node1)
        return after["homing_bus_echoes_total"] - before["homing_bus_echoes_total"]

    deadline = asyncio.get_running_loop().time() + 10
    while await echoed() < 10:  # each message's copy on the buyer's topic
        assert asyncio.get_running_loop().time() < deadline, "no echoes counted"
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # anything delivered twice would have arrived by now
    await other_tab.drain()
    ids = [m["client_msg_id"] for m in other_tab.new_messages(conv_id)]
    assert ids == [f"o{i}" for i in range(10)], "each message once, in order"
    after = await bus_counters(node1)
    received = after["homing_bus_received_total"] - before["homing_bus_received_total"]
    echoes = after["homing_bus_echoes_total"] - before["homing_bus_echoes_total"]
    assert received >= echoes >= 10, "the copies crossed the wire and were counted as echoes"
