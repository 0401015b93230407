"""Stored tags: a shop's list, which conversation carries which, and the shop's close rule."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, PrimaryKeyConstraint, UniqueConstraint, false
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, new_id


class Tag(SQLModel, table=True):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("shop_id", "name", name="uq_tags_shop_name"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    name: str = Field(max_length=32)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ConversationTag(SQLModel, table=True):
    """One tag on one conversation (the pair is the key: tagging twice is one row)."""

    __tablename__ = "conversation_tags"
    __table_args__ = (
        PrimaryKeyConstraint("conversation_id", "tag_id", name="pk_conversation_tags"),
        Index("ix_conversation_tags_shop_tag", "shop_id", "tag_id"),
    )

    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    conversation_id: str = Field(foreign_key="conversations.id", max_length=32)
    tag_id: str = Field(foreign_key="tags.id", max_length=32)
    tagged_by: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class TagSettings(SQLModel, table=True):
    """A shop's tag rules; no row means the defaults (closing needs no tag)."""

    __tablename__ = "tag_settings"

    shop_id: str = Field(foreign_key="shops.id", primary_key=True, max_length=32)
    required_to_close: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
