"""The one way a domain reports something to the shop's webhooks: `record` inside its
UnitOfWork, in the same transaction as the change.

A rollback takes the event with it (nothing is sent for a change that did not happen), and
a commit keeps it however soon the process dies afterwards (the dispatcher, in any
process, sends it later). The event gets a delivery for each of the shop's endpoints that
want its type at that moment; a shop without such endpoints stores nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlmodel import col

from app.db import UnitOfWork, table_of
from app.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent, new_event_id
from app.webhooks.rules import EVENT_TYPES


@dataclass(frozen=True)
class Event:
    """One event to record: its type, what it carries, and the object it is about.

    Events about the same `about` (e.g. "payout:ID") reach each endpoint in the order they
    were recorded: a later one waits while an earlier one is still being retried.
    """

    type: str
    data: dict[str, Any]
    about: str | None = None

    def order_key(self, event_id: str) -> str:
        """`about`; else the type's object and `data["id"]` ("aftersale.decided" with id X:
        "aftersale:X"); else the event alone (no order to keep)."""
        if self.about:
            return self.about
        if isinstance(self.data.get("id"), str | int):
            return f"{self.type.split('.', 1)[0]}:{self.data['id']}"
        return event_id


async def record(
    uow: UnitOfWork,
    shop_id: str,
    event_type: str,
    data: dict[str, Any],
    *,
    now: datetime,
    about: str | None = None,
) -> str | None:
    """Record one event in the caller's transaction; its id, or None if no endpoint wants it.

    `data` is JSON-ready (strings, numbers, ISO times); `about` names the object ("payout:"
    + its id) so that events about it are delivered in order (left out: the type's prefix
    and `data["id"]`, e.g. "aftersale:" + the request's id).
    """
    ids = await record_many(uow, shop_id, [Event(event_type, data, about)], now=now)
    return ids[0]


async def record_many(
    uow: UnitOfWork, shop_id: str, events: Sequence[Event], *, now: datetime
) -> list[str | None]:
    """`record` for a batch (e.g. a recall batch's coupons): one read of the endpoints, two
    INSERTs; the ids in the batch's order (None where no endpoint wants the type)."""
    for ev in events:
        if ev.type not in EVENT_TYPES:
            raise ValueError(f"unknown webhook event type {ev.type!r}")
    if not events:
        return []
    endpoints = (
        await uow.session.execute(
            select(col(WebhookEndpoint.id), col(WebhookEndpoint.events)).where(
                col(WebhookEndpoint.shop_id) == shop_id, col(WebhookEndpoint.deleted_at).is_(None)
            )
        )
    ).all()
    ids: list[str | None] = []
    event_rows: list[dict[str, Any]] = []
    delivery_rows: list[dict[str, Any]] = []
    for ev in events:
        wanted = [endpoint_id for endpoint_id, types in endpoints if ev.type in types]
        if not wanted:
            ids.append(None)
            continue
        event_id = new_event_id()
        ids.append(event_id)
        key = ev.order_key(event_id)
        event_rows.append(
            {
                "id": event_id,
                "shop_id": shop_id,
                "type": ev.type,
                "order_key": key,
                "data": ev.data,
                "created_at": now,
            }
        )
        delivery_rows.extend(
            {
                "shop_id": shop_id,
                "endpoint_id": endpoint_id,
                "event_id": event_id,
                "order_key": key,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "window_started_at": now,
                "created_at": now,
            }
            for endpoint_id in wanted
        )
    if event_rows:
        s = uow.session
        await s.execute(insert(table_of(WebhookEvent)), event_rows)
        # In the batch's order: a delivery's id is its place in line.
        await s.execute(insert(table_of(WebhookDelivery)), delivery_rows)
    return ids
