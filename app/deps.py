"""FastAPI dependencies: who is calling, as reusable validators behind Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.chat.actions import BuyerIdentity
from app.context import AppContext
from app.errors import Forbidden, NotAuthenticated
from app.security import CSRF_HEADER, SAFE_METHODS, SESSION_COOKIE, csrf_ok
from app.shops import service as shop_service
from app.shops.models import Agent, Shop
from app.shops.roles import STAFF_ROLES


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(get_ctx)]


def bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def session_cookie(request: Request) -> str | None:
    """The session cookie, as a credential: on a request that changes state it counts only
    with the session's CSRF token in `X-CSRF-Token` (another site's form or script can make
    the browser send the cookie, never the header)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if (
        cookie
        and request.method not in SAFE_METHODS
        and not csrf_ok(cookie, request.headers.get(CSRF_HEADER))
    ):
        raise Forbidden(
            f"A request authenticated by the session cookie must carry the {CSRF_HEADER} header.",
            code="csrf_failed",
        )
    return cookie


async def current_agent(request: Request, ctx: Ctx) -> Agent:
    token = bearer(request) or session_cookie(request)
    async with ctx.db.read() as s:
        return await shop_service.agent_for_token(s, token, ctx.clock.now())


CurrentAgent = Annotated[Agent, Depends(current_agent)]


async def current_admin(agent: CurrentAgent) -> Agent:
    if agent.role != "admin":
        raise Forbidden("Only the shop's admin may do this.")
    return agent


CurrentAdmin = Annotated[Agent, Depends(current_admin)]


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
    if token and token.count(".") == 2:
        async with ctx.db.read() as s:
            return await shop_service.buyer_for_token(s, token, now)
    token = token or session_cookie(request)
    if not token:
        raise NotAuthenticated("Credentials are required.")
    async with ctx.db.read() as s:
        return await shop_service.agent_for_token(s, token, now)


CurrentCaller = Annotated[Agent | BuyerIdentity, Depends(current_caller)]


async def current_shop(request: Request, ctx: Ctx) -> Shop:
    async with ctx.db.read() as s:
        return await shop_service.shop_for_api_key(s, bearer(request))


CurrentShop = Annotated[Shop, Depends(current_shop)]
