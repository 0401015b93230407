"""HTTP for stored @mentions: a colleague's unread mentions (the workbench loads them at
start, so one offline when named still sees it) and marking one read."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from app.deps import Ctx, CurrentAgent
from app.notes import actions, service
from app.notes.schemas import MentionPublic
from app.schemas import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1", tags=["notes"], responses=ERROR_RESPONSES)


@router.get("/mentions")
async def list_mentions(
    agent: CurrentAgent,
    ctx: Ctx,
    unread: bool = True,
    limit: int = Query(default=service.LIMIT, ge=1, le=200),
) -> list[MentionPublic]:
    """The notes that named me, newest first (only unread ones unless `unread=false`)."""
    async with ctx.db.read() as s:
        found = await service.mentions(s, agent, unread=unread, limit=limit)
    return [MentionPublic.model_validate(m) for m in found]


@router.post("/mentions/{mention_id}/read", status_code=204)
async def mark_read(mention_id: str, agent: CurrentAgent, ctx: Ctx) -> Response:
    await ctx.db.run(actions.mark_read, agent, mention_id, ctx.clock.now())
    return Response(status_code=204)
