"""The daily quality sample: every minute each shop's draw is tried; the database key
(`qa_draws`) makes it happen once per agent and day, on any number of workers."""

from __future__ import annotations

import logging

from app.quality import actions
from app.scheduler import JobContext

log = logging.getLogger(__name__)

QA_JOB = "quality_sample"
QA_EVERY_S = 60.0


async def draw_samples(ctx: JobContext) -> int:
    now = ctx.clock.now()
    added = 0
    for shop_id in await ctx.db.run(actions.shops_to_inspect):
        try:
            added += await ctx.db.run(actions.draw_for_shop, shop_id, now)
        except Exception:
            log.exception("quality draw of shop %s failed; will retry on the next run", shop_id)
    return added
