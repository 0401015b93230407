"""Stored payouts, their append-only ledger, and the counters that hold the limits.

The counters (`payout_daily_totals`, `payout_funds`, `orders.paid_out_cents`) are
changed only by conditional UPDATEs (`... WHERE total + amount <= limit`), so a limit
holds however many requests race, on one node or several. The ledger is only ever
INSERTed into; the migration adds triggers that refuse UPDATE and DELETE on it.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, new_id, table_of
from app.orders.models import Order

REASONS = ("late_shipment", "damaged", "price_protection", "shipping_fee", "goodwill")
PAYOUT_STATUSES = ("paid", "pending_approval", "rejected")

# Ledger entries. Money moves only with `paid` (a payout) and `fund_topup`;
# `coupon_issued` records a late-shipment coupon (a voucher, not cash from the fund).
LEDGER_ENTRIES = (
    "requested",
    "replayed",
    "pending_approval",
    "paid",
    "approved",
    "rejected",
    "refused",
    "fund_topup",
    "coupon_issued",
)

# The orders a payout may point at (the composite key of `orders`).
_ORDER_KEY = (table_of(Order).c.shop_id, table_of(Order).c.order_id)


class Payout(SQLModel, table=True):
    __tablename__ = "payouts"
    __table_args__ = (
        # A retry never pays twice: one payout per shop and idempotency key.
        UniqueConstraint("shop_id", "idempotency_key", name="uq_payouts_shop_idempotency_key"),
        ForeignKeyConstraint(
            ["shop_id", "order_id"], list(_ORDER_KEY), name="fk_payouts_order_orders"
        ),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        Index("ix_payouts_shop_status", "shop_id", "status", "created_at"),
        Index("ix_payouts_shop_agent", "shop_id", "agent_id", "created_at"),
        Index("ix_payouts_shop_order", "shop_id", "order_id"),
        Index("ix_payouts_shop_paid_at", "shop_id", "paid_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    idempotency_key: str = Field(max_length=200)
    # SHA-256 of who asked and what: the same key with another body is refused.
    request_hash: str = Field(max_length=64)
    conversation_id: str = Field(foreign_key="conversations.id", max_length=32)
    order_id: str = Field(sa_column=Column(String(128), nullable=False))
    buyer_id: str = Field(sa_column=Column(String(128), nullable=False))
    # The agent who asked for it, or paid it on their own authority. None: no agent was
    # involved, the platform paid it on the shop's agent-free authority (a 价保 claim
    # within `price_protection_auto_cents`); counted against no agent's daily total, and
    # its ledger lines have `actor_kind` "platform".
    agent_id: str | None = Field(default=None, foreign_key="agents.id", max_length=32)
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    reason: str = Field(max_length=32)
    note: str | None = Field(default=None, sa_column=Column(Text))
    status: str = Field(max_length=24)
    approved_by: str | None = Field(default=None, foreign_key="agents.id", max_length=32)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    decided_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    paid_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class PayoutLedgerEntry(SQLModel, table=True):
    """One line of the append-only ledger: a request, a decision, or money moving."""

    __tablename__ = "payout_ledger"
    __table_args__ = (
        Index("ix_payout_ledger_shop_at", "shop_id", "at"),
        Index("ix_payout_ledger_payout", "payout_id"),
        Index("ix_payout_ledger_shop_entry", "shop_id", "entry"),
    )

    # BIGINT on PostgreSQL; SQLite's autoincrementing key must be spelled INTEGER.
    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    entry: str = Field(max_length=24)
    payout_id: str | None = Field(default=None, foreign_key="payouts.id", max_length=32)
    # Who acted: an agent (requester, approver, admin) or the platform (scheduled jobs).
    actor_kind: str = Field(max_length=16)
    actor_id: str | None = Field(default=None, max_length=32)
    agent_id: str | None = Field(default=None, max_length=32)  # the requesting agent
    approver_id: str | None = Field(default=None, max_length=32)
    order_id: str | None = Field(default=None, sa_column=Column(String(128)))
    conversation_id: str | None = Field(default=None, max_length=32)
    buyer_id: str | None = Field(default=None, sa_column=Column(String(128)))
    amount_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    reason: str | None = Field(default=None, max_length=32)
    code: str | None = Field(default=None, max_length=64)  # why a refusal was refused
    idempotency_key: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, sa_column=Column(Text))


class PayoutDailyTotal(SQLModel, table=True):
    """What an agent has authorised today (their shop's calendar day), paid at once or approved."""

    __tablename__ = "payout_daily_totals"
    __table_args__ = (CheckConstraint("paid_cents >= 0", name="paid_nonnegative"),)

    agent_id: str = Field(foreign_key="agents.id", primary_key=True, max_length=32)
    day: date = Field(sa_column=Column(Date, primary_key=True))
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    paid_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


class PayoutFund(SQLModel, table=True):
    """The shop's prepaid payout fund; no row means an empty fund."""

    __tablename__ = "payout_funds"
    __table_args__ = (CheckConstraint("balance_cents >= 0", name="balance_nonnegative"),)

    shop_id: str = Field(foreign_key="shops.id", primary_key=True, max_length=32)
    balance_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class LateShipmentCoupon(SQLModel, table=True):
    """The 晚发即赔 decision for one order: taken once, by whichever worker inserts first."""

    __tablename__ = "late_shipment_coupons"
    __table_args__ = (
        UniqueConstraint("shop_id", "order_id", name="uq_late_shipment_coupons_order"),
        ForeignKeyConstraint(
            ["shop_id", "order_id"], list(_ORDER_KEY), name="fk_late_shipment_coupons_order_orders"
        ),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    order_id: str = Field(sa_column=Column(String(128), nullable=False))
    buyer_id: str = Field(sa_column=Column(String(128), nullable=False))
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))  # 0: too small an order
    conversation_id: str | None = Field(default=None, max_length=32)
    message_id: str | None = Field(default=None, max_length=32)
    issued_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
