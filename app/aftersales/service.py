"""Reads of after-sales: requests, the ledger, a shop's settings, a buyer's record, and
what a buyer may still ask for on an order."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.aftersales import rules
from app.aftersales.models import (
    REFUND_TYPES,
    AfterSale,
    AfterSaleLedgerEntry,
    AfterSaleSettings,
    ProductPrice,
)
from app.chat.schemas import iso
from app.orders.models import Order

LIST_LIMIT = 200


async def get_aftersale(session: AsyncSession, shop_id: str, aftersale_id: str) -> AfterSale | None:
    found = await session.get(AfterSale, aftersale_id)
    return found if found is not None and found.shop_id == shop_id else None


async def list_aftersales(
    session: AsyncSession,
    shop_id: str,
    *,
    order_id: str | None = None,
    status: str | None = None,
    buyer_id: str | None = None,
    conversation_id: str | None = None,
    limit: int = LIST_LIMIT,
) -> list[AfterSale]:
    q = select(AfterSale).where(col(AfterSale.shop_id) == shop_id)
    if order_id is not None:
        q = q.where(col(AfterSale.order_id) == order_id)
    if status is not None:
        q = q.where(col(AfterSale.status) == status)
    if buyer_id is not None:
        q = q.where(col(AfterSale.buyer_id) == buyer_id)
    if conversation_id is not None:
        q = q.where(col(AfterSale.conversation_id) == conversation_id)
    rows = await session.execute(
        q.order_by(col(AfterSale.created_at).desc(), col(AfterSale.id)).limit(limit)
    )
    return list(rows.scalars())


async def ledger(
    session: AsyncSession, shop_id: str, *, aftersale_id: str | None = None, limit: int = 500
) -> list[AfterSaleLedgerEntry]:
    q = select(AfterSaleLedgerEntry).where(col(AfterSaleLedgerEntry.shop_id) == shop_id)
    if aftersale_id is not None:
        q = q.where(col(AfterSaleLedgerEntry.aftersale_id) == aftersale_id)
    rows = await session.execute(q.order_by(col(AfterSaleLedgerEntry.id)).limit(limit))
    return list(rows.scalars())


async def settings_of(session: AsyncSession, shop_id: str) -> AfterSaleSettings:
    """The shop's settings, or the defaults if it never changed them."""
    found = await session.get(AfterSaleSettings, shop_id)
    if found is not None:
        return found
    return AfterSaleSettings(
        shop_id=shop_id,
        fast_refund_max_cents=0,
        price_protection_days=rules.DEFAULT_PROTECTION_DAYS,
        price_protection_auto_cents=0,
        updated_at=datetime.fromtimestamp(0, UTC),
    )


async def buyer_history(
    session: AsyncSession, shop_id: str, buyer_id: str, now: datetime
) -> rules.BuyerHistory:
    rows = await session.execute(
        select(col(AfterSale.status), func.count())
        .where(
            col(AfterSale.shop_id) == shop_id,
            col(AfterSale.buyer_id) == buyer_id,
            col(AfterSale.type).in_(REFUND_TYPES),
            col(AfterSale.created_at) > now - rules.RECORD_WINDOW,
        )
        .group_by(col(AfterSale.status))
    )
    counts = {status: int(n) for status, n in rows}
    return rules.BuyerHistory(
        declined=counts.get("declined", 0),
        refunds=counts.get("approved", 0) + counts.get("completed", 0),
    )


async def price_drop(session: AsyncSession, shop_id: str, order: Order, now: datetime) -> int:
    """What the order's buyer may still claim under 价保 now (0: nothing): the drop since
    payment less what earlier 价保 requests on the order (not declined) asked for."""
    if order.product_id is None or not order.unit_price_cents:
        return 0
    price = await session.get(ProductPrice, (shop_id, order.product_id))
    settings = await settings_of(session, shop_id)
    drop = rules.price_drop_cents(
        paid_unit_cents=order.unit_price_cents,
        quantity=max(order.amount_cents // order.unit_price_cents, 1),
        current_cents=price.price_cents if price is not None else None,
        paid_at=order.created_at,
        now=now,
        window_days=settings.price_protection_days,
    )
    claimed = await session.scalar(
        select(func.coalesce(func.sum(col(AfterSale.amount_cents)), 0)).where(
            col(AfterSale.shop_id) == shop_id,
            col(AfterSale.order_id) == order.order_id,
            col(AfterSale.type) == "price_protection",
            col(AfterSale.status) != "declined",
        )
    )
    return max(drop - int(claimed or 0), 0)


async def order_room(
    session: AsyncSession, shop_id: str, buyer_id: str, order_id: str, now: datetime
) -> dict[str, object] | None:
    """The 申请售后 sheet's facts about one of the buyer's orders; None if not theirs."""
    order = await session.get(Order, (shop_id, order_id))
    if order is None or order.buyer_id != buyer_id:
        return None
    room = max(order.amount_cents - order.paid_out_cents, 0)
    return {
        "order_id": order.order_id,
        "amount_cents": order.amount_cents,
        "room_cents": room,
        "status": order.status,
        "delivered_at": iso(order.delivered_at),
        "damage_window_open": rules.damage_window_open(order.delivered_at, now),
        "price_protection_cents": min(await price_drop(session, shop_id, order, now), room),
        "tracking_line": order.tracking_line,
    }
