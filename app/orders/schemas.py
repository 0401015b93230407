"""Wire shape of an order (PROTOCOL.md: POST /orders fields, plus what the panel shows)."""

from __future__ import annotations

from typing import Any

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
    }
    if linked is not None:
        out["linked"] = linked
    return out
