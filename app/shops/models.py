"""Stored shops, agents, agent sessions, login failures and buyers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, String, UniqueConstraint, true
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, new_id

AGENT_STATUSES = ("online", "busy", "offline")


class Shop(SQLModel, table=True):
    __tablename__ = "shops"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    slug: str = Field(max_length=64, sa_column_kwargs={"unique": True}, nullable=False)
    name: str = Field(max_length=200)
    buyer_secret: str = Field(max_length=200)
    api_key_hash: str = Field(max_length=64, index=True)
    timezone: str = Field(default="Asia/Shanghai", max_length=64)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Agent(SQLModel, table=True):
    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("shop_id", "username", name="uq_agents_shop_username"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    shop_id: str = Field(foreign_key="shops.id", max_length=32, index=True)
    username: str = Field(max_length=64)
    password_hash: str = Field(max_length=200)
    display_name: str = Field(max_length=100)
    role: str = Field(default="agent", max_length=16)
    status: str = Field(default="offline", max_length=16)
    # False: deactivated by an admin. No login, no session, never assigned; rows stay for history.
    active: bool = Field(default=True, sa_column_kwargs={"server_default": true()})
    max_concurrent: int = Field(default=5)
    # Open conversations assigned now; changed only by conditional UPDATEs in routing.
    active_count: int = Field(default=0)
    last_assigned_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    # Presence: nodes stamp this for every agent with an open socket (heartbeat).
    last_seen_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    payout_limit_cents: int = Field(default=5000)
    payout_daily_cents: int = Field(default=50000)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class AgentSession(SQLModel, table=True):
    """A login. Only the SHA-256 of the token is stored, so a database leak is no login."""

    __tablename__ = "agent_sessions"

    token_hash: str = Field(primary_key=True, max_length=64)
    agent_id: str = Field(foreign_key="agents.id", max_length=32, index=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class LoginFailure(SQLModel, table=True):
    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_key_at", "shop_slug", "username", "address", "at"),
        # The per-address throttle (across accounts) counts by these two.
        Index("ix_login_failures_address_at", "address", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    shop_slug: str = Field(max_length=64)
    username: str = Field(max_length=64)
    address: str = Field(max_length=64)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Buyer(SQLModel, table=True):
    """A buyer as the shop's storefront identifies them (the JWT `sub`, unchanged)."""

    __tablename__ = "buyers"

    shop_id: str = Field(foreign_key="shops.id", primary_key=True, max_length=32)
    id: str = Field(sa_column=Column(String(128), primary_key=True))
    name: str = Field(default="", max_length=200)
    age: int | None = None
    vip: int | None = None
    elder_mode: bool = Field(default=False)
    first_seen_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_seen_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
