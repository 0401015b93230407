"""The bot's tables: a shop's knowledge base and settings, the conversations it held, and
one row per buyer message it answered (which is also what makes one node answer it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Float, Index, String, Text
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, new_id


class BotFaq(SQLModel, table=True):
    """A knowledge-base entry (知识库): a standard question, its similar phrasings, an answer."""

    __tablename__ = "bot_faqs"
    __table_args__ = (Index("ix_bot_faqs_shop", "shop_id", "updated_at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    question: str = Field(sa_column=Column(String(200), nullable=False))
    similar: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    answer: str = Field(sa_column=Column(Text, nullable=False))
    category: str | None = Field(default=None, max_length=64)
    # An optional product card sent with the answer: {"product_id", "title", "price_cents"…}.
    product: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    enabled: bool = Field(default=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class BotSettings(SQLModel, table=True):
    """A shop's bot: its mode (and per-queue overrides), threshold and word lists.

    `version` goes up with every change of the settings or the knowledge base; each node
    rebuilds its index when it sees a newer one (the bus announces it; the answering
    transaction reads it too, so a lost announcement costs nothing but a late rebuild).
    """

    __tablename__ = "bot_settings"

    shop_id: str = Field(foreign_key="shops.id", primary_key=True, max_length=32)
    mode: str = Field(default="off", max_length=16)
    queue_modes: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    threshold: float = Field(default=0.5, sa_column=Column(Float, nullable=False))
    handoff_words: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    anger_words: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    greeting: str = Field(default="", sa_column=Column(Text, nullable=False))
    version: int = Field(default=1)
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class BotConversation(SQLModel, table=True):
    """A conversation the bot spoke in: how it went, and when and why it went to a human."""

    __tablename__ = "bot_conversations"
    __table_args__ = (Index("ix_bot_conversations_shop_at", "shop_id", "started_at"),)

    conversation_id: str = Field(foreign_key="conversations.id", primary_key=True, max_length=32)
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    mode: str = Field(max_length=16)
    started_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    answers: int = Field(default=0)
    low_streak: int = Field(default=0)  # answers below the threshold in a row, now
    handed_off_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    handoff_reason: str | None = Field(default=None, max_length=32)


class BotReply(SQLModel, table=True):
    """The bot's answer to one buyer message; the primary key makes it answered once, by
    one node. `outcome`: answered, order, fallback, handoff, suggested (assist)."""

    __tablename__ = "bot_replies"
    __table_args__ = (
        Index("ix_bot_replies_shop_at", "shop_id", "created_at"),
        Index("ix_bot_replies_bot_message", "bot_message_id"),
    )

    message_id: str = Field(foreign_key="messages.id", primary_key=True, max_length=32)
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    conversation_id: str = Field(max_length=32)
    question: str = Field(sa_column=Column(Text, nullable=False))
    outcome: str = Field(max_length=16)
    faq_id: str | None = Field(default=None, max_length=32)
    score: float = Field(default=0.0, sa_column=Column(Float, nullable=False))
    bot_message_id: str | None = Field(default=None, max_length=32)
    helpful: bool | None = None  # the buyer's 有帮助 / 没帮助
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
