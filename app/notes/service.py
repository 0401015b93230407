"""Reads of stored mentions: a colleague's, newest first, in conversations of their shop."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from app.chat.models import Conversation, Message
from app.chat.schemas import message_public
from app.notes.models import NoteMention
from app.notes.schemas import mention_wire
from app.shops.models import Agent, Buyer

LIMIT = 50


async def mentions(
    session: AsyncSession, agent: Agent, *, unread: bool = True, limit: int = LIMIT
) -> list[dict[str, Any]]:
    """The notes that named `agent` (only unread ones unless `unread` is False), newest
    first: only in conversations of the agent's own shop."""
    author = aliased(Agent)
    q = (
        select(NoteMention, Message, author, col(Conversation.buyer_id), col(Buyer.name))
        .join(Message, col(Message.id) == col(NoteMention.message_id))
        .join(Conversation, col(Conversation.id) == col(NoteMention.conversation_id))
        .join(author, col(author.id) == col(NoteMention.author_id))
        .outerjoin(
            Buyer,
            and_(
                col(Buyer.shop_id) == col(Conversation.shop_id),
                col(Buyer.id) == col(Conversation.buyer_id),
            ),
        )
        .where(
            col(NoteMention.agent_id) == agent.id,
            col(NoteMention.shop_id) == agent.shop_id,
            col(Conversation.shop_id) == agent.shop_id,
        )
        .order_by(col(NoteMention.created_at).desc(), col(NoteMention.id).desc())
        .limit(limit)
    )
    if unread:
        q = q.where(col(NoteMention.read_at).is_(None))
    out = []
    for m, msg, by, buyer_id, buyer_name in await session.execute(q):
        out.append(
            {
                **mention_wire(
                    mention_id=m.id,
                    conversation_id=m.conversation_id,
                    buyer_id=buyer_id,
                    buyer_name=buyer_name or "",
                    author=by,
                    message=message_public(msg),
                ),
                "created_at": m.created_at.isoformat(),
                "read_at": m.read_at.isoformat() if m.read_at else None,
            }
        )
    return out
