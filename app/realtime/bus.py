"""The bus between processes: in-process by default, Redis pub/sub when REDIS_URL is set.

The bus carries news, never the record: a message is in the database before anyone
hears of it, and anything the bus drops is recovered from the database (connections
fill sequence gaps; after a Redis outage every node resyncs its connections).

Two Redis designs (HOMING_BUS): `sharded` (ShardedRedisBus, the default), a channel per
topic on Redis 7 sharded pub/sub, each node subscribing only to the topics it has sockets
or watchers for, on one Redis or a Redis Cluster; `channel` (RedisBus), one channel every
node hears in full.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import RedisClusterException, RedisError, SlotNotCoveredError

log = logging.getLogger(__name__)

CHANNEL = "homing:events"
# The envelope topic that tells every node to resync all its connections from the database.
RESYNC = b"*"
# Envelopes waiting for Redis beyond this count as Redis being out (the breaker opens).
MAX_QUEUED = 20_000
# At most this many envelopes in one pipeline (one round trip).
PIPELINE_MAX = 1000

# (envelope, topic it came on): the topic is None where the channel carries every topic.
OnMessage = Callable[[bytes, "str | None"], None]
OnReconnect = Callable[[], Awaitable[None]]


class Bus(ABC):
    name: str
    local = False  # True: every subscriber is in this process (no envelope needed)
    # True: the bus hears only the topics it is told to want, and a node may receive an
    # envelope once per topic of it that it wants (the hub delivers it once). The hub
    # delivers its own envelopes here when it publishes them, and drops their copies.
    sharded = False

    def __init__(self) -> None:
        self.on_message: OnMessage = lambda _data, _topic: None
        self.on_reconnect: OnReconnect | None = None
        # Envelopes that could not be sent to the other nodes (they reached this one only),
        # and times the breaker opened: read by /metrics.
        self.publish_failures = 0
        self.trips = 0
        # Envelopes this node sent to Redis, and received from it (before any topic filter);
        # of those received, its own (sharded bus: dropped unread by the hub, which delivered
        # them here when it published them).
        self.published = 0
        self.received = 0
        self.echoes = 0

    @property
    def subscriptions(self) -> int:
        """Redis channels this node subscribes to now."""
        return 0

    def want(self, topic: str) -> None:
        """This node has a first local subscriber or watcher of `topic` (sharded buses listen)."""

    def unwant(self, topic: str) -> None:
        """This node's last local subscriber and watcher of `topic` are gone."""

    async def ready(self, topics: list[str]) -> None:
        """Return once news on `topics` published from now on reaches this node."""
        return

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
            self.on_message(data, None)
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
        await self._close_subscriptions()
        if self._client:
            await self._client.aclose()

    async def _close_subscriptions(self) -> None:
        """Close what subscribes beyond the listener task (before the client closes)."""

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
        """Redis is out: what is waiting, then `envelopes`, to this node's connections, in order.

        On a sharded bus the hub has delivered its own envelopes here already and drops them
        (by their id); a RESYNC waiting in the outbox (it has no id) still resyncs this node.
        """
        self._dirty = True
        pending = [*self._outbox, *envelopes]
        self._outbox.clear()
        for data in pending:
            try:
                self.on_message(data, None)
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
                self.on_message(msg["data"], None)
            except Exception:
                log.exception("bus message handler failed")


# The topic every node of a sharded bus listens to: RESYNC envelopes travel on it.
RESYNC_TOPIC = "*"
# Separates an envelope's topics from its id (sharded buses only: a node that hears an
# envelope on two of its topics delivers it once per connection).
ID_SEP = b"\x1e"
# SSUBSCRIBE/SUNSUBSCRIBE carry at most this many channels each.
SUBSCRIBE_MAX = 1000
# Waiting longer than this for a SSUBSCRIBE's confirmation counts Redis as out.
READY_TIMEOUT_FACTOR = 10
BUS_ERRORS: tuple[type[BaseException], ...] = (
    RedisError,
    RedisClusterException,
    OSError,
    TimeoutError,
)


def shard_channel(prefix: str, topic: str) -> str:
    """The Redis channel of a topic: braces make the channel's hash slot the topic's."""
    return f"{prefix}:{{{topic}}}"


def envelope_topics(header: bytes) -> list[bytes]:
    """The topics an envelope's header names (without its id)."""
    return header.partition(ID_SEP)[0].split(b"\x1f")


def cluster_seeds(url: str) -> list[tuple[str, int]] | None:
    """The seed nodes of a `redis+cluster://host:port[,host:port...]` URL; None for other URLs."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("redis+cluster", "rediss+cluster"):
        return None
    hosts = rest.rpartition("@")[2].split("/", 1)[0].split("?", 1)[0]
    seeds = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host:
            host, port = port, "6379"
        seeds.append((host.strip("[]"), int(port)))
    return seeds


def _cluster_auth(url: str) -> dict[str, Any]:
    scheme, _, rest = url.partition("://")
    options: dict[str, Any] = {"ssl": scheme.lower().startswith("rediss")}
    userinfo, at, _ = rest.rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        if colon:
            options["username"] = unquote(user) or None
            options["password"] = unquote(password)
        else:
            options["password"] = unquote(user)
    return options


class _Waiter:
    __slots__ = ("future", "left")

    def __init__(self, left: int, future: asyncio.Future[None]) -> None:
        self.left = left
        self.future = future

    def done(self) -> None:
        self.left -= 1
        if self.left <= 0 and not self.future.done():
            self.future.set_result(None)


class _Link:
    """The subscriber connection to one Redis server (the one Redis, or a cluster master)."""

    def __init__(self, name: str, pubsub: aioredis.client.PubSub, owner: Any = None) -> None:
        self.name = name
        self.pubsub = pubsub
        self.owner = owner  # a client of its own to close with it (cluster masters)
        self.reader: asyncio.Task[None] | None = None

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            await asyncio.gather(self.reader, return_exceptions=True)
        await _quiet_close(self.pubsub, 2.0)
        if self.owner is not None:
            try:
                async with asyncio.timeout(2.0):
                    await self.owner.aclose()
            except BUS_ERRORS as exc:
                log.debug("closing a dead Redis client: %s", exc)


class ShardedRedisBus(RedisBus):
    """Redis 7 sharded pub/sub: a channel per topic, each node hearing only its own topics.

    An envelope is SPUBLISHed once on the channel of each topic it names (`prefix:{topic}`,
    the braces put the channel in the topic's hash slot), pipelined, one round trip per
    batch; on a Redis Cluster the pipeline goes to each slot's master. The hub tells the
    bus which topics this node has local subscribers or watchers for (`want`/`unwant`);
    the subscriber SSUBSCRIBEs and SUNSUBSCRIBEs them in batches (every change waiting
    when it wakes, in one command per hash slot per server, all written before any reply
    is read). `ready(topics)` waits until their SSUBSCRIBE is confirmed, so a socket reads
    its state only once news committed after the read is sure to reach this node.

    A node that publishes on a topic it holds is subscribed to it, so Redis sends the
    envelope back (Redis has no "not to the publisher"): the hub delivers its envelopes to
    its own sockets when it publishes them and drops those copies by their id, unparsed
    (counted in `echoes`; `received` still counts them, they did cross the wire).

    The breaker is the channel bus's (RedisBus): a failed publish, a subscriber connection
    that breaks or stays silent past its PING, a confirmation that does not come, or a
    channel the cluster moved away (an unasked SUNSUBSCRIBE) opens it for the whole bus;
    then the subscriber reads the cluster's slots again, subscribes every wanted channel
    on the masters that own them now (a promoted replica after a failover) and, once all
    are confirmed, closes the breaker and resyncs as RedisBus does.
    """

    sharded = True

    def __init__(
        self,
        url: str,
        *,
        channel: str = CHANNEL,
        timeout_s: float = 0.5,
        probe_s: float = 1.0,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        super().__init__(
            url, channel=channel, timeout_s=timeout_s, probe_s=probe_s, max_queued=max_queued
        )
        self.prefix = channel
        self._prefix_b = channel.encode() + b":{"
        self.seeds = cluster_seeds(url)
        self._cluster: RedisCluster | None = None
        self._wanted: set[str] = {RESYNC_TOPIC}
        self._sent: dict[str, _Link] = {}  # topic -> the link its SSUBSCRIBE went on
        self._inflight: dict[str, int] = {}  # topic -> (un)subscriptions not confirmed yet
        self._confirmed: set[str] = set()
        self._waiters: dict[str, list[_Waiter]] = {}
        self._links: dict[str, _Link] = {}
        self._changed = asyncio.Event()

    @property
    def subscriptions(self) -> int:
        return len(self._confirmed)

    def _connect_options(self) -> dict[str, Any]:
        return {
            "socket_connect_timeout": self.timeout_s,
            "socket_timeout": self.timeout_s,
            # No retries inside redis-py: the breaker decides what happens after a failure.
            "retry": Retry(NoBackoff(), 0),
        }

    async def start(self) -> None:
        if self.seeds is None:
            await super().start()
            return
        self._cluster = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in self.seeds],
            **self._connect_options(),
            **_cluster_auth(self.url),
        )
        self._client = self._cluster  # type: ignore[assignment]  # publishes and closes the same way
        self._publisher = asyncio.create_task(self._publish_forever(), name="redis-bus-publisher")
        self._listener = asyncio.create_task(self._listen_forever(), name="redis-bus-listener")
        try:
            await asyncio.wait_for(self._subscribed.wait(), timeout=10)
        except TimeoutError:
            log.warning("Redis bus not subscribed yet at start-up; will keep trying")

    async def _close_subscriptions(self) -> None:
        await self._close_links()

    # Subscriptions, told by the hub.

    def want(self, topic: str) -> None:
        self._wanted.add(topic)
        self._changed.set()

    def unwant(self, topic: str) -> None:
        if topic == RESYNC_TOPIC:
            return
        self._wanted.discard(topic)
        self._release(topic)
        self._changed.set()

    async def ready(self, topics: list[str]) -> None:
        if not self._up:
            return  # the breaker is open: when it closes, every connection here resyncs
        missing = [t for t in topics if t not in self._confirmed and t in self._wanted]
        if not missing:
            return
        waiter = _Waiter(len(missing), asyncio.get_running_loop().create_future())
        for topic in missing:
            self._waiters.setdefault(topic, []).append(waiter)
        self._changed.set()
        try:
            await asyncio.wait_for(
                asyncio.shield(waiter.future), READY_TIMEOUT_FACTOR * self.timeout_s
            )
        except TimeoutError:
            self._trip(f"{len(missing)} subscriptions not confirmed")
            self._changed.set()

    def _release(self, topic: str) -> None:
        for waiter in self._waiters.pop(topic, ()):
            waiter.done()

    def _release_all(self) -> None:
        waiters = self._waiters
        self._waiters = {}
        for topic_waiters in waiters.values():
            for waiter in topic_waiters:
                if not waiter.future.done():
                    waiter.future.set_result(None)

    def _trip(self, reason: str) -> None:
        super()._trip(reason)
        self._release_all()  # nobody waits for a subscription of a bus that is out
        self._changed.set()

    # Publishing.

    async def _send(self, batch: list[bytes]) -> None:
        assert self._client is not None
        prefix = self._prefix_b
        resync = prefix + RESYNC + b"}"
        async with asyncio.timeout(2 * self.timeout_s):
            # One round trip for everything waiting (on a cluster, one per master, at once).
            pipe = self._client.pipeline(transaction=False)
            for data in batch:
                header = data[: data.index(b"\n")]
                if header == RESYNC:
                    pipe.spublish(resync, data)
                    continue
                for topic in envelope_topics(header):
                    pipe.spublish(prefix + topic + b"}", data)
            await pipe.execute()
        self.published += len(batch)

    # Subscribing and listening.

    async def _listen_forever(self) -> None:
        backoff = 0.05
        missed = False  # we were not subscribed for a while: news may have passed us by
        while True:
            try:
                async with asyncio.timeout(max(4 * self.timeout_s, 2.0)):
                    await self._subscribe_all()
                self._lost.clear()
                self._up = True
                self._subscribed.set()
                backoff = 0.05
                if self._dirty:
                    log.info("Redis bus back; asking every node to resync its connections")
                    self._dirty = False
                    self._outbox.appendleft(RESYNC + b"\n")
                    self._wake.set()
                elif missed and self.on_reconnect is not None:
                    log.info("Redis bus resubscribed; resyncing connections")
                    await self.on_reconnect()
                missed = False
                while not self._lost.is_set():
                    await self._flush()
                    if not self._changed.is_set() and not self._lost.is_set():
                        try:
                            await asyncio.wait_for(self._changed.wait(), self.probe_s)
                        except TimeoutError:
                            pass
                raise ConnectionError("Redis is out")
            except asyncio.CancelledError:
                await self._close_links()
                raise
            except BUS_ERRORS as exc:
                self._trip(f"subscriber: {str(exc) or type(exc).__name__}")
                missed = True
                await self._close_links()
                log.debug("Redis bus resubscribing in %.2fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.probe_s)

    async def _subscribe_all(self) -> None:
        """Fresh links to the servers that own the wanted channels now, every one confirmed."""
        await self._close_links()
        self._lost.clear()  # from here a link that fails trips the breaker again
        if self._cluster is not None:
            if self._cluster._initialize:
                await self._cluster.initialize()
            else:
                await self._cluster.nodes_manager.initialize()  # who owns which slot now
        loop = asyncio.get_running_loop()
        everything = _Waiter(1, loop.create_future())
        while True:
            await self._flush()
            pending = [t for t in self._wanted if t not in self._confirmed]
            if not pending:
                return
            if self._lost.is_set():
                raise ConnectionError("a subscriber link failed while subscribing")
            everything = _Waiter(len(pending), loop.create_future())
            for topic in pending:
                self._waiters.setdefault(topic, []).append(everything)
            changed: asyncio.Future[Any] = asyncio.ensure_future(self._changed.wait())
            done: asyncio.Future[Any] = everything.future
            try:
                await asyncio.wait({done, changed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                changed.cancel()

    async def _flush(self) -> None:
        """Send every subscription change waiting: one command per server and hash slot."""
        self._changed.clear()
        wanted, sent = self._wanted, self._sent
        subscribe: dict[tuple[str, int], list[str]] = {}
        for topic in wanted:
            if topic not in sent:
                subscribe.setdefault(self._route(topic), []).append(topic)
        unsubscribe: dict[tuple[str, int], list[str]] = {}
        for topic, link_of in sent.items():
            if topic not in wanted:
                slot = key_slot(self._channel_b(topic)) if self._cluster is not None else 0
                unsubscribe.setdefault((link_of.name, slot), []).append(topic)
        for (name, _slot), topics in unsubscribe.items():
            link = self._links.get(name)
            for topic in topics:
                del sent[topic]
                self._confirmed.discard(topic)
            if link is None:
                continue
            for topic in topics:
                self._inflight[topic] = self._inflight.get(topic, 0) + 1
            for i in range(0, len(topics), SUBSCRIBE_MAX):
                chunk = topics[i : i + SUBSCRIBE_MAX]
                await link.pubsub.execute_command(
                    "SUNSUBSCRIBE", *(self._channel_b(t) for t in chunk)
                )
        for (name, _slot), topics in subscribe.items():
            link = await self._link(name)
            for topic in topics:
                sent[topic] = link
                self._inflight[topic] = self._inflight.get(topic, 0) + 1
            for i in range(0, len(topics), SUBSCRIBE_MAX):
                chunk = topics[i : i + SUBSCRIBE_MAX]
                await link.pubsub.execute_command(
                    "SSUBSCRIBE", *(self._channel_b(t) for t in chunk)
                )
            if link.reader is None:
                link.reader = asyncio.create_task(self._read(link), name=f"redis-bus-{name}")

    def _channel_b(self, topic: str) -> bytes:
        return self._prefix_b + topic.encode() + b"}"

    def _route(self, topic: str) -> tuple[str, int]:
        """The server (link name) and hash slot of a topic's channel."""
        if self._cluster is None:
            return "redis", 0
        channel = self._channel_b(topic)
        node = self._cluster.get_node_from_key(channel)  # type: ignore[arg-type]
        if node is None:
            raise SlotNotCoveredError(f"no master for {channel!r}")
        return node.name, key_slot(channel)

    async def _link(self, name: str) -> _Link:
        link = self._links.get(name)
        if link is not None:
            return link
        if self._cluster is None:
            own = aioredis.Redis.from_url(self.url, **self._connect_options())
            link = _Link(name, own.pubsub(), owner=own)
        else:
            node = self._cluster.get_node(node_name=name)
            if node is None:
                raise ConnectionError(f"the cluster has no node {name}")
            client = aioredis.Redis(
                host=node.host,
                port=int(node.port),
                **self._connect_options(),
                **_cluster_auth(self.url),
            )
            link = _Link(name, client.pubsub(), owner=client)
        self._links[name] = link
        return link

    async def _close_links(self) -> None:
        links = list(self._links.values())
        self._links.clear()
        self._sent.clear()
        self._inflight.clear()
        self._confirmed.clear()
        await asyncio.gather(*(link.close() for link in links), return_exceptions=True)

    async def _read(self, link: _Link) -> None:
        """Read one server's news and confirmations; PING it when it is quiet."""
        pubsub = link.pubsub
        prefix_len = len(self._prefix_b)
        waiting_pong = False
        try:
            while True:
                msg = await pubsub.get_message(
                    timeout=self.timeout_s if waiting_pong else self.probe_s
                )
                if msg is None:
                    if waiting_pong:
                        raise TimeoutError(f"no PONG from {link.name}")
                    await pubsub.ping()
                    waiting_pong = True
                    continue
                kind = msg["type"]
                if kind == "smessage":
                    self.received += 1
                    try:
                        self.on_message(msg["data"], msg["channel"][prefix_len:-1].decode())
                    except Exception:
                        log.exception("bus message handler failed")
                elif kind == "pong":
                    waiting_pong = False
                elif kind in ("ssubscribe", "sunsubscribe"):
                    topic = msg["channel"][prefix_len:-1].decode()
                    self._settle(topic, kind == "ssubscribe")
        except asyncio.CancelledError:
            raise
        except BUS_ERRORS as exc:
            if self._links.get(link.name) is link:
                self._trip(f"subscriber {link.name}: {str(exc) or type(exc).__name__}")

    def _settle(self, topic: str, subscribed: bool) -> None:
        """A (un)subscription of `topic` is confirmed."""
        left = self._inflight.get(topic, 0) - 1
        if left > 0:
            self._inflight[topic] = left
            return
        self._inflight.pop(topic, None)
        if left < 0:
            # Not asked for: the cluster moved the channel's slot to another master.
            if not subscribed and topic in self._sent:
                self._trip(f"the cluster moved the channel of {topic!r}")
            return
        if subscribed and topic in self._sent:
            self._confirmed.add(topic)
            self._release(topic)


async def _quiet_close(pubsub: aioredis.client.PubSub, timeout_s: float = 0.5) -> None:
    try:
        async with asyncio.timeout(timeout_s):
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
    if mode == "sharded":
        return ShardedRedisBus(redis_url, channel=channel, timeout_s=timeout_s, probe_s=probe_s)
    if mode != "channel":
        raise ValueError(f"unknown bus mode {mode!r}")
    if cluster_seeds(redis_url) is not None:
        raise ValueError("HOMING_BUS=channel runs on one Redis, not a cluster")
    return RedisBus(redis_url, channel=channel, timeout_s=timeout_s, probe_s=probe_s)
