"""Webhook state changes: endpoints (admin), resending, and the dispatcher's two steps on a
delivery — claiming it (a lease) and recording how the attempt went.

A delivery is sent by whoever holds its lease: claiming is one conditional UPDATE over due
deliveries (on PostgreSQL their selection skips rows another dispatcher has locked), so
several dispatchers, in one process or many, never take the same delivery while its lease
runs. The lease outlasts an attempt's timeout; if its holder dies, the delivery is due
again when the lease has passed. Recording an outcome counts only with the lease's token.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.orm import aliased
from sqlmodel import col

from app.db import UnitOfWork, rowcount
from app.errors import Conflict, NotFound
from app.shops.models import Shop
from app.webhooks import rules
from app.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent

# A claim holds a delivery this much longer than one attempt may take.
LEASE_MARGIN_S = 5.0


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(24)


async def create_endpoint(
    uow: UnitOfWork,
    shop_id: str,
    *,
    url: str,
    secret: str | None,
    events: list[str],
    created_by: str | None,
    now: datetime,
) -> WebhookEndpoint:
    """A new endpoint (its URL already checked by `addresses.check_destination`)."""
    rules.url_host(url)
    types = rules.check_events(events)
    secret = rules.check_secret(secret) if secret else new_secret()
    s = uow.session
    count = (
        await s.execute(
            select(func.count()).where(
                col(WebhookEndpoint.shop_id) == shop_id, col(WebhookEndpoint.deleted_at).is_(None)
            )
        )
    ).scalar_one()
    if count >= rules.MAX_ENDPOINTS_PER_SHOP:
        raise Conflict(
            f"A shop has at most {rules.MAX_ENDPOINTS_PER_SHOP} webhook endpoints.",
            code="too_many_endpoints",
        )
    endpoint = WebhookEndpoint(
        shop_id=shop_id, url=url, secret=secret, events=types, created_by=created_by, created_at=now
    )
    s.add(endpoint)
    await s.flush()
    return endpoint


async def _live_endpoint(uow: UnitOfWork, shop_id: str, endpoint_id: str) -> WebhookEndpoint:
    endpoint = await uow.session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.shop_id != shop_id or endpoint.deleted_at is not None:
        raise NotFound("No such webhook endpoint.")
    return endpoint


async def delete_endpoint(uow: UnitOfWork, shop_id: str, endpoint_id: str, now: datetime) -> None:
    """Stop sending to it: its pending deliveries are cancelled; their history stays."""
    endpoint = await _live_endpoint(uow, shop_id, endpoint_id)
    endpoint.deleted_at = now
    await uow.session.execute(
        update(WebhookDelivery)
        .where(
            col(WebhookDelivery.endpoint_id) == endpoint.id,
            col(WebhookDelivery.status) == "pending",
        )
        .values(status="cancelled", lease_until=None, lease_token=None)
        .execution_options(synchronize_session=False)
    )


async def resend_delivery(
    uow: UnitOfWork, shop_id: str, delivery_id: int, now: datetime
) -> WebhookDelivery:
    """Send it again now (same event id), with a fresh 24-hour window of retries.

    A delivered or dead one becomes pending; a pending one is simply due now (if a
    dispatcher is sending it this moment, its lease stands and it finishes first).
    """
    s = uow.session
    delivery = await s.get(WebhookDelivery, delivery_id, with_for_update=True)
    if delivery is None or delivery.shop_id != shop_id:
        raise NotFound("No such delivery.")
    await _live_endpoint(uow, shop_id, delivery.endpoint_id)
    delivery.next_attempt_at = now
    delivery.window_started_at = now
    if delivery.status != "pending":
        delivery.status = "pending"
        delivery.lease_until = None
        delivery.lease_token = None
    await s.flush()
    return delivery


@dataclass(frozen=True)
class Claimed:
    """A delivery leased for sending, with everything the attempt needs."""

    delivery_id: int
    lease_token: str
    url: str
    secret: str
    body: bytes


def _due(now: datetime) -> Any:
    """Pending, due, not leased, and no earlier delivery of the same endpoint and object
    still pending (events about one object arrive in order)."""
    earlier = aliased(WebhookDelivery)
    d = WebhookDelivery
    return and_(
        col(d.status) == "pending",
        col(d.next_attempt_at) <= now,
        or_(col(d.lease_until).is_(None), col(d.lease_until) < now),
        ~exists().where(
            col(earlier.endpoint_id) == col(d.endpoint_id),
            col(earlier.order_key) == col(d.order_key),
            col(earlier.status) == "pending",
            col(earlier.id) < col(d.id),
        ),
    )


async def claim_due(
    uow: UnitOfWork, *, now: datetime, limit: int, timeout_s: float
) -> list[Claimed]:
    """Lease up to `limit` due deliveries to this dispatcher, oldest first."""
    token = secrets.token_hex(16)
    pick = select(col(WebhookDelivery.id)).where(_due(now)).order_by(col(WebhookDelivery.id))
    pick = pick.limit(limit)
    if uow.is_postgres:
        pick = pick.with_for_update(skip_locked=True, of=WebhookDelivery)
    lease_until = now + timedelta(seconds=timeout_s + LEASE_MARGIN_S)
    s = uow.session
    # Two statements, not UPDATE ... WHERE id IN (SELECT ... LIMIT ... SKIP LOCKED): as a
    # subquery, PostgreSQL may run the pick more than once and take more than `limit`.
    picked = (await s.execute(pick)).scalars().all()
    if not picked:
        return []
    ids = (
        (
            await s.execute(
                update(WebhookDelivery)
                .where(
                    col(WebhookDelivery.id).in_(picked),
                    col(WebhookDelivery.status) == "pending",
                    or_(
                        col(WebhookDelivery.lease_until).is_(None),
                        col(WebhookDelivery.lease_until) < now,
                    ),
                )
                .values(lease_until=lease_until, lease_token=token)
                .returning(col(WebhookDelivery.id))
                .execution_options(synchronize_session=False)
            )
        )
        .scalars()
        .all()
    )
    if not ids:
        return []
    rows = await s.execute(
        select(WebhookDelivery, WebhookEvent, WebhookEndpoint, col(Shop.slug))
        .join(WebhookEvent, col(WebhookEvent.id) == col(WebhookDelivery.event_id))
        .join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id))
        .join(Shop, col(Shop.id) == col(WebhookDelivery.shop_id))
        .where(col(WebhookDelivery.id).in_(ids))
        .order_by(col(WebhookDelivery.id))
    )
    claimed = []
    for delivery, event, endpoint, slug in rows.all():
        assert delivery.id is not None
        body = rules.body_of(event.id, event.type, event.created_at, slug, event.data)
        claimed.append(Claimed(delivery.id, token, endpoint.url, endpoint.secret, body))
    return claimed


@dataclass(frozen=True)
class Outcome:
    status_code: int | None  # None: no answer (refused, timed out, address refused)
    error: str | None
    duration_ms: int


async def record_attempt(
    uow: UnitOfWork,
    claimed: Claimed,
    outcome: Outcome,
    *,
    now: datetime,
    retry_base_s: float,
) -> str:
    """Write the attempt and move the delivery on: delivered, pending again (the next retry),
    or dead. Returns the delivery's status; a lease that has passed to another dispatcher
    only adds the attempt to the history."""
    s = uow.session
    delivery = await s.get(WebhookDelivery, claimed.delivery_id, with_for_update=True)
    if delivery is None:
        return "cancelled"
    s.add(
        WebhookAttempt(
            delivery_id=claimed.delivery_id,
            shop_id=delivery.shop_id,
            at=now,
            status_code=outcome.status_code,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
        )
    )
    values: dict[str, Any] = {
        "attempts": delivery.attempts + 1,
        "last_status_code": outcome.status_code,
        "last_error": outcome.error,
        "lease_until": None,
        "lease_token": None,
    }
    if outcome.status_code is not None and rules.delivered(outcome.status_code):
        values.update(status="delivered", delivered_at=now)
    else:
        retry = rules.next_attempt(
            delivery.window_started_at, delivery.attempts + 1, now, retry_base_s
        )
        if retry is None:
            values["status"] = "dead"  # 24 hours of failures: a dead letter
        else:
            values.update(status="pending", next_attempt_at=retry)
    result = await s.execute(
        update(WebhookDelivery)
        .where(
            col(WebhookDelivery.id) == claimed.delivery_id,
            col(WebhookDelivery.lease_token) == claimed.lease_token,
            col(WebhookDelivery.status) == "pending",
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        await s.refresh(delivery)
        return delivery.status
    return str(values["status"])
