"""Reads of the bot: settings, the knowledge base, what it could not answer, its figures."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.bot.matcher import Entry
from app.bot.models import BotConversation, BotFaq, BotReply, BotSettings
from app.bot.rules import (
    DEFAULT_ANGER_WORDS,
    DEFAULT_HANDOFF_WORDS,
    HUMAN_FIRST,
    BotSettingsFacts,
    Question,
    is_resolved_by_bot,
)
from app.chat.models import Conversation, Message, Rating, sent_by
from app.routing import hours
from app.routing.models import AgentQueue
from app.shops.models import Agent

UNRECOGNISED_LIMIT = 200


def facts_of(row: BotSettings | None) -> BotSettingsFacts:
    if row is None:
        return BotSettingsFacts()
    return BotSettingsFacts(
        mode=row.mode,
        threshold=row.threshold,
        queue_modes=dict(row.queue_modes or {}),
        handoff_words=tuple(row.handoff_words or DEFAULT_HANDOFF_WORDS),
        anger_words=tuple(row.anger_words or DEFAULT_ANGER_WORDS),
        greeting=row.greeting,
        version=row.version,
    )


async def settings_row(session: AsyncSession, shop_id: str) -> BotSettings | None:
    return await session.get(BotSettings, shop_id)


async def settings_facts(session: AsyncSession, shop_id: str) -> BotSettingsFacts:
    return facts_of(await settings_row(session, shop_id))


async def list_faqs(session: AsyncSession, shop_id: str, q: str | None = None) -> list[BotFaq]:
    query = select(BotFaq).where(col(BotFaq.shop_id) == shop_id)
    if q:
        like = f"%{q}%"
        query = query.where(
            or_(
                col(BotFaq.question).like(like),
                col(BotFaq.answer).like(like),
                col(BotFaq.category).like(like),
            )
        )
    rows = await session.execute(query.order_by(col(BotFaq.created_at), col(BotFaq.id)))
    return list(rows.scalars())


async def get_faq(session: AsyncSession, shop_id: str, faq_id: str) -> BotFaq | None:
    faq = await session.get(BotFaq, faq_id)
    return faq if faq is not None and faq.shop_id == shop_id else None


async def match_entries(session: AsyncSession, shop_id: str) -> list[Entry]:
    """The shop's enabled entries, as the matcher indexes them."""
    rows = await session.execute(
        select(col(BotFaq.id), col(BotFaq.question), col(BotFaq.similar)).where(
            col(BotFaq.shop_id) == shop_id, col(BotFaq.enabled)
        )
    )
    return [Entry(i, q, tuple(s or ())) for i, q, s in rows]


@dataclass(frozen=True)
class FaqAnswer:
    answer: str
    product: dict[str, Any] | None


async def faq_answers(session: AsyncSession, shop_id: str) -> dict[str, FaqAnswer]:
    """The answers of the shop's enabled entries, kept beside its index (`BotEngine`)."""
    rows = await session.execute(
        select(col(BotFaq.id), col(BotFaq.answer), col(BotFaq.product)).where(
            col(BotFaq.shop_id) == shop_id, col(BotFaq.enabled)
        )
    )
    return {i: FaqAnswer(a, p or None) for i, a, p in rows}


async def pending_questions(
    session: AsyncSession, *, since: datetime, before: datetime, limit: int
) -> list[Question]:
    """Buyer texts in conversations the bot holds that have no reply row: the bot has not
    answered them (`jobs.answer_pending`), sent in [since, before), oldest first."""
    rows = await session.execute(
        select(
            col(Message.shop_id),
            col(Message.conversation_id),
            col(Message.id),
            col(Conversation.buyer_id),
            col(Message.body),
        )
        .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
        .where(
            col(Conversation.status) == "bot",
            sent_by("buyer"),
            col(Message.kind) == "text",
            col(Message.created_at) >= since,
            col(Message.created_at) < before,
            ~exists().where(col(BotReply.message_id) == col(Message.id)),
        )
        .order_by(col(Message.created_at), col(Message.id))
        .limit(limit)
    )
    return [Question(*row) for row in rows]


async def settings_if_bot_may_speak(
    session: AsyncSession, shop_id: str, conversation_id: str
) -> BotSettingsFacts | None:
    """The shop's settings if the bot might answer in this conversation now (it holds it, or
    it waits in a human_first queue); None otherwise. A read: a buyer's message to an
    agent costs the bot one query, no transaction."""
    conv = await session.get(Conversation, conversation_id)
    if conv is None or conv.shop_id != shop_id or conv.status not in ("bot", "queued"):
        return None
    settings = await settings_facts(session, shop_id)
    if conv.status == "queued" and settings.mode_for(conv.queue) != HUMAN_FIRST:
        return None
    return settings


async def agents_online_for(session: AsyncSession, shop_id: str, queue: str) -> int:
    """Agents online who serve `queue` (human_first: none, and the bot covers)."""
    n = await session.execute(
        select(func.count())
        .select_from(Agent)
        .join(AgentQueue, col(AgentQueue.agent_id) == col(Agent.id))
        .where(
            col(Agent.shop_id) == shop_id,
            col(AgentQueue.queue) == queue,
            col(Agent.status) == "online",
            col(Agent.active),
        )
    )
    return int(n.scalar() or 0)


async def shop_is_open(session: AsyncSession, shop_id: str, now: datetime) -> bool:
    """Within the shop's service hours (human_first: the bot covers a closed shop)."""
    return await hours.open_now(session, shop_id, now)


async def unrecognised(session: AsyncSession, shop_id: str) -> list[BotReply]:
    """Questions the bot could not answer, or whose answer the buyer disliked, newest first."""
    rows = await session.execute(
        select(BotReply)
        .where(
            col(BotReply.shop_id) == shop_id,
            or_(
                col(BotReply.outcome).in_(("fallback", "unmatched")),
                col(BotReply.helpful).is_(False),
            ),
        )
        .order_by(col(BotReply.created_at).desc())
        .limit(UNRECOGNISED_LIMIT)
    )
    return list(rows.scalars())


@dataclass
class BotMetrics:
    held: int = 0  # conversations the bot held first (bot_first)
    covered: int = 0  # conversations the bot answered while they waited (human_first)
    resolved: int = 0  # closed while the bot held them, not rated 1-2
    handed_off: int = 0
    handoff_rate: float = 0.0
    handoff_reasons: dict[str, int] = field(default_factory=dict)
    answers: int = 0
    unrecognised: int = 0
    helpful: int = 0
    not_helpful: int = 0


async def metrics(
    session: AsyncSession, shop_id: str, start: datetime, end: datetime
) -> BotMetrics:
    out = BotMetrics()
    rows = await session.execute(
        select(
            col(BotConversation.mode),
            col(BotConversation.handoff_reason),
            col(Conversation.handled_by),
            col(Conversation.status),
            col(Rating.score),
        )
        .join(Conversation, col(Conversation.id) == col(BotConversation.conversation_id))
        .outerjoin(Rating, col(Rating.conversation_id) == col(BotConversation.conversation_id))
        .where(
            col(BotConversation.shop_id) == shop_id,
            col(BotConversation.started_at) >= start,
            col(BotConversation.started_at) < end,
        )
    )
    reasons: Counter[str] = Counter()
    for mode, reason, handled_by, status, score in rows:
        if mode == "bot_first":
            out.held += 1
        else:
            out.covered += 1
        if reason:
            out.handed_off += 1
            reasons[reason] += 1
        if is_resolved_by_bot(handled_by=handled_by, status=status, rating=score):
            out.resolved += 1
    out.handoff_reasons = dict(reasons)
    out.handoff_rate = out.handed_off / out.held if out.held else 0.0
    replies = await session.execute(
        select(col(BotReply.outcome), col(BotReply.helpful), func.count())
        .where(
            col(BotReply.shop_id) == shop_id,
            col(BotReply.created_at) >= start,
            col(BotReply.created_at) < end,
        )
        .group_by(col(BotReply.outcome), col(BotReply.helpful))
    )
    for outcome, helpful, n in replies:
        if outcome in ("answered", "order"):
            out.answers += n
        elif outcome in ("fallback", "unmatched"):
            out.unrecognised += n
        if helpful is True:
            out.helpful += n
        elif helpful is False:
            out.not_helpful += n
    return out
