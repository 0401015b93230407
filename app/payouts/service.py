"""Reads of payouts, the fund, the ledger and late-shipment coupons (no state changes here)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.care.models import CareSettings
from app.orders.models import Order
from app.payouts.models import LateShipmentCoupon, Payout, PayoutFund, PayoutLedgerEntry
from app.tags import service as tags_service

LIST_LIMIT = 500


async def get_payout(session: AsyncSession, payout_id: str) -> Payout | None:
    return await session.get(Payout, payout_id)


async def payout_by_key(session: AsyncSession, shop_id: str, idempotency_key: str) -> Payout | None:
    row = await session.execute(
        select(Payout)
        .where(col(Payout.shop_id) == shop_id, col(Payout.idempotency_key) == idempotency_key)
        .execution_options(populate_existing=True)
    )
    return row.scalars().first()


async def list_payouts(
    session: AsyncSession,
    shop_id: str,
    *,
    status: str | None = None,
    agent_id: str | None = None,
    order_id: str | None = None,
    limit: int = LIST_LIMIT,
) -> list[Payout]:
    q = select(Payout).where(col(Payout.shop_id) == shop_id)
    if status:
        q = q.where(col(Payout.status) == status)
    if agent_id:
        q = q.where(col(Payout.agent_id) == agent_id)
    if order_id:
        q = q.where(col(Payout.order_id) == order_id)
    q = q.order_by(col(Payout.created_at).desc(), col(Payout.id)).limit(limit)
    return list((await session.execute(q)).scalars())


async def fund_balance(session: AsyncSession, shop_id: str) -> int:
    balance = await session.scalar(
        select(col(PayoutFund.balance_cents)).where(col(PayoutFund.shop_id) == shop_id)
    )
    return int(balance or 0)


async def paid_cents_by_agent(
    session: AsyncSession, shop_id: str, start: datetime, end: datetime, tag_id: str | None = None
) -> dict[str | None, int]:
    """Compensation paid in [start, end), by the agent who asked for it (for the metrics);
    with `tag_id`, only for conversations carrying that tag.

    A payout counts when it was paid: at once, or when a supervisor approved it. The key
    None holds what the platform paid without an agent (automatic 价保): in the shop's
    total, in no agent's.
    """
    rows = await session.execute(
        select(col(Payout.agent_id), func.sum(col(Payout.amount_cents)))
        .where(
            col(Payout.shop_id) == shop_id,
            col(Payout.status) == "paid",
            col(Payout.paid_at) >= start,
            col(Payout.paid_at) < end,
            tags_service.tagged(col(Payout.conversation_id), tag_id),
        )
        .group_by(col(Payout.agent_id))
    )
    return {agent_id: int(total) for agent_id, total in rows}


async def ledger(
    session: AsyncSession,
    shop_id: str,
    *,
    payout_id: str | None = None,
    entry: str | None = None,
    agent_id: str | None = None,
    order_id: str | None = None,
    after_id: int = 0,
    limit: int = LIST_LIMIT,
) -> list[PayoutLedgerEntry]:
    """Ledger lines in the order they were written (pages by `after_id`)."""
    q = select(PayoutLedgerEntry).where(
        col(PayoutLedgerEntry.shop_id) == shop_id, col(PayoutLedgerEntry.id) > after_id
    )
    if payout_id:
        q = q.where(col(PayoutLedgerEntry.payout_id) == payout_id)
    if entry:
        q = q.where(col(PayoutLedgerEntry.entry) == entry)
    if agent_id:
        q = q.where(col(PayoutLedgerEntry.agent_id) == agent_id)
    if order_id:
        q = q.where(col(PayoutLedgerEntry.order_id) == order_id)
    q = q.order_by(col(PayoutLedgerEntry.id)).limit(limit)
    return list((await session.execute(q)).scalars())


async def late_orders_without_coupon(
    session: AsyncSession, now: datetime, limit: int
) -> list[tuple[str, str]]:
    """(shop_id, order_id) of paid orders past `ship_by` that no worker has decided on yet,
    in shops that have not turned the rule off (a care rule, app/care: on by default)."""
    decided = exists().where(
        col(LateShipmentCoupon.shop_id) == col(Order.shop_id),
        col(LateShipmentCoupon.order_id) == col(Order.order_id),
    )
    switched_off = exists().where(
        col(CareSettings.shop_id) == col(Order.shop_id), ~col(CareSettings.late_shipment_on)
    )
    rows = await session.execute(
        select(col(Order.shop_id), col(Order.order_id))
        .where(
            col(Order.status) == "paid",
            col(Order.ship_by).is_not(None),
            col(Order.ship_by) <= now,
            ~decided,
            ~switched_off,
        )
        .order_by(col(Order.ship_by))
        .limit(limit)
    )
    return [(shop_id, order_id) for shop_id, order_id in rows]


async def coupons(
    session: AsyncSession, shop_id: str, *, order_id: str | None = None, buyer_id: str | None = None
) -> list[LateShipmentCoupon]:
    q = select(LateShipmentCoupon).where(col(LateShipmentCoupon.shop_id) == shop_id)
    if order_id:
        q = q.where(col(LateShipmentCoupon.order_id) == order_id)
    if buyer_id:
        q = q.where(col(LateShipmentCoupon.buyer_id) == buyer_id)
    q = q.order_by(col(LateShipmentCoupon.issued_at).desc()).limit(LIST_LIMIT)
    return list((await session.execute(q)).scalars())
