"""Stored quality inspection (质检): the shop's scorecard and sample size, the daily draws,
and the reviews of closed conversations."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Date, Index, Text
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, new_id

REVIEW_REASONS = ("sample", "flag", "low_rating", "payout", "after_sales")
REVIEW_STATUSES = ("pending", "done")


class QaSettings(SQLModel, table=True):
    __tablename__ = "qa_settings"

    shop_id: str = Field(foreign_key="shops.id", primary_key=True, max_length=32)
    daily_sample: int = Field(default=3)
    # [{"key", "label", "points"}]; none stored: the default card (rules.DEFAULT_SCORECARD).
    scorecard: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))


class QaDraw(SQLModel, table=True):
    """The day's sample of one agent has been drawn: the key makes it once, whatever the
    number of workers."""

    __tablename__ = "qa_draws"

    agent_id: str = Field(foreign_key="agents.id", primary_key=True, max_length=32)
    day: date = Field(sa_column=Column(Date(), primary_key=True))
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    drawn: int = Field(default=0)
    drawn_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class QaReview(SQLModel, table=True):
    """A closed conversation to inspect (once, whatever brought it), and its scores."""

    __tablename__ = "qa_reviews"
    __table_args__ = (
        Index("ix_qa_reviews_shop_status", "shop_id", "status", "created_at"),
        Index("ix_qa_reviews_agent", "agent_id", "status"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    conversation_id: str = Field(max_length=32, sa_column_kwargs={"unique": True})
    agent_id: str = Field(foreign_key="agents.id", max_length=32)
    reason: str = Field(max_length=16)
    day: date = Field(sa_column=Column(Date(), nullable=False))
    status: str = Field(default="pending", max_length=8)
    scores: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON))
    total: int | None = None
    max_total: int | None = None
    comment: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    reviewer_id: str | None = Field(default=None, max_length=32)
    reviewed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
