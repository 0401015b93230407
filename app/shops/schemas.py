"""Wire shapes of agents and their sessions (PROTOCOL.md "Auth" and "Agents and configuration")."""

from __future__ import annotations

from pydantic import BaseModel


class AgentPublic(BaseModel):
    """An agent as any caller of the shop may see them."""

    id: str
    username: str
    display_name: str
    role: str


class LoginOut(BaseModel):
    token: str
    agent: AgentPublic
    csrf_token: str


class MeOut(AgentPublic):
    status: str
    max_concurrent: int


class AgentRead(AgentPublic):
    """An agent as the admin console sees them; never the password hash."""

    status: str
    queues: list[str]
    max_concurrent: int
    active_count: int
    payout_limit_cents: int
    payout_daily_cents: int
    active: bool
