"""Keepalive pings from one timer per server (app/realtime/keepalive.py): every socket is
pinged once an interval, a socket that does not answer is failed after the timeout, and
one that answers stays open. On the wheel alone, then through a real server and socket."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import uvicorn
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from app.realtime.asgi_ws import LightWebSocketsProtocol, _ping_frame, wheel_of
from app.realtime.keepalive import KeepaliveWheel
from tests.support.servers import asgi_server


class FakeSocket:
    """A socket as the wheel sees it: records its pings, answers them if `alive`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, alive: bool = True) -> None:
        self.loop = loop
        self.alive = alive
        self.pending_ping_payload: bytes | None = None
        self.pinged_at: list[float] = []
        self.failed_at: float | None = None

    def send_wheel_ping(self, payload: bytes) -> bool:
        if self.failed_at is not None:
            return False
        self.pinged_at.append(self.loop.time())
        self.pending_ping_payload = payload
        if self.alive:
            self.loop.call_soon(self._pong, payload)
        return True

    def _pong(self, payload: bytes) -> None:
        if self.pending_ping_payload == payload:
            self.pending_ping_payload = None

    def keepalive_timeout(self) -> None:
        self.failed_at = self.loop.time()


async def test_the_wheel_pings_each_socket_every_interval_and_fails_the_silent_ones():
    loop = asyncio.get_running_loop()
    wheel = KeepaliveWheel(0.4, 0.2, tick_s=0.1, loop=loop)
    assert wheel.n_slots == 4
    t0 = loop.time()
    alive = [FakeSocket(loop) for _ in range(8)]
    silent = FakeSocket(loop, alive=False)
    for s in [*alive, silent]:
        wheel.add(s)
    await asyncio.sleep(1.35)
    for s in alive:
        assert s.failed_at is None
        # First ping within one interval of joining, then one every interval.
        assert s.pinged_at[0] - t0 <= 0.4 + 0.08
        gaps = [b - a for a, b in zip(s.pinged_at, s.pinged_at[1:], strict=False)]
        assert len(s.pinged_at) >= 3
        assert all(abs(g - 0.4) < 0.08 for g in gaps), gaps
    # Dealt round the slots: each tick pings two of the nine (one slot has three).
    assert sorted(len(slot) for slot in wheel.slots) == [2, 2, 2, 3]
    # The silent one is failed when its ping is timeout old, not before, and pinged once.
    assert silent.failed_at is not None
    assert len(silent.pinged_at) == 1
    assert 0.2 - 0.02 <= silent.failed_at - silent.pinged_at[0] <= 0.2 + 0.08


async def test_a_socket_taken_off_the_wheel_is_neither_pinged_nor_failed():
    loop = asyncio.get_running_loop()
    wheel = KeepaliveWheel(0.2, 0.1, tick_s=0.1, loop=loop)
    silent = FakeSocket(loop, alive=False)
    gone = FakeSocket(loop)
    wheel.add(silent)
    wheel.add(gone)
    wheel.discard(gone)
    await asyncio.sleep(0.25)  # silent's slot had its turn (by 0.2 s), its deadline has not
    pinged = len(silent.pinged_at)
    assert pinged == 1 and silent.failed_at is None
    wheel.discard(silent)  # closed before its deadline: not failed afterwards
    assert wheel._timer is None  # an empty wheel holds no timer
    await asyncio.sleep(0.4)
    assert gone.pinged_at == [] and silent.failed_at is None and len(silent.pinged_at) == pinged
    wheel.add(gone)  # the wheel starts again with its first socket
    await asyncio.sleep(0.25)
    assert gone.pinged_at


async def test_a_timeout_longer_than_the_interval_pings_once_until_answered():
    loop = asyncio.get_running_loop()
    wheel = KeepaliveWheel(0.1, 0.35, tick_s=0.1, loop=loop)
    silent = FakeSocket(loop, alive=False)
    wheel.add(silent)
    await asyncio.sleep(0.6)
    assert len(silent.pinged_at) == 1
    assert silent.failed_at is not None
    assert 0.35 - 0.02 <= silent.failed_at - silent.pinged_at[0] <= 0.4 + 0.08


def test_the_ping_a_slice_shares_is_the_frame_websockets_would_write():
    conn = ServerProtocol()
    conn.state = State.OPEN
    for payload in (b"\x00\x00\x00\x01", b"\xff\xff\xff\xff"):
        conn.send_ping(payload)
        assert _ping_frame(payload) == b"".join(conn.data_to_send())


# ---- through a real server ------------------------------------------------------------------


async def _hold(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app whose sockets say nothing and stay open until the client goes."""
    assert scope["type"] == "websocket"
    await receive()
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


def _server(
    interval_s: float, timeout_s: float
) -> contextlib.AbstractAsyncContextManager[uvicorn.Server]:
    return asgi_server(
        _hold, ws=LightWebSocketsProtocol, ws_ping_interval=interval_s, ws_ping_timeout=timeout_s
    )


async def _watch(port: int, seconds: float, *, answer: bool) -> tuple[list[float], Frame | None]:
    """Open a socket and read it for `seconds`: when each ping came, and the close frame if
    the server closed it. `answer=False` plays a peer that is gone: it never writes back."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    client = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/"))
    client.send_request(client.connect())
    writer.write(b"".join(client.data_to_send()))
    t0 = loop.time()
    pings: list[float] = []
    try:
        while (left := seconds - (loop.time() - t0)) > 0:
            try:
                data = await asyncio.wait_for(reader.read(4096), left)
            except TimeoutError:
                break
            if not data:
                return pings, None
            client.receive_data(data)
            for event in client.events_received():
                if isinstance(event, Frame) and event.opcode is Opcode.PING:
                    pings.append(loop.time() - t0)
                elif isinstance(event, Frame) and event.opcode is Opcode.CLOSE:
                    return pings, event
            out = client.data_to_send()  # the handshake's end, pongs (websockets answers pings)
            if answer:
                writer.write(b"".join(out))
        return pings, None
    finally:
        writer.close()


async def test_a_live_socket_is_pinged_every_interval_and_stays_open():
    async with _server(0.3, 0.3) as server:
        watching = asyncio.create_task(_watch(server.config.port, 1.5, answer=True))
        await asyncio.sleep(0.5)
        # No timer of the socket's own: the server's wheel pings it.
        (proto,) = server.server_state.connections
        assert isinstance(proto, LightWebSocketsProtocol)
        assert proto.ping_timer is None and proto.pong_timer is None
        wheel = wheel_of(server.server_state)
        assert wheel is not None and proto in wheel.slot_of
        pings, close = await watching
    assert close is None
    assert len(pings) >= 4, pings
    assert pings[0] <= 0.3 + 0.1


async def test_a_socket_that_never_answers_is_closed_1011_after_the_timeout():
    async with _server(0.3, 0.3) as server:
        pings, close = await _watch(server.config.port, 3.0, answer=False)
    assert close is not None, "the server kept a dead peer's socket open"
    assert len(pings) == 1
    assert close.data[:2] == (1011).to_bytes(2, "big")
    assert close.data[2:] == b"keepalive ping timeout"
