"""HTTP for search: `GET /api/v1/search/messages` (any agent; what they may see)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select
from sqlmodel import col

from app.deps import Ctx, CurrentAgent
from app.schemas import ERROR_RESPONSES, IsoDatetime
from app.search import rules, service
from app.search.schemas import SearchResults, search_hit
from app.shops.models import Agent, Buyer
from app.tags import service as tags_service

router = APIRouter(prefix="/api/v1", tags=["search"], responses=ERROR_RESPONSES)


def _utc(v: datetime | None) -> datetime | None:
    return v.replace(tzinfo=UTC) if v is not None and v.tzinfo is None else v


@router.get("/search/messages")
async def search_messages(
    agent: CurrentAgent,
    ctx: Ctx,
    q: str = Query(max_length=400),
    buyer_id: str | None = Query(default=None, max_length=128),
    agent_id: str | None = Query(default=None, max_length=32),
    queue: str | None = Query(default=None, max_length=64),
    tag: str | None = Query(default=None, max_length=64),
    since: Annotated[IsoDatetime | None, Query(alias="from")] = None,
    until: Annotated[IsoDatetime | None, Query(alias="to")] = None,
    cursor: str | None = Query(default=None, max_length=200),
    limit: int = Query(default=rules.PAGE, ge=1, le=50),
) -> SearchResults:
    """Messages containing `q` (1 character or more), newest first, highlighted; agents find
    only conversations they served, supervisors and admins the whole shop."""
    text = rules.query_text(q)
    sq = service.SearchQuery(
        q=text,
        buyer_id=buyer_id or None,
        agent_id=agent_id or None,
        queue=queue or None,
        tag=tag or None,
        since=_utc(since),
        until=_utc(until),
        cursor=rules.decode_cursor(cursor) if cursor else None,
        limit=limit,
    )
    async with ctx.db.read() as s:
        page = await service.search_messages(s, ctx.db.dialect, agent, sq)
        convs = {c.id: c for _, c in page.hits}
        tags = await tags_service.tags_of(s, convs)
        buyer_ids = {c.buyer_id for c in convs.values()}
        agent_ids = {c.agent_id for c in convs.values() if c.agent_id}
        buyers = {
            b: n
            for b, n in await s.execute(
                select(col(Buyer.id), col(Buyer.name)).where(
                    col(Buyer.shop_id) == agent.shop_id, col(Buyer.id).in_(buyer_ids)
                )
            )
        }
        names = {
            a: n
            for a, n in await s.execute(
                select(col(Agent.id), col(Agent.display_name)).where(col(Agent.id).in_(agent_ids))
            )
        }
    return SearchResults(
        q=text,
        hits=[
            search_hit(
                m,
                c,
                highlight=rules.highlight(m.body, text),
                buyer_name=buyers.get(c.buyer_id, ""),
                agent_name=names.get(c.agent_id or ""),
                tags=tags.get(c.id, []),
            )
            for m, c in page.hits
        ],
        next_cursor=page.next_cursor,
        partial=page.partial,
        indexed=page.indexed,
    )
