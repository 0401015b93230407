"""The sharded bus (Homing issue 21): a Redis channel per topic, each node hearing only
the topics it has sockets or watchers for, on one Redis and on a Redis Cluster.

These tests drive two hubs (two nodes' worth of bus) in one process against real Redis
servers; the cross-node chat and group tests run whole nodes on both (`bus_url`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
from typing import Any

import pytest

from app.realtime.bus import ShardedRedisBus, cluster_seeds, make_bus, shard_channel
from app.realtime.hub import Hub, encode
from tests.conftest import online_agent
from tests.support.factories import make_shop
from tests.support.servers import RedisCluster, RedisServer
from tests.test_multinode import pump, seqs_from, wait_for


class FakeConn:
    """What the hub needs of a connection: its topics, and what it was pushed."""

    def __init__(self, *topics: str) -> None:
        self.kind = "buyer"
        self.topics = list(topics)
        self.expires_at = None
        self.session_key = None
        self.got: list[dict[str, Any]] = []

    def push(self, frame: dict[str, Any], _body: bytes | None = None) -> None:
        self.got.append(frame)

    def push_resync(self) -> None:
        self.got.append({"type": "resync"})


@pytest.fixture(params=["redis", "cluster"])
async def two_hubs(request, redis_url, redis_cluster):
    url = redis_cluster.url if request.param == "cluster" else redis_url
    channel = f"homing:test:{secrets.token_hex(4)}"
    buses = [make_bus(url, channel) for _ in range(2)]
    assert all(isinstance(b, ShardedRedisBus) for b in buses)
    hubs = [Hub(b) for b in buses]
    for b in buses:
        await b.start()
    yield hubs
    for b in buses:
        await b.stop()


async def test_a_node_hears_only_the_topics_of_its_sockets(two_hubs):
    a, b = two_hubs
    mine = FakeConn("b:shop:mine")
    b.register(mine)
    await b.ready(mine)
    subscribed = b.bus.subscriptions
    assert subscribed == 2  # its socket's topic, and the resync channel every node hears
    others = [(f"b:shop:other{i}", {"type": "t", "i": i}) for i in range(20)]
    await a.publish([*others, ("b:shop:mine", {"type": "t", "i": "mine"})])
    await wait_for(lambda: mine.got, 10, "the one envelope for this node")
    await asyncio.sleep(0.3)  # anything else would have arrived by now
    assert mine.got == [{"type": "t", "i": "mine"}]
    assert a.bus.published == 21
    assert b.bus.received == 1, "the node received only its own topic's envelope"

    # The last socket of a topic gone, the node unsubscribes (batched, confirmed).
    b.unregister(mine)
    await wait_for(lambda: b.bus.subscriptions == 1, 10, "the topic unsubscribed")
    await a.publish([("b:shop:mine", {"type": "t", "i": "late"})])
    await asyncio.sleep(0.3)
    assert b.bus.received == 1


async def test_a_socket_holding_two_topics_of_an_envelope_gets_it_once(two_hubs):
    a, b = two_hubs
    both = FakeConn("a:agent1", "s:shop")  # a supervisor: its own topic and the shop's
    staff = FakeConn("s:shop")
    agent = FakeConn("a:agent1")
    watched: list[dict[str, Any]] = []
    for conn in (both, staff, agent):
        b.register(conn)
        await b.ready(conn)
    b.watch("s:shop", watched.append)
    await b.bus.ready(["s:shop"])
    frames = [{"type": "t", "i": i} for i in range(50)]
    await a.publish([(t, f) for f in frames for t in ("s:shop", "a:agent1", "b:shop:x")])
    await wait_for(lambda: all(len(c.got) >= 50 for c in (both, staff, agent)), 10, "every frame")
    await asyncio.sleep(0.3)  # a second copy would have arrived by now
    assert b.bus.received == 100, "two copies of each envelope reached the node"
    for conn in (both, staff, agent):
        assert sorted(f["i"] for f in conn.got) == list(range(50)), "each frame once"
    assert sorted(f["i"] for f in watched) == list(range(50)), "watchers hear it once"


async def test_a_node_delivers_its_own_news_at_once_and_drops_its_copy_from_redis(two_hubs, caplog):
    """Redis sends a publisher's envelope back when the publisher holds one of its topics:
    the node's sockets and watchers have it when it is published, and the copy back is
    dropped unread (counted as an echo, and in what the node received)."""
    a, b = two_hubs
    mine = FakeConn("b:shop:echo")
    both = FakeConn("s:shop", "a:agent9")  # a supervisor: its own topic and the shop's
    theirs = FakeConn("b:shop:echo")
    for hub, conn in ((a, mine), (a, both), (b, theirs)):
        hub.register(conn)
        await hub.ready(conn)
    watched: list[dict[str, Any]] = []
    a.watch("b:shop:echo", watched.append)
    frames = [{"type": "t", "i": i} for i in range(20)]
    joined = {"type": "group.joined", "subscribe": "g:new"}
    await a.publish(
        [("b:shop:echo", f) for f in frames] + [("s:shop", joined), ("a:agent9", joined)]
    )
    # Here already, before any round trip to Redis.
    assert mine.got == frames
    assert watched == frames
    assert both.got == [joined]
    assert both.topics == ["s:shop", "a:agent9", "g:new"]
    await wait_for(lambda: len(theirs.got) == 20, 10, "the other node to hear every frame")
    # 20 envelopes on the echo topic, and the joined one on each of its two topics.
    await wait_for(lambda: a.bus.echoes == 22, 10, "the copies back from Redis")
    await asyncio.sleep(0.3)  # anything delivered twice would have arrived by now
    assert mine.got == frames and watched == frames, "each frame once"
    assert both.got == [joined], "once, though the node heard it on both topics"
    assert theirs.got == frames
    assert a.bus.received == 22, "the copies did cross the wire"
    assert b.bus.echoes == 0 and b.bus.received == 20

    # A copy of its own is dropped before its body is read (a topic only this node holds).
    with caplog.at_level(logging.ERROR):
        await a.bus.publish(encode(["a:agent9"], b"{not json", a._id_prefix + b"x"))
        await wait_for(lambda: a.bus.echoes == 23, 10, "the raw envelope back")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert both.got == [joined]


async def test_own_news_reaches_local_sockets_once_while_redis_is_out():
    """A Redis that goes silent, then answers again: news published meanwhile reaches the
    node's own sockets once (at publish; not again when the breaker opens and hands back
    what it could not send), and every node still resyncs once Redis is back."""
    redis = RedisServer().start()
    stopped = False
    channel = f"homing:test:{secrets.token_hex(4)}"
    buses = [
        ShardedRedisBus(redis.url, channel=channel, timeout_s=0.3, probe_s=0.5) for _ in range(2)
    ]
    a, b = [Hub(bus) for bus in buses]
    try:
        for bus in buses:
            await bus.start()
        mine, theirs = FakeConn("b:shop:out"), FakeConn("b:shop:out")
        for hub, conn in ((a, mine), (b, theirs)):
            hub.register(conn)
            await hub.ready(conn)
        os.kill(redis.proc.pid, signal.SIGSTOP)
        stopped = True
        # The breaker still closed: the first batch goes to Redis (and waits there), the
        # second waits in the outbox, which the breaker hands back here when it opens.
        await a.publish([("b:shop:out", {"type": "t", "i": i}) for i in range(5)])
        await asyncio.sleep(0.05)
        await a.publish([("b:shop:out", {"type": "t", "i": i}) for i in range(5, 10)])
        assert [f["i"] for f in mine.got] == list(range(10))
        await wait_for(lambda: not a.bus.healthy and not a.bus._outbox, 10, "the breaker open")
        assert a.bus.publish_failures >= 5
        # The breaker open: publishing hands the envelopes straight back.
        await a.publish([("b:shop:out", {"type": "t", "i": i}) for i in range(10, 15)])
        assert [f["i"] for f in mine.got] == list(range(15))
        os.kill(redis.proc.pid, signal.SIGCONT)
        stopped = False
        resync = {"type": "resync"}
        await wait_for(
            lambda: resync in mine.got and resync in theirs.got, 15, "every node to resync"
        )
        await asyncio.sleep(0.5)  # anything delivered twice would have arrived by now
        got = [f["i"] for f in mine.got if f != resync]
        assert got == list(range(15)), "each of its own frames once, in order"
    finally:
        if stopped and redis.proc is not None:
            os.kill(redis.proc.pid, signal.SIGCONT)
        for bus in buses:
            await bus.stop()
        redis.stop()


async def test_many_sockets_opening_at_once_share_their_subscriptions(two_hubs):
    """A reconnect storm: a thousand sockets' topics go out in a few SSUBSCRIBEs, and every
    socket is ready (confirmed) without waiting for the others one by one."""
    _a, b = two_hubs
    conns = [FakeConn(f"b:shop:storm{i}") for i in range(1000)]
    for c in conns:
        b.register(c)
    await asyncio.wait_for(asyncio.gather(*(b.ready(c) for c in conns)), 30)
    assert b.bus.subscriptions == 1001
    assert b.bus.healthy


def test_cluster_urls() -> None:
    assert cluster_seeds("redis://127.0.0.1:6379/0") is None
    assert cluster_seeds("redis+cluster://10.0.0.1:7000,10.0.0.2:7001") == [
        ("10.0.0.1", 7000),
        ("10.0.0.2", 7001),
    ]
    assert cluster_seeds("redis+cluster://:secret@h1:7000") == [("h1", 7000)]
    assert shard_channel("homing:events", "b:s:1") == "homing:events:{b:s:1}"
    with pytest.raises(ValueError, match="cluster"):
        make_bus("redis+cluster://h1:7000", mode="channel")


async def test_a_master_killed_mid_chat_loses_and_duplicates_nothing(
    tmp_path, start_server, connect
):
    """SIGKILL the master that holds the buyer's channel while buyer (node 1) and agent
    (node 2) chat: acks keep coming, live delivery comes back through the promoted
    replica without the clients reconnecting, and each message arrives exactly once."""
    cluster = RedisCluster(tmp_path).start()
    try:
        channel = f"homing:test:{secrets.token_hex(4)}"
        node1, node2 = [
            await start_server(
                run_jobs=False,
                REDIS_URL=cluster.url,
                HOMING_BUS_CHANNEL=channel,
                HOMING_GAP_FILL_S="0.5",
                HOMING_FRAMES_PER_SECOND="2000",
            )
            for _ in range(2)
        ]
        kit = await make_shop(node1.ctx.db)
        agent = await online_agent(node2, kit, "agent1", connect)
        b = await connect(f"{node1.ws}/ws/buyer?token={kit.buyer_token('failover')}")
        await b.expect("hello")
        await b.send({"type": "message.send", "client_msg_id": "hello", "body": "在吗"})
        conv_id = (await b.expect("message.ack"))["message"]["conversation_id"]
        await agent.expect("conversation.assigned")
        stop = asyncio.Event()
        readers = [asyncio.create_task(pump(c, stop)) for c in (agent, b)]

        async def exchange(tag: str, n: int) -> None:
            for i in range(n):
                await b.send(
                    {"type": "message.send", "client_msg_id": f"b-{tag}-{i}", "body": f"买家 {i}"}
                )
                await agent.send(
                    {
                        "type": "message.send",
                        "conversation_id": conv_id,
                        "client_msg_id": f"a-{tag}-{i}",
                        "body": f"客服 {i}",
                    }
                )

        await exchange("before", 5)
        await wait_for(lambda: len(seqs_from(b, conv_id, "agent")) == 5, 20, "before the kill")
        bus = node1.ctx.bus
        assert isinstance(bus, ShardedRedisBus) and bus._cluster is not None
        topic = f"b:{kit.shop_id}:failover"
        owner = bus._cluster.get_node_from_key(shard_channel(channel, topic))
        assert owner is not None
        cluster.kill(int(owner.port))
        killed_at = asyncio.get_running_loop().time()
        await exchange("during", 5)  # acked whatever the bus does
        await wait_for(
            lambda: len(b.of_type("message.ack")) == 11 and len(agent.of_type("message.ack")) == 10,
            20,
            "acks while the master is down",
        )
        # Live delivery comes back through the promoted replica, on both nodes.
        await wait_for(
            lambda: node1.ctx.bus.healthy and node2.ctx.bus.healthy,
            10,
            "both nodes' buses back on the promoted replica",
        )
        resumed = asyncio.get_running_loop().time() - killed_at
        await exchange("after", 5)
        await wait_for(
            lambda: (
                len(seqs_from(b, conv_id, "agent")) >= 15
                and len(seqs_from(agent, conv_id, "buyer")) >= 16
            ),
            20,
            "every message after the failover",
        )
        await asyncio.sleep(1.0)  # anything duplicated would have arrived by now
        stop.set()
        await asyncio.gather(*readers)
        to_buyer = [m["client_msg_id"] for m in b.new_messages(conv_id) if m["sender"] == "agent"]
        to_agent = [
            m["client_msg_id"] for m in agent.new_messages(conv_id) if m["sender"] == "buyer"
        ]
        phases = ("before", "during", "after")
        assert sorted(to_buyer) == sorted(f"a-{t}-{i}" for t in phases for i in range(5))
        assert sorted(to_agent) == sorted(
            ["hello", *(f"b-{t}-{i}" for t in phases for i in range(5))]
        )
        assert b.ws.close_code is None and agent.ws.close_code is None, "no client reconnected"
        print(f"live delivery resumed {resumed:.1f}s after the master was killed")
    finally:
        cluster.stop()
