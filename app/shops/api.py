"""HTTP: agent login and logout."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from app.deps import SESSION_COOKIE, CurrentAgent, Ctx, bearer
from app.errors import NotAuthenticated, RateLimited
from app.shops import actions

router = APIRouter(prefix="/api/v1")


class LoginIn(BaseModel):
    shop: str = Field(min_length=1, max_length=64)
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)


def agent_public(agent: object) -> dict[str, object]:
    return {k: getattr(agent, k) for k in ("id", "username", "display_name", "role")}


@router.post("/auth/login")
async def login(body: LoginIn, request: Request, response: Response, ctx: Ctx) -> dict[str, object]:
    address = request.client.host if request.client else "unknown"
    s = ctx.settings
    result = await ctx.db.run(
        actions.login, shop_slug=body.shop, username=body.username, password=body.password,
        address=address, now=ctx.clock.now(), max_failures=s.login_max_failures,
        window_s=s.login_window_s, session_ttl=timedelta(hours=s.session_ttl_hours),
    )
    if result.throttled:
        raise RateLimited("Too many failed logins; wait a few minutes and try again.")
    if result.token is None:
        raise NotAuthenticated("Wrong shop, username or password.", code="bad_credentials")
    response.set_cookie(
        SESSION_COOKIE, result.token, httponly=True, samesite="lax", secure=s.cookie_secure,
        max_age=s.session_ttl_hours * 3600,
    )
    return {"token": result.token, "agent": agent_public(result.agent)}


@router.post("/auth/logout")
async def logout(request: Request, response: Response, agent: CurrentAgent, ctx: Ctx) -> dict[str, bool]:
    token = bearer(request) or request.cookies.get(SESSION_COOKIE)
    if token:
        await ctx.db.run(actions.logout, token)
    response.delete_cookie(SESSION_COOKIE)
    return {"ok": True}


@router.get("/me")
async def me(agent: CurrentAgent) -> dict[str, object]:
    return {**agent_public(agent), "status": agent.status, "max_concurrent": agent.max_concurrent}
