"""Every domain's periodic jobs, in one list: the registry imports the domains' job modules,
which import only `app.scheduler` (what a job is), never this module."""

from __future__ import annotations

from app.bot import jobs as bot_jobs
from app.care import jobs as care_jobs
from app.payouts import jobs as payout_jobs
from app.quality import jobs as quality_jobs
from app.recall import jobs as recall_jobs
from app.routing import jobs as routing_jobs
from app.scheduler import Job
from app.search import jobs as search_jobs
from app.webhooks import jobs as webhook_jobs


def registered_jobs() -> list[Job]:
    """Every domain's periodic jobs. Domains add theirs here."""
    return [
        Job(routing_jobs.REQUEUE_ABSENT_JOB, 5.0, routing_jobs.requeue_absent_agents),
        Job(routing_jobs.AUTO_CLOSE_JOB, 30.0, routing_jobs.auto_close_inactive),
        Job(
            payout_jobs.LATE_SHIPMENT_JOB,
            payout_jobs.LATE_SHIPMENT_EVERY_S,
            payout_jobs.issue_late_shipment_coupons,
        ),
        Job(recall_jobs.RECALL_JOB, recall_jobs.RECALL_EVERY_S, recall_jobs.run_due_campaigns),
        Job(
            webhook_jobs.DISPATCH_JOB, webhook_jobs.DISPATCH_EVERY_S, webhook_jobs.dispatch_webhooks
        ),
        Job(care_jobs.CARE_JOB, care_jobs.CARE_EVERY_S, care_jobs.run_care_rules),
        Job(quality_jobs.QA_JOB, quality_jobs.QA_EVERY_S, quality_jobs.draw_samples),
        Job(bot_jobs.BOT_PENDING_JOB, bot_jobs.BOT_PENDING_EVERY_S, bot_jobs.answer_pending),
        Job(
            search_jobs.TEXT_INDEX_JOB,
            search_jobs.TEXT_INDEX_EVERY_S,
            search_jobs.empty_text_index_pending,
        ),
    ]
