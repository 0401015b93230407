"""One timer pings every open socket of a server: a slice of the sockets each tick.

uvicorn's WebSocket protocol gives each socket two timers of its own (the next ping, then
the pong's deadline), so 10,000 idle sockets wake the event loop ~800 times a second, a
ping or a pong at a time. The wheel keeps the sockets in `interval / tick` slots and, on
each tick, pings one slot and fails the sockets of the slot pinged `timeout` ago that
have not answered: the same pings and the same deadlines, a handful of wake-ups a second,
and the pongs of a slot arriving together are read in a few loop iterations.

Promises kept from uvicorn's own keepalive: every socket is pinged at least once per
`interval_s` (its first ping comes at most `interval_s` after it opened) and a socket
that has not answered a ping within `timeout_s` is failed (1011 "keepalive ping
timeout"), so a dead peer is found within `interval_s + timeout_s` plus one tick.
"""

from __future__ import annotations

import asyncio
import logging
import math
import struct
from collections import deque
from typing import Protocol

log = logging.getLogger(__name__)

# Seconds between ticks (at most: the interval is cut into whole slots of this or less).
TICK_S = 1.0


class Pinged(Protocol):
    """What the wheel drives: a socket it can ping and fail."""

    # The payload of the ping this socket has not yet answered, else None.
    pending_ping_payload: bytes | None

    def send_wheel_ping(self, payload: bytes) -> bool:
        """Send a ping carrying `payload` (and wait for its pong); False if the socket is closing."""

    def keepalive_timeout(self) -> None:
        """Fail the socket: its ping went unanswered."""


class KeepaliveWheel:
    def __init__(
        self,
        interval_s: float,
        timeout_s: float | None,
        *,
        tick_s: float = TICK_S,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"Expected a positive ping interval, but got {interval_s!r}.")
        self.loop = loop or asyncio.get_running_loop()
        self.n_slots = max(1, math.ceil(interval_s / tick_s))
        self.tick_s = interval_s / self.n_slots  # a slot's turn comes back every interval_s
        # A ping sent on tick k is answered by tick k + timeout_ticks, or its socket fails.
        self.timeout_ticks = (
            None if timeout_s is None else max(1, math.ceil(timeout_s / self.tick_s - 1e-9))
        )
        self.slots: list[set[Pinged]] = [set() for _ in range(self.n_slots)]
        self.slot_of: dict[Pinged, int] = {}
        self._next_slot = 0  # new sockets are dealt round the slots, so every tick pings as many
        self._ticks = 0  # ticks so far; tick k pings slot k % n_slots
        self._started_at = 0.0
        # (tick a ping is due back by, its payload, the sockets it went to), oldest first.
        self._waiting: deque[tuple[int, bytes, list[Pinged]]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self.slot_of)

    def add(self, sock: Pinged) -> None:
        """Ping `sock` from now on. Its first ping comes within one interval."""
        if sock in self.slot_of:
            return
        slot = self._next_slot
        self._next_slot = (slot + 1) % self.n_slots
        self.slots[slot].add(sock)
        self.slot_of[sock] = slot
        if self._timer is None:
            self._started_at = self.loop.time() - self._ticks * self.tick_s
            self._schedule()

    def discard(self, sock: Pinged) -> None:
        slot = self.slot_of.pop(sock, None)
        if slot is not None:
            self.slots[slot].discard(sock)
        if not self.slot_of and self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._waiting.clear()

    def _schedule(self) -> None:
        self._timer = self.loop.call_at(
            self._started_at + (self._ticks + 1) * self.tick_s, self._tick
        )

    def _tick(self) -> None:
        self._ticks += 1
        tick = self._ticks
        waiting = self._waiting
        # Deadlines first: a socket whose turn comes again while a ping is unanswered (a
        # timeout longer than the interval) is failed, not pinged twice.
        while waiting and waiting[0][0] <= tick:
            _, payload, socks = waiting.popleft()
            for sock in socks:
                if sock.pending_ping_payload == payload and sock in self.slot_of:
                    try:
                        sock.keepalive_timeout()
                    except Exception:  # one socket's failure is its own
                        log.exception("closing a socket whose ping went unanswered failed")
        payload = struct.pack("!I", tick & 0xFFFFFFFF)
        # With a deadline, a socket is pinged again only once it answered (as uvicorn does).
        gate = self.timeout_ticks is not None
        sent = []
        for sock in list(self.slots[tick % self.n_slots]):
            if gate and sock.pending_ping_payload is not None:
                continue
            try:
                if sock.send_wheel_ping(payload):
                    sent.append(sock)
            except Exception:  # one socket's failure is its own: the others are still pinged
                log.exception("keepalive ping failed")
        if sent and self.timeout_ticks is not None:
            waiting.append((tick + self.timeout_ticks, payload, sent))
        if self.slot_of:
            self._schedule()
        else:
            self._timer = None
            waiting.clear()
