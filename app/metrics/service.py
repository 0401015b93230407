"""Reads for the service metrics: a shop's conversations in a period, scored by `rules`.

A conversation belongs to the period when it was opened in it, and to the agent it is
assigned to (`conversations.agent_id`). Messages are streamed in (conversation, seq)
order and scored one conversation at a time, so memory stays flat however busy the shop.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.chat.models import Conversation, Message, Rating
from app.chat.visibility import buyer_visible
from app.errors import NotFound
from app.metrics.rules import (
    Metrics,
    Said,
    Tally,
    rating_counts,
    resolve_period,
    score_conversation,
    summarize,
)
from app.payouts import service as payouts_service
from app.quality import rules as quality_rules
from app.quality import service as quality_service
from app.routing import hours
from app.shops import service as shop_service
from app.shops.models import Agent, Shop
from app.shops.roles import MEASURED_ROLES
from app.tags import service as tags_service

STREAM_BATCH = 2000


@dataclass(frozen=True)
class AgentMetrics:
    agent_id: str
    username: str
    display_name: str
    role: str
    metrics: Metrics


@dataclass(frozen=True)
class ShopMetrics:
    start: datetime
    end: datetime
    shop: Metrics
    agents: list[AgentMetrics]


async def shop_metrics(
    session: AsyncSession,
    shop_id: str,
    start_text: str | None,
    end_text: str | None,
    now: datetime,
    tag: str | None = None,
) -> ShopMetrics:
    """The shop's and each measured agent's metrics for the period `from`/`to` name; with
    `tag`, of the conversations carrying that tag of the shop's list only (`422
    unknown_tag` for a name the shop does not have)."""
    shop = await session.get(Shop, shop_id)
    if shop is None:
        raise NotFound("No such shop.")
    start, end = resolve_period(start_text, end_text, now=now, tz=shop_service.shop_zone(shop))
    tag_id = await tags_service.known_tag_id(session, shop_id, tag)
    return await metrics_between(session, shop_id, start, end, tag_id)


async def metrics_between(
    session: AsyncSession, shop_id: str, start: datetime, end: datetime, tag_id: str | None = None
) -> ShopMetrics:
    """As `shop_metrics`, for [start, end); `tag_id`: only conversations carrying that tag
    (and the payouts and quality reviews of those conversations)."""
    in_period = and_(
        col(Conversation.shop_id) == shop_id,
        col(Conversation.agent_id).is_not(None),
        col(Conversation.opened_at) >= start,
        col(Conversation.opened_at) < end,
        tags_service.tagged(col(Conversation.id), tag_id),
    )
    owners: dict[str, tuple[str, datetime | None]] = {
        conv_id: (agent_id, assigned_at)
        for conv_id, agent_id, assigned_at in await session.execute(
            select(
                col(Conversation.id), col(Conversation.agent_id), col(Conversation.assigned_at)
            ).where(in_period)
        )
        if agent_id is not None  # in_period asks for an agent; this tells the type checker
    }
    ratings: dict[str, int] = {
        conv_id: score
        for conv_id, score, close_reason in await session.execute(
            select(col(Rating.conversation_id), col(Rating.score), col(Conversation.close_reason))
            .join(Conversation, col(Conversation.id) == col(Rating.conversation_id))
            .where(in_period)
        )
        if rating_counts(close_reason)
    }
    tallies: dict[str, Tally] = defaultdict(Tally)
    shop_tally = Tally()
    clock_start = (await hours.shop_hours(session, shop_id)).clock_start()

    def add(conv_id: str, messages: Sequence[Said]) -> None:
        owner = owners.pop(conv_id, None)
        if owner is None:
            return  # assigned after we listed the period's conversations: next time
        agent_id, assigned_at = owner
        score = score_conversation(assigned_at, messages, clock_start=clock_start)
        for tally in (tallies[agent_id], shop_tally):
            tally.add(score, ratings.get(conv_id))

    await _each_conversation_messages(session, in_period, add)
    for conv_id in list(owners):  # conversations without a buyer or agent message
        add(conv_id, ())

    paid = await payouts_service.paid_cents_by_agent(session, shop_id, start, end, tag_id)
    agents = await session.execute(
        select(col(Agent.id), col(Agent.username), col(Agent.display_name), col(Agent.role))
        .where(col(Agent.shop_id) == shop_id, col(Agent.role).in_(MEASURED_ROLES))
        .order_by(col(Agent.created_at), col(Agent.username))
    )
    qa = await quality_service.averages(session, shop_id, start, end, tag_id)
    qa_shop = tuple(sum(v[i] for v in qa.values()) for i in range(3))
    return ShopMetrics(
        start=start,
        end=end,
        shop=with_qa(summarize(shop_tally, sum(paid.values())), qa_shop),
        agents=[
            AgentMetrics(
                agent_id,
                username,
                display_name,
                role,
                with_qa(
                    summarize(tallies.get(agent_id, Tally()), paid.get(agent_id, 0)),
                    qa.get(agent_id, (0, 0, 0)),
                ),
            )
            for agent_id, username, display_name, role in agents
        ],
    )


def with_qa(m: Metrics, qa: tuple[int, ...]) -> Metrics:
    """The metrics with the quality score (质检) beside them: (given, possible, reviews)."""
    given, possible, n = qa
    return replace(m, qa_score=quality_rules.score_rate(given, possible), qa_reviews=n)


async def _each_conversation_messages(
    session: AsyncSession,
    in_period: ColumnElement[bool],
    add: Callable[[str, Sequence[Said]], None],
) -> None:
    """Call `add(conversation_id, messages)` once per conversation that has any, in seq order."""
    rows = await session.stream(
        select(col(Message.conversation_id), col(Message.sender), col(Message.created_at))
        .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
        # Internal notes are not said to the buyer: never a reply, never a question.
        .where(in_period, col(Message.sender).in_(("buyer", "agent")), buyer_visible())
        .order_by(col(Message.conversation_id), col(Message.seq))
        .execution_options(yield_per=STREAM_BATCH)
    )
    current: str | None = None
    messages: list[Said] = []
    async for conv_id, sender, at in rows:
        if conv_id != current:
            if current is not None:
                add(current, messages)
            current, messages = conv_id, []
        messages.append(Said(sender, at))
    if current is not None:
        add(current, messages)
