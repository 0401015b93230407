"""A shop's queues and its category → skill-queue map: what admins set up, read by routing.

Reads take a session; changes take a UnitOfWork and run inside the caller's
transaction. Uniqueness (a queue name per shop) is held by the primary key, not by a
check before the insert, so two admins racing get one queue and one `409`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.chat.models import Conversation
from app.db import UnitOfWork
from app.errors import BadInput, Conflict, NotFound
from app.routing.models import AgentQueue, CategoryQueue, Queue
from app.routing.rules import waited_s
from app.shops.models import Agent, Shop

NAME_MAX = 64
OVERFLOW_MAX_S = 3600
# A shop maps a handful of categories, not a catalogue; this bounds one request.
CATEGORIES_MAX = 500


@dataclass(frozen=True)
class QueueSummary:
    name: str
    overflow_after_s: int
    waiting: int
    agents_online: int
    longest_wait_s: int  # how long the queue's oldest waiter has waited (0: nobody waits)


def check_name(value: object, what: str) -> str:
    """A queue or category name: 1-64 printable characters, no surrounding spaces."""
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= NAME_MAX
        or value != value.strip()
        or not value.isprintable()
    ):
        raise BadInput(
            f"A {what} name is 1-{NAME_MAX} printable characters without surrounding spaces, "
            f"but got {value!r}.",
            code=f"bad_{what}",
        )
    return value


def check_overflow(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= OVERFLOW_MAX_S:
        raise BadInput(
            f"overflow_after_s must be a whole number from 0 to {OVERFLOW_MAX_S}, but got {value!r}.",
            code="bad_overflow",
        )
    return value


async def queue_names(session: AsyncSession, shop_id: str) -> set[str]:
    rows = await session.execute(select(col(Queue.name)).where(col(Queue.shop_id) == shop_id))
    return {name for (name,) in rows}


async def check_queues_exist(session: AsyncSession, shop_id: str, names: Iterable[str]) -> None:
    """Refuse names that are not queues of the shop (422 `unknown_queue`)."""
    wanted = set(names)
    missing = sorted(wanted - await queue_names(session, shop_id)) if wanted else []
    if missing:
        raise BadInput(f"No such queue in this shop: {', '.join(missing)}.", code="unknown_queue")


async def list_queues(session: AsyncSession, shop_id: str, now: datetime) -> list[QueueSummary]:
    """Every queue of the shop: who waits in it and for how long, how many of its agents are online."""
    waiting: dict[str, tuple[int, datetime | None]] = {
        queue: (int(n), oldest)
        for queue, n, oldest in await session.execute(
            select(col(Conversation.queue), func.count(), func.min(col(Conversation.queued_at)))
            .where(col(Conversation.shop_id) == shop_id, col(Conversation.status) == "queued")
            .group_by(col(Conversation.queue))
        )
    }
    online = {
        queue: int(n)
        for queue, n in await session.execute(
            select(col(AgentQueue.queue), func.count())
            .join(Agent, col(Agent.id) == col(AgentQueue.agent_id))
            .where(col(Agent.shop_id) == shop_id, col(Agent.status) == "online")
            .group_by(col(AgentQueue.queue))
        )
    }
    rows = await session.execute(
        select(col(Queue.name), col(Queue.overflow_after_s))
        .where(col(Queue.shop_id) == shop_id)
        .order_by(col(Queue.name))
    )
    summaries = []
    for name, overflow in rows:
        n, oldest = waiting.get(name, (0, None))
        summaries.append(
            QueueSummary(name, overflow, n, online.get(name, 0), waited_s(oldest, now))
        )
    return summaries


async def queue_summary(
    session: AsyncSession, shop_id: str, name: str, now: datetime
) -> QueueSummary:
    for summary in await list_queues(session, shop_id, now):
        if summary.name == name:
            return summary
    raise NotFound(f"No queue {name!r} in this shop.")


async def create_queue(
    uow: UnitOfWork, shop_id: str, name: object, overflow_after_s: object = None, *, now: datetime
) -> QueueSummary:
    """A new skill queue; without `overflow_after_s` it gets the model's default (120 s).

    Agents may have been given the queue's name before it existed, so the summary
    counts them like any other queue's.
    """
    queue = Queue(shop_id=shop_id, name=check_name(name, "queue"))
    if overflow_after_s is not None:
        queue.overflow_after_s = check_overflow(overflow_after_s)
    if not await uow.add_if_new(queue):
        raise Conflict(f"The shop already has a queue {name!r}.", code="queue_exists")
    return await queue_summary(uow.session, shop_id, queue.name, now)


async def set_overflow(
    uow: UnitOfWork, shop_id: str, name: str, overflow_after_s: object, *, now: datetime
) -> QueueSummary:
    """Change how long the queue's waiters wait before other queues' agents may take them.

    Routing reads the time on every dispatch, and its sweep re-dispatches waiting
    queues, so waiters already overdue under the new time are picked up without a nudge.
    """
    seconds = check_overflow(overflow_after_s)
    queue = await uow.session.get(Queue, (shop_id, name))
    if queue is None:
        raise NotFound(f"No queue {name!r} in this shop.")
    queue.overflow_after_s = seconds
    await uow.session.flush()
    return await queue_summary(uow.session, shop_id, name, now)


async def category_map(session: AsyncSession, shop_id: str) -> dict[str, str]:
    rows = await session.execute(
        select(col(CategoryQueue.category), col(CategoryQueue.queue))
        .where(col(CategoryQueue.shop_id) == shop_id)
        .order_by(col(CategoryQueue.category))
    )
    return {category: queue for category, queue in rows}


async def replace_category_map(
    uow: UnitOfWork, shop_id: str, mapping: Mapping[str, object]
) -> dict[str, str]:
    """Make `mapping` the shop's whole category map; every target must be one of its queues."""
    if len(mapping) > CATEGORIES_MAX:
        raise BadInput(
            f"At most {CATEGORIES_MAX} categories, but got {len(mapping)}.", code="too_many"
        )
    clean: dict[str, str] = {}
    for category, queue in mapping.items():
        check_name(category, "category")
        if not isinstance(queue, str):
            raise BadInput(
                f"Category {category!r} must map to a queue name, but got {queue!r}.",
                code="unknown_queue",
            )
        clean[category] = queue
    s = uow.session
    # Concurrent replacements of one shop's map queue up behind this row lock, so one
    # wins whole instead of the two interleaving their deletes and inserts.
    await s.execute(select(col(Shop.id)).where(col(Shop.id) == shop_id).with_for_update())
    await check_queues_exist(s, shop_id, clean.values())
    await s.execute(delete(CategoryQueue).where(col(CategoryQueue.shop_id) == shop_id))
    s.add_all(CategoryQueue(shop_id=shop_id, category=c, queue=q) for c, q in clean.items())
    await s.flush()
    return dict(sorted(clean.items()))
