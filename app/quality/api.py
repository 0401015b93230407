"""HTTP: quality inspection (质检) — settings, reviews (an agent reads only their own),
scoring, CSV export."""

from __future__ import annotations

import csv
import io
from typing import Annotated

from fastapi import APIRouter, Response

from app.deps import Ctx, CurrentAgent, require
from app.quality import actions, rules, service
from app.quality.schemas import ItemIO, ReviewPublic, ScoreIn, SettingsIO
from app.schemas import ERROR_RESPONSES
from app.shops import service as shop_service
from app.shops.models import Agent
from app.shops.policy import Permission

router = APIRouter(prefix="/api/v1/quality", tags=["quality"], responses=ERROR_RESPONSES)

Inspector = Annotated[Agent, require(Permission.INSPECT_QUALITY)]
QualityAdmin = Annotated[Agent, require(Permission.MANAGE_QUALITY)]

CSV_COLUMNS = ("review_id", "day", "agent", "conversation_id", "reason", "status", "total",
               "max_total", "score_rate", "scores", "comment", "reviewer", "reviewed_at")  # fmt: skip


async def _settings(ctx: Ctx, shop_id: str) -> SettingsIO:
    async with ctx.db.read() as s:
        daily, card = await service.settings_of(s, shop_id)
    return SettingsIO(
        daily_sample=daily,
        scorecard=[ItemIO(key=i.key, label=i.label, points=i.points) for i in card],
    )


@router.get("/settings")
async def get_settings(agent: CurrentAgent, ctx: Ctx) -> SettingsIO:
    """The shop's scorecard and daily sample (any agent may see what they are scored on)."""
    return await _settings(ctx, agent.shop_id)


@router.put("/settings")
async def put_settings(body: SettingsIO, admin: QualityAdmin, ctx: Ctx) -> SettingsIO:
    items = [rules.Item(i.key, i.label, i.points) for i in body.scorecard]
    await ctx.db.run(actions.set_settings, admin, body.daily_sample, items)
    return await _settings(ctx, admin.shop_id)


@router.get("/reviews")
async def list_reviews(
    agent: CurrentAgent, ctx: Ctx, status: str | None = None, agent_id: str | None = None
) -> list[ReviewPublic]:
    """Supervisors: the shop's reviews. An agent: their own scored ones only."""
    async with ctx.db.read() as s:
        _daily, card = await service.settings_of(s, agent.shop_id)
        found = await service.reviews(s, agent, status=status, agent_id=agent_id)
    return [ReviewPublic.model_validate(service.review_public(r, card)) for r in found]


@router.get(
    "/reviews.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "The reviews, UTF-8 with a BOM."}},
)
async def export_reviews(staff: Inspector, ctx: Ctx, status: str | None = None) -> Response:
    """The shop's reviews as CSV, UTF-8 with a BOM (so spreadsheet programs read Chinese)."""
    async with ctx.db.read() as s:
        _daily, card = await service.settings_of(s, staff.shop_id)
        found = await service.reviews(s, staff, status=status)
        names = {
            a.agent.id: a.agent.username
            for a in await shop_service.agents_of_shop(s, staff.shop_id)
        }
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(CSV_COLUMNS)
    for r in found:
        p = service.review_public(r, card)
        w.writerow(
            [
                p["id"],
                p["day"],
                names.get(r.agent_id, r.agent_id),
                p["conversation_id"],
                p["reason"],
                p["status"],
                p["total"],
                p["max_total"],
                p["score_rate"],
                ";".join(f"{k}={v}" for k, v in p["scores"].items()),
                p["comment"],
                names.get(r.reviewer_id or "", r.reviewer_id or ""),
                p["reviewed_at"] or "",
            ]
        )
    return Response(
        content="\ufeff" + out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="qa-reviews.csv"'},
    )


@router.get("/reviews/{review_id}")
async def get_review(review_id: str, agent: CurrentAgent, ctx: Ctx) -> ReviewPublic:
    async with ctx.db.read() as s:
        _daily, card = await service.settings_of(s, agent.shop_id)
        r = await service.review_for(s, agent, review_id)
    return ReviewPublic.model_validate(service.review_public(r, card))


@router.post("/reviews/{review_id}/score")
async def score(review_id: str, body: ScoreIn, staff: Inspector, ctx: Ctx) -> ReviewPublic:
    public = await ctx.db.run(
        actions.score_review, staff, review_id, body.scores, body.comment, ctx.clock.now()
    )
    return ReviewPublic.model_validate(public)
