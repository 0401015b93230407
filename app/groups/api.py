"""HTTP: fan groups, their messages, check-ins, giveaways and moderation (PROTOCOL.md Groups)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr

from app.deps import Ctx, CurrentAgent, CurrentBuyer, CurrentCaller, require
from app.errors import BadInput
from app.groups import actions, rules, service
from app.groups.schemas import (
    CheckinOut,
    GiveawayClaimOut,
    GiveawayPublic,
    GroupMessagePublic,
    GroupPublic,
    MuteOut,
    SensitiveWordsPublic,
)
from app.limits import MAX_NUMBER, MAX_SEQ
from app.schemas import ERROR_RESPONSES
from app.shops.models import Agent
from app.shops.policy import Permission

router = APIRouter(prefix="/api/v1", tags=["groups"], responses=ERROR_RESPONSES)

Moderator = Annotated[Agent, require(Permission.MODERATE_GROUPS)]
GroupManager = Annotated[Agent, require(Permission.MANAGE_GROUPS)]


# Whole numbers are JSON integers: no "5" or 5.0 (the schema says integer; the domain judges the range).
class GroupCreate(BaseModel):
    name: str
    max_members: StrictInt = rules.DEFAULT_MAX_MEMBERS


class GroupPost(BaseModel):
    client_msg_id: str = Field(min_length=1, max_length=128)
    body: str


class MuteRequest(BaseModel):
    buyer_id: str | None = None
    minutes: StrictInt


# A coupon is stored as given, so it is bounded here: a few named scalars, never a
# nested structure (one 300 levels deep could not even be written back as JSON).
CouponValue = (
    Annotated[StrictInt, Field(ge=-MAX_NUMBER, le=MAX_NUMBER)]
    | Annotated[float, Field(allow_inf_nan=False)]
    | Annotated[StrictStr, Field(max_length=500)]
    | StrictBool
    | None
)


class GiveawayCreate(BaseModel):
    title: str
    quantity: StrictInt
    coupon: Annotated[
        dict[Annotated[str, Field(max_length=64)], CouponValue], Field(max_length=50)
    ] = Field(default_factory=dict)


class SensitiveWords(BaseModel):
    words: list[str]


@router.get("/groups/sensitive-words")
async def get_sensitive_words(agent: CurrentAgent, ctx: Ctx) -> SensitiveWordsPublic:
    async with ctx.db.read() as s:
        return SensitiveWordsPublic(words=await service.sensitive_words(s, agent.shop_id))


@router.put("/groups/sensitive-words")
async def put_sensitive_words(
    body: SensitiveWords, admin: GroupManager, ctx: Ctx
) -> SensitiveWordsPublic:
    return SensitiveWordsPublic(
        words=await ctx.db.run(actions.set_sensitive_words, admin, body.words)
    )


@router.post("/groups", status_code=201)
async def create_group(body: GroupCreate, admin: GroupManager, ctx: Ctx) -> GroupPublic:
    g = await ctx.db.run(actions.create_group, admin, body.name, body.max_members, ctx.clock.now())
    return GroupPublic.model_validate(service.group_public(g))


# A buyer's view carries their membership; an agent's has no such fields (left out, not null).
@router.get("/groups", response_model_exclude_unset=True)
async def list_groups(caller: CurrentCaller, ctx: Ctx, all: bool = False) -> list[GroupPublic]:
    async with ctx.db.read() as s:
        return [
            GroupPublic.model_validate(g)
            for g in await service.groups_for(s, caller, all_of_shop=all)
        ]


@router.post("/groups/{group_id}/join")
async def join(group_id: str, buyer: CurrentBuyer, ctx: Ctx) -> GroupPublic:
    return GroupPublic.model_validate(
        await ctx.db.run(actions.join_group, buyer, group_id, ctx.clock.now())
    )


@router.delete("/groups/{group_id}/members/me", status_code=204)
async def leave(group_id: str, buyer: CurrentBuyer, ctx: Ctx) -> Response:
    await ctx.db.run(actions.leave_group, buyer, group_id)
    return Response(status_code=204)


@router.delete("/groups/{group_id}/members/{buyer_id}", status_code=204)
async def remove_member(group_id: str, buyer_id: str, staff: Moderator, ctx: Ctx) -> Response:
    await ctx.db.run(actions.remove_member, staff, group_id, buyer_id)
    return Response(status_code=204)


@router.get("/groups/{group_id}/messages")
async def list_messages(
    group_id: str,
    caller: CurrentCaller,
    ctx: Ctx,
    after_seq: int = Query(default=0, ge=0, le=MAX_SEQ),
    limit: int = Query(default=service.PAGE, ge=1, le=service.PAGE),
) -> list[GroupMessagePublic]:
    async with ctx.db.read() as s:
        return [
            GroupMessagePublic.model_validate(m)
            for m in await service.history(s, caller, group_id, after_seq, limit)
        ]


@router.post(
    "/groups/{group_id}/messages",
    status_code=201,
    responses={200: {"model": GroupMessagePublic, "description": "A repeated client_msg_id."}},
)
async def post_message(
    group_id: str, body: GroupPost, caller: CurrentCaller, ctx: Ctx, response: Response
) -> GroupMessagePublic:
    """201 with the new message; 200 with the stored one when `client_msg_id` repeats."""
    text = body.body
    if not text.strip() or "\x00" in text or len(text) > ctx.settings.max_body_chars:
        raise BadInput(
            f"A group message is 1 to {ctx.settings.max_body_chars} characters of text.",
            code="invalid",
        )
    sent = await ctx.db.run(
        actions.send_to_group, caller, group_id, body.client_msg_id, text, ctx.clock.now()
    )
    response.status_code = 200 if sent.duplicate else 201
    return GroupMessagePublic.model_validate(service.message_public(sent.message))


@router.post("/groups/{group_id}/checkin")
async def checkin(group_id: str, buyer: CurrentBuyer, ctx: Ctx) -> CheckinOut:
    return CheckinOut.model_validate(
        await ctx.db.run(actions.check_in, buyer, group_id, ctx.clock.now())
    )


@router.post("/groups/{group_id}/mute")
async def mute(group_id: str, body: MuteRequest, staff: Moderator, ctx: Ctx) -> MuteOut:
    return MuteOut.model_validate(
        await ctx.db.run(
            actions.mute, staff, group_id, body.buyer_id, body.minutes, ctx.clock.now()
        )
    )


@router.post("/groups/{group_id}/giveaways", status_code=201)
async def create_giveaway(
    group_id: str, body: GiveawayCreate, staff: Moderator, ctx: Ctx
) -> GiveawayPublic:
    return GiveawayPublic.model_validate(
        await ctx.db.run(
            actions.create_giveaway,
            staff,
            group_id,
            body.title,
            body.quantity,
            body.coupon,
            ctx.clock.now(),
        )
    )


@router.get("/giveaways/{giveaway_id}")
async def get_giveaway(giveaway_id: str, caller: CurrentCaller, ctx: Ctx) -> GiveawayPublic:
    async with ctx.db.read() as s:
        gw = await service.giveaway_in_shop(s, caller.shop_id, giveaway_id, caller)
        await service.readable_group(s, caller, gw.group_id)
        return GiveawayPublic.model_validate(service.giveaway_public(gw))


@router.post("/giveaways/{giveaway_id}/claim")
async def claim(giveaway_id: str, buyer: CurrentBuyer, ctx: Ctx) -> GiveawayClaimOut:
    return GiveawayClaimOut.model_validate(
        await ctx.db.run(actions.claim_giveaway, buyer, giveaway_id, ctx.clock.now())
    )
