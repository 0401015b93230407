"""The Prometheus metrics of one running app, in a registry of its own.

Hot paths pay `tally.n += 1` per frame (frames in and out per socket kind) or one
histogram `observe()` per message (ack latency) or per batch (group-commit sizes). Everything that is a state
rather than an event (open sockets, bus connected, dispatcher backlog, pool in use, jobs'
last success) is read from the live objects when Prometheus scrapes, never updated as it
changes. A registry per app, not the library's global one: several apps run in one test
process, and each must report only its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.webhooks.sender import sender_for

if TYPE_CHECKING:
    from app.db import Database
    from app.realtime.bus import Bus
    from app.realtime.hub import Hub
    from app.routing.dispatcher import Dispatcher
    from app.scheduler import JobRunner

SOCKET_KINDS = ("buyer", "agent")
# Frame received to ack queued: a group commit shares a transaction, so most acks land
# in the low milliseconds; the tail is a busy database.
ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


class Metrics:
    """The counters and histograms the hot paths write to, and the registry that exposes them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # Plain tallies, exported at scrape time: a frame costs `tally.n += 1`, a tenth of
        # a prometheus Counter's inc() (which takes a lock and checks its argument).
        self.frames_received = {kind: Tally() for kind in SOCKET_KINDS}
        self.frames_sent = {kind: Tally() for kind in SOCKET_KINDS}
        self.ack_seconds = Histogram(
            "homing_ws_ack_seconds",
            "Time from a message.send or group.send frame received to its ack queued.",
            buckets=ACK_BUCKETS,
            registry=self.registry,
        )
        self.group_commit_batch = Histogram(
            "homing_group_commit_batch_size",
            "Messages written by one group commit (one transaction).",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )

    def collect_tallies(self) -> Iterator[Metric]:
        received = CounterMetricFamily(
            "homing_ws_frames_received",
            "Frames received from clients, by socket kind.",
            labels=["kind"],
        )
        sent = CounterMetricFamily(
            "homing_ws_frames_sent", "Frames written to clients, by socket kind.", labels=["kind"]
        )
        for kind in SOCKET_KINDS:
            received.add_metric([kind], self.frames_received[kind].n)
            sent.add_metric([kind], self.frames_sent[kind].n)
        yield received
        yield sent

    def watch(
        self, *, hub: Hub, bus: Bus, db: Database, dispatcher: Dispatcher, jobs: JobRunner
    ) -> None:
        """Report these objects' state at every scrape (call once, in the lifespan)."""
        self.registry.register(
            StateCollector(hub=hub, bus=bus, db=db, dispatcher=dispatcher, jobs=jobs, tallies=self)
        )

    def exposition(self) -> bytes:
        """The Prometheus text format of everything in this app's registry."""
        return generate_latest(self.registry)


class Tally:
    """A count bumped on a hot path with `tally.n += 1`; read at scrape time.

    No lock: every increment and every scrape runs on the one event loop thread.
    """

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0


class StateCollector(Collector):
    """Gauges (and the tallies and the bus's own counters) read from the live objects at scrape time."""

    def __init__(
        self,
        *,
        hub: Hub,
        bus: Bus,
        db: Database,
        dispatcher: Dispatcher,
        jobs: JobRunner,
        tallies: Metrics,
    ) -> None:
        self.tallies = tallies
        self.hub = hub
        self.bus = bus
        self.db = db
        self.dispatcher = dispatcher
        self.jobs = jobs

    def describe(self) -> Iterator[Metric]:
        return iter(())  # names are known only when collected; nothing to check up front

    def collect(self) -> Iterator[Metric]:
        yield from self.tallies.collect_tallies()
        counts = dict.fromkeys(SOCKET_KINDS, 0)
        for conn in self.hub.connections:
            counts[conn.kind] = counts.get(conn.kind, 0) + 1
        yield _gauge(
            "homing_ws_open_sockets", "Sockets open on this node, by kind.", "kind", counts.items()
        )

        yield _gauge(
            "homing_bus_connected",
            "1 while the bus reaches every node (always 1 for the in-process bus).",
            "bus",
            [(self.bus.name, 1 if self.bus.healthy else 0)],
        )
        yield _counter(
            "homing_bus_publish_failures",
            "Envelopes that could not be sent to the other nodes (delivered on this node only).",
            self.bus.publish_failures,
        )
        yield _counter(
            "homing_bus_published",
            "Envelopes this node published to Redis (0 for the in-process bus).",
            self.bus.published,
        )
        yield _counter(
            "homing_bus_received",
            "Envelopes this node received from Redis, before filtering by topic "
            "(0 for the in-process bus).",
            self.bus.received,
        )
        yield _counter(
            "homing_bus_echoes",
            "Envelopes this node received from Redis that it had published itself (sharded "
            "bus: dropped unread, its own sockets had them at publish; counted in received).",
            self.bus.echoes,
        )
        yield GaugeMetricFamily(
            "homing_bus_subscriptions",
            "Redis channels this node subscribes to now.",
            value=self.bus.subscriptions,
        )
        yield _counter(
            "homing_bus_breaker_trips",
            "Times the bus's circuit breaker opened (Redis out).",
            self.bus.trips,
        )

        yield GaugeMetricFamily(
            "homing_dispatcher_backlog",
            "Queues waiting for this node's dispatcher (assignments and position updates).",
            value=self.dispatcher.backlog,
        )

        yield _gauge(
            "homing_job_last_success_timestamp_seconds",
            "Unix time a scheduled job last finished without error (0: not yet).",
            "job",
            self.jobs.last_successes().items(),
        )

        webhooks = sender_for(self.db).tallies
        attempts = CounterMetricFamily(
            "homing_webhook_attempts",
            "Webhook delivery attempts by this node's dispatcher, by outcome "
            "(failed includes the attempts that made a dead letter).",
            labels=["outcome"],
        )
        for outcome, n in webhooks.attempts.items():
            attempts.add_metric([outcome], n)
        yield attempts
        yield GaugeMetricFamily(
            "homing_webhook_in_flight",
            "Webhook requests this node is waiting on now.",
            value=webhooks.in_flight,
        )
        yield _counter(
            "homing_webhook_wait_seconds",
            "Time this node's dispatcher spent waiting for receivers.",
            webhooks.seconds,
        )

        pools = self._pools()
        yield _gauge(
            "homing_db_pool_in_use",
            "Database connections checked out of the pool.",
            "pool",
            [(name, _pool_number(pool, "checkedout")) for name, pool in pools],
        )
        yield _gauge(
            "homing_db_pool_size",
            "Connections the pool keeps open (its steady size).",
            "pool",
            [(name, _pool_number(pool, "size")) for name, pool in pools],
        )

    def _pools(self) -> list[tuple[str, Any]]:
        # SQLite writes through an engine of its own (one writer); PostgreSQL shares one.
        if self.db.write_engine is self.db.engine:
            return [("main", self.db.engine.pool)]
        return [("read", self.db.engine.pool), ("write", self.db.write_engine.pool)]


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _gauge(
    name: str, documentation: str, label: str, values: Iterable[tuple[str, float]]
) -> GaugeMetricFamily:
    """A gauge with one label, a sample per (label value, value)."""
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for key, value in values:
        family.add_metric([key], value)
    return family


def _pool_number(pool: Any, method: str) -> float:
    """A pool figure, or 0 for pool classes without it (NullPool, StaticPool)."""
    fn = getattr(pool, method, None)
    return float(fn()) if callable(fn) else 0.0
