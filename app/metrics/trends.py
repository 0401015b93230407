"""Reads for the trends: the shop's 体验分 figures day by day, and when buyers come in.

Each day is scored by `service.metrics_between` (the same reading and rules as the
numbers above the charts), so a day's point and the period's total never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.chat.models import Conversation
from app.metrics.rules import Metrics
from app.metrics.service import metrics_between
from app.metrics.trend_rules import check_trend_period, days_of, heat_map
from app.tags import service as tags_service

HEAT_BATCH = 5000


@dataclass(frozen=True)
class DayPoint:
    day: str  # ISO date, the shop's calendar
    metrics: Metrics
    incoming: int  # conversations buyers opened that day (served or not)


@dataclass(frozen=True)
class Trends:
    days: list[DayPoint]
    heat: list[list[int]]  # [weekday 0=Monday][hour]


def _incoming(
    shop_id: str, start: datetime, end: datetime, tag_id: str | None
) -> ColumnElement[bool]:
    return and_(
        tags_service.tagged(col(Conversation.id), tag_id),
        col(Conversation.shop_id) == shop_id,
        col(Conversation.opened_at) >= start,
        col(Conversation.opened_at) < end,
        # A notice conversation carries a card; nobody asked for help.
        or_(col(Conversation.close_reason).is_(None), col(Conversation.close_reason) != "system"),
    )


async def trends(
    session: AsyncSession,
    shop_id: str,
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    tag_id: str | None = None,
) -> Trends:
    """Day by day over [start, end); `tag_id`: only conversations carrying that tag."""
    check_trend_period(start, end)
    points = []
    for day, lo, hi in days_of(start, end, zone):
        report = await metrics_between(session, shop_id, lo, hi, tag_id)
        incoming = await session.execute(
            select(func.count()).where(_incoming(shop_id, lo, hi, tag_id))
        )
        points.append(DayPoint(day, report.shop, int(incoming.scalar() or 0)))
    opened = await session.stream(
        select(col(Conversation.opened_at))
        .where(_incoming(shop_id, start, end, tag_id))
        .execution_options(yield_per=HEAT_BATCH)
    )
    return Trends(points, heat_map([at async for (at,) in opened], zone))
