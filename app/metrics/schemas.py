"""Wire shapes of service metrics (PROTOCOL.md "Metrics"): rates are fractions 0-1, null
where there is nothing to divide by."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Metrics(BaseModel):
    reply_3min_rate: float | None
    avg_first_response_s: float | None
    satisfaction_rate: float | None
    dissatisfaction_rate: float | None
    handled: int
    payouts_cents: int
    qa_score: float | None = Field(
        default=None, description="Quality inspection (质检): points given / possible, 0 to 1."
    )
    qa_reviews: int = Field(default=0, description="Scored reviews behind qa_score.")


class _Agent(BaseModel):
    agent_id: str
    username: str
    display_name: str
    role: str


class AgentMetricsPublic(_Metrics, _Agent):
    """One agent's metrics over the period (the agent's fields first)."""


class _Period(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    start: str = Field(alias="from", description="ISO 8601, inclusive.")
    end: str = Field(alias="to", description="ISO 8601, exclusive.")


class ShopMetricsPublic(_Metrics, _Period):
    """The whole shop's metrics over the period [from, to)."""
