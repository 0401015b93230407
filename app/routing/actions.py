"""Routing state changes: open a conversation in a queue, assign waiting ones to agents.

Atomicity: an agent's slot is taken by `UPDATE agents ... WHERE active_count <
max_concurrent` and a conversation by `UPDATE conversations ... WHERE status =
'queued'`; both in one transaction, so no conversation is assigned twice and no agent
passes their limit, however many nodes dispatch at once. On PostgreSQL, dispatchers of
one queue also take a transaction-scoped advisory lock so the oldest waiter goes first.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from app.chat.append_rules import new_conversation
from app.chat.models import Conversation, Message
from app.chat.schemas import conversation_public, message_public, queued_frame
from app.chat.service import public_conversation, public_conversations, queue_position
from app.db import UnitOfWork, rowcount
from app.realtime.topics import HISTORY_KEY, agent_topic, buyer_topic
from app.routing.models import AgentQueue, CategoryQueue, Queue
from app.routing.rules import (
    OVERFLOW_TO,
    AgentCandidate,
    BuyerFacts,
    choose_queue,
    overflow_due,
    overflow_sources,
    plan_assignments,
)
from app.shops.models import Agent

# How long a buyer's last agent stays their preferred agent (熟客优先).
REGULAR_WINDOW = timedelta(hours=48)
# Assignments made in one dispatch transaction (a fixed number of statements each).
DISPATCH_BATCH = 200
# An assignment carries the conversation's messages to the agent when it has at most this many.
HISTORY_MAX = 20
DEFAULT_OVERFLOW_S = 120


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
    shown_as: tuple[str, str, int | None] | None = None,
    bot_holds: Callable[[str, bool], bool] | None = None,
) -> Opened:
    """The buyer's open conversation, or a new one in the queue the rules choose.

    `bot_holds(queue, elder)`: whether the shop's bot takes a new one first (app/bot).

    Two tabs racing to open are settled by the partial unique index on open
    conversations: the loser finds the winner's row.
    """
    s = uow.session
    existing = await _open_of_buyer(uow, shop_id, buyer_id)
    if existing is not None:
        return Opened(existing, False)
    queues = [
        q
        for (q,) in (await s.execute(select(col(Queue.name)).where(col(Queue.shop_id) == shop_id)))
    ]
    category_queues: dict[str, str] = {}
    if category:
        mapped = await s.execute(
            select(col(CategoryQueue.queue)).where(
                col(CategoryQueue.shop_id) == shop_id, col(CategoryQueue.category) == category
            )
        )
        target = mapped.scalar()
        if target:
            category_queues[category] = target
    queue = choose_queue(
        buyer, category=category, category_queues=category_queues, existing_queues=queues
    )
    conv = new_conversation(
        shop_id=shop_id,
        buyer_id=buyer_id,
        queue=queue,
        elder=buyer.is_elder,
        now=now,
        held_by_bot=bot_holds is not None and bot_holds(queue, buyer.is_elder),
    )
    try:
        async with uow.race_guard():
            s.add(conv)
            await s.flush()
    except IntegrityError:
        # Another tab opened one first; theirs is the buyer's conversation.
        existing = await _open_of_buyer(uow, shop_id, buyer_id)
        if existing is None:
            raise
        return Opened(existing, False)
    if shown_as is not None:
        # The opener's own identity says how the new (unassigned) conversation shows.
        slug, name, vip = shown_as
        public = conversation_public(conv, shop_slug=slug, agent_name=None, buyer=(name, vip))
    else:
        public = await public_conversation(s, conv, for_buyer=True)
    uow.emit(
        buyer_topic(shop_id, buyer_id), {"type": "conversation.opened", "conversation": public}
    )
    return Opened(conv, True)


async def _open_of_buyer(uow: UnitOfWork, shop_id: str, buyer_id: str) -> Conversation | None:
    row = await uow.session.execute(
        select(Conversation).where(
            col(Conversation.shop_id) == shop_id,
            col(Conversation.buyer_id) == buyer_id,
            col(Conversation.status) != "closed",
        )
    )
    return row.scalars().first()


async def dispatch(uow: UnitOfWork, shop_id: str, queue: str, now: datetime) -> int:
    """Assign waiting conversations to agents serving `queue`, oldest first, while they have room.

    Agents of `queue` also take conversations that have waited past their queue's
    overflow time in a queue that overflows into `queue` (elderly → general).
    Returns how many were assigned. Waiting buyers whose position changed are told.

    A batch at a time, in a fixed number of statements however many it assigns: the
    agents with room are read (and, on PostgreSQL, row-locked in id order, so their
    counts hold until commit), then the oldest waiters they can take; the choices are
    made in memory (`rules.plan_assignments`, the same as one at a time), then stuck
    with two conditional updates — the conversations `WHERE status = 'queued'` (one
    taken meanwhile, by a dispatcher of an overflow queue or its buyer closing it, is
    left out) and the agents' counts `WHERE active_count + n <= max_concurrent`. No
    conversation is assigned twice and no agent passes their limit, on any number of nodes.
    """
    s = uow.session
    if uow.is_postgres:
        key = zlib.crc32(f"{shop_id}:{queue}".encode()) - 2**31
        await s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
    agents = await _agents_with_room(uow, shop_id, queue)
    room = sum(a.max_concurrent - a.active_count for a in agents)
    if room <= 0:
        return 0
    overflow: dict[str, int] = {}
    for src in overflow_sources(queue):
        after = await s.execute(
            select(col(Queue.overflow_after_s)).where(
                col(Queue.shop_id) == shop_id, col(Queue.name) == src
            )
        )
        overflow[src] = after.scalar() or DEFAULT_OVERFLOW_S
    waiting = await _oldest_waiting(uow, shop_id, queue, overflow, now, min(room, DISPATCH_BATCH))
    if not waiting:
        return 0
    preferred = await _recent_agents(uow, shop_id, waiting, now)
    plan = plan_assignments(
        [w.id for w in waiting],
        agents,
        preferred={w.id: preferred[w.buyer_id] for w in waiting if w.buyer_id in preferred},
        now=now,
    )
    if not plan:
        return 0
    chosen = dict(plan)
    taken = (
        await s.execute(
            update(Conversation)
            .where(col(Conversation.id).in_(chosen), col(Conversation.status) == "queued")
            .values(
                status="assigned",
                agent_id=case(chosen, value=col(Conversation.id)),
                assigned_at=now,
                handled_by="human",  # an agent has it: the bot (if it held it) stops
            )
            .returning(col(Conversation.id), col(Conversation.agent_id))
            .execution_options(synchronize_session=False)
        )
    ).all()
    if len(taken) < len(plan):
        # Some were taken (or closed) meanwhile: their slots stay free; go round again.
        uow.signal("dispatch", (shop_id, queue))
    if not taken:
        return 0
    slots = Counter(agent_id for _conv_id, agent_id in taken)
    got = (
        await s.execute(
            update(Agent)
            .where(
                col(Agent.id).in_(slots),
                col(Agent.status) == "online",
                col(Agent.active),
                col(Agent.active_count) + case(slots, value=col(Agent.id))
                <= col(Agent.max_concurrent),
            )
            .values(
                active_count=col(Agent.active_count) + case(slots, value=col(Agent.id)),
                last_assigned_at=now,
            )
            .returning(col(Agent.id))
            .execution_options(synchronize_session=False)
        )
    ).all()
    if len(got) != len(slots):
        # Cannot happen while the rows are locked (or SQLite's write lock held); if it
        # does, nothing of this batch is kept: the transaction rolls back whole.
        raise SlotsMoved(f"{len(slots) - len(got)} agents' slots changed during dispatch")
    order = {conv_id: i for i, (conv_id, _agent) in enumerate(plan)}
    convs = sorted(
        (
            await s.execute(
                select(Conversation)
                .where(col(Conversation.id).in_([conv_id for conv_id, _ in taken]))
                .execution_options(populate_existing=True)
            )
        ).scalars(),
        key=lambda c: order[c.id],
    )
    await announce_assignments(uow, convs)
    for q in sorted({c.queue for c in convs}):
        # Everyone behind moved up: the dispatcher tells them, at most twice a second per
        # queue (in a surge every small dispatch would otherwise re-announce every waiter).
        uow.signal("positions", (shop_id, q))
    return len(taken)


class SlotsMoved(RuntimeError):
    """An agent's count changed under dispatch's lock (a broken invariant, never expected)."""


@dataclass(frozen=True)
class Waiting:
    id: str
    buyer_id: str
    queue: str
    queued_at: datetime


async def _agents_with_room(uow: UnitOfWork, shop_id: str, queue: str) -> list[AgentCandidate]:
    """The online agents of `queue` with a free slot; on PostgreSQL locked, in id order, so
    their counts hold until commit and two dispatchers never lock them in opposite orders."""
    q = (
        select(
            col(Agent.id),
            col(Agent.active_count),
            col(Agent.max_concurrent),
            col(Agent.last_assigned_at),
        )
        .join(AgentQueue, col(AgentQueue.agent_id) == col(Agent.id))
        .where(
            col(Agent.shop_id) == shop_id,
            col(AgentQueue.queue) == queue,
            col(Agent.status) == "online",
            col(Agent.active),
            col(Agent.active_count) < col(Agent.max_concurrent),
        )
        .order_by(col(Agent.id))
    )
    if uow.is_postgres:
        q = q.with_for_update(of=Agent)
    return [AgentCandidate(*r) for r in await uow.session.execute(q)]


async def _oldest_waiting(
    uow: UnitOfWork,
    shop_id: str,
    queue: str,
    overflow: dict[str, int],
    now: datetime,
    limit: int,
) -> list[Waiting]:
    """The `limit` oldest waiters this queue's agents may take: its own, and other queues'
    overdue ones, by (queued_at, id)."""
    s = uow.session
    columns = (
        col(Conversation.id),
        col(Conversation.buyer_id),
        col(Conversation.queue),
        col(Conversation.queued_at),
    )
    base = select(*columns).where(
        col(Conversation.shop_id) == shop_id, col(Conversation.status) == "queued"
    )
    order = (col(Conversation.queued_at), col(Conversation.id))
    found = _waiting(
        await s.execute(base.where(col(Conversation.queue) == queue).order_by(*order).limit(limit))
    )
    for src, after_s in overflow.items():
        due_before = now - timedelta(seconds=after_s)
        q = base.where(col(Conversation.queue) == src, col(Conversation.queued_at) <= due_before)
        found += [
            w
            for w in _waiting(await s.execute(q.order_by(*order).limit(limit)))
            if overflow_due(w.queued_at, now, after_s)
        ]
    found.sort(key=lambda w: (w.queued_at, w.id))
    return found[:limit]


def _waiting(rows: Any) -> list[Waiting]:
    # queued_at is set whenever status is "queued"
    return [Waiting(cid, buyer, q, at) for cid, buyer, q, at in rows if at is not None]


async def _recent_agents(
    uow: UnitOfWork, shop_id: str, waiting: list[Waiting], now: datetime
) -> dict[str, str]:
    """buyer id → the agent who served them most recently within the regulars window."""
    rows = await uow.session.execute(
        select(
            col(Conversation.buyer_id), col(Conversation.agent_id), col(Conversation.assigned_at)
        )
        .where(
            col(Conversation.shop_id) == shop_id,
            col(Conversation.buyer_id).in_({w.buyer_id for w in waiting}),
            col(Conversation.id).not_in([w.id for w in waiting]),
            col(Conversation.agent_id).is_not(None),
            col(Conversation.assigned_at) >= now - REGULAR_WINDOW,
        )
        .order_by(col(Conversation.assigned_at))
    )
    # Oldest first, so the latest wins.
    return {buyer_id: agent_id for buyer_id, agent_id, _at in rows if agent_id is not None}


async def announce_assignment(uow: UnitOfWork, conv: Conversation) -> None:
    await announce_assignments(uow, [conv])


async def announce_assignments(uow: UnitOfWork, convs: list[Conversation]) -> None:
    """Each agent hears of their conversation with its history so far; each buyer hears who
    serves them. A few reads for the whole list, however long.

    The agent's frame carries the conversation's messages (when they are few) under
    `HISTORY_KEY`, which the agent's connection writes as `message.new` frames right
    after `conversation.assigned` and never puts on the wire itself: the opening message
    reaches the agent in the same publish, not after a read of its own. A longer history
    is left out, and the connection loads it as before.
    """
    if not convs:
        return
    publics = await public_conversations(uow.session, convs)
    history = await _short_histories(uow, [c for c in convs if c.last_seq <= HISTORY_MAX])
    for conv, public in zip(convs, publics, strict=True):
        frame: dict[str, Any] = {"type": "conversation.assigned", "conversation": public}
        if conv.id in history:
            frame[HISTORY_KEY] = history[conv.id]
        uow.emit(agent_topic(conv.agent_id or ""), frame)
        # The buyer's copy leaves out the staff's tags.
        uow.emit(
            buyer_topic(conv.shop_id, conv.buyer_id),
            {
                "type": "conversation.assigned",
                "conversation": {k: v for k, v in public.items() if k != "tags"},
            },
        )


async def _short_histories(
    uow: UnitOfWork, convs: list[Conversation]
) -> dict[str, list[dict[str, Any]]]:
    """Every message of each of these conversations, as the agent sees them, when complete."""
    if not convs:
        return {}
    rows = await uow.session.execute(
        select(Message)
        .where(
            col(Message.conversation_id).in_([c.id for c in convs]),
            col(Message.seq) <= HISTORY_MAX,
        )
        .order_by(col(Message.conversation_id), col(Message.seq))
    )
    found: dict[str, list[dict[str, Any]]] = {}
    for m in rows.scalars():
        found.setdefault(m.conversation_id, []).append(message_public(m))
    last = {c.id: c.last_seq for c in convs}
    # Only whole histories (1..last_seq, none missing): else the connection loads it.
    return {
        cid: msgs
        for cid, msgs in found.items()
        if [m["seq"] for m in msgs] == list(range(1, last[cid] + 1))
    }


async def take_slot_of(uow: UnitOfWork, agent_id: str, now: datetime) -> bool:
    """Reserve a slot with this agent if they are online and have room (transfers)."""
    result = await uow.session.execute(
        update(Agent)
        .where(
            col(Agent.id) == agent_id,
            col(Agent.status) == "online",
            col(Agent.active),
            col(Agent.active_count) < col(Agent.max_concurrent),
        )
        .values(active_count=col(Agent.active_count) + 1, last_assigned_at=now)
    )
    return rowcount(result) == 1


async def release_slot(uow: UnitOfWork, agent_id: str) -> None:
    await uow.session.execute(
        update(Agent)
        .where(col(Agent.id) == agent_id, col(Agent.active_count) > 0)
        .values(active_count=col(Agent.active_count) - 1)
    )


async def announce_positions(uow: UnitOfWork, shop_id: str, queue: str) -> int:
    """Tell every waiting buyer of the queue where they stand (1 = next to be served).

    Returns a fingerprint of the order announced, so callers can skip re-announcing it.
    """
    rows = (
        await uow.session.execute(
            select(col(Conversation.id), col(Conversation.buyer_id))
            .where(
                col(Conversation.shop_id) == shop_id,
                col(Conversation.queue) == queue,
                col(Conversation.status) == "queued",
            )
            .order_by(col(Conversation.queued_at), col(Conversation.id))
        )
    ).all()
    for position, (conv_id, buyer_id) in enumerate(rows, start=1):
        uow.emit(
            buyer_topic(shop_id, buyer_id),
            queued_frame(conv_id, queue, position),
        )
    return hash(tuple(conv_id for conv_id, _ in rows))


async def waiting_order(uow: UnitOfWork, shop_id: str, queue: str) -> list[str]:
    rows = await uow.session.execute(
        select(col(Conversation.id))
        .where(
            col(Conversation.shop_id) == shop_id,
            col(Conversation.queue) == queue,
            col(Conversation.status) == "queued",
        )
        .order_by(col(Conversation.queued_at), col(Conversation.id))
    )
    return [conv_id for (conv_id,) in rows]


async def announce_position(uow: UnitOfWork, conv: Conversation) -> None:
    position = await queue_position(uow.session, conv)
    uow.emit(
        buyer_topic(conv.shop_id, conv.buyer_id),
        queued_frame(conv.id, conv.queue, position),
    )


async def queues_of_agent(uow: UnitOfWork, agent_id: str) -> list[str]:
    rows = await uow.session.execute(
        select(col(AgentQueue.queue)).where(col(AgentQueue.agent_id) == agent_id)
    )
    return [q for (q,) in rows]


async def waiting_queues(uow: UnitOfWork) -> list[tuple[str, str]]:
    """(shop_id, queue) pairs that have someone waiting: the sweep's work list."""
    rows = await uow.session.execute(
        select(col(Conversation.shop_id), col(Conversation.queue))
        .where(col(Conversation.status) == "queued")
        .group_by(col(Conversation.shop_id), col(Conversation.queue))
    )
    pairs = {(shop_id, queue) for shop_id, queue in rows}
    for shop_id, queue in list(pairs):
        if queue in OVERFLOW_TO:
            pairs.add((shop_id, OVERFLOW_TO[queue]))
    return sorted(pairs)


async def set_agent_status(uow: UnitOfWork, agent: Agent, status: str) -> str:
    await uow.session.execute(update(Agent).where(col(Agent.id) == agent.id).values(status=status))
    agent.status = status
    uow.emit(agent_topic(agent.id), {"type": "agent.status", "status": status})
    return status


async def touch_agents(uow: UnitOfWork, agent_ids: list[str], now: datetime) -> None:
    """Presence heartbeat: these agents have a socket open on this node now.

    One agent (a socket just opened) is stamped whatever it waits for: a transaction that
    locks one row cannot be part of a deadlock. Several (the periodic beat) never wait:
    a row another transaction holds (an assignment, a status change) is skipped, and the
    next beat stamps it, well inside the grace period. Waiting for several rows, taken in
    whatever order, while dispatch holds some of them and waits for others, deadlocked on
    PostgreSQL when many agents connected to a node at once (bench message_path, two nodes).
    """
    if not agent_ids:
        return
    rows = col(Agent.id).in_(agent_ids)
    if len(agent_ids) > 1:
        free = (
            select(col(Agent.id))
            .where(rows)
            .order_by(col(Agent.id))
            .with_for_update(skip_locked=True)
        )
        rows = col(Agent.id).in_(free.scalar_subquery())
    await uow.session.execute(update(Agent).where(rows).values(last_seen_at=now))


async def requeue_agent(
    uow: UnitOfWork, agent_id: str, now: datetime, *, absent_since: datetime | None = None
) -> list[str]:
    """Put the agent's open conversations back at the front of their queues; agent goes offline.

    With `absent_since`, only if no node has seen the agent since then (checked in the
    same conditional UPDATE, so a reconnect racing the job wins). Returns the ids requeued.
    """
    s = uow.session
    cond = [col(Agent.id) == agent_id]
    if absent_since is not None:
        cond.append(or_(col(Agent.last_seen_at).is_(None), col(Agent.last_seen_at) < absent_since))
    shop_id = (
        await s.execute(
            update(Agent)
            .where(*cond)
            .values(status="offline", active_count=0)
            .returning(col(Agent.shop_id))
        )
    ).scalar()
    if shop_id is None:
        return []
    uow.emit(agent_topic(agent_id), {"type": "agent.status", "status": "offline"})
    convs = list(
        (
            await s.execute(
                select(Conversation)
                .where(
                    col(Conversation.agent_id) == agent_id, col(Conversation.status) == "assigned"
                )
                # Oldest first, so the agent and the queues hear of them in the order they came.
                .order_by(col(Conversation.opened_at), col(Conversation.id))
                .with_for_update()
            )
        ).scalars()
    )
    for conv in convs:
        # Queued as of when it first opened: ahead of everyone who came later.
        await s.execute(
            update(Conversation)
            .where(col(Conversation.id) == conv.id, col(Conversation.status) == "assigned")
            .values(status="queued", agent_id=None, queued_at=conv.opened_at)
            .execution_options(synchronize_session=False)
        )
        uow.emit(
            agent_topic(agent_id),
            {
                "type": "conversation.requeued",
                "conversation_id": conv.id,
                "queue": conv.queue,
                "reason": "agent_offline",
            },
        )
        uow.signal("positions", (shop_id, conv.queue))
        uow.signal("dispatch", (shop_id, conv.queue))
        if conv.queue in OVERFLOW_TO:
            uow.signal("dispatch", (shop_id, OVERFLOW_TO[conv.queue]))
    return [c.id for c in convs]


async def absent_agents(
    uow: UnitOfWork,
    now: datetime,
    grace_s: float,
    *,
    present: set[str] | frozenset[str] = frozenset(),
) -> list[str]:
    """Agents counted available or holding conversations whom no node has seen for longer
    than the grace period, but for those in `present` (a read; at most 200 looked at)."""
    cutoff = now - timedelta(seconds=grace_s)
    rows = await uow.session.execute(
        select(col(Agent.id))
        .where(
            or_(col(Agent.status) != "offline", col(Agent.active_count) > 0),
            or_(col(Agent.last_seen_at).is_(None), col(Agent.last_seen_at) < cutoff),
        )
        .limit(200)
    )
    return [agent_id for (agent_id,) in rows.all() if agent_id not in present]


async def requeue_absent_agents(
    uow: UnitOfWork,
    now: datetime,
    grace_s: float,
    *,
    present: set[str] | frozenset[str] = frozenset(),
) -> list[str]:
    """Agents no node has seen for longer than the grace period lose their conversations.

    `present`: agents the caller knows are connected now, spared whatever their stamp says.
    """
    cutoff = now - timedelta(seconds=grace_s)
    requeued: list[str] = []
    for agent_id in await absent_agents(uow, now, grace_s, present=present):
        requeued += await requeue_agent(uow, agent_id, now, absent_since=cutoff)
    return requeued
