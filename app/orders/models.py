"""Stored orders, keyed by the storefront's own order id within a shop."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKeyConstraint, Index, String
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, new_id

ORDER_STATUSES = ("paid", "shipped", "refunded")


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_buyer", "shop_id", "buyer_id", "created_at"),
        # The late-shipment job looks for paid orders whose ship_by has passed.
        Index("ix_orders_status_ship_by", "status", "ship_by"),
        # The care rules look for shipped orders without news, and delivered ones.
        Index("ix_orders_shipped_at", "shipped_at"),
        Index("ix_orders_delivered_at", "delivered_at"),
        Index("ix_orders_product", "shop_id", "product_id", "created_at"),
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
    # Logistics, as the storefront reports them (POST /orders, POST /orders/{id}/tracking).
    shipped_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    delivered_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    carrier: str | None = Field(default=None, max_length=64)
    tracking_no: str | None = Field(default=None, max_length=128)
    # The latest tracking line (also in `order_tracking`), for the order card and the bot.
    tracking_line: str | None = Field(default=None, max_length=500)
    tracking_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    # What was bought, for price protection (价保): one product at a unit price.
    product_id: str | None = Field(default=None, sa_column=Column(String(128)))
    unit_price_cents: int | None = Field(default=None, sa_column=Column(BigInteger))


class OrderTracking(SQLModel, table=True):
    """One tracking update of an order, as the storefront (or its carrier) reports it."""

    __tablename__ = "order_tracking"
    __table_args__ = (
        Index("ix_order_tracking_order", "shop_id", "order_id", "at"),
        ForeignKeyConstraint(
            ["shop_id", "order_id"],
            ["orders.shop_id", "orders.order_id"],
            name="fk_order_tracking_order_orders",
        ),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    shop_id: str = Field(max_length=32)
    order_id: str = Field(sa_column=Column(String(128), nullable=False))
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    line: str = Field(max_length=500)
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
