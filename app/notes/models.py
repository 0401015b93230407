"""Stored @mentions: each colleague a note names keeps it until they have read it, so one
offline when mentioned finds it in their workbench next time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, new_id


class NoteMention(SQLModel, table=True):
    """One colleague named in one note (the pair is unique: a note names someone once)."""

    __tablename__ = "note_mentions"
    __table_args__ = (
        UniqueConstraint("message_id", "agent_id", name="uq_note_mentions_message_agent"),
        # A colleague's mentions, newest first (the workbench's list at load).
        Index("ix_note_mentions_agent", "agent_id", "created_at", "id"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    agent_id: str = Field(foreign_key="agents.id", max_length=32)  # the colleague named
    message_id: str = Field(foreign_key="messages.id", max_length=32)  # the note
    conversation_id: str = Field(foreign_key="conversations.id", max_length=32)
    author_id: str = Field(foreign_key="agents.id", max_length=32)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    read_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
