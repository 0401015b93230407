"""`homing worker`: the scheduled jobs without the HTTP server (for multi-node deployments)."""

from __future__ import annotations

import asyncio
import logging
import signal

from app.clock import Clock
from app.config import Settings
from app.context import start_core
from app.jobs import registered_jobs
from app.observability.api import serve_metrics
from app.observability.metrics import Metrics
from app.scheduler import JobContext, JobRunner

log = logging.getLogger(__name__)


async def run_worker(
    settings: Settings, *, metrics_host: str = "127.0.0.1", metrics_port: int | None = None
) -> None:
    clock = Clock()
    # The hub publishes what the jobs change; it serves no sockets itself.
    core = await start_core(settings, clock, sweep=True)
    db, bus, hub, dispatcher = core.db, core.bus, core.hub, core.dispatcher
    jobs = JobRunner(JobContext(db=db, clock=clock, settings=settings), registered_jobs())
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
