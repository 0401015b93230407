"""The console's recall tab: create a campaign with a form, preview its audience (who would
be recalled and why the others would not), schedule or cancel it, watch a running one's
progress (htmx polls the campaign list while one is scheduled or running) and read its
results. The same domain code as `app/recall/api.py` does the work.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from app.deps import Ctx
from app.errors import DomainError
from app.pages.console import (
    ConsoleStaff,
    PageError,
    answer,
    cents_of,
    console_form,
    error_text,
    form_text,
    local_time,
    page_values,
    section,
    shop_zone_of,
    tab_reader,
)
from app.pages.i18n import STRINGS, pick_lang
from app.pages.views import render
from app.recall import actions as recall_actions
from app.recall import api as recall_api
from app.recall import rules as recall_rules
from app.recall import service as recall_service
from app.recall.schemas import campaign_public, preview_public
from app.shops.models import Agent
from app.shops.policy import Permission

router = APIRouter(include_in_schema=False)
Recaller = Annotated[Agent, console_form(Permission.RUN_RECALL)]

ACTIVE = ("scheduled", "running")
# A button's step: the domain action and what the page says when it is done.
STEPS = {
    "schedule": (recall_actions.schedule_campaign, "rc_scheduled"),
    "cancel": (recall_actions.cancel_campaign, "rc_cancelled"),
}
BAD_TIME = "bad_time"
FORM_MINUTE = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends and shows


def _form_time(text: str, zone: ZoneInfo) -> datetime:
    """A datetime-local value, read on the shop's wall clock."""
    try:
        return datetime.strptime(text, FORM_MINUTE).replace(tzinfo=zone)
    except ValueError:
        raise PageError(BAD_TIME) from None


async def campaigns_data(me: Agent, ctx: Ctx, request: Request) -> dict[str, Any]:
    """The shop's campaigns (newest first) with progress and results; the one asked for
    (`?campaign=`, else the newest) is shown in detail."""
    zone = await shop_zone_of(ctx, me.shop_id)
    async with ctx.db.read() as s:
        rows = [
            campaign_public(c, await recall_service.results(s, c))
            for c in await recall_service.list_campaigns(s, me.shop_id)
        ]
    wanted = request.query_params.get("campaign")
    chosen = next((c for c in rows if c["id"] == wanted), rows[0] if rows else None)
    now = ctx.clock.now().astimezone(zone)
    return {
        "campaigns": rows,
        "chosen": chosen,
        "live": any(c["status"] in ACTIVE for c in rows),
        "local": lambda iso: local_time(iso, zone),
        "reasons": recall_rules.EXCLUSION_REASONS,
        "form_send_at": now.strftime(FORM_MINUTE),
        "form_ends_at": (now + timedelta(days=7)).strftime(FORM_MINUTE),
        "preview": None,
        "typed": None,
    }


tab_reader("recall")(campaigns_data)


async def _preview(ctx: Ctx, shop_id: str, campaign_id: str) -> dict[str, Any] | None:
    async with ctx.db.read() as s:
        c = await recall_service.get_campaign(s, shop_id, campaign_id)
        if c is None:
            return None
        audience = await recall_service.audience(s, shop_id, c.min_intent, ctx.clock.now())
        return {
            "campaign": campaign_public(c, await recall_service.results(s, c)),
            **preview_public(audience),
        }


def _campaign_fields(form: Any, zone: ZoneInfo) -> recall_api.CampaignIn:
    """The form as the API's own body (its checks apply); amounts are typed in yuan."""
    intent_text = form_text(form, "min_intent") or "50"
    return recall_api.CampaignIn(
        name=form_text(form, "name"),
        send_at=_form_time(form_text(form, "send_at"), zone),
        ends_at=_form_time(form_text(form, "ends_at"), zone),
        min_intent=int(intent_text) if intent_text.isdigit() else -1,
        coupon=recall_api.CouponIn(
            title=form_text(form, "coupon_title"),
            amount_cents=cents_of(form_text(form, "amount")),
            min_spend_cents=cents_of(form_text(form, "min_spend") or "0", allow_zero=True),
        ),
        message=form_text(form, "message"),
    )


def _error(t: dict[str, str], err: Exception) -> str:
    if isinstance(err, PageError) and str(err) == BAD_TIME:
        return t["rc_err_time"]
    return error_text(t, err)


@router.post("/console/recall")
async def create_campaign(request: Request, ctx: Ctx, me: Recaller) -> Response:
    t = STRINGS[pick_lang(request)[0]]
    form = await request.form()
    try:
        body = _campaign_fields(form, await shop_zone_of(ctx, me.shop_id))
        c = await ctx.db.run(
            recall_actions.create_campaign, me.shop_id, me.id, body.to_draft(), ctx.clock.now()
        )
    except (PageError, DomainError, ValidationError) as err:
        # The form stays open with what was typed, so only the wrong field needs fixing.
        typed = {k: str(v) for k, v in form.items()}
        return await section(request, ctx, me, "recall", error=_error(t, err), typed=typed)
    # A new draft is shown with its audience right away: the next step is to schedule it.
    return await section(
        request,
        ctx,
        me,
        "recall",
        flash=t["rc_created"].format(c.name),
        preview=await _preview(ctx, me.shop_id, c.id),
    )


@router.get("/console/recall/campaigns")
async def campaign_list(request: Request, ctx: Ctx, me: ConsoleStaff) -> Response:
    """The list and the chosen campaign's progress again (polled while one is live)."""
    data = await campaigns_data(me, ctx, request)
    return render(request, ctx, "console/_campaigns.html", **page_values(me, "recall", data))


@router.get("/console/recall/{campaign_id}/preview")
async def preview(campaign_id: str, request: Request, ctx: Ctx, me: ConsoleStaff) -> Response:
    found = await _preview(ctx, me.shop_id, campaign_id)
    if found is None:
        return Response(status_code=404)
    return render(
        request,
        ctx,
        "console/_recall_preview.html",
        **page_values(me, "recall", {"preview": found, "reasons": recall_rules.EXCLUSION_REASONS}),
    )


@router.post("/console/recall/{campaign_id}/{step}")
async def schedule_or_cancel(
    campaign_id: str, step: str, request: Request, ctx: Ctx, me: Recaller
) -> Response:
    if step not in STEPS:
        return Response(status_code=404)
    action, done = STEPS[step]

    async def work(t: dict[str, str]) -> str:
        c = await ctx.db.run(action, me.shop_id, campaign_id, ctx.clock.now())
        return t[done].format(c.name)

    return await answer(request, ctx, me, "recall", work)
