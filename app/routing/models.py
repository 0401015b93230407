"""Stored queues of a shop and which agents serve them."""

from __future__ import annotations

from sqlmodel import Field, SQLModel

DEFAULT_QUEUES = ("general", "elderly")


class Queue(SQLModel, table=True):
    __tablename__ = "queues"

    shop_id: str = Field(foreign_key="shops.id", primary_key=True, max_length=32)
    name: str = Field(primary_key=True, max_length=64)
    overflow_after_s: int = Field(default=120)


class AgentQueue(SQLModel, table=True):
    __tablename__ = "agent_queues"

    agent_id: str = Field(foreign_key="agents.id", primary_key=True, max_length=32)
    queue: str = Field(primary_key=True, max_length=64)


class CategoryQueue(SQLModel, table=True):
    """A product/order category the shop routes to a skill queue (珠宝 → jewelry …)."""

    __tablename__ = "category_queues"

    shop_id: str = Field(foreign_key="shops.id", primary_key=True, max_length=32)
    category: str = Field(primary_key=True, max_length=64)
    queue: str = Field(max_length=64)
