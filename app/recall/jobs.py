"""Scheduled recall work: run every due campaign, batch by batch, resuming from the database.

Why no scheduler library (APScheduler and the like): what must survive is not "when to
fire" but "how far each campaign got", and that has to be shared by every worker and
survive SIGKILL. The campaign row (status, send_at) is the schedule and the `recall_sends`
rows are the progress, so a short periodic tick that asks the database what is due is
the whole scheduler; a library's own job store would be a second, disagreeing record.
"""

from __future__ import annotations

import logging
import random

from app.clock import Clock
from app.db import Database
from app.recall import actions, service
from app.recall.models import RecallCampaign
from app.scheduler import JobContext

log = logging.getLogger(__name__)

RECALL_JOB = "recall_campaigns"
RECALL_EVERY_S = 2.0


async def run_campaign(
    db: Database, clock: Clock, campaign_id: str, *, batch: int = actions.SEND_BATCH
) -> int:
    """Start the campaign if it is due, then send batches while it runs and the shop's
    window is open. Returns how many buyers this call handled (sent or capped).

    Safe on several workers at once and after a kill at any point: whatever was committed
    is the progress, and the next call carries on from the pending rows.
    """
    handled = 0
    while True:
        now = clock.now()
        async with db.read() as s:
            campaign = await s.get(RecallCampaign, campaign_id)
            if campaign is None or campaign.status not in ("scheduled", "running"):
                return handled
            if not await service.window_open(s, campaign.shop_id, now):
                return handled  # outside the sending window: wait for it
        if campaign.status == "scheduled":
            if campaign.send_at > now:
                return handled
            await db.run(actions.start_campaign, campaign_id, now)
        done = await db.run(actions.send_batch, campaign_id, now, batch)
        if not done:  # None: not running; 0: it just completed
            return handled
        handled += done


async def run_due_campaigns(ctx: JobContext) -> int:
    """The periodic job: every campaign whose send time has come, one after another."""
    async with ctx.db.read() as s:
        due = await service.due_campaigns(s, ctx.clock.now())
    # Workers spread over the due campaigns instead of queueing on one campaign's row lock.
    random.shuffle(due)
    handled = 0
    for campaign_id in due:
        try:
            handled += await run_campaign(
                ctx.db, ctx.clock, campaign_id, batch=ctx.settings.recall_batch
            )
        except Exception:
            log.exception("recall campaign %s failed; will resume on the next run", campaign_id)
    return handled
