"""A Redis that stops answering (not refused: silent) must not stall acks.

Two `homing serve` nodes share the run's database (PostgreSQL, or the SQLite file in the
SQLite pass) and a private redis-server, which the test freezes with SIGSTOP in the
middle of a steady chat and wakes again with SIGCONT. Never the machine's shared Redis.

Acceptance (Homing issue 14, point 6): ack p99 during the outage < 200 ms, and nothing
lost afterwards: every message reaches the other party exactly once, in order.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import statistics
import time

import httpx
import websockets

from tests.support.client import WSClient
from tests.support.factories import login, make_shop
from tests.support.servers import RedisServer
from tests.test_multinode import node_env, wait_for

SEND_EVERY_S = 0.1  # each client, a steady human-fast stream
STALL_S = 3.0


class Side:
    """One chatting socket: what it sent (and when) and when each ack came back."""

    def __init__(self, name: str, client: WSClient, conv_id: str, extra: dict[str, str]) -> None:
        self.name = name
        self.client = client
        self.conv_id = conv_id
        self.extra = extra
        self.sent: list[tuple[str, float]] = []  # (client_msg_id, monotonic send time)
        self.acked: dict[str, float] = {}

    async def chat(self, stop: asyncio.Event) -> None:
        i = 0
        while not stop.is_set():
            cmid = f"{self.name}-{i}"
            self.sent.append((cmid, time.monotonic()))
            await self.client.send(
                {
                    "type": "message.send",
                    "client_msg_id": cmid,
                    "body": f"{self.name} {i}",
                    **self.extra,
                }
            )
            i += 1
            await asyncio.sleep(SEND_EVERY_S)

    async def read(self, stop: asyncio.Event) -> None:
        """Keep reading frames (into client.frames), noting when each ack arrives."""
        while not stop.is_set():
            try:
                f = await self.client.recv(timeout=0.2)
            except TimeoutError:
                continue
            except websockets.ConnectionClosed:
                return
            if f.get("type") == "message.ack":
                self.acked.setdefault(f["client_msg_id"], time.monotonic())

    def received(self, sender: str) -> list[dict]:
        return [m for m in self.client.new_messages(self.conv_id) if m["sender"] == sender]


async def open_pair(server, buyer_node, agent_node, connect) -> tuple[Side, Side]:
    kit = await make_shop(server.ctx.db)
    agent = await connect(
        f"{agent_node.ws}/ws/agent?token={await login(agent_node.http, kit, 'agent1')}"
    )
    await agent.expect("hello")
    await agent.send({"type": "agent.status", "status": "online"})
    await agent.expect("agent.status")
    buyer = await connect(f"{buyer_node.ws}/ws/buyer?token={kit.buyer_token()}")
    await buyer.expect("hello")
    await buyer.send({"type": "message.send", "client_msg_id": "hello", "body": "在吗"})
    conv_id = (await buyer.expect("message.ack"))["message"]["conversation_id"]
    assert (await agent.expect("conversation.assigned", timeout=20))["conversation"][
        "id"
    ] == conv_id
    await agent.expect("message.new")
    await buyer.expect("conversation.assigned")
    tag = secrets.token_hex(2)
    return (
        Side(f"b{tag}", buyer, conv_id, {}),
        Side(f"a{tag}", agent, conv_id, {"conversation_id": conv_id}),
    )


async def bus_connected(http: httpx.AsyncClient, node) -> bool:
    return bool((await http.get(node.http + "/healthz", timeout=5)).json()["bus_connected"])


async def test_a_silent_redis_neither_stalls_acks_nor_loses_messages(
    server, database_url, nodes, connect
):
    redis = RedisServer().start()
    stopped = False
    http = httpx.AsyncClient()  # made before the outage: making one costs the test's loop ~50 ms
    try:
        env = node_env(database_url, redis.url, f"homing:test:{secrets.token_hex(4)}")
        node1, node2 = await nodes(env), await nodes(env)
        pairs = [
            await open_pair(server, node1, node2, connect),  # buyer and agent on different nodes
            await open_pair(server, node1, node1, connect),  # both on node 1
            await open_pair(server, node2, node2, connect),
        ]  # both on node 2
        sides = [s for pair in pairs for s in pair]
        stop_chat, stop_read = asyncio.Event(), asyncio.Event()
        readers = [asyncio.create_task(s.read(stop_read)) for s in sides]
        chats = [asyncio.create_task(s.chat(stop_chat)) for s in sides]

        await asyncio.sleep(1.0)
        os.kill(redis.proc.pid, signal.SIGSTOP)  # silent: the sockets stay open, nothing answers
        stopped = True
        t_stop = time.monotonic()
        await asyncio.sleep(STALL_S - 0.5)
        # The nodes know their bus is out (and say so where a load balancer looks).
        health_during = [await bus_connected(http, n) for n in (node1, node2)]
        await asyncio.sleep(0.5)
        t_cont = time.monotonic()
        os.kill(redis.proc.pid, signal.SIGCONT)
        stopped = False
        await asyncio.sleep(1.5)
        stop_chat.set()
        await asyncio.gather(*chats)

        # Every ack arrives, and those of the messages sent while Redis was silent came fast.
        await wait_for(
            lambda: all(cmid in s.acked for s in sides for cmid, _ in s.sent), 30, "every ack"
        )
        during = [s.acked[cmid] - at for s in sides for cmid, at in s.sent if t_stop <= at < t_cont]
        q = statistics.quantiles(during, n=100)
        p50, p99 = statistics.median(during), q[98]
        print(
            f"\nack latency while Redis was stopped ({len(during)} acks): "
            f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {max(during) * 1000:.1f} ms"
        )
        assert len(during) >= len(sides) * 0.5 * STALL_S / SEND_EVERY_S, (
            "the chat went on during the outage"
        )
        assert p99 < 0.2, f"ack p99 during the outage {p99 * 1000:.0f} ms"
        assert health_during == [False, False], "healthz shows the bus out while Redis is silent"

        # Nothing lost: each side gets every message of the other exactly once, in order.
        def complete() -> bool:
            return all(
                len(a.received("buyer")) >= len(b.sent) + 1
                and len(b.received("agent")) >= len(a.sent)
                for b, a in pairs
            )

        await wait_for(complete, 20, "every message to reach the other side after the outage")
        await asyncio.sleep(1.0)  # anything duplicated would have arrived by now
        stop_read.set()
        await asyncio.gather(*readers)
        for buyer, agent in pairs:
            for receiver, sender, first in ((agent, buyer, ["hello"]), (buyer, agent, [])):
                got = receiver.received("buyer" if sender is buyer else "agent")
                ids = [m["client_msg_id"] for m in sorted(got, key=lambda m: m["seq"])]
                assert len(got) == len({m["seq"] for m in got}), (
                    f"{receiver.name} got a message twice"
                )
                assert ids == first + [cmid for cmid, _ in sender.sent], (
                    f"{receiver.name}: lost or out of order"
                )
        errors = [f for s in sides for f in s.client.of_type("error")]
        assert not errors, errors[:3]
        await wait_for_async(lambda: all_connected(http, node1, node2), 10, "both nodes' bus back")
    finally:
        if stopped and redis.proc is not None:
            os.kill(redis.proc.pid, signal.SIGCONT)
        redis.stop()
        await http.aclose()


async def all_connected(http: httpx.AsyncClient, *nodes_) -> bool:
    return all([await bus_connected(http, n) for n in nodes_])


async def wait_for_async(pred, timeout, what):
    deadline = asyncio.get_running_loop().time() + timeout
    while not await pred():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_an_idle_node_notices_a_silent_redis_and_hears_news_again_after_it(
    server, database_url, nodes, connect
):
    """With nothing to publish, only the subscriber can tell Redis has gone silent."""
    redis = RedisServer().start()
    stopped = False
    http = httpx.AsyncClient()
    try:
        env = node_env(database_url, redis.url, f"homing:test:{secrets.token_hex(4)}")
        node1, node2 = await nodes(env), await nodes(env)
        buyer, agent = await open_pair(server, node1, node2, connect)
        os.kill(redis.proc.pid, signal.SIGSTOP)
        stopped = True
        await wait_for_async(
            lambda: none_connected(http, node1, node2), 15, "both nodes to see the bus out"
        )
        os.kill(redis.proc.pid, signal.SIGCONT)
        stopped = False
        await wait_for_async(lambda: all_connected(http, node1, node2), 15, "both nodes' bus back")
        await buyer.client.send({"type": "message.send", "client_msg_id": "back", "body": "又好了"})
        await buyer.client.expect("message.ack")
        got = await agent.client.expect(
            "message.new", lambda f: f["message"]["client_msg_id"] == "back"
        )
        assert got["message"]["seq"] == 2
    finally:
        if stopped and redis.proc is not None:
            os.kill(redis.proc.pid, signal.SIGCONT)
        redis.stop()
        await http.aclose()


async def none_connected(http: httpx.AsyncClient, *nodes_) -> bool:
    return not any([await bus_connected(http, n) for n in nodes_])
