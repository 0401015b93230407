"""HTTP for webhooks (admin): endpoints, their deliveries, resending (README "Webhooks")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from app.deps import Ctx, require
from app.errors import NotFound
from app.schemas import ERROR_RESPONSES
from app.shops.models import Agent
from app.shops.policy import Permission
from app.webhooks import actions, addresses, rules, service
from app.webhooks.models import DELIVERY_STATUSES
from app.webhooks.schemas import (
    DeliveryPublic,
    EndpointCreated,
    EndpointPublic,
    delivery_public,
    endpoint_public,
)

router = APIRouter(prefix="/api/v1", tags=["webhooks"], responses=ERROR_RESPONSES)

WebhookAdmin = Annotated[Agent, require(Permission.MANAGE_WEBHOOKS)]


class EndpointIn(BaseModel):
    url: str = Field(min_length=1, max_length=rules.MAX_URL_CHARS)
    secret: str | None = Field(
        default=None,
        max_length=rules.SECRET_MAX_CHARS,
        description="The signing secret (16 to 200 characters); omitted: one is generated.",
    )
    events: list[str] = Field(min_length=1, max_length=len(rules.EVENT_TYPES) * 2)


async def create(ctx: Ctx, admin: Agent, body: EndpointIn) -> EndpointCreated:
    """Check where the URL leads (SSRF), then store the endpoint; the secret in full, once."""
    await addresses.check_destination(body.url, allow_private=ctx.settings.webhook_allow_private)
    endpoint = await ctx.db.run(
        actions.create_endpoint,
        admin.shop_id,
        url=body.url,
        secret=body.secret,
        events=body.events,
        created_by=admin.id,
        now=ctx.clock.now(),
    )
    return EndpointCreated(**endpoint_public(endpoint), secret=endpoint.secret)


@router.get("/webhooks")
async def list_endpoints(admin: WebhookAdmin, ctx: Ctx) -> list[EndpointPublic]:
    async with ctx.db.read() as s:
        found = await service.endpoints_of_shop(s, admin.shop_id)
    return [EndpointPublic.model_validate(endpoint_public(e)) for e in found]


@router.post("/webhooks", status_code=201)
async def create_endpoint(body: EndpointIn, admin: WebhookAdmin, ctx: Ctx) -> EndpointCreated:
    return await create(ctx, admin, body)


@router.delete("/webhooks/{endpoint_id}", status_code=204)
async def delete_endpoint(endpoint_id: str, admin: WebhookAdmin, ctx: Ctx) -> Response:
    await ctx.db.run(actions.delete_endpoint, admin.shop_id, endpoint_id, ctx.clock.now())
    return Response(status_code=204)


@router.get("/webhooks/{endpoint_id}/deliveries")
async def list_deliveries(
    endpoint_id: str,
    admin: WebhookAdmin,
    ctx: Ctx,
    status: Annotated[str | None, Query(max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_DELIVERIES)] = 50,
) -> list[DeliveryPublic]:
    if status is not None and status not in DELIVERY_STATUSES:
        raise NotFound(f"No delivery status {status!r}.")
    async with ctx.db.read() as s:
        if await service.endpoint_in_shop(s, admin.shop_id, endpoint_id) is None:
            raise NotFound("No such webhook endpoint.")
        rows = await service.deliveries_of_endpoint(s, endpoint_id, status=status, limit=limit)
    return [DeliveryPublic.model_validate(delivery_public(*row)) for row in rows]


def delivery_number(delivery_id: str) -> int:
    if not delivery_id.isdigit() or len(delivery_id) > 18:
        raise NotFound("No such delivery.")
    return int(delivery_id)


@router.post("/webhooks/deliveries/{delivery_id}/resend")
async def resend(delivery_id: str, admin: WebhookAdmin, ctx: Ctx) -> DeliveryPublic:
    """Send the delivery again now, with the same event id (and 24 more hours of retries)."""
    number = delivery_number(delivery_id)
    await ctx.db.run(actions.resend_delivery, admin.shop_id, number, ctx.clock.now())
    async with ctx.db.read() as s:
        row = await service.delivery_in_shop(s, admin.shop_id, number)
    if row is None:
        raise NotFound("No such delivery.")
    return DeliveryPublic.model_validate(delivery_public(*row))
