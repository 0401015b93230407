"""Service hours of a shop and 留言: what other domains ask (`open_now`, `opens_at`), the
admin's edits, and telling waiting buyers at once that nobody can answer now.

The schedule logic is in `hours_rules` (pure); this module loads a shop's schedule and
acts. A buyer is told once per conversation: the `left_messages` row is claimed by its
primary key (insert-ignore), so two nodes looking at the same queue tell them once, and
the claim, the `conversation.queued` frame with its `reason` and the shop's auto-reply
(a notice, `app.chat.notices`) commit or roll back together.

Outside the hours an online agent still gets conversations (they chose to work); the
buyer is told only while they wait.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.chat import notices
from app.chat.models import Conversation
from app.chat.schemas import queued_frame
from app.db import UnitOfWork, dialect_insert, insert_ignore, rowcount
from app.realtime.topics import buyer_topic
from app.routing import hours_rules as rules
from app.routing.hours_models import LeftMessage, ServiceHours
from app.routing.models import AgentQueue
from app.routing.rules import OVERFLOW_TO
from app.shops import service as shop_service
from app.shops.models import Agent, Shop

# Waiting conversations told per transaction (the rest in the next round).
TELL_BATCH = 200
AUTO_REPLY_NOTICE = "auto_reply"


@dataclass(frozen=True)
class ShopHours:
    schedule: rules.Schedule
    zone: ZoneInfo
    auto_reply: str

    def open_now(self, now: datetime) -> bool:
        return rules.is_open(self.schedule, self.zone, now)

    def opens_at(self, now: datetime) -> datetime | None:
        return rules.next_opening(self.schedule, self.zone, now)

    def clock_start(self) -> Callable[[datetime], datetime]:
        """For the metrics: when a question asked at t starts to count (see hours_rules)."""
        if self.schedule.always_open:
            return lambda at: at
        return lambda at: rules.clock_start(self.schedule, self.zone, at)

    def local_iso(self, at: datetime | None) -> str | None:
        return at.astimezone(self.zone).isoformat() if at else None


async def shop_hours(session: AsyncSession, shop_id: str) -> ShopHours:
    """The shop's schedule, time zone and auto-reply (no row: always open, no auto-reply)."""
    shop = await session.get(Shop, shop_id)
    zone = shop_service.shop_zone(shop) if shop else ZoneInfo(shop_service.DEFAULT_TIMEZONE)
    row = await session.get(ServiceHours, shop_id)
    if row is None:
        return ShopHours(rules.Schedule(), zone, "")
    return ShopHours(rules.parse_schedule(row.weekly, row.exceptions), zone, row.auto_reply)


async def open_now(session: AsyncSession, shop_id: str, now: datetime) -> bool:
    """Whether the shop is within its service hours at `now` (a bot, routing, pages ask)."""
    return (await shop_hours(session, shop_id)).open_now(now)


async def opens_at(session: AsyncSession, shop_id: str, now: datetime) -> datetime | None:
    """`now` if open, else when the shop next opens (UTC); None: not within two months."""
    return (await shop_hours(session, shop_id)).opens_at(now)


def hours_wire(hours: ShopHours, now: datetime) -> dict[str, Any]:
    return {
        **rules.schedule_wire(hours.schedule),
        "auto_reply": hours.auto_reply,
        "time_zone": hours.zone.key,
        "open_now": hours.open_now(now),
        "opens_at": hours.local_iso(hours.opens_at(now)),
    }


async def set_hours(
    uow: UnitOfWork, shop_id: str, weekly: Any, exceptions: Any, auto_reply: Any, now: datetime
) -> dict[str, Any]:
    """Replace the shop's hours (BadInput, 422, when malformed); answers them as stored."""
    schedule = rules.parse_schedule(weekly, exceptions)
    wire = rules.schedule_wire(schedule)
    values = {
        "shop_id": shop_id,
        "weekly": wire["weekly"],
        "exceptions": wire["exceptions"],
        "auto_reply": rules.check_auto_reply(auto_reply),
        "updated_at": now,
    }
    stmt = dialect_insert(uow.dialect, ServiceHours).values(**values)
    await uow.session.execute(
        stmt.on_conflict_do_update(
            index_elements=["shop_id"], set_={k: v for k, v in values.items() if k != "shop_id"}
        )
    )
    return hours_wire(await shop_hours(uow.session, shop_id), now)


async def _agents_online(session: AsyncSession, shop_id: str, queue: str) -> int:
    """Online agents who serve the queue, or the queue its waiters overflow into."""
    serving = [queue] + ([OVERFLOW_TO[queue]] if queue in OVERFLOW_TO else [])
    count = await session.execute(
        select(func.count(func.distinct(col(Agent.id))))
        .join(AgentQueue, col(AgentQueue.agent_id) == col(Agent.id))
        .where(
            col(Agent.shop_id) == shop_id,
            col(AgentQueue.queue).in_(serving),
            col(Agent.status) == "online",
            col(Agent.active),
        )
    )
    return int(count.scalar() or 0)


def _untold(shop_id: str, queue: str) -> Any:
    return (
        select(Conversation)
        .outerjoin(LeftMessage, col(LeftMessage.conversation_id) == col(Conversation.id))
        .where(
            col(Conversation.shop_id) == shop_id,
            col(Conversation.queue) == queue,
            col(Conversation.status) == "queued",
            col(LeftMessage.conversation_id).is_(None),
        )
        .order_by(col(Conversation.queued_at), col(Conversation.id))
    )


async def waiting_reason(uow: UnitOfWork, shop_id: str, queue: str, now: datetime) -> str | None:
    """Why the queue's untold waiters should hear nobody can answer; None: nobody to tell."""
    s = uow.session
    if (await s.execute(_untold(shop_id, queue).limit(1))).first() is None:
        return None
    hours = await shop_hours(s, shop_id)
    return rules.waiting_reason(hours.open_now(now), await _agents_online(s, shop_id, queue))


async def tell_waiting(uow: UnitOfWork, shop_id: str, queue: str, now: datetime) -> int:
    """Tell the queue's waiting buyers who have not been told that nobody can answer now:
    `conversation.queued` with `reason` and `opens_at`, and the shop's auto-reply. Their
    messages wait as 留言. Returns how many were told."""
    s = uow.session
    hours = await shop_hours(s, shop_id)
    reason = rules.waiting_reason(hours.open_now(now), await _agents_online(s, shop_id, queue))
    if reason is None:
        return 0
    convs = list((await s.execute(_untold(shop_id, queue).limit(TELL_BATCH))).scalars())
    if not convs:
        return 0
    order = {
        conv_id: n
        for n, (conv_id,) in enumerate(
            await s.execute(
                select(col(Conversation.id))
                .where(
                    col(Conversation.shop_id) == shop_id,
                    col(Conversation.queue) == queue,
                    col(Conversation.status) == "queued",
                )
                .order_by(col(Conversation.queued_at), col(Conversation.id))
            ),
            start=1,
        )
    }
    opens = hours.opens_at(now) if reason == rules.OUTSIDE_HOURS else None
    told: list[Conversation] = []
    for conv in convs:
        claim = insert_ignore(
            uow.dialect,
            LeftMessage,
            ["conversation_id"],
            {
                "conversation_id": conv.id,
                "shop_id": shop_id,
                "reason": reason,
                "since": conv.queued_at or conv.opened_at,
                "opens_at": opens,
                "told_at": now,
            },
        )
        if rowcount(await s.execute(claim)) != 1:
            continue  # another node told them
        told.append(conv)
        uow.emit(
            buyer_topic(shop_id, conv.buyer_id),
            {
                **queued_frame(conv.id, queue, order.get(conv.id, 1)),
                "reason": reason,
                "opens_at": hours.local_iso(opens),
                "time_zone": hours.zone.key,
            },
        )
    if hours.auto_reply and told:
        await notices.post(
            uow,
            shop_id,
            [
                notices.Notice(
                    buyer_id=c.buyer_id,
                    kind="system",
                    body=hours.auto_reply,
                    payload={"notice": AUTO_REPLY_NOTICE, "params": {"reason": reason}},
                    conversation_id=c.id,
                )
                for c in told
            ],
            now=now,
        )
    return len(told)
