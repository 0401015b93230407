"""`homing worker`: the scheduled jobs without the HTTP server (for multi-node deployments)."""

from __future__ import annotations

import asyncio
import logging
import signal

from app.clock import Clock
from app.config import Settings
from app.db import Database
from app.jobs import registered_jobs
from app.observability.api import serve_metrics
from app.observability.metrics import Metrics
from app.realtime.bus import make_bus
from app.realtime.hub import Hub
from app.routing.dispatcher import Dispatcher
from app.scheduler import JobContext, JobRunner

log = logging.getLogger(__name__)


async def run_worker(
    settings: Settings, *, metrics_host: str = "127.0.0.1", metrics_port: int | None = None
) -> None:
    db = Database(settings.async_database_url)
    bus = make_bus(
        settings.redis_url,
        settings.bus_channel,
        timeout_s=settings.bus_publish_timeout_s,
        probe_s=settings.bus_probe_s,
    )
    hub = Hub(bus)  # publishes what the jobs change; it serves no sockets itself
    dispatcher = Dispatcher(db, Clock(), settings.dispatch_sweep_s)
    db.publisher = hub.publish
    db.on_signal = dispatcher.on_signal
    await bus.start()
    dispatcher.start(sweep=True)
    jobs = JobRunner(JobContext(db=db, clock=Clock(), settings=settings), registered_jobs())
    jobs.start()
    stop_metrics = None
    if metrics_port is not None:
        metrics = Metrics()
        metrics.watch(hub=hub, bus=bus, db=db, dispatcher=dispatcher, jobs=jobs)
        stop_metrics = await serve_metrics(settings, metrics, metrics_host, metrics_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker running (db %s, bus %s)", db.dialect, bus.name)
    await stop.wait()
    if stop_metrics is not None:
        await stop_metrics()
    await jobs.stop()
    await dispatcher.stop()
    await bus.stop()
    await db.dispose()
