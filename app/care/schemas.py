"""Wire shapes of proactive care: the shop's rules, a fired rule, 回访 results."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from app.care.models import CareAction
from app.chat.schemas import iso


def action_public(a: CareAction) -> dict[str, Any]:
    return {
        "id": a.id,
        "order_id": a.order_id,
        "rule": a.rule,
        "buyer_id": a.buyer_id,
        "conversation_id": a.conversation_id,
        "coupon_cents": a.coupon_cents,
        "fired_at": iso(a.fired_at),
        "goods_score": a.goods_score,
        "service_score": a.service_score,
        "answered_at": iso(a.answered_at),
    }


class CareSettingsOut(BaseModel):
    stalled_on: bool
    stalled_hours: int
    stalled_coupon_cents: int
    visit_on: bool
    visit_days: int
    apology_on: bool
    late_shipment_on: bool


class CareActionPublic(BaseModel):
    id: str
    order_id: str
    rule: str
    buyer_id: str
    conversation_id: str | None
    coupon_cents: int
    fired_at: str | None
    goods_score: int | None
    service_score: int | None
    answered_at: str | None


class VisitResults(BaseModel):
    sent: int
    answered: int
    goods_avg: float | None
    service_avg: float | None
