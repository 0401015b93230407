"""What the shop's webhooks hear of conversations: `conversation.closed`, in the closing
transaction, and once more when the buyer rates it (the same type, with `rating` filled
in), so a receiver that keeps the latest state per conversation has the rating too."""

from __future__ import annotations

from datetime import datetime

from app.chat.models import Conversation, Rating
from app.db import UnitOfWork
from app.webhooks import outbox


async def conversation_closed(
    uow: UnitOfWork,
    conv: Conversation,
    *,
    reason: str | None,
    closed_at: datetime | None,
    rating: Rating | None,
    now: datetime,
) -> None:
    data = {
        "conversation_id": conv.id,
        "buyer_id": conv.buyer_id,
        "agent_id": conv.agent_id,
        "queue": conv.queue,
        "reason": reason,
        "opened_at": conv.opened_at.isoformat(),
        "closed_at": closed_at.isoformat() if closed_at else None,
        "rating": None
        if rating is None
        else {
            "score": rating.score,
            "comment": rating.comment,
            "rated_at": rating.created_at.isoformat(),
        },
    }
    await outbox.record(
        uow, conv.shop_id, "conversation.closed", data, now=now, about=f"conversation:{conv.id}"
    )
