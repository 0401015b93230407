"""HTTP: fan groups, their messages, check-ins, giveaways and moderation (PROTOCOL.md Groups)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr

from app.chat.actions import BuyerIdentity
from app.deps import Ctx, CurrentAdmin, CurrentAgent, CurrentCaller, CurrentStaff
from app.errors import BadInput, Forbidden
from app.groups import actions, rules, service
from app.limits import MAX_NUMBER, MAX_SEQ

router = APIRouter(prefix="/api/v1")


class GroupCreate(BaseModel):
    name: str
    max_members: int = rules.DEFAULT_MAX_MEMBERS


class GroupPost(BaseModel):
    client_msg_id: str = Field(min_length=1, max_length=128)
    body: str


class MuteRequest(BaseModel):
    buyer_id: str | None = None
    minutes: int


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
    quantity: int
    coupon: Annotated[dict[Annotated[str, Field(max_length=64)], CouponValue], Field(max_length=50)] = Field(
        default_factory=dict
    )


class SensitiveWords(BaseModel):
    words: list[str]


def _buyer(caller: Any) -> BuyerIdentity:
    if not isinstance(caller, BuyerIdentity):
        raise Forbidden("Only a buyer (with a buyer token) may do this.")
    return caller


@router.get("/groups/sensitive-words")
async def get_sensitive_words(agent: CurrentAgent, ctx: Ctx) -> dict[str, list[str]]:
    async with ctx.db.read() as s:
        return {"words": await service.sensitive_words(s, agent.shop_id)}


@router.put("/groups/sensitive-words")
async def put_sensitive_words(
    body: SensitiveWords, admin: CurrentAdmin, ctx: Ctx
) -> dict[str, list[str]]:
    return {"words": await ctx.db.run(actions.set_sensitive_words, admin, body.words)}


@router.post("/groups", status_code=201)
async def create_group(body: GroupCreate, admin: CurrentAdmin, ctx: Ctx) -> dict[str, Any]:
    g = await ctx.db.run(actions.create_group, admin, body.name, body.max_members, ctx.clock.now())
    return service.group_public(g)


@router.get("/groups")
async def list_groups(caller: CurrentCaller, ctx: Ctx, all: bool = False) -> list[dict[str, Any]]:
    async with ctx.db.read() as s:
        return await service.groups_for(s, caller, all_of_shop=all)


@router.post("/groups/{group_id}/join")
async def join(group_id: str, caller: CurrentCaller, ctx: Ctx) -> dict[str, Any]:
    return await ctx.db.run(actions.join_group, _buyer(caller), group_id, ctx.clock.now())  # type: ignore[no-any-return]


@router.delete("/groups/{group_id}/members/me", status_code=204)
async def leave(group_id: str, caller: CurrentCaller, ctx: Ctx) -> Response:
    await ctx.db.run(actions.leave_group, _buyer(caller), group_id)
    return Response(status_code=204)


@router.delete("/groups/{group_id}/members/{buyer_id}", status_code=204)
async def remove_member(group_id: str, buyer_id: str, staff: CurrentStaff, ctx: Ctx) -> Response:
    await ctx.db.run(actions.remove_member, staff, group_id, buyer_id)
    return Response(status_code=204)


@router.get("/groups/{group_id}/messages")
async def list_messages(
    group_id: str,
    caller: CurrentCaller,
    ctx: Ctx,
    after_seq: int = Query(default=0, ge=0, le=MAX_SEQ),
    limit: int = Query(default=service.PAGE, ge=1, le=service.PAGE),
) -> list[dict[str, Any]]:
    async with ctx.db.read() as s:
        return await service.history(s, caller, group_id, after_seq, limit)


@router.post("/groups/{group_id}/messages")
async def post_message(
    group_id: str, body: GroupPost, caller: CurrentCaller, ctx: Ctx
) -> JSONResponse:
    text = body.body
    if not text.strip() or "\x00" in text or len(text) > ctx.settings.max_body_chars:
        raise BadInput(
            f"A group message is 1 to {ctx.settings.max_body_chars} characters of text.",
            code="invalid",
        )
    sent = await ctx.db.run(
        actions.send_to_group, caller, group_id, body.client_msg_id, text, ctx.clock.now()
    )
    return JSONResponse(
        service.message_public(sent.message), status_code=200 if sent.duplicate else 201
    )


@router.post("/groups/{group_id}/checkin")
async def checkin(group_id: str, caller: CurrentCaller, ctx: Ctx) -> dict[str, Any]:
    return await ctx.db.run(actions.check_in, _buyer(caller), group_id, ctx.clock.now())  # type: ignore[no-any-return]


@router.post("/groups/{group_id}/mute")
async def mute(group_id: str, body: MuteRequest, staff: CurrentStaff, ctx: Ctx) -> dict[str, Any]:
    return await ctx.db.run(  # type: ignore[no-any-return]
        actions.mute, staff, group_id, body.buyer_id, body.minutes, ctx.clock.now()
    )


@router.post("/groups/{group_id}/giveaways", status_code=201)
async def create_giveaway(
    group_id: str, body: GiveawayCreate, staff: CurrentStaff, ctx: Ctx
) -> dict[str, Any]:
    return await ctx.db.run(  # type: ignore[no-any-return]
        actions.create_giveaway,
        staff,
        group_id,
        body.title,
        body.quantity,
        body.coupon,
        ctx.clock.now(),
    )


@router.get("/giveaways/{giveaway_id}")
async def get_giveaway(giveaway_id: str, caller: CurrentCaller, ctx: Ctx) -> dict[str, Any]:
    async with ctx.db.read() as s:
        gw = await service.giveaway_in_shop(s, caller.shop_id, giveaway_id)
        await service.readable_group(s, caller, gw.group_id)
        return service.giveaway_public(gw)


@router.post("/giveaways/{giveaway_id}/claim")
async def claim(giveaway_id: str, caller: CurrentCaller, ctx: Ctx) -> dict[str, Any]:
    return await ctx.db.run(actions.claim_giveaway, _buyer(caller), giveaway_id, ctx.clock.now())  # type: ignore[no-any-return]
