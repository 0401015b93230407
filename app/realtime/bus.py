"""The bus between processes: in-process by default, Redis pub/sub when REDIS_URL is set.

The bus carries news, never the record: a message is in the database before anyone
hears of it, and anything the bus drops is recovered from the database (connections
fill sequence gaps; after a Redis outage every node resyncs its connections).
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

CHANNEL = "homing:events"
# The envelope topic that tells every node to resync all its connections from the database.
RESYNC = b"*"
# Envelopes waiting for Redis beyond this count as Redis being out (the breaker opens).
MAX_QUEUED = 20_000
# At most this many envelopes in one pipeline (one round trip).
PIPELINE_MAX = 1000

OnMessage = Callable[[bytes], None]
OnReconnect = Callable[[], Awaitable[None]]


class Bus(ABC):
    name: str
    local = False  # True: every subscriber is in this process (no envelope needed)

    def __init__(self) -> None:
        self.on_message: OnMessage = lambda _data: None
        self.on_reconnect: OnReconnect | None = None
        # Envelopes that could not be sent to the other nodes (they reached this one only),
        # and times the breaker opened: read by /metrics.
        self.publish_failures = 0
        self.trips = 0
        # Envelopes this node sent to Redis, and received from it (before any topic filter).
        self.published = 0
        self.received = 0

    @property
    def subscriptions(self) -> int:
        """Redis channels this node subscribes to now."""
        return 0

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    async def publish_many(self, envelopes: list[bytes]) -> bool:
        """Send envelopes to every node (this one included), in order; False if they could not be sent."""

    async def publish(self, data: bytes) -> bool:
        return await self.publish_many([data])

    @property
    def healthy(self) -> bool:
        return True


class MemoryBus(Bus):
    """One process: publishing is a direct call."""

    name = "memory"
    local = True

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def publish_many(self, envelopes: list[bytes]) -> bool:
        for data in envelopes:
            self.on_message(data)
        return True


class RedisBus(Bus):
    """Redis pub/sub on one channel, kept off every caller's path, with a circuit breaker.

    Publishing never waits for Redis: envelopes go into an outbox (bounded) that one task
    sends, in order, a pipeline per round trip. A round trip that fails or takes longer
    than `timeout_s` (a silent Redis: SIGSTOPped, a dead host, a full network) opens the
    breaker: the bus counts Redis as out, `healthy` turns False and, until Redis answers
    again, every envelope is delivered to this node's own connections directly (other
    nodes cannot hear it; they learn it from the record). The listener notices a silent
    Redis too: after `probe_s` without news it PINGs on its subscription and wants the
    PONG within `timeout_s`. While the breaker is open the listener tries to subscribe
    again every `probe_s` or sooner (the half-open probe: subscribe, PING, PONG within
    `timeout_s`); once that works the breaker closes and connections resync from the
    database, on every node if this one dropped news (a RESYNC envelope), else here.

    What a timed-out round trip carried may still reach Redis when it wakes up (it sat in
    the socket buffer): connections write each (conversation, seq) once, so a late copy
    of a message is dropped; everything else is state the resync sends again anyway.
    """

    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        channel: str = CHANNEL,
        timeout_s: float = 0.5,
        probe_s: float = 1.0,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        super().__init__()
        self.url = url
        self.channel = channel
        self.timeout_s = timeout_s
        self.probe_s = probe_s
        self.max_queued = max_queued
        self._client: aioredis.Redis | None = None
        self._listener: asyncio.Task[None] | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._outbox: deque[bytes] = deque()
        self._wake = asyncio.Event()  # the outbox has something
        self._idle = asyncio.Event()  # the publisher has sent everything it took
        self._idle.set()
        self._subscribed = asyncio.Event()
        self._up = False  # the breaker is closed: subscribed, and Redis answers in time
        self._lost = asyncio.Event()  # the breaker opened: the listener drops its subscription
        self._dirty = False  # news went only to this node (or maybe nowhere): others must resync

    @property
    def subscriptions(self) -> int:
        return 1 if self._up else 0

    async def start(self) -> None:
        self._client = aioredis.Redis.from_url(
            self.url,
            socket_connect_timeout=self.timeout_s,
            socket_timeout=self.timeout_s,
            # No retries inside redis-py (its default retries a timeout 10 times): the
            # breaker decides what happens after a failed round trip.
            retry=Retry(NoBackoff(), 0),
        )
        self._publisher = asyncio.create_task(self._publish_forever(), name="redis-bus-publisher")
        self._listener = asyncio.create_task(self._listen_forever(), name="redis-bus-listener")
        try:
            await asyncio.wait_for(self._subscribed.wait(), timeout=10)
        except TimeoutError:
            log.warning("Redis bus not subscribed yet at start-up; will keep trying")

    async def stop(self) -> None:
        # What is queued goes out first, if Redis answers in time.
        if self._up and (self._outbox or not self._idle.is_set()):
            try:
                async with asyncio.timeout(2 * self.timeout_s):
                    while self._up and (self._outbox or not self._idle.is_set()):
                        await asyncio.sleep(0.005)
            except TimeoutError:
                log.warning("Redis bus stopped with %d envelopes unsent", len(self._outbox))
        for task in (self._listener, self._publisher):
            if task:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self._client:
            await self._client.aclose()

    @property
    def healthy(self) -> bool:
        return self._up

    async def publish_many(self, envelopes: list[bytes]) -> bool:
        """Queue envelopes for Redis and return at once; False: Redis is out, they went only here."""
        if not self._up:
            self.publish_failures += len(envelopes)
            self._deliver_here(envelopes)
            return False
        self._outbox.extend(envelopes)
        if len(self._outbox) > self.max_queued:
            self.publish_failures += len(self._outbox)
            self._trip(f"{len(self._outbox)} envelopes waiting for Redis")
            self._deliver_here([])
            return False
        self._wake.set()
        return True

    def _deliver_here(self, envelopes: list[bytes]) -> None:
        """Redis is out: what is waiting, then `envelopes`, to this node's connections, in order."""
        self._dirty = True
        pending = [*self._outbox, *envelopes]
        self._outbox.clear()
        for data in pending:
            try:
                self.on_message(data)
            except Exception:
                log.exception("bus message handler failed")

    def _trip(self, reason: str) -> None:
        """Open the breaker: Redis counts as out until the listener has subscribed again."""
        self._lost.set()
        if self._up:
            self._up = False
            self.trips += 1
            log.warning(
                "Redis bus out (%s); news stays on this node, connections resync when it is back",
                reason,
            )

    async def _publish_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._outbox and self._up:
                batch = [
                    self._outbox.popleft() for _ in range(min(len(self._outbox), PIPELINE_MAX))
                ]
                self._idle.clear()
                try:
                    await self._send(batch)
                except (RedisError, OSError, TimeoutError) as exc:
                    # Whether Redis got this batch is unknown: every node resyncs when it is back.
                    self.publish_failures += len(batch) + len(self._outbox)
                    self._trip(f"publish: {str(exc) or type(exc).__name__}")
                    self._deliver_here([])  # marks this node's news as not heard everywhere
                finally:
                    self._idle.set()

    async def _send(self, batch: list[bytes]) -> None:
        assert self._client is not None
        async with asyncio.timeout(
            2 * self.timeout_s
        ):  # socket_timeout bounds each read; this, the whole
            if len(batch) == 1:
                await self._client.publish(self.channel, batch[0])
            else:
                # One round trip for everything waiting (a whole group commit's news), in order.
                pipe = self._client.pipeline(transaction=False)
                for data in batch:
                    pipe.publish(self.channel, data)
                await pipe.execute()
        self.published += len(batch)

    async def _listen_forever(self) -> None:
        assert self._client is not None
        backoff = 0.05
        missed = False  # we were not subscribed for a while: news may have passed us by
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                async with asyncio.timeout(2 * self.timeout_s):
                    await pubsub.subscribe(self.channel)
                    await self._pong(pubsub)  # subscribed, and Redis answers
                self._lost.clear()
                self._up = True
                self._subscribed.set()
                backoff = 0.05
                if self._dirty:
                    # Every node (this one too) reads again what it may have missed.
                    log.info("Redis bus back; asking every node to resync its connections")
                    self._dirty = False
                    self._outbox.appendleft(RESYNC + b"\n")
                    self._wake.set()
                elif missed and self.on_reconnect is not None:
                    log.info("Redis bus resubscribed; resyncing connections")
                    await self.on_reconnect()
                missed = False
                while not self._lost.is_set():
                    msg = await pubsub.get_message(timeout=self.probe_s)
                    if msg is None:
                        # Quiet for probe_s: is Redis still there?
                        async with asyncio.timeout(self.timeout_s):
                            await self._pong(pubsub)
                    else:
                        self._handle(msg)
                raise ConnectionError("the publisher found Redis out")
            except asyncio.CancelledError:
                await _quiet_close(pubsub)
                raise
            except (RedisError, OSError, TimeoutError) as exc:
                self._trip(f"subscriber: {str(exc) or type(exc).__name__}")
                missed = True
                await _quiet_close(pubsub)
                log.debug("Redis bus resubscribing in %.2fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.probe_s)

    async def _pong(self, pubsub: aioredis.client.PubSub) -> None:
        """PING on the subscription and read (handling any news) until its PONG comes."""
        await pubsub.ping()
        while True:
            msg = await pubsub.get_message(timeout=self.timeout_s)
            if msg is not None:
                if msg.get("type") == "pong":
                    return
                self._handle(msg)

    def _handle(self, msg: dict[str, Any]) -> None:
        if msg.get("type") == "message":
            self.received += 1
            try:
                self.on_message(msg["data"])
            except Exception:
                log.exception("bus message handler failed")


async def _quiet_close(pubsub: aioredis.client.PubSub) -> None:
    try:
        async with asyncio.timeout(0.5):
            await pubsub.aclose()
    except (
        RedisError,
        OSError,
        TimeoutError,
    ) as exc:  # the connection is already gone; nothing to tidy
        log.debug("closing a dead pubsub connection: %s", exc)


def make_bus(
    redis_url: str | None,
    channel: str = CHANNEL,
    *,
    mode: str = "sharded",
    timeout_s: float = 0.5,
    probe_s: float = 1.0,
) -> Bus:
    """The bus for these settings: in-process without Redis; else `mode` (HOMING_BUS)."""
    if not redis_url:
        return MemoryBus()
    if mode not in ("sharded", "channel"):
        raise ValueError(f"unknown bus mode {mode!r}")
    # The sharded bus lands in the next commit; until then both modes use one channel.
    return RedisBus(redis_url, channel=channel, timeout_s=timeout_s, probe_s=probe_s)
