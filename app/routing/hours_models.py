"""Stored service hours of a shop, and the conversations left as 留言 (nobody could answer)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime


class ServiceHours(SQLModel, table=True):
    """One row per shop that has set hours; no row: always open (as before hours existed)."""

    __tablename__ = "service_hours"

    shop_id: str = Field(foreign_key="shops.id", primary_key=True, max_length=32)
    # As `hours_rules.schedule_wire` writes them: {"mon": [["09:00", "21:00"]], ...}
    weekly: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    exceptions: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    auto_reply: str = Field(default="", sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class LeftMessage(SQLModel, table=True):
    """A conversation whose buyer was told nobody could answer (留言): claimed once, by the
    primary key, so the buyer is told (and auto-replied to) once however many nodes look."""

    __tablename__ = "left_messages"
    __table_args__ = (Index("ix_left_messages_shop_since", "shop_id", "since"),)

    conversation_id: str = Field(foreign_key="conversations.id", primary_key=True, max_length=32)
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    reason: str = Field(max_length=32)  # hours_rules.OUTSIDE_HOURS | NO_AGENT_ONLINE
    since: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))  # queued since
    opens_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    told_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
