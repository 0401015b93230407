"""Wire shapes of webhooks: endpoints (the secret in full only when created), deliveries."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from app.webhooks import rules
from app.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from app.webhooks.service import iso


class EndpointPublic(BaseModel):
    id: str
    url: str
    events: list[str]
    secret_hint: str = Field(description="The secret's last characters; never the whole secret.")
    created_at: str


class EndpointCreated(EndpointPublic):
    secret: str = Field(description="The signing secret, shown this once.")


class AttemptPublic(BaseModel):
    at: str
    status_code: int | None = Field(description="The receiver's HTTP status; null: no answer.")
    error: str | None
    duration_ms: int


class DeliveryPublic(BaseModel):
    id: str
    event_id: str = Field(description="The payload's `id`: the same on every retry and resend.")
    type: str
    status: str = Field(
        description="`pending`, `delivered`, `dead` (retries gave up) or `cancelled`."
    )
    attempts: int
    next_attempt_at: str | None
    delivered_at: str | None
    created_at: str
    data: dict[str, Any]
    history: list[AttemptPublic]


def endpoint_public(e: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": e.id,
        "url": e.url,
        "events": list(e.events),
        "secret_hint": rules.secret_hint(e.secret),
        "created_at": iso(e.created_at),
    }


def delivery_public(
    d: WebhookDelivery, e: WebhookEvent, attempts: list[WebhookAttempt]
) -> dict[str, Any]:
    return {
        "id": str(d.id),
        "event_id": e.id,
        "type": e.type,
        "status": d.status,
        "attempts": d.attempts,
        "next_attempt_at": iso(d.next_attempt_at) if d.status == "pending" else None,
        "delivered_at": iso(d.delivered_at),
        "created_at": iso(d.created_at),
        "data": e.data,
        "history": [
            {
                "at": iso(a.at),
                "status_code": a.status_code,
                "error": a.error,
                "duration_ms": a.duration_ms,
            }
            for a in attempts
        ],
    }
