"""Routing state changes: open a conversation in a queue, assign waiting ones to agents.

Atomicity: an agent's slot is taken by `UPDATE agents ... WHERE active_count <
max_concurrent` and a conversation by `UPDATE conversations ... WHERE status =
'queued'`; both in one transaction, so no conversation is assigned twice and no agent
passes their limit, however many nodes dispatch at once. On PostgreSQL, dispatchers of
one queue also take a transaction-scoped advisory lock so the oldest waiter goes first.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError

from app.chat.models import Conversation
from app.chat.service import public_conversation
from app.db import UnitOfWork
from app.realtime.topics import agent_topic, buyer_topic
from app.routing.models import AgentQueue, Queue
from app.routing.rules import AgentCandidate, BuyerFacts, choose_queue, rank_agents
from app.shops.models import Agent

# How long a buyer's last agent stays their preferred agent (熟客优先).
REGULAR_WINDOW = timedelta(hours=48)
# Assignments made in one dispatch transaction, to keep transactions short.
DISPATCH_BATCH = 25


@dataclass
class Opened:
    conversation: Conversation
    created: bool


async def open_conversation(
    uow: UnitOfWork,
    *,
    shop_id: str,
    buyer_id: str,
    buyer: BuyerFacts,
    now: datetime,
    category: str | None = None,
) -> Opened:
    """The buyer's open conversation, or a new one in the queue the rules choose.

    Two tabs racing to open are settled by the partial unique index on open
    conversations: the loser finds the winner's row.
    """
    s = uow.session
    existing = await _open_of_buyer(uow, shop_id, buyer_id)
    if existing is not None:
        return Opened(existing, False)
    queues = [q for (q,) in (await s.execute(select(Queue.name).where(Queue.shop_id == shop_id)))]
    queue = choose_queue(buyer, category=category, category_queues=None, existing_queues=queues)
    conv = Conversation(
        shop_id=shop_id,
        buyer_id=buyer_id,
        queue=queue,
        status="queued",
        elder=buyer.is_elder,
        opened_at=now,
        queued_at=now,
    )
    try:
        async with s.begin_nested():
            s.add(conv)
    except IntegrityError:
        # Another tab opened one first; theirs is the buyer's conversation.
        existing = await _open_of_buyer(uow, shop_id, buyer_id)
        if existing is None:
            raise
        return Opened(existing, False)
    public = await public_conversation(s, conv)
    uow.emit(buyer_topic(shop_id, buyer_id), {"type": "conversation.opened", "conversation": public})
    return Opened(conv, True)


async def _open_of_buyer(uow: UnitOfWork, shop_id: str, buyer_id: str) -> Conversation | None:
    row = await uow.session.execute(
        select(Conversation).where(
            Conversation.shop_id == shop_id,
            Conversation.buyer_id == buyer_id,
            Conversation.status != "closed",
        )
    )
    return row.scalars().first()


async def dispatch(uow: UnitOfWork, shop_id: str, queue: str, now: datetime) -> int:
    """Assign the queue's waiting conversations, oldest first, while agents have room.

    Returns how many were assigned. Waiting buyers whose position changed are told.
    """
    s = uow.session
    if uow.is_postgres:
        key = zlib.crc32(f"{shop_id}:{queue}".encode()) - 2**31
        await s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
    assigned = 0
    for _ in range(DISPATCH_BATCH):
        conv = (
            await s.execute(
                select(Conversation)
                .where(
                    Conversation.shop_id == shop_id,
                    Conversation.queue == queue,
                    Conversation.status == "queued",
                )
                .order_by(Conversation.queued_at, Conversation.id)
                .limit(1)
            )
        ).scalars().first()
        if conv is None:
            break
        agent_id = await _take_slot(uow, shop_id, queue, conv, now)
        if agent_id is None:
            break
        await _assign(uow, conv, agent_id, now)
        assigned += 1
    if assigned:
        await announce_positions(uow, shop_id, queue)
    return assigned


async def _take_slot(
    uow: UnitOfWork, shop_id: str, queue: str, conv: Conversation, now: datetime
) -> str | None:
    """Reserve a slot with the best agent for `conv`; None when nobody has room."""
    s = uow.session
    rows = await s.execute(
        select(Agent.id, Agent.active_count, Agent.max_concurrent, Agent.last_assigned_at)
        .join(AgentQueue, AgentQueue.agent_id == Agent.id)
        .where(
            Agent.shop_id == shop_id,
            AgentQueue.queue == queue,
            Agent.status == "online",
            Agent.active_count < Agent.max_concurrent,
        )
    )
    candidates = [AgentCandidate(*r) for r in rows]
    if not candidates:
        return None
    preferred = await _recent_agent(uow, conv, now)
    for cand in rank_agents(candidates, preferred_agent_id=preferred):
        result = await s.execute(
            update(Agent)
            .where(
                Agent.id == cand.id,
                Agent.status == "online",
                Agent.active_count < Agent.max_concurrent,
            )
            .values(active_count=Agent.active_count + 1, last_assigned_at=now)
        )
        if result.rowcount == 1:
            return cand.id
    return None


async def _recent_agent(uow: UnitOfWork, conv: Conversation, now: datetime) -> str | None:
    """The agent who served this buyer most recently within the regulars window."""
    row = await uow.session.execute(
        select(Conversation.agent_id)
        .where(
            Conversation.shop_id == conv.shop_id,
            Conversation.buyer_id == conv.buyer_id,
            Conversation.id != conv.id,
            Conversation.agent_id.is_not(None),
            Conversation.assigned_at >= now - REGULAR_WINDOW,
        )
        .order_by(Conversation.assigned_at.desc())
        .limit(1)
    )
    return row.scalar()


async def _assign(uow: UnitOfWork, conv: Conversation, agent_id: str, now: datetime) -> None:
    s = uow.session
    result = await s.execute(
        update(Conversation)
        .where(Conversation.id == conv.id, Conversation.status == "queued")
        .values(status="assigned", agent_id=agent_id, assigned_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        # Someone else took it between our read and now; give the slot back.
        await release_slot(uow, agent_id)
        return
    await s.refresh(conv)
    public = await public_conversation(s, conv)
    frame = {"type": "conversation.assigned", "conversation": public}
    uow.emit_many([agent_topic(agent_id), buyer_topic(conv.shop_id, conv.buyer_id)], frame)


async def release_slot(uow: UnitOfWork, agent_id: str) -> None:
    await uow.session.execute(
        update(Agent)
        .where(Agent.id == agent_id, Agent.active_count > 0)
        .values(active_count=Agent.active_count - 1)
    )


async def announce_positions(uow: UnitOfWork, shop_id: str, queue: str) -> None:
    """Tell every waiting buyer of the queue where they stand (1 = next to be served)."""
    rows = await uow.session.execute(
        select(Conversation.id, Conversation.buyer_id)
        .where(
            Conversation.shop_id == shop_id,
            Conversation.queue == queue,
            Conversation.status == "queued",
        )
        .order_by(Conversation.queued_at, Conversation.id)
    )
    for position, (conv_id, buyer_id) in enumerate(rows, start=1):
        uow.emit(
            buyer_topic(shop_id, buyer_id),
            {"type": "conversation.queued", "conversation_id": conv_id, "queue": queue, "position": position},
        )


async def position_of(uow: UnitOfWork, conv: Conversation) -> int:
    ahead = await uow.session.execute(
        select(func.count())
        .select_from(Conversation)
        .where(
            Conversation.shop_id == conv.shop_id,
            Conversation.queue == conv.queue,
            Conversation.status == "queued",
            Conversation.queued_at <= conv.queued_at,
            Conversation.id != conv.id,
        )
    )
    return int(ahead.scalar() or 0) + 1


async def announce_position(uow: UnitOfWork, conv: Conversation) -> None:
    position = await position_of(uow, conv)
    uow.emit(
        buyer_topic(conv.shop_id, conv.buyer_id),
        {"type": "conversation.queued", "conversation_id": conv.id, "queue": conv.queue, "position": position},
    )


async def queues_of_agent(uow: UnitOfWork, agent_id: str) -> list[str]:
    rows = await uow.session.execute(select(AgentQueue.queue).where(AgentQueue.agent_id == agent_id))
    return [q for (q,) in rows]


async def waiting_queues(uow: UnitOfWork) -> list[tuple[str, str]]:
    """(shop_id, queue) pairs that have someone waiting: the sweep's work list."""
    rows = await uow.session.execute(
        select(Conversation.shop_id, Conversation.queue)
        .where(Conversation.status == "queued")
        .group_by(Conversation.shop_id, Conversation.queue)
    )
    return list(rows)


async def set_agent_status(uow: UnitOfWork, agent: Agent, status: str) -> str:
    await uow.session.execute(update(Agent).where(Agent.id == agent.id).values(status=status))
    agent.status = status
    uow.emit(agent_topic(agent.id), {"type": "agent.status", "status": status})
    return status
