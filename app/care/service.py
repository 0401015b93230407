"""Reads of proactive care: a shop's settings, the orders each rule is due on, 回访 results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.care.models import CareAction, CareSettings
from app.orders.models import Order


async def settings_of(session: AsyncSession, shop_id: str) -> CareSettings:
    found = await session.get(CareSettings, shop_id)
    if found is not None:
        return found
    return CareSettings(
        shop_id=shop_id,
        stalled_on=False,
        stalled_hours=48,
        stalled_coupon_cents=0,
        visit_on=False,
        visit_days=3,
        apology_on=False,
        late_shipment_on=True,
        updated_at=datetime.fromtimestamp(0, UTC),
    )


def _not_fired(rule: str) -> ColumnElement[bool]:
    return ~exists().where(
        col(CareAction.shop_id) == col(Order.shop_id),
        col(CareAction.order_id) == col(Order.order_id),
        col(CareAction.rule) == rule,
    )


async def stalled_orders(session: AsyncSession, now: datetime, limit: int) -> list[tuple[str, str]]:
    """(shop_id, order_id) of shipped, undelivered orders without news for each shop's
    `stalled_hours`, in shops with the rule on, not yet cared for."""
    found: list[tuple[str, str]] = []
    for shop_id, hours in await session.execute(
        select(col(CareSettings.shop_id), col(CareSettings.stalled_hours)).where(
            col(CareSettings.stalled_on)
        )
    ):
        cutoff = now - timedelta(hours=hours)
        rows = await session.execute(
            select(col(Order.shop_id), col(Order.order_id))
            .where(
                col(Order.shop_id) == shop_id,
                col(Order.shipped_at).is_not(None),
                col(Order.shipped_at) <= cutoff,
                col(Order.delivered_at).is_(None),
                col(Order.status) != "refunded",
                func.coalesce(col(Order.tracking_at), col(Order.shipped_at)) <= cutoff,
                _not_fired("logistics_stalled"),
            )
            .order_by(col(Order.shipped_at))
            .limit(limit - len(found))
        )
        found.extend((s, o) for s, o in rows)
        if len(found) >= limit:
            break
    return found


async def visit_orders(session: AsyncSession, now: datetime, limit: int) -> list[tuple[str, str]]:
    """(shop_id, order_id) of orders delivered each shop's `visit_days` ago, not yet visited."""
    found: list[tuple[str, str]] = []
    for shop_id, days in await session.execute(
        select(col(CareSettings.shop_id), col(CareSettings.visit_days)).where(
            col(CareSettings.visit_on)
        )
    ):
        rows = await session.execute(
            select(col(Order.shop_id), col(Order.order_id))
            .where(
                and_(
                    col(Order.shop_id) == shop_id,
                    col(Order.delivered_at).is_not(None),
                    col(Order.delivered_at) <= now - timedelta(days=days),
                    col(Order.status) != "refunded",
                    _not_fired("follow_up_visit"),
                )
            )
            .order_by(col(Order.delivered_at))
            .limit(limit - len(found))
        )
        found.extend((s, o) for s, o in rows)
        if len(found) >= limit:
            break
    return found


async def visit_results(session: AsyncSession, shop_id: str) -> dict[str, float | int | None]:
    """回访 in figures: visits sent, answered, and the average scores (1-5)."""
    row = (
        await session.execute(
            select(
                func.count(),
                func.count(col(CareAction.answered_at)),
                func.avg(col(CareAction.goods_score)),
                func.avg(col(CareAction.service_score)),
            ).where(col(CareAction.shop_id) == shop_id, col(CareAction.rule) == "follow_up_visit")
        )
    ).one()
    sent, answered, goods, service = row
    return {
        "sent": int(sent),
        "answered": int(answered),
        "goods_avg": round(float(goods), 2) if goods is not None else None,
        "service_avg": round(float(service), 2) if service is not None else None,
    }


async def fired(
    session: AsyncSession, shop_id: str, *, order_id: str | None = None, rule: str | None = None
) -> list[CareAction]:
    q = select(CareAction).where(col(CareAction.shop_id) == shop_id)
    if order_id is not None:
        q = q.where(col(CareAction.order_id) == order_id)
    if rule is not None:
        q = q.where(col(CareAction.rule) == rule)
    rows = await session.execute(q.order_by(col(CareAction.fired_at).desc()).limit(500))
    return list(rows.scalars())
