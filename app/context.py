"""The long-lived resources of one running process, built in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from app.bot.engine import BotEngine
from app.chat.appender import MessageAppender
from app.chat.delivery import ChatLoader
from app.chat.opening import BuyerOpenings
from app.clock import Clock
from app.compliance.cache import RulesCache
from app.config import Settings
from app.db import Database
from app.observability.metrics import Metrics
from app.realtime.bus import Bus, make_bus
from app.realtime.hub import Hub
from app.routing.dispatcher import Dispatcher
from app.routing.presence import PresenceHeartbeat
from app.scheduler import JobRunner


@dataclass
class AppContext:
    settings: Settings
    clock: Clock
    db: Database
    bus: Bus
    hub: Hub
    loader: ChatLoader
    dispatcher: Dispatcher
    jobs: JobRunner
    presence: PresenceHeartbeat
    appender: MessageAppender
    metrics: Metrics
    compliance: RulesCache  # each shop's compiled compliance rules (app/compliance/cache.py)
    bot: BotEngine
    openings: BuyerOpenings  # buyer sockets opening at once share their reads (app/chat/opening.py)


@dataclass
class Core:
    """What every node runs, whether it serves sockets or only jobs: the database, the bus
    to the other nodes, the hub that publishes what commits, and the dispatcher."""

    db: Database
    bus: Bus
    hub: Hub
    dispatcher: Dispatcher


async def start_core(settings: Settings, clock: Clock, *, sweep: bool) -> Core:
    """Build and start the core, wired: commits publish through the hub, and the signals
    they raise reach the dispatcher. Every node drains its own dispatch requests; `sweep`
    also runs the periodic sweep (a scheduled job). Stopping is the caller's, in reverse."""
    db = Database(settings.async_database_url)
    bus = make_bus(
        settings.redis_url,
        settings.bus_channel,
        mode=settings.bus_mode,
        timeout_s=settings.bus_publish_timeout_s,
        probe_s=settings.bus_probe_s,
    )
    hub = Hub(bus)
    dispatcher = Dispatcher(db, clock, settings.dispatch_sweep_s)
    db.publisher = hub.publish
    db.on_signal = dispatcher.on_signal
    await bus.start()
    dispatcher.start(sweep=sweep)
    return Core(db=db, bus=bus, hub=hub, dispatcher=dispatcher)
