"""Routing's periodic jobs: requeue absent agents' conversations, auto-close idle ones."""

from __future__ import annotations

from app.chat import actions as chat_actions
from app.routing import actions as routing
from app.scheduler import JobContext

REQUEUE_ABSENT_JOB = "requeue_absent_agents"
AUTO_CLOSE_JOB = "auto_close_inactive"


async def requeue_absent_agents(ctx: JobContext) -> list[str]:
    # An agent connected to this very process is present, whatever the database says: its
    # heartbeat may still be waiting behind other writes (an overloaded SQLite node).
    now, grace, present = ctx.clock.now(), ctx.settings.agent_grace_s, set(ctx.live_agent_ids())
    # Every 5 s, and almost always nobody is absent: a read says so without a writer's turn
    # (SQLite's one writer). Whoever it finds is checked again by the write, which requeues
    # only an agent still unseen (a reconnect in between wins).
    if not await ctx.db.query(routing.absent_agents, now, grace, present=present):
        return []
    requeued: list[str] = await ctx.db.run(
        routing.requeue_absent_agents, now, grace, present=present
    )
    return requeued


async def auto_close_inactive(ctx: JobContext) -> list[str]:
    """Close every conversation that is due, a bounded batch per transaction."""
    now = ctx.clock.now()
    closed: list[str] = []
    while True:
        batch = await ctx.db.run(chat_actions.close_inactive, now, ctx.settings.auto_close_after_s)
        closed += batch
        if len(batch) < chat_actions.CLOSE_INACTIVE_BATCH:
            return closed
