"""A shop's proactive-care rules (主动服务) and what each has done, once per order.

`care_actions` holds one row per (shop, order, rule): the worker that inserts it first
fires the rule, every other worker finds the row and does nothing, so a rule fires once
per order however many workers run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Column, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, new_id

RULES = ("logistics_stalled", "follow_up_visit", "refund_apology", "late_shipment")


class CareSettings(SQLModel, table=True):
    """A shop's care rules: each with its switch and its numbers; no row: the defaults."""

    __tablename__ = "care_settings"

    shop_id: str = Field(foreign_key="shops.id", primary_key=True, max_length=32)
    stalled_on: bool = Field(default=False)
    stalled_hours: int = Field(default=48)
    stalled_coupon_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    visit_on: bool = Field(default=False)
    visit_days: int = Field(default=3)
    apology_on: bool = Field(default=False)
    # 晚发即赔 (app/payouts): on unless the admin turns it off.
    late_shipment_on: bool = Field(default=True)
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))

    def as_dict(self) -> dict[str, Any]:
        return {
            "stalled_on": self.stalled_on,
            "stalled_hours": self.stalled_hours,
            "stalled_coupon_cents": self.stalled_coupon_cents,
            "visit_on": self.visit_on,
            "visit_days": self.visit_days,
            "apology_on": self.apology_on,
            "late_shipment_on": self.late_shipment_on,
        }


class CareAction(SQLModel, table=True):
    """One rule fired on one order; a follow-up visit also keeps the buyer's answer."""

    __tablename__ = "care_actions"
    __table_args__ = (
        UniqueConstraint("shop_id", "order_id", "rule", name="uq_care_actions_order_rule"),
        CheckConstraint(
            "goods_score IS NULL OR goods_score BETWEEN 1 AND 5", name="goods_score_range"
        ),
        CheckConstraint(
            "service_score IS NULL OR service_score BETWEEN 1 AND 5", name="service_score_range"
        ),
        Index("ix_care_actions_shop_rule", "shop_id", "rule", "fired_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    order_id: str = Field(sa_column=Column(String(128), nullable=False))
    rule: str = Field(max_length=24)
    buyer_id: str = Field(sa_column=Column(String(128), nullable=False))
    conversation_id: str | None = Field(default=None, max_length=32)
    message_id: str | None = Field(default=None, max_length=32)
    coupon_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    fired_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    goods_score: int | None = None
    service_score: int | None = None
    answered_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
