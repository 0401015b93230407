"""Wire shapes of recall: CAMPAIGN with progress and stats, intent with its signals."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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
