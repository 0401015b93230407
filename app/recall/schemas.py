"""Wire shapes of recall: CAMPAIGN with progress and stats, intent with its signals."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app.recall import rules
from app.recall.models import RecallCampaign
from app.recall.service import Audience, Results


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None


def campaign_public(c: RecallCampaign, stats: Results) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "send_at": _iso(c.send_at),
        "ends_at": _iso(c.ends_at),
        "min_intent": c.min_intent,
        "coupon": c.coupon,
        "message": c.message,
        "status": c.status,
        "created_by": c.created_by,
        "created_at": _iso(c.created_at),
        "started_at": _iso(c.started_at),
        "finished_at": _iso(c.finished_at),
        "progress": {"total": c.total, "sent": c.sent, "skipped": c.skipped},
        "stats": {
            "sent": stats.sent,
            "read": stats.read,
            "claimed": stats.claimed,
            "converted": stats.converted,
            "conversion_rate": stats.conversion_rate,
        },
    }


def intent_public(intent: rules.Intent, last_consulted_at: datetime | None) -> dict[str, Any]:
    return {
        "score": intent.score,
        "signals": [{"type": s.type, "count": s.count, "points": s.points} for s in intent.signals],
        "last_consulted_at": _iso(last_consulted_at),
    }


def preview_public(a: Audience) -> dict[str, Any]:
    return {"eligible": a.eligible, "excluded": dict(a.excluded)}


# ---- the same shapes as models, for the API's response declarations ----------------------


class EventOut(BaseModel):
    id: str
    buyer_id: str
    type: str
    at: str


class SignalPublic(BaseModel):
    type: str
    count: int
    points: int


class IntentPublic(BaseModel):
    score: int = Field(description="0-100.")
    signals: list[SignalPublic]
    last_consulted_at: str | None


class Progress(BaseModel):
    total: int
    sent: int
    skipped: int


class CampaignStats(BaseModel):
    sent: int
    read: int
    claimed: int
    converted: int
    conversion_rate: float


class CampaignPublic(BaseModel):
    """CAMPAIGN of PROTOCOL.md, with its progress and results."""

    id: str
    name: str
    send_at: str | None
    ends_at: str | None
    min_intent: int
    coupon: dict[str, Any]
    message: str
    status: str
    created_by: str | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    progress: Progress
    stats: CampaignStats


class PreviewPublic(BaseModel):
    """How many a campaign would recall now, and how many are left out, by reason."""

    eligible: int
    excluded: dict[str, int]


class OptOutOut(BaseModel):
    opted_out: bool


class RecallStateOut(BaseModel):
    """The buyer's own recall state: opted out or not, and the coupons they claimed."""

    opted_out: bool
    claimed: list[str]


class ClaimOut(BaseModel):
    coupon_id: str
    campaign_id: str
    claimed_at: str


class WindowPublic(BaseModel):
    """The daily sending window, in minutes after midnight in the shop's time zone."""

    window_start_min: int
    window_end_min: int
