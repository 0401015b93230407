"""Stored compliance state: each shop's rules and their version, flagged messages, and the
one warning a buyer gets for abusing an agent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, new_id


class ComplianceSettings(SQLModel, table=True):
    """A shop's rules version: bumped by every change, so each node's cache knows it is stale."""

    __tablename__ = "compliance_settings"

    shop_id: str = Field(foreign_key="shops.id", primary_key=True, max_length=32)
    version: int = Field(default=0)
    updated_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class ComplianceRule(SQLModel, table=True):
    """One of the shop's own words (beside the platform's defaults)."""

    __tablename__ = "compliance_rules"
    __table_args__ = (UniqueConstraint("shop_id", "word", name="uq_compliance_rules_shop_word"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    word: str = Field(max_length=50)
    action: str = Field(max_length=8)
    category: str = Field(default="custom", max_length=16)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ComplianceFlag(SQLModel, table=True):
    """A stored message that broke a `flag` rule (an agent's), or an abusive buyer's message:
    what supervisors review."""

    __tablename__ = "compliance_flags"
    __table_args__ = (
        Index("ix_compliance_flags_shop_at", "shop_id", "created_at"),
        Index("ix_compliance_flags_conversation", "conversation_id", "sender"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    conversation_id: str = Field(max_length=32)
    message_id: str = Field(max_length=32, sa_column_kwargs={"unique": True})
    sender: str = Field(max_length=8)  # "agent" or "buyer"
    sender_id: str = Field(sa_column=Column(String(128), nullable=False))
    code: str = Field(max_length=32)
    category: str = Field(max_length=16)
    matched: str = Field(max_length=200)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    reviewed_by: str | None = Field(default=None, max_length=32)
    reviewed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class AbuseWarning(SQLModel, table=True):
    """The one warning a buyer gets in a conversation for abusing its agent (the key says once)."""

    __tablename__ = "compliance_abuse_warnings"

    conversation_id: str = Field(primary_key=True, max_length=32)
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    buyer_id: str = Field(sa_column=Column(String(128), nullable=False))
    warned_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
