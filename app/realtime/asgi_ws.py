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
- the keepalive pings of all sockets of a loop run on one timer (`PingWheel`), not a
  `loop.call_later` handle per socket (~0.6 KB each): each socket is still pinged
  `ping_interval` after its last pong (at most `PingWheel.TICK` later), and closed if
  the pong takes longer than `ping_timeout`;
- `receive` waits on the inbox itself, one coroutine fewer in every socket's chain.
"""

from __future__ import annotations

import asyncio
import logging
import math
import weakref
from typing import Any

from uvicorn._types import ASGIReceiveEvent, ASGISendEvent
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import Protocol
from websockets.streams import StreamReader

log = logging.getLogger(__name__)


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


class PingWheel:
    """The keepalive pings of every socket of one event loop, on one timer.

    A socket due at time t is put in the slot of tick `ceil(t / TICK)`; the timer is set
    for the earliest slot and pings all its sockets, so a ping goes out at most `TICK`
    after it is due. `add` returns the tick, which `discard` needs.
    """

    TICK = 0.25

    __slots__ = ("_loop", "_slots", "_timer", "_timer_tick")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._slots: dict[int, set[LightWebSocketsProtocol]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_tick = 0

    def add(self, proto: LightWebSocketsProtocol, delay: float) -> int:
        tick = math.ceil((self._loop.time() + delay) / self.TICK)
        slot = self._slots.get(tick)
        if slot is None:
            slot = self._slots[tick] = set()
        slot.add(proto)
        if self._timer is None or tick < self._timer_tick:
            self._arm(tick)
        return tick

    def discard(self, proto: LightWebSocketsProtocol, tick: int) -> None:
        slot = self._slots.get(tick)
        if slot is not None:
            slot.discard(proto)
            if not slot:
                del self._slots[tick]  # the timer, if set for it, finds nothing and moves on

    def __len__(self) -> int:
        return sum(len(s) for s in self._slots.values())

    def _arm(self, tick: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_tick = tick
        self._timer = self._loop.call_at(tick * self.TICK, self._fire)

    def _fire(self) -> None:
        self._timer = None
        # A timer may fire a little early (the loop's clock resolution): what it was set
        # for is due, and so is anything whose time has come since.
        now = max(self._timer_tick, math.floor(self._loop.time() / self.TICK))
        for tick in sorted(t for t in self._slots if t <= now):
            for proto in self._slots.pop(tick):
                try:
                    proto.ping_due()
                except Exception:  # one socket's failure is its own (as with a timer each)
                    log.exception("keepalive ping failed")
        if self._slots:
            self._arm(min(self._slots))


_wheels: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PingWheel] = (
    weakref.WeakKeyDictionary()
)


def ping_wheel(loop: asyncio.AbstractEventLoop) -> PingWheel:
    wheel = _wheels.get(loop)
    if wheel is None:
        wheel = _wheels[loop] = PingWheel(loop)
    return wheel


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
    # an instance dict, as before), and `ping_tick`, the tick of the socket's next ping.
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
        "ping_tick",
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
        "tasks",
        "transport",
        "writable",
    )

    queue: Inbox  # type: ignore[assignment]
    writable: Flag  # type: ignore[assignment]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = Inbox()
        self.writable = Flag()
        self.writable.set()
        self.ping_tick: int | None = None

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

    # ---- keepalive on the loop's wheel --------------------------------------------------
    def schedule_ping(self) -> None:
        assert self.ping_interval is not None
        delay = max(0.0, self.ping_interval - self.last_ping_rtt)
        self.ping_tick = ping_wheel(self.loop).add(self, delay)

    def ping_due(self) -> None:
        """The wheel's call: this socket's ping is due."""
        self.ping_tick = None
        self.send_keepalive_ping()

    def stop_keepalive(self) -> None:
        if self.ping_tick is not None:
            ping_wheel(self.loop).discard(self, self.ping_tick)
            self.ping_tick = None
        super().stop_keepalive()
