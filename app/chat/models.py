"""Stored conversations and messages; `seq` numbers a conversation's messages without gaps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    ColumnElement,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    literal,
    text,
)
from sqlmodel import Field, SQLModel, col

from app.db import UTCDateTime, new_id, unique_where

MESSAGE_KINDS = (
    "text",
    "image",
    "product_card",
    "order_card",
    "coupon_card",
    "compensation_card",
    "system",
    "note",  # an internal note: staff only (app.chat.visibility)
)
CLIENT_KINDS = ("text", "image", "product_card", "order_card")
AGENT_WROTE = "sender = 'agent'"  # the rows of `ix_messages_agent_wrote`


class Conversation(SQLModel, table=True):
    __tablename__ = "conversations"
    __table_args__ = (
        # A buyer has at most one open conversation with a shop, whatever the races.
        unique_where(
            "uq_conversations_open_buyer", "shop_id", "buyer_id", where="status != 'closed'"
        ),
        Index("ix_conversations_waiting", "shop_id", "queue", "status", "queued_at"),
        Index("ix_conversations_agent_status", "agent_id", "status"),
        Index("ix_conversations_buyer", "shop_id", "buyer_id", "assigned_at"),
        Index("ix_conversations_status", "status"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    buyer_id: str = Field(sa_column=Column(String(128), nullable=False))
    queue: str = Field(default="general", max_length=64)
    status: str = Field(default="queued", max_length=16)
    agent_id: str | None = Field(default=None, foreign_key="agents.id", max_length=32)
    elder: bool = Field(default=False)
    last_seq: int = Field(default=0)
    buyer_read_seq: int = Field(default=0)
    agent_read_seq: int = Field(default=0)
    opened_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    queued_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    assigned_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    close_reason: str | None = Field(default=None, max_length=32)
    last_buyer_message_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    # "bot" while the shop's bot holds it (status "bot": no queue, no agent), "human" once a
    # person may serve it (app/bot). The group commit's openings take the default.
    handled_by: str = Field(
        default="human", sa_column=Column(String(8), nullable=False, server_default="human")
    )


class MessageBase(SQLModel):
    """What a message is, in a conversation or a group: numbered by `seq` in its stream,
    with an optional client id that makes a resend idempotent.

    Columns are declared by type, not `sa_column=Column(...)`: a Column object can belong
    to one table only, and two tables inherit these.
    """

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    seq: int
    sender: str = Field(max_length=16)
    sender_id: str | None = Field(default=None, max_length=128)
    kind: str = Field(default="text", max_length=32)
    body: str = Field(default="", sa_type=Text, nullable=False)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON, nullable=False)
    client_msg_id: str | None = Field(default=None, max_length=128)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


def message_constraints(
    table: str, stream: str, sends_within: str
) -> tuple[UniqueConstraint, Index]:
    """The two rules of a table of MessageBase rows, named `uq_<table>_<stream>_seq` and
    `uq_<table>_client_msg`: one message per `seq` in its stream (the `<stream>_id`
    column), and idempotent sends, one stored message per sender and client message id
    within `sends_within` (a column)."""
    return (
        UniqueConstraint(f"{stream}_id", "seq", name=f"uq_{table}_{stream}_seq"),
        unique_where(
            f"uq_{table}_client_msg",
            sends_within,
            "sender",
            "sender_id",
            "client_msg_id",
            where="client_msg_id IS NOT NULL",
        ),
    )


class Message(MessageBase, table=True):
    __tablename__ = "messages"
    __table_args__ = (
        *message_constraints("messages", "conversation", sends_within="shop_id"),
        # A shop's messages of a period, newest or oldest first, page by page (search's walk,
        # exports); created by migration 0012.
        Index("ix_messages_shop_created", "shop_id", "created_at", "id", "conversation_id"),
        # The conversations an agent wrote in (search's reach); agents' messages only, so a
        # buyer's message costs it nothing (migration 0024). A query must name the value
        # in its text (`sent_by("agent")`) for either database to use it.
        Index(
            "ix_messages_agent_wrote",
            "shop_id",
            "sender_id",
            "conversation_id",
            sqlite_where=text(AGENT_WROTE),
            postgresql_where=text(AGENT_WROTE),
        ),
    )

    conversation_id: str = Field(foreign_key="conversations.id", max_length=32)


class Upload(SQLModel, table=True):
    """An image a buyer or agent uploaded; the bytes live in the database (the record)."""

    __tablename__ = "uploads"
    __table_args__ = (
        Index("ix_uploads_owner_at", "shop_id", "owner_kind", "owner_id", "created_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    owner_kind: str = Field(max_length=16)
    owner_id: str = Field(sa_column=Column(String(128), nullable=False))
    content_type: str = Field(max_length=32)
    size: int
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Rating(SQLModel, table=True):
    """The buyer's 1-5 rating of a closed conversation; one per conversation."""

    __tablename__ = "ratings"
    __table_args__ = (Index("ix_ratings_shop_at", "shop_id", "created_at"),)

    conversation_id: str = Field(foreign_key="conversations.id", primary_key=True, max_length=32)
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    buyer_id: str = Field(sa_column=Column(String(128), nullable=False))
    agent_id: str | None = Field(default=None, max_length=32)
    score: int
    comment: str = Field(default="", sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


def sent_by(sender: str) -> ColumnElement[bool]:
    """`messages.sender = <sender>` with the value written into the statement, not bound.

    SQLite prepares a statement again on every execution that binds a value its plan
    depended on, and a bound `sender` is one: to decide whether the partial index of
    agents' messages (`ix_messages_agent_wrote`) may serve the query, the planner reads
    the value. Bound, every such query was parsed and planned anew each time it ran (the
    group commit's resend check cost a third more CPU; `bench.steady --perf`)."""
    return col(Message.sender) == literal(sender, literal_execute=True)
