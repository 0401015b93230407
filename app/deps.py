"""FastAPI dependencies: who is calling, as reusable validators behind Annotated aliases."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from app.context import AppContext
from app.errors import Forbidden, NotAuthenticated
from app.security import CSRF_HEADER, SAFE_METHODS, SESSION_COOKIE, csrf_ok
from app.shops import service as shop_service
from app.shops.identities import BuyerIdentity, Caller
from app.shops.models import Agent, Shop
from app.shops.policy import Permission, check


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


def require(permission: Permission) -> Any:
    """A dependency: the calling agent, if their role may do `permission` (else 403).

    `admin: Annotated[Agent, require(Permission.MANAGE_QUEUES)]` in a route's signature."""

    async def permitted(agent: CurrentAgent) -> Agent:
        check(agent.role, permission)
        return agent

    return Depends(permitted)


# A supervisor or the admin: who watches the whole shop.
CurrentStaff = Annotated[Agent, require(Permission.SUPERVISE_CHATS)]
# The admin: who sets the shop up (agents, queues). Routes that need one thing of the
# admin's name it with `require(...)`; this is for code that means the admin as such.
CurrentAdmin = Annotated[Agent, require(Permission.MANAGE_AGENTS)]


async def current_caller(request: Request, ctx: Ctx) -> Caller:
    """An agent (token or cookie) or a buyer (signed JWT): whoever the credentials say."""
    return await caller_from_token(request, ctx)


async def caller_from_token(
    request: Request, ctx: AppContext, extra_token: str | None = None
) -> Caller:
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


CurrentCaller = Annotated[Caller, Depends(current_caller)]


async def current_buyer(caller: CurrentCaller) -> BuyerIdentity:
    """A buyer (signed JWT); an agent's credentials are refused with 403."""
    if not isinstance(caller, BuyerIdentity):
        raise Forbidden("Only a buyer (with a buyer token) may do this.")
    return caller


CurrentBuyer = Annotated[BuyerIdentity, Depends(current_buyer)]


async def current_shop(request: Request, ctx: Ctx) -> Shop:
    async with ctx.db.read() as s:
        return await shop_service.shop_for_api_key(s, bearer(request))


CurrentShop = Annotated[Shop, Depends(current_shop)]
