"""Quality reads: the shop's settings and card, the conversations a day's review takes,
the reviews (an agent reads only their own), and the averages the metrics show."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.aftersales.models import AfterSale
from app.chat.models import Conversation, Rating
from app.compliance import service as compliance_service
from app.errors import NotFound
from app.payouts.models import Payout
from app.quality import rules
from app.quality.models import QaReview, QaSettings
from app.shops.models import Agent
from app.shops.policy import Permission, may
from app.tags import service as tags_service

PAGE = 500


async def settings_of(s: AsyncSession, shop_id: str) -> tuple[int, list[rules.Item]]:
    """(daily sample per agent, scorecard)."""
    row = await s.get(QaSettings, shop_id)
    if row is None:
        return rules.DEFAULT_DAILY_SAMPLE, rules.card_of([])
    return row.daily_sample, rules.card_of(row.scorecard)


async def closed_between(
    s: AsyncSession, shop_id: str, start: datetime, end: datetime
) -> list[tuple[str, str, datetime]]:
    """(conversation id, agent id, closed at) of the shop's conversations an agent closed in
    [start, end)."""
    rows = await s.execute(
        select(col(Conversation.id), col(Conversation.agent_id), col(Conversation.closed_at)).where(
            col(Conversation.shop_id) == shop_id,
            col(Conversation.status) == "closed",
            col(Conversation.agent_id).is_not(None),
            col(Conversation.closed_at) >= start,
            col(Conversation.closed_at) < end,
        )
    )
    return [(c, a, at) for c, a, at in rows if a is not None and at is not None]


async def after_sales_conversations(s: AsyncSession, conversation_ids: list[str]) -> set[str]:
    """Conversations with an after-sales decision (退款/退货: approved or declined, by an
    agent or automatically)."""
    if not conversation_ids:
        return set()
    rows = await s.execute(
        select(col(AfterSale.conversation_id))
        .where(
            col(AfterSale.conversation_id).in_(conversation_ids),
            col(AfterSale.decided_at).is_not(None),
        )
        .distinct()
    )
    return set(rows.scalars())


async def must_review(s: AsyncSession, conversation_ids: list[str]) -> dict[str, str]:
    """Of these closed conversations, those reviewed whatever the sample, with the reason:
    an agent's message flagged, a rating of 1-2, a payout, an after-sales decision."""
    if not conversation_ids:
        return {}
    flagged = await compliance_service.flagged_conversations(s, conversation_ids)
    ratings = dict(
        (
            await s.execute(
                select(col(Rating.conversation_id), col(Rating.score)).where(
                    col(Rating.conversation_id).in_(conversation_ids)
                )
            )
        ).all()
    )
    paid = set(
        (
            await s.execute(
                select(col(Payout.conversation_id)).where(
                    col(Payout.conversation_id).in_(conversation_ids),
                    col(Payout.status) == "paid",
                )
            )
        ).scalars()
    )
    after_sales = await after_sales_conversations(s, conversation_ids)
    found: dict[str, str] = {}
    for cid in conversation_ids:
        reason = rules.review_reason(
            flagged=cid in flagged,
            rating=ratings.get(cid),
            paid=cid in paid,
            after_sales=cid in after_sales,
        )
        if reason is not None:
            found[cid] = reason
    return found


async def reviews(
    s: AsyncSession, me: Agent, *, status: str | None = None, agent_id: str | None = None
) -> list[QaReview]:
    """Supervisors: the shop's reviews (of one agent, with `agent_id`). Anyone else: their
    own scored reviews, whatever they ask for."""
    q = select(QaReview).where(col(QaReview.shop_id) == me.shop_id)
    if not may(me.role, Permission.INSPECT_QUALITY):
        q = q.where(col(QaReview.agent_id) == me.id, col(QaReview.status) == "done")
    else:
        if agent_id:
            q = q.where(col(QaReview.agent_id) == agent_id)
        if status:
            q = q.where(col(QaReview.status) == status)
    rows = await s.execute(
        q.order_by(col(QaReview.day).desc(), col(QaReview.created_at).desc()).limit(PAGE)
    )
    return list(rows.scalars())


async def review_for(s: AsyncSession, me: Agent, review_id: str) -> QaReview:
    """One review: supervisors read any of the shop's; an agent only their own scored one
    (another's is answered as if it did not exist)."""
    r = await s.get(QaReview, review_id)
    if r is None or r.shop_id != me.shop_id:
        raise NotFound("No such review.")
    if not may(me.role, Permission.INSPECT_QUALITY) and (r.agent_id != me.id or r.status != "done"):
        raise NotFound("No such review.")
    return r


async def averages(
    s: AsyncSession, shop_id: str, start: datetime, end: datetime, tag_id: str | None = None
) -> dict[str, tuple[int, int, int]]:
    """Per agent, over reviews scored for conversations closed in [start, end) (with
    `tag_id`: carrying that tag): (points given, points possible, reviews)."""
    rows = await s.execute(
        select(
            col(QaReview.agent_id),
            func.sum(col(QaReview.total)),
            func.sum(col(QaReview.max_total)),
            func.count(),
        )
        .join(Conversation, col(Conversation.id) == col(QaReview.conversation_id))
        .where(
            col(QaReview.shop_id) == shop_id,
            col(QaReview.status) == "done",
            col(Conversation.closed_at) >= start,
            col(Conversation.closed_at) < end,
            tags_service.tagged(col(Conversation.id), tag_id),
        )
        .group_by(col(QaReview.agent_id))
    )
    found: dict[str, tuple[int, int, int]] = defaultdict(lambda: (0, 0, 0))
    for agent_id, total, most, n in rows:
        found[agent_id] = (int(total or 0), int(most or 0), int(n))
    return dict(found)


def review_public(r: QaReview, card: list[rules.Item]) -> dict[str, Any]:
    return {
        "id": r.id,
        "conversation_id": r.conversation_id,
        "agent_id": r.agent_id,
        "reason": r.reason,
        "day": r.day.isoformat(),
        "status": r.status,
        "scores": dict(r.scores or {}),
        "total": r.total,
        "max_total": r.max_total,
        "score_rate": rules.score_rate(r.total, r.max_total)
        if r.total is not None and r.max_total
        else None,
        "comment": r.comment,
        "reviewer_id": r.reviewer_id,
        "reviewed_at": r.reviewed_at.isoformat() if r.reviewed_at else None,
        "scorecard": [{"key": i.key, "label": i.label, "points": i.points} for i in card],
    }
