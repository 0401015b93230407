"""HTTP: the shop's compliance rules, the check as an agent types, the flags to review."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from app.compliance import actions, rules, service
from app.compliance.schemas import (
    CheckIn,
    CheckOut,
    FlagPublic,
    RulesIn,
    RulesPublic,
    check_out,
    rule_public,
)
from app.deps import Ctx, CurrentAgent, require
from app.schemas import ERROR_RESPONSES
from app.shops.models import Agent
from app.shops.policy import Permission

router = APIRouter(prefix="/api/v1", tags=["compliance"], responses=ERROR_RESPONSES)

RuleKeeper = Annotated[Agent, require(Permission.MANAGE_COMPLIANCE)]
FlagReviewer = Annotated[Agent, require(Permission.REVIEW_COMPLIANCE)]


async def _rules_public(ctx: Ctx, shop_id: str) -> RulesPublic:
    async with ctx.db.read() as s:
        version = await service.version(s, shop_id)
        own = await service.shop_rules(s, shop_id)
    return RulesPublic(
        version=version,
        defaults=[rule_public(r) for r in rules.default_rules()],
        rules=[rule_public(rules.Rule("shop", r.category, r.action, r.word)) for r in own],
    )


@router.get("/compliance/rules")
async def get_rules(agent: CurrentAgent, ctx: Ctx) -> RulesPublic:
    """The platform's rules and the shop's own (any agent may read what they are held to)."""
    return await _rules_public(ctx, agent.shop_id)


@router.put("/compliance/rules")
async def put_rules(body: RulesIn, admin: RuleKeeper, ctx: Ctx) -> RulesPublic:
    given = [(r.word, r.action, r.category) for r in body.rules]
    await ctx.db.run(actions.set_rules, admin, given, ctx.clock.now())
    return await _rules_public(ctx, admin.shop_id)


@router.post("/compliance/check")
async def check_text(body: CheckIn, agent: CurrentAgent, ctx: Ctx) -> CheckOut:
    """What the rules would say of this text if sent now (the composer asks as one types)."""
    return check_out(await ctx.compliance.check(agent.shop_id, body.body))


@router.get("/compliance/flags")
async def list_flags(
    staff: FlagReviewer, ctx: Ctx, reviewed: bool | None = None
) -> list[FlagPublic]:
    async with ctx.db.read() as s:
        found = await service.flags(s, staff.shop_id, reviewed=reviewed)
    return [FlagPublic.model_validate(actions.flag_public(f)) for f in found]


@router.post("/compliance/flags/{flag_id}/review")
async def review_flag(flag_id: str, staff: FlagReviewer, ctx: Ctx) -> FlagPublic:
    flag = await ctx.db.run(actions.review_flag, staff, flag_id, ctx.clock.now())
    return FlagPublic.model_validate(actions.flag_public(flag))
