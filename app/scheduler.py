"""Periodic jobs: what a job is, what it gets, and the runner that repeats it. `homing serve`
(unless --no-jobs) and `homing worker` run the jobs `app.jobs` lists. A job must be safe to
run on several processes at once and to be killed at any point: it resumes from durable
state (the database), never from memory, and a failure is logged with context and retried
on the next tick. Domains' job modules import this module, never the registry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.clock import Clock
from app.config import Settings
from app.db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobContext:
    db: Database
    clock: Clock
    settings: Settings
    # Agents with a socket open in this process right now (none in `homing worker`).
    live_agent_ids: Callable[[], list[str]] = list


@dataclass(frozen=True)
class Job:
    name: str
    every_s: float
    run: Callable[[JobContext], Awaitable[object]]


class JobRunner:
    def __init__(self, ctx: JobContext, jobs: list[Job]) -> None:
        self.ctx = ctx
        self.jobs = jobs
        self._tasks: list[asyncio.Task[None]] = []
        self._last_success: dict[str, float] = {}  # job name -> Unix time it last finished well

    def last_successes(self) -> dict[str, float]:
        """When each job last finished without error (Unix time; 0 for a scheduled job not yet).

        Jobs this process does not schedule (`--no-jobs`) appear only once run by hand.
        """
        due = dict.fromkeys((j.name for j in self.jobs), 0.0) if self._tasks else {}
        return {**due, **self._last_success}

    def start(self) -> None:
        for job in self.jobs:
            self._tasks.append(asyncio.create_task(self._loop(job), name=f"job-{job.name}"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def run_once(self, name: str) -> object:
        """Run one job now (tests and the console's "run now")."""
        job = next(j for j in self.jobs if j.name == name)
        return await self._run(job)

    async def _run(self, job: Job) -> object:
        result = await job.run(self.ctx)
        self._last_success[job.name] = time.time()
        return result

    async def _loop(self, job: Job) -> None:
        while True:
            try:
                await self._run(job)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job %s failed; will retry in %.0fs", job.name, job.every_s)
            await asyncio.sleep(job.every_s)
