"""Stored recall state: storefront intent events, campaigns, per-buyer sends, the 7-day cap."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Column, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel, col

from app.chat.models import Conversation
from app.db import UTCDateTime, new_id

CAMPAIGN_STATUSES = ("draft", "scheduled", "running", "completed", "cancelled")
EVENT_TYPES = ("cart_add", "product_view")
# A send row starts `pending` (the audience snapshot taken when the campaign starts) and
# ends `sent` (cap claimed, card posted), `capped` (another recall came first), or
# `opted_out` / `purchased` (the buyer opted out or ordered after the snapshot).
SEND_STATUSES = ("pending", "sent", "capped", "opted_out", "purchased", "minor")


# The audience query (`service.signals_sql`) reads a shop's consultations of the last 30
# days; the index is declared here, beside its only reader, and created by 0006_recall_scale.
Index("ix_conversations_shop_opened", col(Conversation.shop_id), col(Conversation.opened_at))


class RecallEvent(SQLModel, table=True):
    """A storefront signal (`POST /events`): the buyer added to cart or viewed a product."""

    __tablename__ = "recall_events"
    __table_args__ = (
        Index("ix_recall_events_shop_at", "shop_id", "at"),
        Index("ix_recall_events_buyer", "shop_id", "buyer_id", "at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    buyer_id: str = Field(sa_column=Column(String(128), nullable=False))
    type: str = Field(max_length=16)
    product_id: str | None = Field(default=None, sa_column=Column(String(128)))
    category: str | None = Field(default=None, max_length=64)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class RecallCampaign(SQLModel, table=True):
    __tablename__ = "recall_campaigns"
    __table_args__ = (
        # The job looks for campaigns that are due: scheduled or running, by send time.
        Index("ix_recall_campaigns_due", "status", "send_at"),
        Index("ix_recall_campaigns_shop", "shop_id", "created_at"),
        CheckConstraint("min_intent >= 0 AND min_intent <= 100", name="min_intent_range"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    name: str = Field(max_length=200)
    send_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    ends_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    min_intent: int
    coupon: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    message: str = Field(default="", sa_column=Column(Text, nullable=False))
    status: str = Field(default="draft", max_length=16)
    created_by: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    started_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    # Progress of a run, changed in the same transaction as the sends they count.
    total: int = Field(default=0)
    sent: int = Field(default=0)
    skipped: int = Field(default=0)


class RecallSend(SQLModel, table=True):
    """One buyer of one campaign's audience; its id is the coupon's id."""

    __tablename__ = "recall_sends"
    __table_args__ = (
        UniqueConstraint("campaign_id", "buyer_id", name="uq_recall_sends_campaign_buyer"),
        Index("ix_recall_sends_pending", "campaign_id", "status", "buyer_id"),
        Index("ix_recall_sends_buyer", "shop_id", "buyer_id", "sent_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    campaign_id: str = Field(foreign_key="recall_campaigns.id", max_length=32)
    buyer_id: str = Field(sa_column=Column(String(128), nullable=False))
    score: int = Field(default=0)
    status: str = Field(default="pending", max_length=16)
    conversation_id: str | None = Field(default=None, max_length=32)
    message_id: str | None = Field(default=None, max_length=32)
    seq: int | None = Field(default=None)
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    claimed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class RecallCap(SQLModel, table=True):
    """When a shop last recalled a buyer. Claimed only by `claim_recall_slots`' conditional
    upsert, which is what holds the rolling 7-day cap across campaigns and workers."""

    __tablename__ = "recall_caps"

    shop_id: str = Field(foreign_key="shops.id", primary_key=True, max_length=32)
    buyer_id: str = Field(sa_column=Column(String(128), primary_key=True))
    last_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    campaign_id: str = Field(max_length=32)


class RecallOptOut(SQLModel, table=True):
    __tablename__ = "recall_opt_outs"

    shop_id: str = Field(foreign_key="shops.id", primary_key=True, max_length=32)
    buyer_id: str = Field(sa_column=Column(String(128), primary_key=True))
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class RecallSettings(SQLModel, table=True):
    """A shop's sending window, minutes after local midnight; no row: 09:00-21:00."""

    __tablename__ = "recall_settings"
    __table_args__ = (
        CheckConstraint(
            "window_start_min >= 0 AND window_end_min <= 1440 AND window_start_min < window_end_min",
            name="window_range",
        ),
    )

    shop_id: str = Field(foreign_key="shops.id", primary_key=True, max_length=32)
    window_start_min: int = Field(default=9 * 60)
    window_end_min: int = Field(default=21 * 60)
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
