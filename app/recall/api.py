"""HTTP for recall: storefront intent events, buyer intent, campaigns, opt-out, coupon claims."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field, StrictInt, field_validator

from app.deps import Ctx, CurrentBuyer, CurrentShop, require
from app.errors import NotFound
from app.recall import actions, service
from app.recall.schemas import (
    CampaignPublic,
    ClaimOut,
    EventOut,
    IntentPublic,
    OptOutOut,
    PreviewPublic,
    RecallStateOut,
    WindowPublic,
    campaign_public,
    intent_public,
    preview_public,
)
from app.schemas import ERROR_RESPONSES, IsoDatetime
from app.shops.models import Agent
from app.shops.policy import Permission

router = APIRouter(prefix="/api/v1", tags=["recall"], responses=ERROR_RESPONSES)

Recaller = Annotated[Agent, require(Permission.RUN_RECALL)]
WindowSetter = Annotated[Agent, require(Permission.SET_RECALL_WINDOW)]


def _utc(v: datetime | None) -> datetime | None:
    # PROTOCOL times carry an offset; one left out means UTC.
    if v is not None and v.tzinfo is None:
        return v.replace(tzinfo=UTC)
    return v


class EventIn(BaseModel):
    buyer_id: str = Field(min_length=1, max_length=128)
    type: str = Field(max_length=16)
    product_id: str | None = Field(default=None, max_length=128)
    category: str | None = Field(default=None, max_length=64)
    at: IsoDatetime | None = None

    @field_validator("at")
    @classmethod
    def _at_utc(cls, v: datetime | None) -> datetime | None:
        return _utc(v)


@router.post("/events", status_code=201)
async def post_event(body: EventIn, shop: CurrentShop, ctx: Ctx) -> EventOut:
    now = ctx.clock.now()
    ev = actions.StorefrontEvent(
        body.buyer_id, body.type, body.product_id, body.category, body.at or now
    )
    row = await ctx.db.run(actions.record_event, shop.id, ev, now)
    return EventOut(id=row.id, buyer_id=row.buyer_id, type=row.type, at=row.at.isoformat())


@router.get("/buyers/{buyer_id}/intent")
async def buyer_intent(buyer_id: str, staff: Recaller, ctx: Ctx) -> IntentPublic:
    async with ctx.db.read() as s:
        intent, last = await service.buyer_intent(s, staff.shop_id, buyer_id, ctx.clock.now())
    return IntentPublic.model_validate(intent_public(intent, last))


class CouponIn(BaseModel):
    title: str = Field(min_length=1, max_length=100)
    amount_cents: StrictInt = Field(gt=0, le=10**9)
    min_spend_cents: StrictInt = Field(default=0, ge=0, le=10**10)


class CampaignIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    send_at: IsoDatetime
    ends_at: IsoDatetime
    min_intent: StrictInt = Field(default=50, ge=0, le=100)
    coupon: CouponIn
    message: str = Field(default="", max_length=1000)

    @field_validator("send_at", "ends_at")
    @classmethod
    def _times_utc(cls, v: datetime) -> datetime | None:
        return _utc(v)

    def to_draft(self) -> actions.CampaignDraft:
        return actions.CampaignDraft(
            self.name,
            self.send_at,
            self.ends_at,
            self.min_intent,
            self.coupon.model_dump(),
            self.message,
        )


async def _campaign_out(ctx: Ctx, shop_id: str, campaign_id: str) -> CampaignPublic:
    async with ctx.db.read() as s:
        c = await service.get_campaign(s, shop_id, campaign_id)
        if c is None:
            raise NotFound("No such campaign.")
        return CampaignPublic.model_validate(campaign_public(c, await service.results(s, c)))


@router.post("/recall/campaigns", status_code=201)
async def create_campaign(body: CampaignIn, staff: Recaller, ctx: Ctx) -> CampaignPublic:
    c = await ctx.db.run(
        actions.create_campaign, staff.shop_id, staff.id, body.to_draft(), ctx.clock.now()
    )
    return await _campaign_out(ctx, staff.shop_id, c.id)


@router.get("/recall/campaigns")
async def list_campaigns(staff: Recaller, ctx: Ctx) -> list[CampaignPublic]:
    async with ctx.db.read() as s:
        return [
            CampaignPublic.model_validate(campaign_public(c, await service.results(s, c)))
            for c in await service.list_campaigns(s, staff.shop_id)
        ]


@router.get("/recall/campaigns/{campaign_id}")
async def get_campaign(campaign_id: str, staff: Recaller, ctx: Ctx) -> CampaignPublic:
    return await _campaign_out(ctx, staff.shop_id, campaign_id)


@router.get("/recall/campaigns/{campaign_id}/preview")
async def preview(campaign_id: str, staff: Recaller, ctx: Ctx) -> PreviewPublic:
    async with ctx.db.read() as s:
        c = await service.get_campaign(s, staff.shop_id, campaign_id)
        if c is None:
            raise NotFound("No such campaign.")
        audience = await service.audience(s, c.shop_id, c.min_intent, ctx.clock.now())
        return PreviewPublic.model_validate(preview_public(audience))


@router.post("/recall/campaigns/{campaign_id}/schedule")
async def schedule(campaign_id: str, staff: Recaller, ctx: Ctx) -> CampaignPublic:
    await ctx.db.run(actions.schedule_campaign, staff.shop_id, campaign_id, ctx.clock.now())
    return await _campaign_out(ctx, staff.shop_id, campaign_id)


@router.post("/recall/campaigns/{campaign_id}/cancel")
async def cancel(campaign_id: str, staff: Recaller, ctx: Ctx) -> CampaignPublic:
    await ctx.db.run(actions.cancel_campaign, staff.shop_id, campaign_id, ctx.clock.now())
    return await _campaign_out(ctx, staff.shop_id, campaign_id)


@router.post("/recall/opt-out")
async def opt_out(buyer: CurrentBuyer, ctx: Ctx) -> OptOutOut:
    await ctx.db.run(actions.opt_out, buyer.shop_id, buyer.buyer_id, ctx.clock.now())
    return OptOutOut(opted_out=True)


@router.get("/recall/me")
async def my_recall_state(buyer: CurrentBuyer, ctx: Ctx) -> RecallStateOut:
    """The buyer's opt-out and claimed coupons, so their cards show them after a reload."""
    async with ctx.db.read() as s:
        return RecallStateOut.model_validate(
            await service.buyer_recall_state(s, buyer.shop_id, buyer.buyer_id)
        )


@router.post("/recall/coupons/{coupon_id}/claim")
async def claim(coupon_id: str, buyer: CurrentBuyer, ctx: Ctx) -> ClaimOut:
    send = await ctx.db.run(
        actions.claim_coupon, buyer.shop_id, buyer.buyer_id, coupon_id, ctx.clock.now()
    )
    return ClaimOut(
        coupon_id=send.id, campaign_id=send.campaign_id, claimed_at=send.claimed_at.isoformat()
    )


class WindowIn(BaseModel):
    window_start_min: StrictInt = Field(ge=0, le=1440)
    window_end_min: StrictInt = Field(ge=0, le=1440)


@router.get("/recall/settings")
async def get_settings(staff: Recaller, ctx: Ctx) -> WindowPublic:
    async with ctx.db.read() as s:
        start, end = await service.sending_window(s, staff.shop_id)
    return WindowPublic(window_start_min=start, window_end_min=end)


@router.put("/recall/settings")
async def put_settings(body: WindowIn, admin: WindowSetter, ctx: Ctx) -> WindowPublic:
    await ctx.db.run(
        actions.set_window,
        admin.shop_id,
        body.window_start_min,
        body.window_end_min,
        ctx.clock.now(),
    )
    return WindowPublic(window_start_min=body.window_start_min, window_end_min=body.window_end_min)
