"""HTTP: agent login and logout, and the admin's management of the shop's agents."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr

from app.deps import SESSION_COOKIE, Ctx, CurrentAgent, bearer, require
from app.errors import BadInput, NotAuthenticated, RateLimited
from app.schemas import ERROR_RESPONSES, OkOut
from app.security import csrf_token_for
from app.shops import actions
from app.shops import service as shop_service
from app.shops.models import Agent
from app.shops.policy import Permission
from app.shops.schemas import AgentRead, LoginOut, MeOut
from app.shops.service import AgentWithQueues

router = APIRouter(prefix="/api/v1", tags=["agents"], responses=ERROR_RESPONSES)

AgentViewer = Annotated[Agent, require(Permission.VIEW_AGENTS)]
AgentManager = Annotated[Agent, require(Permission.MANAGE_AGENTS)]


class LoginIn(BaseModel):
    shop: str = Field(min_length=1, max_length=64)
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)


def agent_public(agent: object) -> dict[str, object]:
    return {k: getattr(agent, k) for k in ("id", "username", "display_name", "role")}


@router.post("/auth/login")
async def login(body: LoginIn, request: Request, response: Response, ctx: Ctx) -> LoginOut:
    # The client as uvicorn reports it: behind trusted proxies (HOMING_FORWARDED_ALLOW_IPS)
    # that is the X-Forwarded-For client; cut to the column's width, whatever a proxy sent.
    address = (request.client.host if request.client else "unknown")[:64]
    s = ctx.settings
    result = await actions.login(
        ctx.db,
        shop_slug=body.shop,
        username=body.username,
        password=body.password,
        address=address,
        now=ctx.clock.now(),
        limits=actions.LoginLimits(
            s.login_max_failures, s.login_address_max_failures, s.login_window_s
        ),
        session_ttl=timedelta(hours=s.session_ttl_hours),
    )
    if result.throttled:
        raise RateLimited("Too many failed logins; wait a few minutes and try again.")
    if result.inactive:
        raise NotAuthenticated(
            "This account has been deactivated; ask the shop's admin.", code="agent_inactive"
        )
    if result.token is None:
        raise NotAuthenticated("Wrong shop, username or password.", code="bad_credentials")
    response.set_cookie(
        SESSION_COOKIE,
        result.token,
        httponly=True,
        samesite="lax",
        secure=bool(s.cookie_secure),
        max_age=int(s.session_ttl_hours * 3600),
    )
    # For a client that goes on with the cookie: its state changes need this header value.
    return LoginOut.model_validate(
        {
            "token": result.token,
            "agent": agent_public(result.agent),
            "csrf_token": csrf_token_for(result.token),
        }
    )


@router.post("/auth/logout")
async def logout(request: Request, response: Response, agent: CurrentAgent, ctx: Ctx) -> OkOut:
    token = bearer(request) or request.cookies.get(SESSION_COOKIE)
    if token:
        await ctx.db.run(actions.logout, token)
    response.delete_cookie(SESSION_COOKIE)
    return OkOut(ok=True)


@router.get("/me")
async def me(agent: CurrentAgent) -> MeOut:
    return MeOut.model_validate(
        {**agent_public(agent), "status": agent.status, "max_concurrent": agent.max_concurrent}
    )


# Bounds here only keep bodies small; the domain judges the values (and answers 422).
TEXT_MAX = 1000


class AgentPatchIn(BaseModel):
    username: StrictStr | None = Field(default=None, max_length=TEXT_MAX)
    password: StrictStr | None = Field(default=None, max_length=TEXT_MAX)
    display_name: StrictStr | None = Field(default=None, max_length=TEXT_MAX)
    role: StrictStr | None = Field(default=None, max_length=TEXT_MAX)
    queues: list[StrictStr] | None = Field(default=None, max_length=200)
    max_concurrent: StrictInt | None = None
    payout_limit_cents: StrictInt | None = None
    payout_daily_cents: StrictInt | None = None
    active: StrictBool | None = None

    def to_fields(self) -> actions.AgentFields:
        nulls = sorted(k for k in self.model_fields_set if getattr(self, k) is None)
        if nulls:
            raise BadInput(f"{', '.join(nulls)} may be left out but not null.", code="invalid")
        data = self.model_dump(exclude_unset=True)
        if "queues" in data:
            data["queues"] = tuple(data["queues"])
        return actions.AgentFields(**data)


class AgentIn(AgentPatchIn):
    username: StrictStr = Field(max_length=TEXT_MAX)
    password: StrictStr = Field(max_length=TEXT_MAX)


def agent_detail(found: AgentWithQueues) -> AgentRead:
    """Agent JSON for the console; never the password hash."""
    a = found.agent
    return AgentRead.model_validate(
        {
            "id": a.id,
            "username": a.username,
            "display_name": a.display_name,
            "role": a.role,
            "status": a.status,
            "queues": found.queues,
            "max_concurrent": a.max_concurrent,
            "active_count": a.active_count,
            "payout_limit_cents": a.payout_limit_cents,
            "payout_daily_cents": a.payout_daily_cents,
            "active": a.active,
        }
    )


@router.get("/agents")
async def list_agents(staff: AgentViewer, ctx: Ctx) -> list[AgentRead]:
    async with ctx.db.read() as s:
        return [agent_detail(a) for a in await shop_service.agents_of_shop(s, staff.shop_id)]


@router.post("/agents", status_code=201)
async def add_agent(body: AgentIn, admin: AgentManager, ctx: Ctx) -> AgentRead:
    added = await ctx.db.run(actions.add_agent, admin.shop_id, body.to_fields(), ctx.clock.now())
    return agent_detail(added)


@router.patch("/agents/{agent_id}")
async def update_agent(
    agent_id: str, body: AgentPatchIn, request: Request, admin: AgentManager, ctx: Ctx
) -> AgentRead:
    # An admin changing their own password stays logged in on this session.
    own_token = (
        (bearer(request) or request.cookies.get(SESSION_COOKIE)) if agent_id == admin.id else None
    )
    updated = await ctx.db.run(
        actions.update_agent,
        admin.shop_id,
        agent_id,
        body.to_fields(),
        now=ctx.clock.now(),
        keep_token=own_token,
    )
    return agent_detail(updated)
