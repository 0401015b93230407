"""Late-shipment coupons (晚发即赔): a paid order past its `ship_by` gets a coupon card, once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlmodel import col

from app.chat import notices
from app.db import UnitOfWork, insert_ignore, new_id, rowcount
from app.orders.models import Order
from app.payouts import rules
from app.payouts.models import LateShipmentCoupon, PayoutLedgerEntry
from app.webhooks import outbox
from app.webhooks.rules import coupon_data


class _NotDue(Exception):
    """The order shipped (or moved its ship_by) since the job listed it."""


async def issue_late_shipment_coupon(
    uow: UnitOfWork, *, shop_id: str, order_id: str, now: datetime
) -> LateShipmentCoupon | None:
    """Decide 晚发即赔 for one late order, once: None if another worker has, or it is no longer due.

    The first statement claims the order by inserting its row (unique per order), so a
    second worker waits for the first and then finds the claim; on SQLite, writing first
    also takes the write lock before this transaction has read anything.
    """
    s = uow.session
    try:
        async with s.begin_nested():
            claim = await s.execute(
                insert_ignore(
                    uow.dialect,
                    LateShipmentCoupon,
                    ["shop_id", "order_id"],
                    {
                        "id": new_id(),
                        "shop_id": shop_id,
                        "order_id": order_id,
                        "buyer_id": "",
                        "amount_cents": 0,
                        "issued_at": now,
                    },
                )
            )
            if rowcount(claim) != 1:
                return None
            order = (
                (
                    await s.execute(
                        select(Order)
                        .where(col(Order.shop_id) == shop_id, col(Order.order_id) == order_id)
                        .with_for_update()
                        .execution_options(populate_existing=True)
                    )
                )
                .scalars()
                .first()
            )
            if (
                order is None
                or order.status != "paid"
                or order.ship_by is None
                or order.ship_by > now
            ):
                raise _NotDue
    except _NotDue:
        return None
    coupon = (
        await s.execute(
            select(LateShipmentCoupon).where(
                col(LateShipmentCoupon.shop_id) == shop_id,
                col(LateShipmentCoupon.order_id) == order_id,
            )
        )
    ).scalar_one()
    coupon.buyer_id = order.buyer_id
    coupon.amount_cents = rules.late_shipment_coupon_cents(order.amount_cents)
    if coupon.amount_cents == 0:
        return coupon  # under ¥3: decided, and nothing to give
    amount = rules.yuan(coupon.amount_cents)
    card = notices.Notice(
        order.buyer_id,
        "coupon_card",
        f"抱歉,您的订单 {order_id} 未能按时发货。送您一张 {amount} 无门槛券(晚发即赔)。",
        {
            "coupon": {
                "id": coupon.id,
                "title": f"晚发即赔 {amount} 无门槛券",
                "amount_cents": coupon.amount_cents,
                "min_spend_cents": 0,
                "reason": "late_shipment",
                "order_id": order_id,
            },
            "opt_out": False,
        },
    )
    (posted,) = await notices.post(uow, shop_id, [card], now=now)
    coupon.conversation_id, coupon.message_id = posted.conversation_id, posted.message_id
    s.add(
        PayoutLedgerEntry(
            shop_id=shop_id,
            at=now,
            entry="coupon_issued",
            actor_kind="platform",
            order_id=order_id,
            conversation_id=posted.conversation_id,
            buyer_id=order.buyer_id,
            amount_cents=coupon.amount_cents,
            reason="late_shipment",
        )
    )
    issued = coupon_data(
        coupon_id=coupon.id,
        source="late_shipment",
        buyer_id=order.buyer_id,
        title=f"晚发即赔 {amount} 无门槛券",
        amount_cents=coupon.amount_cents,
        min_spend_cents=0,
        issued_at=now,
        order_id=order_id,
    )
    await outbox.record(uow, shop_id, "coupon.issued", issued, now=now, about=f"coupon:{coupon.id}")
    return coupon
