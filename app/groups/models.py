"""Stored fan groups: members, messages (gap-free per-group `seq`), check-ins, giveaways."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Date, Index, String
from sqlmodel import Field, SQLModel

from app.chat.models import MessageBase, message_constraints
from app.db import UTCDateTime, new_id

MEMBER_ACTIVE = "active"
MEMBER_LEFT = "left"
MEMBER_REMOVED = "removed"


class Group(SQLModel, table=True):
    __tablename__ = "groups"
    __table_args__ = (Index("ix_groups_shop", "shop_id", "created_at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    name: str = Field(max_length=100)
    max_members: int = Field(default=500)
    # Held by conditional updates, never by counting rows then writing.
    member_count: int = Field(default=0)
    last_seq: int = Field(default=0)
    muted_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class GroupMember(SQLModel, table=True):
    """One row per (group, buyer) ever joined; `status` remembers who left or was removed."""

    __tablename__ = "group_members"
    __table_args__ = (Index("ix_group_members_buyer", "shop_id", "buyer_id", "status"),)

    group_id: str = Field(foreign_key="groups.id", primary_key=True, max_length=32)
    buyer_id: str = Field(sa_column=Column(String(128), primary_key=True))
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    status: str = Field(default=MEMBER_ACTIVE, max_length=16)
    muted_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    joined_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class GroupMessage(MessageBase, table=True):
    __tablename__ = "group_messages"
    __table_args__ = message_constraints("group_messages", "group", sends_within="group_id")

    group_id: str = Field(foreign_key="groups.id", max_length=32)


class GroupCheckin(SQLModel, table=True):
    """A buyer's check-in on one day (the shop's calendar); the primary key makes it once a day."""

    __tablename__ = "group_checkins"

    group_id: str = Field(foreign_key="groups.id", primary_key=True, max_length=32)
    buyer_id: str = Field(sa_column=Column(String(128), primary_key=True))
    day: date = Field(sa_column=Column(Date, primary_key=True))
    streak: int
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Giveaway(SQLModel, table=True):
    __tablename__ = "giveaways"
    __table_args__ = (Index("ix_giveaways_group", "group_id", "created_at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    group_id: str = Field(foreign_key="groups.id", max_length=32)
    title: str = Field(max_length=200)
    quantity: int
    # Only ever raised by `claimed = claimed + 1 WHERE claimed < quantity`.
    claimed: int = Field(default=0)
    coupon: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_by: str = Field(max_length=32)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class GiveawayClaim(SQLModel, table=True):
    """One coupon per member and giveaway: the primary key refuses a second claim."""

    __tablename__ = "giveaway_claims"

    giveaway_id: str = Field(foreign_key="giveaways.id", primary_key=True, max_length=32)
    buyer_id: str = Field(sa_column=Column(String(128), primary_key=True))
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    claimed_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class GroupSensitiveWord(SQLModel, table=True):
    __tablename__ = "group_sensitive_words"

    shop_id: str = Field(foreign_key="shops.id", primary_key=True, max_length=32)
    word: str = Field(sa_column=Column(String(100), primary_key=True))
