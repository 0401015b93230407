"""The bot's hold on a conversation ended by staff (a supervisor's transfer of a conversation
the bot holds): its record says when and why, and the buyer and the shop's staff hear
`conversation.handed_off` as after the bot's own hand-off (reason "transfer"). The chat
domain calls this in the transfer's transaction; it imports nothing of the chat."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import col

from app.bot.models import BotConversation
from app.db import UnitOfWork
from app.realtime.topics import buyer_topic, shop_staff_topic

TRANSFER = "transfer"


async def ended_by_staff(
    uow: UnitOfWork,
    *,
    shop_id: str,
    buyer_id: str,
    conversation_id: str,
    queue: str,
    now: datetime,
    reason: str = TRANSFER,
) -> None:
    await uow.session.execute(
        update(BotConversation)
        .where(
            col(BotConversation.conversation_id) == conversation_id,
            col(BotConversation.handed_off_at).is_(None),
        )
        .values(handed_off_at=now, handoff_reason=reason)
        .execution_options(synchronize_session=False)
    )
    frame = {
        "type": "conversation.handed_off",
        "conversation_id": conversation_id,
        "reason": reason,
        "queue": queue,
    }
    uow.emit_many([buyer_topic(shop_id, buyer_id), shop_staff_topic(shop_id)], frame)
