"""uvicorn's WebSocket protocol (websockets, sans-I/O), with lighter per-socket state.

Every open socket holds uvicorn's inbox (an `asyncio.Queue`: three deques and an Event
with a fourth) and a `writable` Event (a fifth deque): about 4 KB of an idle socket's
memory, for an inbox that holds a frame or two (uvicorn stops reading while it is not
empty) and one reader. This class keeps them as a list and a future made only while
someone waits. Keepalive pings go out from one timer per server (`KeepaliveWheel`)
instead of two timers per socket. Behaviour is otherwise uvicorn's own.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from app.realtime.keepalive import KeepaliveWheel

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

    async def get(self) -> Any:
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                if self._waiter is waiter:
                    self._waiter = None
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


class LightWebSocketsProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol with `Inbox` and `Flag` for its queue and event,
    pinged by its server's `KeepaliveWheel`."""

    def __init__(self, config: Any, server_state: ServerState, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, server_state, *args, **kwargs)
        self.queue = Inbox()  # type: ignore[assignment]
        self.writable = Flag()  # type: ignore[assignment]
        self.writable.set()
        self.server_state = server_state

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
