"""Quality state changes: the shop's settings, the daily draw (once per agent and day,
whatever the number of workers), the must-review conversations, and scoring a review."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlmodel import col

from app.db import UnitOfWork, insert_ignore, new_id, rowcount
from app.errors import BadInput
from app.quality import rules, service
from app.quality.models import QaDraw, QaReview, QaSettings
from app.realtime.topics import agent_topic
from app.shops import service as shop_service
from app.shops.models import Agent, Shop
from app.shops.policy import Permission, check


async def set_settings(
    uow: UnitOfWork, admin: Agent, daily_sample: int, items: list[rules.Item]
) -> None:
    check(admin.role, Permission.MANAGE_QUALITY)
    if not 0 <= daily_sample <= rules.MAX_DAILY_SAMPLE:
        raise BadInput(
            f"daily_sample must be 0 to {rules.MAX_DAILY_SAMPLE}, but got {daily_sample}.",
            code="bad_daily_sample",
        )
    why = rules.check_card(items)
    if why is not None:
        raise BadInput("Give 1 to 20 items with distinct keys and 1 to 100 points.", code=why)
    stored = [{"key": i.key, "label": i.label, "points": i.points} for i in items]
    row = await uow.session.get(QaSettings, admin.shop_id)
    if row is None:
        uow.session.add(
            QaSettings(shop_id=admin.shop_id, daily_sample=daily_sample, scorecard=stored)
        )
    else:
        row.daily_sample, row.scorecard = daily_sample, stored
    await uow.session.flush()


async def _enqueue(
    uow: UnitOfWork,
    shop_id: str,
    conv_id: str,
    agent_id: str,
    reason: str,
    day: date,
    now: datetime,
) -> bool:
    """Put a conversation up for review once (its id is the key); True if it was new."""
    values = {
        "id": new_id(),
        "shop_id": shop_id,
        "conversation_id": conv_id,
        "agent_id": agent_id,
        "reason": reason,
        "day": day,
        "status": "pending",
        "scores": {},
        "comment": "",
        "created_at": now,
    }
    done = await uow.session.execute(
        insert_ignore(uow.dialect, QaReview, ["conversation_id"], values)
    )
    if rowcount(done) == 1:
        return True
    if reason != "sample":
        # Drawn earlier as a mere sample, then found telling (a late rating, a flag): the
        # reviewer sees why it matters while it is still waiting.
        await uow.session.execute(
            update(QaReview)
            .where(
                col(QaReview.conversation_id) == conv_id,
                col(QaReview.reason) == "sample",
                col(QaReview.status) == "pending",
            )
            .values(reason=reason)
        )
    return False


async def draw_for_shop(uow: UnitOfWork, shop_id: str, now: datetime) -> int:
    """Yesterday's (shop time) random sample of each agent's closed conversations, drawn
    once per agent and day: the `qa_draws` key decides which worker draws, the others find
    it taken. Before that, puts up every conversation closed since yesterday that must be
    reviewed (flag, rating 1-2, payout, after-sales). Returns how many reviews were added."""
    shop = await uow.session.get(Shop, shop_id)
    if shop is None:
        return 0
    zone = shop_service.shop_zone(shop)
    day = rules.draw_day(now, zone)
    start, end = rules.day_bounds(day, zone)
    daily_sample, _card = await service.settings_of(uow.session, shop_id)
    added = 0
    # Must-review conversations first (yesterday's and today's so far), so a conversation
    # is reviewed for what made it telling, and the sample is drawn from the others. One
    # read serves both: a conversation committed between two reads would otherwise be
    # missed by the first and drawn by the second as a mere sample.
    closed = await service.closed_between(uow.session, shop_id, start, now + timedelta(seconds=1))
    recent = {conv_id: agent_id for conv_id, agent_id, _at in closed}
    must = await service.must_review(uow.session, list(recent))
    for conv_id, reason in must.items():
        added += await _enqueue(uow, shop_id, conv_id, recent[conv_id], reason, day, now)
    by_agent: dict[str, list[str]] = {}
    for conv_id, agent_id, at in closed:
        if at < end and conv_id not in must:
            by_agent.setdefault(agent_id, []).append(conv_id)
    for agent_id in sorted(by_agent):  # a fixed order: concurrent drawers never deadlock
        won = await uow.session.execute(
            insert_ignore(
                uow.dialect,
                QaDraw,
                ["agent_id", "day"],
                {"agent_id": agent_id, "day": day, "shop_id": shop_id, "drawn": 0, "drawn_at": now},
            )
        )
        if rowcount(won) != 1:
            continue  # drawn already (by this worker earlier, or by another)
        seed = f"{agent_id}:{day.isoformat()}"
        drawn = 0
        for conv_id in rules.pick_sample(by_agent[agent_id], daily_sample, seed):
            drawn += await _enqueue(uow, shop_id, conv_id, agent_id, "sample", day, now)
        await uow.session.execute(
            update(QaDraw)
            .where(col(QaDraw.agent_id) == agent_id, col(QaDraw.day) == day)
            .values(drawn=drawn)
        )
        added += drawn
    return added


async def shops_to_inspect(uow: UnitOfWork) -> list[str]:
    return list((await uow.session.execute(select(col(Shop.id)).order_by(col(Shop.id)))).scalars())


async def score_review(
    uow: UnitOfWork,
    staff: Agent,
    review_id: str,
    scores: dict[str, int],
    comment: str,
    now: datetime,
) -> dict[str, Any]:
    """A supervisor scores a review (again, to correct it); the agent hears of it."""
    check(staff.role, Permission.INSPECT_QUALITY)
    review = await service.review_for(uow.session, staff, review_id)
    _sample, card = await service.settings_of(uow.session, staff.shop_id)
    why = rules.check_scores(card, scores)
    if why is not None:
        raise BadInput("Score every item of the scorecard from 0 to its points.", code=why)
    if len(comment) > rules.MAX_COMMENT:
        raise BadInput(f"A comment is at most {rules.MAX_COMMENT} characters.", code="bad_comment")
    total, most = rules.totals(card, scores)
    review.scores = dict(scores)
    review.total, review.max_total = total, most
    review.comment = comment
    review.status = "done"
    review.reviewer_id, review.reviewed_at = staff.id, now
    await uow.session.flush()
    public = service.review_public(review, card)
    uow.emit(agent_topic(review.agent_id), {"type": "quality.scored", "review": public})
    return public
