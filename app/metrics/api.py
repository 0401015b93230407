"""HTTP: service metrics for supervisors and admins (PROTOCOL.md "Metrics")."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query

from app.deps import Ctx, require
from app.metrics import service
from app.metrics.schemas import AgentMetricsPublic, ShopMetricsPublic
from app.metrics.service import AgentMetrics
from app.schemas import ERROR_RESPONSES
from app.shops.models import Agent
from app.shops.policy import Permission

router = APIRouter(prefix="/api/v1/metrics", tags=["metrics"], responses=ERROR_RESPONSES)

MetricsViewer = Annotated[Agent, require(Permission.VIEW_METRICS)]

# `from`/`to`: ISO dates or datetimes; `rules.resolve_period` reads them (422 when bad).
From = Annotated[str | None, Query(alias="from", max_length=64)]
To = Annotated[str | None, Query(alias="to", max_length=64)]
# `tag`: only conversations carrying that tag of the shop's list (422 unknown_tag if none).
TagName = Annotated[str | None, Query(min_length=1, max_length=32)]


def agent_metrics_public(row: AgentMetrics) -> AgentMetricsPublic:
    return AgentMetricsPublic.model_validate(
        {
            "agent_id": row.agent_id,
            "username": row.username,
            "display_name": row.display_name,
            "role": row.role,
            **asdict(row.metrics),
        }
    )


@router.get("/agents")
async def agent_metrics(
    staff: MetricsViewer, ctx: Ctx, start: From = None, end: To = None, tag: TagName = None
) -> list[AgentMetricsPublic]:
    async with ctx.db.read() as s:
        report = await service.shop_metrics(s, staff.shop_id, start, end, ctx.clock.now(), tag=tag)
    return [agent_metrics_public(row) for row in report.agents]


@router.get("/shop")
async def shop_metrics(
    staff: MetricsViewer, ctx: Ctx, start: From = None, end: To = None, tag: TagName = None
) -> ShopMetricsPublic:
    async with ctx.db.read() as s:
        report = await service.shop_metrics(s, staff.shop_id, start, end, ctx.clock.now(), tag=tag)
    return ShopMetricsPublic.model_validate(
        {"from": report.start.isoformat(), "to": report.end.isoformat(), **asdict(report.shop)}
    )
