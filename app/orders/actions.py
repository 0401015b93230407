"""Order state changes: the storefront's upsert, and the compensation room of an order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from app.db import UnitOfWork, rowcount
from app.errors import BadInput
from app.orders.models import ORDER_STATUSES, Order


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


class _Reported(TypedDict):
    """The columns of an order the storefront owns (written on every report)."""

    buyer_id: str
    amount_cents: int
    status: str
    category: str | None
    created_at: datetime
    ship_by: datetime | None
    updated_at: datetime


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
    fields: _Reported = {
        "buyer_id": report.buyer_id,
        "amount_cents": report.amount_cents,
        "status": report.status,
        "category": report.category,
        "created_at": report.created_at,
        "ship_by": report.ship_by,
        "updated_at": now,
    }
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


async def _overwrite(uow: UnitOfWork, shop_id: str, order_id: str, fields: _Reported) -> bool:
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
