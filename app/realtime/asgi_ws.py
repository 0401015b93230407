"""uvicorn's WebSocket protocol (websockets, sans-I/O), with lighter per-socket state.

Behaviour is uvicorn's own; what an open socket keeps is less (bench/memprofile.py
measures it per idle socket):

- its inbox is a list and a future made only while someone waits, not an
  `asyncio.Queue` (three deques and an Event with a fourth), and `writable` likewise,
  not an `asyncio.Event` (a fifth deque): ~4 KB;
- its attributes are slots, not an instance dict (uvicorn sets ~37, past the 30 a dict
  shares its keys for): ~1.3 KB;
- the handshake is let go once it is answered: uvicorn keeps the parsed request and the
  response (their header objects and strings, ~3.5 KB) for the socket's life, and the
  websockets parser keeps the request too, in its generator's frame;
- the keepalive pings of a server's sockets go out from one timer (`KeepaliveWheel`,
  app/realtime/keepalive.py), a slice of the sockets a tick, in place of uvicorn's two
  timers a socket (the next ping, the pong's deadline: a `call_later` handle each, ~0.6 KB,
  and ~800 wake-ups a second at 10,000 sockets); the ping frame is built once a tick;
- `receive` waits on the inbox itself, one coroutine fewer in every socket's chain;
- a text frame can be written at once (`immediate_sender`), without the six coroutines
  of Starlette's, uvicorn's and websockets' `send` chain, when nothing holds it back.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import weakref
from collections.abc import Callable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from uvicorn._types import ASGIReceiveEvent, ASGISendEvent
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.exceptions import InvalidState
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import Protocol, State
from websockets.streams import StreamReader

from app.realtime.keepalive import KeepaliveWheel

log = logging.getLogger(__name__)
# Each server's wheel (tests run several servers in one process).
_WHEELS: weakref.WeakKeyDictionary[ServerState, KeepaliveWheel] = weakref.WeakKeyDictionary()


@functools.lru_cache(maxsize=4)
def _ping_frame(payload: bytes) -> bytes:
    """A server's ping frame: unmasked, and untouched by extensions (permessage-deflate
    leaves control frames alone), so every socket of a tick gets the same bytes."""
    return Frame(Opcode.PING, payload).serialize(mask=False, extensions=[])


def wheel_of(server_state: ServerState) -> KeepaliveWheel | None:
    """The wheel pinging a server's sockets (None before its first socket opened)."""
    return _WHEELS.get(server_state)


class Inbox:
    """What `WebSocketsSansIOProtocol` asks of its queue: `put_nowait`, `get`, `empty`,
    for one reader at a time (the application's `receive`)."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def waiter(self) -> asyncio.Future[None]:
        """A future done at the next `put_nowait` (await it while `empty()`)."""
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        return waiter

    def forget(self, waiter: asyncio.Future[None]) -> None:
        if self._waiter is waiter:
            self._waiter = None

    def pop(self) -> Any:
        return self._items.pop(0)

    async def get(self) -> Any:
        while not self._items:
            waiter = self.waiter()
            try:
                await waiter
            finally:
                self.forget(waiter)
        return self._items.pop(0)

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)


class Flag:
    """An `asyncio.Event` (`set`, `clear`, `is_set`, `wait`) holding waiters only while
    there are some."""

    __slots__ = ("_on", "_waiters")

    def __init__(self) -> None:
        self._on = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._on

    def set(self) -> None:
        self._on = True
        waiters, self._waiters = self._waiters, None
        for w in waiters or ():
            if not w.done():
                w.set_result(None)

    def clear(self) -> None:
        self._on = False

    async def wait(self) -> bool:
        if self._on:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
        return True


def _between_frames(parser: Any) -> bool:
    """Whether a websockets parser waits at the start of a frame (nothing of the next
    frame read yet): the innermost generator it delegates to is `StreamReader.at_eof`."""
    inner = parser
    while getattr(inner, "gi_yieldfrom", None) is not None:
        inner = inner.gi_yieldfrom
    return getattr(inner, "gi_code", None) is StreamReader.at_eof.__code__


class LightWebSocketsProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, keeping less per open socket (see above)."""

    # Every attribute uvicorn's class sets (an attribute a later uvicorn adds lands in
    # an instance dict, as before), and `server_state`, whose wheel pings the socket.
    __slots__ = (
        "app",
        "app_state",
        "asgi_version",
        "client",
        "close_sent",
        "close_timeout",
        "close_timer",
        "config",
        "conn",
        "connections",
        "curr_msg_data_type",
        "default_headers",
        "disconnected",
        "frames",
        "handshake_complete",
        "handshake_initiated",
        "initial_response",
        "last_ping_rtt",
        "logger",
        "loop",
        "pending_ping_payload",
        "ping_interval",
        "ping_sent_at",
        "ping_timeout",
        "ping_timer",
        "pong_timer",
        "queue",
        "read_paused",
        "request",
        "response",
        "root_path",
        "scheme",
        "scope",
        "server",
        "server_state",
        "tasks",
        "transport",
        "writable",
    )

    queue: Inbox  # type: ignore[assignment]
    writable: Flag  # type: ignore[assignment]

    def __init__(self, config: Any, server_state: ServerState, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, server_state, *args, **kwargs)
        self.queue = Inbox()
        self.writable = Flag()
        self.writable.set()
        self.server_state = server_state

    # ---- the handshake, let go once answered -------------------------------------------
    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        # The scope has what the application reads of the request; the response waits
        # in `self.response` for the application's accept.
        self.request = None  # type: ignore[assignment]
        conn = self.conn
        if not self.close_sent and _between_frames(conn.parser):
            # websockets' server parser keeps the request in its frame for as long as it
            # parses frames; a frame parser started afresh, in the same place, does not.
            conn.parser = Protocol.parse(conn)
            next(conn.parser)

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        if self.handshake_complete and self.response is not None:
            self.response = None  # type: ignore[assignment]

    # ---- receive: the inbox, waited on here ---------------------------------------------
    async def receive(self) -> ASGIReceiveEvent:
        inbox = self.queue
        while inbox.empty():
            waiter = inbox.waiter()
            try:
                await waiter
            finally:
                inbox.forget(waiter)
        message: ASGIReceiveEvent = inbox.pop()
        if self.read_paused and inbox.empty():
            self.read_paused = False
            self.transport.resume_reading()
        return message

    # ---- keepalive: the server's wheel in place of uvicorn's two timers a socket ----------
    def _wheel(self) -> KeepaliveWheel:
        wheel = _WHEELS.get(self.server_state)
        if wheel is None:
            assert self.ping_interval is not None
            wheel = _WHEELS[self.server_state] = KeepaliveWheel(
                self.ping_interval, self.ping_timeout, loop=self.loop
            )
        return wheel

    def start_keepalive(self) -> None:
        if self.ping_interval is not None and self.ping_interval > 0:
            self._wheel().add(self)

    def stop_keepalive(self) -> None:
        super().stop_keepalive()  # no timers of its own; clears the pending ping
        wheel = _WHEELS.get(self.server_state)
        if wheel is not None:
            wheel.discard(self)

    # ---- a text frame written at once ----------------------------------------------------
    def send_text_now(self, data: bytes) -> bool:
        """Write the text frame `data` (UTF-8) as `send` writes a `websocket.send`, without
        awaiting: True once it is handed to the transport; False, having done nothing,
        when `send` must (the transport is paused for the client to drain it, or the
        socket is not plainly open: its rules and errors are `send`'s)."""
        if (
            not self.writable.is_set()
            or not self.handshake_complete
            or self.close_sent
            or self.initial_response is not None
        ):
            return False
        if self.disconnected:
            raise ClientDisconnected()
        try:
            self.conn.send_text(data)
        except InvalidState:
            raise ClientDisconnected() from None
        self.transport.write(b"".join(self.conn.data_to_send()))
        return True

    def send_wheel_ping(self, payload: bytes) -> bool:
        if self.close_sent or self.conn.state is not State.OPEN or self.transport.is_closing():
            return False
        self.pending_ping_payload = payload
        # The frame `conn.send_ping(payload)` would write, made once for the whole slice.
        self.transport.write(_ping_frame(payload))
        return True

    def handle_pong(self, event: Frame) -> None:
        # A pong answering the ping in flight; others (unsolicited, stale) are ignored.
        if self.pending_ping_payload is not None and bytes(event.data) == self.pending_ping_payload:
            self.pending_ping_payload = None


def immediate_sender(ws: WebSocket) -> Callable[[bytes], bool] | None:
    """`send(data) -> bool` writing a text frame on `ws` at once when it can (False: use
    `ws.send_text`, which waits), with Starlette's state rules; None if the server's
    protocol is not this module's (another server, a test client)."""
    protocol = getattr(ws._send, "__self__", None)
    if not isinstance(protocol, LightWebSocketsProtocol):
        return None
    send_now = protocol.send_text_now

    def send(data: bytes) -> bool:
        if ws.application_state is not WebSocketState.CONNECTED:
            return False
        try:
            return send_now(data)
        except OSError:  # as `WebSocket.send`: the client is gone
            ws.application_state = WebSocketState.DISCONNECTED
            raise WebSocketDisconnect(code=1006) from None

    return send
