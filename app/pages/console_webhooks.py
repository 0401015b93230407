"""The console's webhook tab (admins): add and delete endpoints, each delivery of the chosen
endpoint with its attempts (status code, error, time), resend one. The same domain code
as `app/webhooks/api.py` does the work; the secret is shown once, when it is created."""

from __future__ import annotations

from typing import Annotated, Any

from babel.support import Translations
from fastapi import APIRouter, Request, Response

from app.deps import Ctx
from app.pages.console import answer, console_form, form_text, local_time, shop_zone_of, tab_reader
from app.shops.models import Agent
from app.shops.policy import Permission, may
from app.webhooks import actions as webhook_actions
from app.webhooks import api as webhooks_api
from app.webhooks import rules as webhook_rules
from app.webhooks import service as webhook_service
from app.webhooks.schemas import delivery_public, endpoint_public

router = APIRouter(include_in_schema=False)
WebhookAdmin = Annotated[Agent, console_form(Permission.MANAGE_WEBHOOKS)]


@tab_reader("webhooks")
async def webhooks_data(me: Agent, ctx: Ctx, request: Request) -> dict[str, Any]:
    """The shop's endpoints; the one asked for (`?endpoint=`, else the first) with its
    latest deliveries. Nothing for someone who may not manage webhooks."""
    data: dict[str, Any] = {
        "endpoints": [],
        "chosen": None,
        "deliveries": [],
        "event_types": webhook_rules.EVENT_TYPES,
    }
    if not may(me.role, Permission.MANAGE_WEBHOOKS):
        return data
    zone = await shop_zone_of(ctx, me.shop_id)
    async with ctx.db.read() as s:
        endpoints = [
            endpoint_public(e) for e in await webhook_service.endpoints_of_shop(s, me.shop_id)
        ]
        wanted = request.query_params.get("endpoint")
        chosen = next(
            (e for e in endpoints if e["id"] == wanted), endpoints[0] if endpoints else None
        )
        rows = await webhook_service.deliveries_of_endpoint(s, chosen["id"]) if chosen else []
    return {
        **data,
        "endpoints": endpoints,
        "chosen": chosen,
        "deliveries": [delivery_public(*row) for row in rows],
        "local": lambda iso: local_time(iso, zone),
    }


@router.post("/console/webhooks")
async def create_endpoint(request: Request, ctx: Ctx, me: WebhookAdmin) -> Response:
    form = await request.form()

    async def work(t: Translations) -> str:
        body = webhooks_api.EndpointIn(
            url=form_text(form, "url"),
            secret=form_text(form, "secret") or None,
            events=[str(e) for e in form.getlist("events")] or [""],
        )
        created = await webhooks_api.create(ctx, me, body)
        return t.gettext("Added %(url)s. Its signing secret, shown only now: %(secret)s") % {
            "url": created.url,
            "secret": created.secret,
        }

    return await answer(request, ctx, me, "webhooks", work)


@router.post("/console/webhooks/{endpoint_id}/delete")
async def delete_endpoint(
    endpoint_id: str, request: Request, ctx: Ctx, me: WebhookAdmin
) -> Response:
    async def work(t: Translations) -> str:
        await ctx.db.run(webhook_actions.delete_endpoint, me.shop_id, endpoint_id, ctx.clock.now())
        return t.gettext("Endpoint deleted; its pending deliveries were cancelled")

    return await answer(request, ctx, me, "webhooks", work)


@router.post("/console/webhooks/deliveries/{delivery_id}/resend")
async def resend(delivery_id: str, request: Request, ctx: Ctx, me: WebhookAdmin) -> Response:
    async def work(t: Translations) -> str:
        number = webhooks_api.delivery_number(delivery_id)
        await ctx.db.run(webhook_actions.resend_delivery, me.shop_id, number, ctx.clock.now())
        return t.gettext("Delivery %(id)s will be sent again now") % {"id": delivery_id}

    return await answer(request, ctx, me, "webhooks", work)
