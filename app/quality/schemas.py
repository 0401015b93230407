"""Wire shapes of quality inspection (docs/protocol-notes.md "Quality inspection")."""

from __future__ import annotations

from pydantic import BaseModel, Field, StrictInt

from app.quality import rules


class ItemIO(BaseModel):
    key: str = Field(min_length=1, max_length=32)
    label: str = Field(default="", max_length=50)
    points: StrictInt = Field(ge=1, le=rules.MAX_ITEM_POINTS)


class SettingsIO(BaseModel):
    daily_sample: StrictInt = Field(ge=0, le=rules.MAX_DAILY_SAMPLE)
    scorecard: list[ItemIO] = Field(min_length=1, max_length=rules.MAX_ITEMS)


class ScoreIn(BaseModel):
    scores: dict[str, StrictInt] = Field(max_length=rules.MAX_ITEMS)
    comment: str = Field(default="", max_length=rules.MAX_COMMENT)


class ReviewPublic(BaseModel):
    id: str
    conversation_id: str
    agent_id: str
    reason: str = Field(description="sample | flag | low_rating | payout | after_sales")
    day: str
    status: str = Field(description="pending | done")
    scores: dict[str, int]
    total: int | None
    max_total: int | None
    score_rate: float | None = Field(description="total / max_total, 0 to 1.")
    comment: str
    reviewer_id: str | None
    reviewed_at: str | None
    scorecard: list[ItemIO]
