"""HTTP: the shop's service hours, holidays and auto-reply (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from app.deps import Ctx, require
from app.routing import hours
from app.routing.hours_schemas import ServiceHoursIn, ServiceHoursPublic
from app.schemas import ERROR_RESPONSES
from app.shops.models import Agent
from app.shops.policy import Permission

router = APIRouter(prefix="/api/v1", tags=["routing"], responses=ERROR_RESPONSES)

HoursManager = Annotated[Agent, require(Permission.MANAGE_SERVICE_HOURS)]


@router.get("/service-hours")
async def get_service_hours(admin: HoursManager, ctx: Ctx) -> ServiceHoursPublic:
    async with ctx.db.read() as s:
        found = await hours.shop_hours(s, admin.shop_id)
    return ServiceHoursPublic.model_validate(hours.hours_wire(found, ctx.clock.now()))


@router.put("/service-hours")
async def put_service_hours(
    body: ServiceHoursIn, admin: HoursManager, ctx: Ctx
) -> ServiceHoursPublic:
    stored = await ctx.db.run(
        hours.set_hours,
        admin.shop_id,
        body.weekly,
        body.exceptions,
        body.auto_reply,
        ctx.clock.now(),
    )
    return ServiceHoursPublic.model_validate(stored)
