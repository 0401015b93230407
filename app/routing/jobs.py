"""Routing's periodic jobs: requeue absent agents' conversations, auto-close idle ones."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.chat import actions as chat_actions
from app.routing import actions as routing

if TYPE_CHECKING:
    from app.jobs import JobContext

REQUEUE_ABSENT_JOB = "requeue_absent_agents"
AUTO_CLOSE_JOB = "auto_close_inactive"


async def requeue_absent_agents(ctx: JobContext) -> list[str]:
    # An agent connected to this very process is present, whatever the database says: its
    # heartbeat may still be waiting behind other writes (an overloaded SQLite node).
    return await ctx.db.run(  # type: ignore[no-any-return]
        routing.requeue_absent_agents, ctx.clock.now(), ctx.settings.agent_grace_s,
        present=set(ctx.live_agent_ids()),
    )


async def auto_close_inactive(ctx: JobContext) -> list[str]:
    return await ctx.db.run(  # type: ignore[no-any-return]
        chat_actions.close_inactive, ctx.clock.now(), ctx.settings.auto_close_after_s
    )
