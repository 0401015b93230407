"""Webhook reads: a shop's endpoints, and an endpoint's deliveries with their attempts."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent

MAX_DELIVERIES = 200

# Is any pending delivery due and free of leases? What every poll asks (each second, on
# every dispatcher) before it takes a writer's turn to claim: almost always no. Claiming
# also waits for earlier deliveries of the same object, so this finds every delivery a
# claim would (and a few more). Built once: building it is most of what it costs.
_ANY_DUE = (
    select(col(WebhookDelivery.id))
    .where(
        col(WebhookDelivery.status) == "pending",
        col(WebhookDelivery.next_attempt_at) <= bindparam("now"),
        or_(
            col(WebhookDelivery.lease_until).is_(None),
            col(WebhookDelivery.lease_until) < bindparam("now"),
        ),
    )
    .limit(1)
)


async def any_due(s: AsyncSession, now: datetime) -> bool:
    """Whether a claim at `now` could find a delivery to send (a read: no lock, no write)."""
    return (await s.execute(_ANY_DUE, {"now": now})).first() is not None


async def endpoints_of_shop(s: AsyncSession, shop_id: str) -> list[WebhookEndpoint]:
    rows = await s.execute(
        select(WebhookEndpoint)
        .where(col(WebhookEndpoint.shop_id) == shop_id, col(WebhookEndpoint.deleted_at).is_(None))
        .order_by(col(WebhookEndpoint.created_at), col(WebhookEndpoint.id))
    )
    return list(rows.scalars())


async def endpoint_in_shop(
    s: AsyncSession, shop_id: str, endpoint_id: str
) -> WebhookEndpoint | None:
    endpoint = await s.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.shop_id != shop_id or endpoint.deleted_at is not None:
        return None
    return endpoint


Row = tuple[WebhookDelivery, WebhookEvent, list[WebhookAttempt]]


async def deliveries_of_endpoint(
    s: AsyncSession, endpoint_id: str, *, status: str | None = None, limit: int = 50
) -> list[Row]:
    """The newest deliveries first, each with its event and attempts (oldest attempt first)."""
    query = (
        select(WebhookDelivery, WebhookEvent)
        .join(WebhookEvent, col(WebhookEvent.id) == col(WebhookDelivery.event_id))
        .where(col(WebhookDelivery.endpoint_id) == endpoint_id)
        .order_by(col(WebhookDelivery.id).desc())
        .limit(min(limit, MAX_DELIVERIES))
    )
    if status is not None:
        query = query.where(col(WebhookDelivery.status) == status)
    return await _with_attempts(s, [(d, e) for d, e in (await s.execute(query)).all()])


async def delivery_in_shop(s: AsyncSession, shop_id: str, delivery_id: int) -> Row | None:
    query = (
        select(WebhookDelivery, WebhookEvent)
        .join(WebhookEvent, col(WebhookEvent.id) == col(WebhookDelivery.event_id))
        .where(col(WebhookDelivery.id) == delivery_id, col(WebhookDelivery.shop_id) == shop_id)
        .execution_options(populate_existing=True)
    )
    found = await _with_attempts(s, [(d, e) for d, e in (await s.execute(query)).all()])
    return found[0] if found else None


async def _with_attempts(
    s: AsyncSession, found: list[tuple[WebhookDelivery, WebhookEvent]]
) -> list[Row]:
    attempts: dict[int, list[WebhookAttempt]] = defaultdict(list)
    if found:
        rows = await s.execute(
            select(WebhookAttempt)
            .where(col(WebhookAttempt.delivery_id).in_([d.id for d, _ in found]))
            .order_by(col(WebhookAttempt.id))
        )
        for attempt in rows.scalars():
            attempts[attempt.delivery_id].append(attempt)
    return [(d, e, attempts[d.id or 0]) for d, e in found]


def iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
