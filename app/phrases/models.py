"""Stored quick phrases: shop-wide (`owner_key` "shop") or one agent's own (their id)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, new_id

SHOP = "shop"  # owner_key of the shop-wide phrases


class Phrase(SQLModel, table=True):
    __tablename__ = "phrases"
    __table_args__ = (
        # The same words twice in one list are one phrase (an import or an upload from the
        # browser run twice, or in two tabs at once, adds them once).
        UniqueConstraint("shop_id", "owner_key", "text", name="uq_phrases_owner_text"),
        Index("ix_phrases_owner_position", "shop_id", "owner_key", "position"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    # "shop" for the shop-wide list, else the owning agent's id.
    owner_key: str = Field(max_length=32)
    group_name: str = Field(default="", max_length=32)
    position: int = Field(default=0)
    text: str = Field(sa_column=Column(Text, nullable=False))
    # The text's pinyin initials and ASCII letters and digits, lowercase (`rules.initials`),
    # computed when the phrase is saved: `?q=fh` is a plain substring filter on it.
    initials: str = Field(sa_column=Column(Text, nullable=False))
    created_by: str = Field(max_length=32)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
