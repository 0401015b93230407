"""Stored after-sales requests, their append-only ledger, the shop's after-sales settings
and the storefront's current product prices (for price protection, 价保).

An after-sales request with an amount holds that much of its order's room
(`orders.paid_out_cents`, shared with payouts) from the moment it is made until it is
declined: the room is taken by the same conditional UPDATE payouts use, so requests and
payouts together never pass the order's amount, however many race.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
)
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, new_id, table_of
from app.orders.models import Order

TYPES = ("refund_only", "return_refund", "exchange", "damaged", "price_protection")
STATUSES = ("pending", "approved", "declined", "completed")
# Types that give money back (an exchange gives goods).
REFUND_TYPES = ("refund_only", "return_refund", "damaged", "price_protection")
LEDGER_ENTRIES = ("requested", "approved", "declined", "completed", "refused")

_ORDER_KEY = (table_of(Order).c.shop_id, table_of(Order).c.order_id)


class AfterSale(SQLModel, table=True):
    __tablename__ = "aftersales"
    __table_args__ = (
        ForeignKeyConstraint(
            ["shop_id", "order_id"], list(_ORDER_KEY), name="fk_aftersales_order_orders"
        ),
        CheckConstraint("amount_cents >= 0", name="amount_nonnegative"),
        Index("ix_aftersales_shop_status", "shop_id", "status", "created_at"),
        Index("ix_aftersales_shop_order", "shop_id", "order_id"),
        Index("ix_aftersales_shop_buyer", "shop_id", "buyer_id", "created_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    conversation_id: str = Field(foreign_key="conversations.id", max_length=32)
    order_id: str = Field(sa_column=Column(String(128), nullable=False))
    buyer_id: str = Field(sa_column=Column(String(128), nullable=False))
    type: str = Field(max_length=24)
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    upload_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(max_length=16)
    # True: approved by the shop's 极速退款 setting, no agent involved.
    auto: bool = Field(default=False)
    decided_by: str | None = Field(default=None, foreign_key="agents.id", max_length=32)
    decision_note: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    decided_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    completed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class AfterSaleLedgerEntry(SQLModel, table=True):
    """One line of the append-only after-sales ledger: a request, a decision, a refusal."""

    __tablename__ = "aftersale_ledger"
    __table_args__ = (
        Index("ix_aftersale_ledger_shop_at", "shop_id", "at"),
        Index("ix_aftersale_ledger_aftersale", "aftersale_id"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    entry: str = Field(max_length=24)
    aftersale_id: str | None = Field(default=None, max_length=32)
    # Who acted: the buyer, an agent, the storefront, or the platform (极速退款).
    actor_kind: str = Field(max_length=16)
    actor_id: str | None = Field(default=None, sa_column=Column(String(128)))
    order_id: str | None = Field(default=None, sa_column=Column(String(128)))
    buyer_id: str | None = Field(default=None, sa_column=Column(String(128)))
    type: str | None = Field(default=None, max_length=24)
    amount_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    code: str | None = Field(default=None, max_length=64)
    note: str | None = Field(default=None, sa_column=Column(Text))


class AfterSaleSettings(SQLModel, table=True):
    """A shop's after-sales settings; no row means the defaults below."""

    __tablename__ = "aftersale_settings"

    shop_id: str = Field(foreign_key="shops.id", primary_key=True, max_length=32)
    # 极速退款: refund-only requests up to this amount from buyers with a clean record are
    # approved at once. 0: off.
    fast_refund_max_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    # 价保: how long after payment a price drop is made good, and up to what difference
    # it is paid without an agent (above it, an agent decides).
    price_protection_days: int = Field(default=30)
    price_protection_auto_cents: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False)
    )
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))

    def as_dict(self) -> dict[str, Any]:
        return {
            "fast_refund_max_cents": self.fast_refund_max_cents,
            "price_protection_days": self.price_protection_days,
            "price_protection_auto_cents": self.price_protection_auto_cents,
        }


class ProductPrice(SQLModel, table=True):
    """A product's current price as the storefront last reported it (价保)."""

    __tablename__ = "product_prices"
    __table_args__ = (CheckConstraint("price_cents >= 0", name="price_nonnegative"),)

    shop_id: str = Field(foreign_key="shops.id", primary_key=True, max_length=32)
    product_id: str = Field(sa_column=Column(String(128), primary_key=True))
    price_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    changed_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
