"""Wire shape of an order (PROTOCOL.md: POST /orders fields, plus what the panel shows)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from app.chat.schemas import iso
from app.orders.models import Order


def order_public(o: Order, *, linked: bool | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "order_id": o.order_id,
        "buyer_id": o.buyer_id,
        "amount_cents": o.amount_cents,
        "status": o.status,
        "category": o.category,
        "created_at": iso(o.created_at),
        "ship_by": iso(o.ship_by),
        "paid_out_cents": o.paid_out_cents,
        "updated_at": iso(o.updated_at),
        "shipped_at": iso(o.shipped_at),
        "delivered_at": iso(o.delivered_at),
        "carrier": o.carrier,
        "tracking_no": o.tracking_no,
        "tracking_line": o.tracking_line,
        "tracking_at": iso(o.tracking_at),
        "product_id": o.product_id,
        "unit_price_cents": o.unit_price_cents,
    }
    if linked is not None:
        out["linked"] = linked
    return out


class OrderPublic(BaseModel):
    """An order as reported by the storefront, with what has been paid out against it."""

    order_id: str
    buyer_id: str
    amount_cents: int
    status: str
    category: str | None
    created_at: str | None
    ship_by: str | None
    paid_out_cents: int
    updated_at: str | None
    shipped_at: str | None = None
    delivered_at: str | None = None
    carrier: str | None = None
    tracking_no: str | None = None
    # The latest tracking update, for the order card (and the bot's 到哪了).
    tracking_line: str | None = None
    tracking_at: str | None = None
    product_id: str | None = None
    unit_price_cents: int | None = None


class PanelOrder(OrderPublic):
    # Only with `?conversation_id=`: whether the order is linked to that conversation.
    linked: bool | None = Field(default=None, description="Present only with `conversation_id`.")
