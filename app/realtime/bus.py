"""The bus between processes: in-process by default, Redis pub/sub when REDIS_URL is set.

The bus carries news, never the record: a message is in the database before anyone
hears of it, and anything the bus drops is recovered from the database (connections
fill sequence gaps; after a Redis outage every node resyncs its connections).
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

CHANNEL = "homing:events"
# The envelope topic that tells every node to resync all its connections from the database.
RESYNC = b"*"

OnMessage = Callable[[bytes], None]
OnReconnect = Callable[[], Awaitable[None]]


class Bus(ABC):
    name: str
    local = False  # True: every subscriber is in this process (no envelope needed)

    def __init__(self) -> None:
        self.on_message: OnMessage = lambda _data: None
        self.on_reconnect: OnReconnect | None = None

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
    """Redis pub/sub on one channel; resubscribes after Redis restarts and then resyncs."""

    name = "redis"

    def __init__(self, url: str, *, channel: str = CHANNEL) -> None:
        super().__init__()
        self.url = url
        self.channel = channel
        self._client: aioredis.Redis | None = None
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._dirty = False  # a publish failed: others may have missed news
        self._resync_task: asyncio.Task[None] | None = None
        self._connected = False

    async def start(self) -> None:
        self._client = aioredis.Redis.from_url(
            self.url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=10
        )
        self._listener = asyncio.create_task(self._listen_forever(), name="redis-bus-listener")
        try:
            await asyncio.wait_for(self._subscribed.wait(), timeout=10)
        except TimeoutError:
            log.warning("Redis bus not subscribed yet at start-up; will keep trying")

    async def stop(self) -> None:
        for task in (self._listener, self._resync_task):
            if task:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self._client:
            await self._client.aclose()

    @property
    def healthy(self) -> bool:
        return self._connected

    async def publish_many(self, envelopes: list[bytes]) -> bool:
        assert self._client is not None
        # Twice: after a Redis restart the pooled connection is dead, the next one is fine.
        for attempt in range(2):
            try:
                if len(envelopes) == 1:
                    await self._client.publish(self.channel, envelopes[0])
                else:
                    # One round trip for a whole group commit's news, in order.
                    pipe = self._client.pipeline(transaction=False)
                    for data in envelopes:
                        pipe.publish(self.channel, data)
                    await pipe.execute()
                break
            except (RedisError, OSError) as exc:
                if attempt == 1:
                    log.warning("Redis publish failed (%s); receivers will resync from the database", exc)
                    self._news_lost()
                    return False
        if self._dirty:
            await self._announce_resync()
        return True

    def _news_lost(self) -> None:
        """Some node may have missed news: make sure every node resyncs once Redis is back."""
        self._dirty = True
        if self._resync_task is None or self._resync_task.done():
            self._resync_task = asyncio.create_task(self._resync_when_back(), name="redis-bus-resync")

    async def _announce_resync(self) -> bool:
        assert self._client is not None
        try:
            await self._client.publish(self.channel, RESYNC + b"\n")
        except (RedisError, OSError):
            return False
        self._dirty = False
        return True

    async def _resync_when_back(self) -> None:
        # Without this, news lost in a node's last publish before an outage ended would
        # stay lost: nothing else would tell the other nodes to read the record again.
        delay = 0.1
        while self._dirty and not await self._announce_resync():
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _listen_forever(self) -> None:
        assert self._client is not None
        backoff = 0.1
        first = True
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self._connected = True
                self._subscribed.set()
                backoff = 0.1
                if not first and self.on_reconnect is not None:
                    log.info("Redis bus resubscribed; resyncing connections")
                    await self.on_reconnect()
                first = False
                while True:
                    msg = await pubsub.get_message(timeout=5.0)
                    if msg is not None and msg.get("type") == "message":
                        try:
                            self.on_message(msg["data"])
                        except Exception:
                            log.exception("bus message handler failed")
            except asyncio.CancelledError:
                await _quiet_close(pubsub)
                raise
            except (RedisError, OSError) as exc:
                self._connected = False
                log.warning("Redis bus connection lost (%s); retrying in %.1fs", exc, backoff)
                await _quiet_close(pubsub)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)


async def _quiet_close(pubsub: aioredis.client.PubSub) -> None:
    try:
        await pubsub.aclose()
    except (RedisError, OSError) as exc:  # the connection is already gone; nothing to tidy
        log.debug("closing a dead pubsub connection: %s", exc)


def make_bus(redis_url: str | None, channel: str = CHANNEL) -> Bus:
    return RedisBus(redis_url, channel=channel) if redis_url else MemoryBus()
