"""Stored orders, keyed by the storefront's own order id within a shop."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Column, Index, String
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime

ORDER_STATUSES = ("paid", "shipped", "refunded")


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_buyer", "shop_id", "buyer_id", "created_at"),
        # The late-shipment job looks for paid orders whose ship_by has passed.
        Index("ix_orders_status_ship_by", "status", "ship_by"),
        CheckConstraint("amount_cents >= 0", name="amount_nonnegative"),
        CheckConstraint("paid_out_cents >= 0", name="paid_out_nonnegative"),
    )

    shop_id: str = Field(foreign_key="shops.id", primary_key=True, max_length=32)
    # The storefront's id, unchanged (PROTOCOL: upsert by order_id).
    order_id: str = Field(sa_column=Column(String(128), primary_key=True))
    buyer_id: str = Field(sa_column=Column(String(128), nullable=False))
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    status: str = Field(max_length=16)
    category: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    ship_by: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    # Compensation paid on this order so far. Raised only by the conditional UPDATE in
    # `take_payout_room`, which is what keeps the total within `amount_cents`.
    paid_out_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
