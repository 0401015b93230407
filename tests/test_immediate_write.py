"""A connection writes a frame at once when nothing is queued ahead of it and the socket
takes it (no writer task), and falls back to its queue otherwise, in the same order and
with the same exactly-once rule per (conversation, seq)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.websockets import WebSocketDisconnect

from app.realtime.connection import Connection


class NoLoader:
    async def messages_after(self, conversation_id: str, after_seq: int) -> list[dict[str, Any]]:
        return []

    async def current_conversations(self, conn: Connection) -> list[dict[str, Any]]:
        return []

    async def session_ended(self, conn: Connection) -> str | None:
        return None


class Socket:
    """A socket that takes frames at once while `open_now`, else only through `send_text`."""

    def __init__(self) -> None:
        self.open_now = True
        self.gone = False
        self.now: list[dict[str, Any]] = []
        self.later: list[dict[str, Any]] = []

    def send_now(self, data: bytes) -> bool:
        if self.gone:
            raise WebSocketDisconnect(1006)
        if not self.open_now:
            return False
        self.now.append(orjson.loads(data))
        return True

    async def send_text(self, text: str) -> None:
        self.later.append(orjson.loads(text))

    async def close(self, code: int, reason: str = "") -> None:
        return None

    @property
    def all(self) -> list[dict[str, Any]]:
        return self.now + self.later


def connection(sock: Socket) -> Connection:
    conn = Connection(
        kind="agent",
        identity=None,
        topics=[],
        send_text=sock.send_text,
        close=sock.close,
        loader=NoLoader(),
        gap_fill_s=60.0,
        send_now=sock.send_now,
    )
    conn.start({"type": "hello"})
    return conn


def new(seq: int, **extra: Any) -> dict[str, Any]:
    msg = {"conversation_id": "c1", "seq": seq, "sender": "buyer", "client_msg_id": f"m{seq}"}
    return {"type": "message.new", "message": {**msg, **extra}}


async def settle(conn: Connection) -> None:
    for _ in range(20):
        await asyncio.sleep(0)
    assert conn._writer is None


async def test_frames_are_written_at_once_and_each_seq_once():
    sock = Socket()
    conn = connection(sock)
    conn.push(new(1))  # the writer still holds hello: queued behind it
    await settle(conn)
    assert [f["type"] for f in sock.all] == ["hello", "message.new"]
    sock.now.clear()
    sock.later.clear()
    conn.push(new(2))
    conn.push(new(2))  # a second copy (the bus, a gap fill): not written again
    conn.push({"type": "message.ack", "client_msg_id": "x", "message": {}})
    assert conn._writer is None  # written at once, no task
    assert [(f["type"], f.get("message", {}).get("seq")) for f in sock.now] == [
        ("message.new", 2),
        ("message.ack", None),
    ]
    # Our own send in flight: its echo is not written (the ack carries it), and counts.
    conn.own_send_started("mine")
    conn.push(new(3, sender="agent", client_msg_id="mine"))
    conn.own_send_ended("mine")
    conn.push(new(4))
    assert [f["message"]["seq"] for f in sock.now if f["type"] == "message.new"] == [2, 4]
    assert conn.tracks["c1"].upto == 4 and not conn.tracks["c1"].has_gap


async def test_a_socket_that_cannot_take_a_frame_now_gets_it_through_the_queue_in_order():
    sock = Socket()
    conn = connection(sock)
    await settle(conn)
    sock.open_now = False  # the transport is paused: every frame waits in the queue
    conn.push(new(1))
    sock.open_now = True  # drained, yet new(1) is queued: new(2) goes behind it
    conn.push(new(2))
    conn.push({"type": "conversation.closed", "conversation_id": "c1", "reason": "closed"})
    await settle(conn)
    assert [f["type"] for f in sock.all[1:]] == [
        "message.new",
        "message.new",
        "conversation.closed",
    ]
    assert [f["message"]["seq"] for f in sock.all if f["type"] == "message.new"] == [1, 2]
    assert conn.known["c1"][0] == "closed"  # a state frame went through the writer


async def test_a_client_gone_mid_write_closes_the_connection_quietly():
    sock = Socket()
    conn = connection(sock)
    await settle(conn)
    sock.gone = True
    conn.push(new(1))
    assert conn.closed
    conn.push(new(2))  # nothing more is written or queued
    await settle(conn)
    assert [f["type"] for f in sock.all] == ["hello"]
