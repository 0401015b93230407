"""The webhook dispatcher as a periodic job, in `homing serve` and `homing worker` alike.

Safe with any number of them at once: deliveries are leased (`actions.claim_due`), and
everything it needs is in the database, so a killed dispatcher's work is picked up by the
next one once its leases pass.
"""

from __future__ import annotations

from app.scheduler import JobContext
from app.webhooks.sender import sender_for

DISPATCH_JOB = "webhook_deliveries"
# The job wakes this often; it looks for due deliveries every HOMING_WEBHOOK_POLL_S.
DISPATCH_EVERY_S = 0.2


async def dispatch_webhooks(ctx: JobContext) -> int:
    """Send every due delivery (a retry, a resend, a new event); how many attempts were made."""
    sender = sender_for(ctx.db)
    if not sender.poll_due(ctx.settings.webhook_poll_s):
        return 0
    return await sender.dispatch(ctx.db, ctx.clock, ctx.settings)
