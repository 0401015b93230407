"""Order state changes: the storefront's upsert, and the compensation room of an order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from app.db import UnitOfWork, rowcount
from app.errors import BadInput, NotFound
from app.orders.models import ORDER_STATUSES, Order, OrderTracking


@dataclass(frozen=True)
class OrderReport:
    """An order as the storefront server sends it (POST /orders)."""

    order_id: str
    buyer_id: str
    amount_cents: int
    status: str
    category: str | None
    created_at: datetime
    ship_by: datetime | None = None
    # Logistics and what was bought: kept as they are when a report leaves them out.
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    carrier: str | None = None
    tracking_no: str | None = None
    product_id: str | None = None
    unit_price_cents: int | None = None


_OPTIONAL = (
    "shipped_at",
    "delivered_at",
    "carrier",
    "tracking_no",
    "product_id",
    "unit_price_cents",
)


def check_report(report: OrderReport) -> None:
    if report.status not in ORDER_STATUSES:
        raise BadInput(
            f"Expected status one of {', '.join(ORDER_STATUSES)}, but got {report.status!r}.",
            code="invalid_status",
        )
    if report.amount_cents < 0:
        raise BadInput("amount_cents must not be negative.", code="invalid_amount")


async def upsert_order(
    uow: UnitOfWork, shop_id: str, report: OrderReport, now: datetime
) -> tuple[Order, bool]:
    """Store the storefront's view of an order; returns (order, created).

    The storefront is the record for what it sends, so a repeat overwrites those fields;
    `paid_out_cents` belongs to payouts and is never touched here. Update first, insert
    if there was nothing to update; a concurrent first report of the same order loses
    the insert on the primary key and updates instead.
    """
    check_report(report)
    fields: dict[str, Any] = {
        "buyer_id": report.buyer_id,
        "amount_cents": report.amount_cents,
        "status": report.status,
        "category": report.category,
        "created_at": report.created_at,
        "ship_by": report.ship_by,
        "updated_at": now,
    }
    fields.update({k: v for k in _OPTIONAL if (v := getattr(report, k)) is not None})
    if await _overwrite(uow, shop_id, report.order_id, fields):
        return await _reload(uow, shop_id, report.order_id), False
    order = Order(
        shop_id=shop_id, order_id=report.order_id, paid_out_cents=0, received_at=now, **fields
    )
    try:
        async with uow.session.begin_nested():
            uow.session.add(order)
    except IntegrityError:
        if not await _overwrite(uow, shop_id, report.order_id, fields):
            raise
        return await _reload(uow, shop_id, report.order_id), False
    return order, True


async def _overwrite(uow: UnitOfWork, shop_id: str, order_id: str, fields: dict[str, Any]) -> bool:
    result = await uow.session.execute(
        update(Order)
        .where(col(Order.shop_id) == shop_id, col(Order.order_id) == order_id)
        .values(**fields)
        .execution_options(synchronize_session=False)
    )
    return bool(rowcount(result))


async def _reload(uow: UnitOfWork, shop_id: str, order_id: str) -> Order:
    order = await uow.session.get(Order, (shop_id, order_id), populate_existing=True)
    assert order is not None
    return order


async def take_payout_room(uow: UnitOfWork, shop_id: str, order_id: str, amount_cents: int) -> bool:
    """Count `amount_cents` as paid out on the order if the total stays within its amount.

    One conditional UPDATE: the database checks and adds in one step (the row lock makes
    concurrent payouts on one order wait for each other), so no interleaving of
    requests, on one node or several, can pay an order more than its amount.
    """
    result = await uow.session.execute(
        update(Order)
        .where(
            col(Order.shop_id) == shop_id,
            col(Order.order_id) == order_id,
            col(Order.paid_out_cents) + amount_cents <= col(Order.amount_cents),
        )
        .values(paid_out_cents=col(Order.paid_out_cents) + amount_cents)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


async def release_payout_room(
    uow: UnitOfWork, shop_id: str, order_id: str, amount_cents: int
) -> None:
    """Give back room taken by `take_payout_room` (an after-sales request declined)."""
    await uow.session.execute(
        update(Order)
        .where(
            col(Order.shop_id) == shop_id,
            col(Order.order_id) == order_id,
            col(Order.paid_out_cents) >= amount_cents,
        )
        .values(paid_out_cents=col(Order.paid_out_cents) - amount_cents)
        .execution_options(synchronize_session=False)
    )


async def add_tracking(
    uow: UnitOfWork,
    shop_id: str,
    order_id: str,
    *,
    at: datetime,
    line: str,
    delivered: bool,
    now: datetime,
) -> Order:
    """Store one tracking update; the order keeps the latest line (by `at`, not by arrival:
    updates from a carrier may come out of order). `delivered` marks the order delivered
    at `at` unless it already was."""
    order = await uow.session.get(Order, (shop_id, order_id))
    if order is None:
        raise NotFound(f"No order {order_id!r} in this shop.")
    uow.session.add(
        OrderTracking(shop_id=shop_id, order_id=order_id, at=at, line=line, received_at=now)
    )
    await uow.session.execute(
        update(Order)
        .where(
            col(Order.shop_id) == shop_id,
            col(Order.order_id) == order_id,
            or_(col(Order.tracking_at).is_(None), col(Order.tracking_at) <= at),
        )
        .values(tracking_line=line, tracking_at=at, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if delivered:
        await uow.session.execute(
            update(Order)
            .where(
                col(Order.shop_id) == shop_id,
                col(Order.order_id) == order_id,
                col(Order.delivered_at).is_(None),
            )
            .values(delivered_at=at)
            .execution_options(synchronize_session=False)
        )
    return await _reload(uow, shop_id, order_id)
