"""Search's periodic job: keep PostgreSQL's text index's pending list short, off the
message path (`service.empty_text_index_pending` says why). Nothing to do on SQLite."""

from __future__ import annotations

from app.scheduler import JobContext
from app.search import service

TEXT_INDEX_JOB = "text_index_pending"
TEXT_INDEX_EVERY_S = 1.0


async def empty_text_index_pending(ctx: JobContext) -> int:
    if ctx.db.is_sqlite:
        return 0
    merged: int = await ctx.db.run(service.empty_text_index_pending)
    return merged
