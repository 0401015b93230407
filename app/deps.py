"""FastAPI dependencies: who is calling, as reusable validators behind Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.chat.actions import BuyerIdentity
from app.context import AppContext
from app.errors import Forbidden, NotAuthenticated
from app.shops import service as shop_service
from app.shops.models import Agent, Shop

SESSION_COOKIE = "homing_session"


def get_ctx(request: Request) -> AppContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


Ctx = Annotated[AppContext, Depends(get_ctx)]


def bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


async def current_agent(request: Request, ctx: Ctx) -> Agent:
    token = bearer(request) or request.cookies.get(SESSION_COOKIE)
    async with ctx.db.read() as s:
        return await shop_service.agent_for_token(s, token, ctx.clock.now())


CurrentAgent = Annotated[Agent, Depends(current_agent)]


async def current_admin(agent: CurrentAgent) -> Agent:
    if agent.role != "admin":
        raise Forbidden("Only the shop's admin may do this.")
    return agent


CurrentAdmin = Annotated[Agent, Depends(current_admin)]

STAFF_ROLES = ("supervisor", "admin")


async def current_staff(agent: CurrentAgent) -> Agent:
    """A supervisor or the admin: who may watch the whole shop (agents, metrics)."""
    if agent.role not in STAFF_ROLES:
        raise Forbidden("Only the shop's supervisors and admins may do this.")
    return agent


CurrentStaff = Annotated[Agent, Depends(current_staff)]


async def current_caller(request: Request, ctx: Ctx) -> Agent | BuyerIdentity:
    """An agent (token or cookie) or a buyer (signed JWT): whoever the credentials say."""
    return await caller_from_token(request, ctx)


async def caller_from_token(
    request: Request, ctx: AppContext, extra_token: str | None = None
) -> Agent | BuyerIdentity:
    token = bearer(request) or extra_token
    now = ctx.clock.now()
    async with ctx.db.read() as s:
        if token and token.count(".") == 2:
            return await shop_service.buyer_for_token(s, token, now)
        cookie = request.cookies.get(SESSION_COOKIE)
        if not token and not cookie:
            raise NotAuthenticated("Credentials are required.")
        return await shop_service.agent_for_token(s, token or cookie, now)


CurrentCaller = Annotated[Agent | BuyerIdentity, Depends(current_caller)]


async def current_shop(request: Request, ctx: Ctx) -> Shop:
    async with ctx.db.read() as s:
        return await shop_service.shop_for_api_key(s, bearer(request))


CurrentShop = Annotated[Shop, Depends(current_shop)]
