"""HTTP: the shop's care rules (admin), what they did, 回访 answers (buyer) and results."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, StrictBool, StrictInt

from app.care import actions, service
from app.care.models import RULES
from app.care.schemas import CareActionPublic, CareSettingsOut, VisitResults, action_public
from app.deps import Ctx, CurrentAgent, CurrentBuyer, require
from app.errors import BadInput
from app.schemas import ERROR_RESPONSES
from app.shops.models import Agent
from app.shops.policy import Permission

router = APIRouter(prefix="/api/v1", tags=["care"], responses=ERROR_RESPONSES)

CareManager = Annotated[Agent, require(Permission.MANAGE_CARE)]
MetricsReader = Annotated[Agent, require(Permission.VIEW_METRICS)]

Count = Annotated[StrictInt, Field(ge=-(10**9), le=10**9)]


class CareSettingsIn(BaseModel):
    stalled_on: StrictBool | None = None
    stalled_hours: Count | None = None
    stalled_coupon_cents: Count | None = None
    visit_on: StrictBool | None = None
    visit_days: Count | None = None
    apology_on: StrictBool | None = None
    late_shipment_on: StrictBool | None = None


class RatingIn(BaseModel):
    goods: StrictInt = Field(ge=-100, le=100)
    service: StrictInt = Field(ge=-100, le=100)


@router.get("/care/settings")
async def get_settings(agent: CurrentAgent, ctx: Ctx) -> CareSettingsOut:
    async with ctx.db.read() as s:
        found = await service.settings_of(s, agent.shop_id)
    return CareSettingsOut.model_validate(found.as_dict())


@router.post("/care/settings")
async def save_settings(body: CareSettingsIn, admin: CareManager, ctx: Ctx) -> CareSettingsOut:
    """Switch each rule on or off and set its numbers (fields left out stay as they are)."""
    values = {k: v for k, v in body.model_dump().items() if v is not None}
    found = await ctx.db.run(
        actions.save_settings, admin_id=admin.id, values=values, now=ctx.clock.now()
    )
    return CareSettingsOut.model_validate(found.as_dict())


@router.get("/care/actions")
async def list_actions(
    agent: CurrentAgent,
    ctx: Ctx,
    order_id: str | None = Query(default=None, max_length=128),
    rule: str | None = None,
) -> list[CareActionPublic]:
    """What the rules did, newest first (at most 500)."""
    if rule is not None and rule not in RULES:
        raise BadInput(f"Expected rule one of {', '.join(RULES)}.", code="bad_request")
    async with ctx.db.read() as s:
        found = await service.fired(s, agent.shop_id, order_id=order_id, rule=rule)
    return [CareActionPublic.model_validate(action_public(a)) for a in found]


@router.get("/care/visits/results")
async def visit_results(agent: MetricsReader, ctx: Ctx) -> VisitResults:
    """回访 in figures: sent, answered, average goods and service scores."""
    async with ctx.db.read() as s:
        return VisitResults.model_validate(await service.visit_results(s, agent.shop_id))


@router.post("/care/visits/{care_id}/rating")
async def rate_visit(
    care_id: str, body: RatingIn, buyer: CurrentBuyer, ctx: Ctx
) -> CareActionPublic:
    """The buyer's answer to a 回访: goods and service, 1 to 5 each, once."""
    found = await ctx.db.run(
        actions.answer_visit,
        shop_id=buyer.shop_id,
        buyer_id=buyer.buyer_id,
        care_id=care_id,
        goods=body.goods,
        service_score=body.service,
        now=ctx.clock.now(),
    )
    return CareActionPublic.model_validate(action_public(found))
