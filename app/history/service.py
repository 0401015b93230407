"""Reads for the buyer's history: who may read it, the buyer's conversations summed up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from app.chat.models import Conversation, Message, Rating, sent_by
from app.errors import NotFound
from app.history import rules
from app.shops.models import Agent
from app.shops.policy import Permission, may
from app.tags import service as tags_service

PAGE = 20


async def serves_buyer_now(session: AsyncSession, agent: Agent, buyer_id: str) -> bool:
    row = await session.execute(
        select(col(Conversation.id))
        .where(
            col(Conversation.shop_id) == agent.shop_id,
            col(Conversation.buyer_id) == buyer_id,
            col(Conversation.agent_id) == agent.id,
            col(Conversation.status) == "assigned",
        )
        .limit(1)
    )
    return row.first() is not None


def served_condition(agent: Agent) -> ColumnElement[bool]:
    """SQL: the conversation (`conversations` row) was served by the agent — assigned to
    them, or they wrote in it (a conversation transferred away stays theirs to find)."""
    mine = aliased(Message)  # not the outer query's messages (search joins them)
    wrote = exists().where(
        col(mine.shop_id) == agent.shop_id,
        col(mine.sender_id) == agent.id,
        col(mine.conversation_id) == col(Conversation.id),
        col(mine.sender) == "agent",
    )
    return (col(Conversation.agent_id) == agent.id) | wrote


async def check_history_reader(session: AsyncSession, agent: Agent, buyer_id: str) -> None:
    supervises = may(agent.role, Permission.SUPERVISE_CHATS)
    if not rules.may_read_history(
        supervises=supervises,
        serves_buyer_now=supervises or await serves_buyer_now(session, agent, buyer_id),
    ):
        # As for another shop's buyer: no hint that the buyer exists.
        raise NotFound("No such buyer among those you serve.")


async def readable_conversation(
    session: AsyncSession, agent: Agent, conversation_id: str
) -> Conversation:
    """A conversation the agent may read in full, read-only (see rules.may_read_conversation)."""
    conv = await session.get(Conversation, conversation_id)
    if conv is None or conv.shop_id != agent.shop_id:
        raise NotFound("No such conversation.")
    supervises = may(agent.role, Permission.SUPERVISE_CHATS)
    serves = supervises or await serves_buyer_now(session, agent, conv.buyer_id)
    served = False
    if not serves:
        served = (
            await session.execute(
                select(col(Conversation.id)).where(
                    col(Conversation.id) == conv.id, served_condition(agent)
                )
            )
        ).first() is not None
    if not rules.may_read_conversation(
        supervises=supervises, serves_buyer_now=serves, served_it=served
    ):
        raise NotFound("No such conversation.")
    return conv


@dataclass
class Summary:
    conversation: Conversation
    agent_name: str | None
    rating: int | None
    first_line: str
    tags: list[str]


async def buyer_conversations(
    session: AsyncSession,
    shop_id: str,
    buyer_id: str,
    *,
    before: tuple[datetime, str] | None = None,
    limit: int = PAGE,
) -> list[Summary]:
    """The buyer's conversations with the shop, newest first, each summed up."""
    q = select(Conversation).where(
        col(Conversation.shop_id) == shop_id, col(Conversation.buyer_id) == buyer_id
    )
    if before is not None:
        q = q.where(tuple_(col(Conversation.opened_at), col(Conversation.id)) < tuple_(*before))
    q = q.order_by(col(Conversation.opened_at).desc(), col(Conversation.id).desc()).limit(limit)
    convs = list((await session.execute(q)).scalars())
    if not convs:
        return []
    ids = [c.id for c in convs]
    agent_ids = {c.agent_id for c in convs if c.agent_id}
    names: dict[str, str] = {}
    if agent_ids:
        rows = await session.execute(
            select(col(Agent.id), col(Agent.display_name)).where(col(Agent.id).in_(agent_ids))
        )
        names = {a: n for a, n in rows}
    ratings = {
        cid: score
        for cid, score in await session.execute(
            select(col(Rating.conversation_id), col(Rating.score)).where(
                col(Rating.conversation_id).in_(ids)
            )
        )
    }
    # The first thing the buyer said in each (the line that names the matter).
    firsts = (
        select(col(Message.conversation_id), func.min(col(Message.seq)).label("seq"))
        .where(col(Message.conversation_id).in_(ids), sent_by("buyer"))
        .group_by(col(Message.conversation_id))
        .subquery()
    )
    lines = {
        cid: rules.first_line(body, kind)
        for cid, body, kind in await session.execute(
            select(col(Message.conversation_id), col(Message.body), col(Message.kind)).join(
                firsts,
                (firsts.c.conversation_id == col(Message.conversation_id))
                & (firsts.c.seq == col(Message.seq)),
            )
        )
    }
    tags = await tags_service.tags_of(session, ids)
    return [
        Summary(
            conversation=c,
            agent_name=names.get(c.agent_id or ""),
            rating=ratings.get(c.id),
            first_line=lines.get(c.id, ""),
            tags=tags.get(c.id, []),
        )
        for c in convs
    ]


async def messages_page(
    session: AsyncSession,
    conversation_id: str,
    *,
    after_seq: int = 0,
    before_seq: int | None = None,
    limit: int = 100,
) -> list[Message]:
    """Messages in `seq` order: after `after_seq`, or the last `limit` before `before_seq`."""
    q = select(Message).where(col(Message.conversation_id) == conversation_id)
    if before_seq is not None:
        q = q.where(col(Message.seq) < before_seq).order_by(col(Message.seq).desc()).limit(limit)
        return list(reversed(list((await session.execute(q)).scalars())))
    q = q.where(col(Message.seq) > after_seq).order_by(col(Message.seq)).limit(limit)
    return list((await session.execute(q)).scalars())
