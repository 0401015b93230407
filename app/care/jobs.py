"""Scheduled care (主动服务): stalled logistics and follow-up visits, once per order."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from app.care import actions, service
from app.care.models import CareAction
from app.db import UnitOfWork
from app.scheduler import JobContext

log = logging.getLogger(__name__)

CARE_JOB = "proactive_care"
CARE_EVERY_S = 60.0
CARE_BATCH = 500

Fire = Callable[..., Awaitable[CareAction | None]]


async def run_care_rules(ctx: JobContext) -> int:
    """Fire every due rule on every due order; returns how many fired. Safe on several
    workers at once (each order's rule is claimed by a unique row); a failure is logged
    and retried on a later run (its claim rolled back)."""
    now = ctx.clock.now()
    async with ctx.db.read() as s:
        stalled = await service.stalled_orders(s, now, CARE_BATCH)
        visits = await service.visit_orders(s, now, CARE_BATCH)
    fired = 0
    for fire, due in ((actions.fire_stalled, stalled), (actions.fire_visit, visits)):
        for shop_id, order_id in due:
            fired += await _fire(ctx, fire, shop_id, order_id, now)
    if fired:
        log.info("proactive care fired %d times", fired)
    return fired


async def _fire(ctx: JobContext, fire: Fire, shop_id: str, order_id: str, now: datetime) -> int:
    async def run(uow: UnitOfWork) -> CareAction | None:
        return await fire(uow, shop_id=shop_id, order_id=order_id, now=now)

    try:
        return 1 if await ctx.db.run(run) is not None else 0
    except Exception:
        log.exception("care rule on order %s of shop %s failed; will retry", order_id, shop_id)
        return 0
