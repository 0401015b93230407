"""Webhook endpoints, the outbox of events, and each event's delivery to each endpoint.

An event is written (`outbox.record`) in the transaction of the change it reports, with a
delivery row for every endpoint of the shop that wants its type; the dispatcher then
sends deliveries, recording every attempt. A delivery's integer id is its place in the
order of events: a delivery waits while an earlier one of the same endpoint and object
(`order_key`) is still pending.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, Integer, String, Text
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, new_id

# BIGINT on PostgreSQL; SQLite's autoincrementing key must be spelled INTEGER.
_SERIAL = BigInteger().with_variant(Integer(), "sqlite")

DELIVERY_STATUSES = ("pending", "delivered", "dead", "cancelled")


def new_event_id() -> str:
    return "evt_" + new_id()


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_shop", "shop_id", "deleted_at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    url: str = Field(sa_column=Column(Text, nullable=False))
    # The HMAC key: kept as given (signing needs it), shown in full only in the answer
    # that created the endpoint.
    secret: str = Field(max_length=200)
    events: list[str] = Field(sa_column=Column(JSON, nullable=False))
    created_by: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    deleted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class WebhookEvent(SQLModel, table=True):
    """One thing that happened, with the id receivers deduplicate by (the same on every retry)."""

    __tablename__ = "webhook_events"
    __table_args__ = (Index("ix_webhook_events_shop_created", "shop_id", "created_at"),)

    id: str = Field(default_factory=new_event_id, primary_key=True, max_length=40)
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    type: str = Field(max_length=64)
    order_key: str = Field(sa_column=Column(String(200), nullable=False))
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class WebhookDelivery(SQLModel, table=True):
    """One event for one endpoint: pending until a 2xx, a dead letter after 24 h of failures."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_order", "endpoint_id", "order_key", "id"),
        Index("ix_webhook_deliveries_event", "event_id"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(_SERIAL, primary_key=True, autoincrement=True)
    )
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    endpoint_id: str = Field(foreign_key="webhook_endpoints.id", max_length=32)
    event_id: str = Field(foreign_key="webhook_events.id", max_length=40)
    order_key: str = Field(sa_column=Column(String(200), nullable=False))
    status: str = Field(default="pending", max_length=16)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # Retries go on for 24 h from here: the event's time, or the latest resend.
    window_started_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # Held by the dispatcher sending it; another may take it only once this has passed.
    lease_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    lease_token: str | None = Field(default=None, max_length=32)
    last_status_code: int | None = Field(default=None)
    last_error: str | None = Field(default=None, max_length=300)
    delivered_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class WebhookAttempt(SQLModel, table=True):
    """One try at sending a delivery: what the receiver answered, or why nothing came back."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery", "delivery_id", "id"),)

    id: int | None = Field(
        default=None, sa_column=Column(_SERIAL, primary_key=True, autoincrement=True)
    )
    delivery_id: int = Field(
        sa_column=Column(_SERIAL, ForeignKey("webhook_deliveries.id"), nullable=False)
    )
    shop_id: str = Field(foreign_key="shops.id", max_length=32)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    status_code: int | None = Field(default=None)
    error: str | None = Field(default=None, max_length=300)
    duration_ms: int = Field(default=0)
