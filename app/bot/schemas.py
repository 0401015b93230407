"""Wire shapes of the bot's HTTP API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from app.bot.models import BotFaq, BotReply, BotSettings
from app.chat.schemas import iso


class FaqPublic(BaseModel):
    id: str
    question: str
    similar: list[str]
    answer: str
    category: str | None
    enabled: bool
    product: dict[str, Any] | None
    updated_at: str | None


def faq_public(f: BotFaq) -> FaqPublic:
    return FaqPublic(
        id=f.id,
        question=f.question,
        similar=list(f.similar),
        answer=f.answer,
        category=f.category,
        enabled=f.enabled,
        product=f.product,
        updated_at=iso(f.updated_at),
    )


class MatchPublic(BaseModel):
    faq_id: str
    question: str
    score: float


class SuggestionPublic(MatchPublic):
    answer: str


class SettingsPublic(BaseModel):
    mode: str
    queue_modes: dict[str, str]
    threshold: float
    handoff_words: list[str]
    anger_words: list[str]
    greeting: str
    version: int


def settings_public(row: BotSettings | None) -> SettingsPublic:
    from app.bot.service import facts_of

    f = facts_of(row)
    return SettingsPublic(
        mode=f.mode,
        queue_modes=dict(f.queue_modes),
        threshold=f.threshold,
        handoff_words=list(f.handoff_words),
        anger_words=list(f.anger_words),
        greeting=f.greeting,
        version=f.version,
    )


class ImportOut(BaseModel):
    added: int
    updated: int


class UnrecognisedPublic(BaseModel):
    message_id: str
    conversation_id: str
    question: str
    outcome: str
    helpful: bool | None
    score: float
    created_at: str | None


def unrecognised_public(r: BotReply) -> UnrecognisedPublic:
    return UnrecognisedPublic(
        message_id=r.message_id,
        conversation_id=r.conversation_id,
        question=r.question,
        outcome=r.outcome,
        helpful=r.helpful,
        score=r.score,
        created_at=iso(r.created_at),
    )


class BotMetricsPublic(BaseModel):
    held: int
    covered: int
    resolved: int
    handed_off: int
    handoff_rate: float
    handoff_reasons: dict[str, int]
    answers: int
    unrecognised: int
    helpful: int
    not_helpful: int
