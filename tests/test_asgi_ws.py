"""uvicorn's WebSocket protocol made lighter (app/realtime/asgi_ws.py): its containers behave
as the asyncio.Queue and asyncio.Event they replace; on a real port, an open socket keeps
no handshake and no instance dict and still parses what follows; the shared keepalive wheel
pings each socket every interval and closes one whose pong is late."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import weakref
from typing import Any, ClassVar

import pytest
import uvicorn
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import CLOSED, OPEN
from websockets.uri import parse_uri

from app.realtime.asgi_ws import Flag, Inbox, LightWebSocketsProtocol, wheel_of
from app.realtime.keepalive import KeepaliveWheel
from tests.support.servers import asgi_server


async def test_inbox_hands_items_in_order_and_wakes_its_reader():
    inbox = Inbox()
    assert inbox.empty()
    inbox.put_nowait(1)
    inbox.put_nowait(2)
    assert await inbox.get() == 1 and await inbox.get() == 2 and inbox.empty()
    reader = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    assert not reader.done()
    inbox.put_nowait("late")
    assert await asyncio.wait_for(reader, 1) == "late"


async def test_a_cancelled_reader_loses_nothing():
    inbox = Inbox()
    reader = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    inbox.put_nowait("kept")
    assert await asyncio.wait_for(inbox.get(), 1) == "kept"


async def test_flag_waits_until_set_and_passes_when_set():
    flag = Flag()
    assert not flag.is_set()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    flag.set()
    assert await asyncio.wait_for(asyncio.gather(*waiters), 1) == [True] * 3
    assert await flag.wait() is True
    flag.clear()
    late = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    assert not late.done()
    late.cancel()
    with pytest.raises(asyncio.CancelledError):
        await late
    flag.set()  # a cancelled waiter is not woken twice


# ---- the protocol on a real port ------------------------------------------------------


class Recording(LightWebSocketsProtocol):
    """The protocol under test, noting (weakly) the handshake it parsed and answered."""

    handshakes: ClassVar[list[tuple[weakref.ref[Any], weakref.ref[Any]]]] = []

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        Recording.handshakes.append((weakref.ref(event), weakref.ref(self.response)))


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Accept, then send back every text frame until the client goes."""
    assert scope["type"] == "websocket"
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        msg = await receive()
        if msg["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": "echo:" + msg["text"]})


def echo_server(**config: Any) -> contextlib.AbstractAsyncContextManager[uvicorn.Server]:
    return asgi_server(echo_app, ws=Recording, ws_per_message_deflate=False, **config)


class RawClient:
    """A WebSocket client on websockets' sans-I/O protocol: it answers pings only when told."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, proto: Any):
        self.reader, self.writer, self.proto = reader, writer, proto
        self.answer_pings = True
        self.events: list[Any] = []

    @classmethod
    async def open(cls, port: int, path: str = "/", headers: dict[str, str] | None = None):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        proto = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}{path}"))
        request = proto.connect()
        for name, value in (headers or {}).items():
            request.headers[name] = value
        proto.send_request(request)
        client = cls(reader, writer, proto)
        client.flush()
        while proto.state is not OPEN:
            await client.read()
        return client

    def flush(self) -> None:
        self.writer.write(b"".join(self.proto.data_to_send()))

    async def read(self) -> list[Any]:
        """Wait for data; the events it brought (a pong is sent back only if answering)."""
        data = await self.reader.read(65536)
        if data:
            self.proto.receive_data(data)
        else:
            self.proto.receive_eof()
        events = self.proto.events_received()
        if self.answer_pings or not any(
            isinstance(e, Frame) and e.opcode is Opcode.PING for e in events
        ):
            self.flush()
        else:
            self.proto.data_to_send()  # the automatic pong, dropped
        return events

    async def next_frame(self, timeout: float = 5) -> Frame:
        while not self.events:
            self.events += await asyncio.wait_for(self.read(), timeout)
            if self.proto.state is CLOSED and not self.events:
                raise ConnectionError("closed")
        event = self.events.pop(0)
        return event if isinstance(event, Frame) else await self.next_frame(timeout)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


async def test_an_open_socket_keeps_no_handshake_and_no_instance_dict():
    Recording.handshakes.clear()
    async with echo_server() as server:
        c = await RawClient.open(server.config.port, "/ws?token=" + "t" * 300, {"X-Big": "x" * 500})
        c.proto.send_text(b"after the swap")
        c.flush()
        frame = await c.next_frame()
        assert frame.data == b"echo:after the swap"
        # A message in fragments, and a ping of the client's: parsed as before.
        c.proto.send_text(b"one ", fin=False)
        c.proto.send_continuation(b"two", fin=True)
        c.proto.send_ping(b"p1")
        c.flush()
        kinds = {(await c.next_frame()).opcode for _ in range(2)}
        assert kinds == {Opcode.PONG, Opcode.TEXT}
        gc.collect()
        (request, response), *_ = Recording.handshakes
        assert request() is None and response() is None
        (proto,) = [p for p in server.server_state.connections if isinstance(p, Recording)]
        assert vars(proto) == {}  # every attribute in a slot: no instance dict
        c.proto.send_close(1000)
        c.flush()
        assert (await c.next_frame()).opcode is Opcode.CLOSE
        await c.close()


async def test_a_refused_handshake_is_answered_and_closed():
    async with echo_server() as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.config.port)
        writer.write(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 7\r\n\r\n"
        )
        answer = await asyncio.wait_for(reader.read(), 5)  # to the end: the server closed
        assert answer.startswith(b"HTTP/1.1 400") and b"Sec-WebSocket-Version" in answer
        writer.close()
        await writer.wait_closed()


async def test_sockets_are_pinged_every_interval_and_closed_when_a_pong_is_late():
    interval = 0.5
    async with echo_server(ws_ping_interval=interval, ws_ping_timeout=0.4) as server:
        clients = [await RawClient.open(server.config.port) for _ in range(3)]
        t0 = asyncio.get_running_loop().time()
        pings: list[float] = []
        for _ in range(3):  # each ping answered: the next comes an interval later
            frame = await clients[0].next_frame(interval + 1)
            assert frame.opcode is Opcode.PING
            pings.append(asyncio.get_running_loop().time())
        assert pings[0] - t0 <= interval + 0.15  # the first within an interval of opening
        gaps = [b - a for a, b in itertools.pairwise(pings)]
        assert all(interval - 0.05 <= g <= interval + 0.15 for g in gaps), gaps
        wheel = wheel_of(server.server_state)
        assert wheel is not None and 1 <= len(wheel) <= 3
        # Not answered: the server closes the socket (1011) once the pong is late.
        late = clients[1]
        late.answer_pings = False
        while (frame := await late.next_frame(interval + 1)).opcode is Opcode.PING:
            pass
        assert frame.opcode is Opcode.CLOSE
        assert Close.parse(frame.data).code == 1011
        # Sockets that go leave the wheel.
        for c in clients:
            await c.close()
        for _ in range(100):
            if len(wheel) == 0:
                break
            await asyncio.sleep(0.02)
        assert len(wheel) == 0


async def test_one_socket_whose_ping_fails_leaves_the_others_pinged():
    loop = asyncio.get_running_loop()
    wheel = KeepaliveWheel(0.2, None, tick_s=0.1, loop=loop)
    pinged: list[str] = []

    class Sock:
        pending_ping_payload: bytes | None = None

        def __init__(self, name: str) -> None:
            self.name = name

        def send_wheel_ping(self, payload: bytes) -> bool:
            pinged.append(self.name)
            if self.name == "broken":
                raise OSError("a socket whose ping fails")
            return True

        def keepalive_timeout(self) -> None:
            raise AssertionError("no deadline on this wheel")

    for name in ("broken", "a", "b", "c"):
        wheel.add(Sock(name))
    await asyncio.sleep(0.65)
    # Every socket of every slice pinged on every turn, the broken one's failures logged.
    for name in ("a", "b", "c", "broken"):
        assert pinged.count(name) >= 2, pinged
    assert wheel._timer is not None  # the wheel still turns
    for sock in list(wheel.slot_of):
        wheel.discard(sock)
    assert len(wheel) == 0 and wheel._timer is None
