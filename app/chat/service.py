"""Reads of conversations and messages (no state changes here)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from app.chat.models import Conversation, Message
from app.chat.schemas import conversation_public, iso
from app.chat.visibility import buyer_visible
from app.routing.hours_models import LeftMessage
from app.shops.models import Agent, Buyer, Shop
from app.shops.policy import Permission, may
from app.tags import service as tags_service

SYNC_PAGE = 500


async def messages_after(
    session: AsyncSession,
    conversation_id: str,
    after_seq: int,
    limit: int = SYNC_PAGE,
    *,
    buyer_view: bool = False,
) -> list[Message]:
    """Messages after `after_seq`, in order; `buyer_view`: only those the buyer may see."""
    q = select(Message).where(
        col(Message.conversation_id) == conversation_id, col(Message.seq) > after_seq
    )
    if buyer_view:
        q = q.where(buyer_visible())
    rows = await session.execute(q.order_by(col(Message.seq)).limit(limit))
    return list(rows.scalars())


async def messages_after_each(
    session: AsyncSession, asks: list[tuple[str, int]], limit: int = SYNC_PAGE
) -> list[list[Message]]:
    """`messages_after(conversation, after_seq)` for each ask, in one read.

    For the sockets syncing at once after a reconnect storm: each conversation's page is
    cut at `limit` by its own row number, so every answer is the page a lone read gives.
    A conversation asked about twice with different marks (its buyer and its agent) is
    read once per mark, each in its own round.
    """
    rounds: list[dict[str, int]] = []
    for cid, after in asks:
        for r in rounds:
            if cid not in r:
                r[cid] = after
                break
            if r[cid] == after:
                break
        else:
            rounds.append({cid: after})
    pages: dict[tuple[str, int], list[Message]] = {}
    for r in rounds:
        rn = (
            func.row_number()
            .over(partition_by=col(Message.conversation_id), order_by=col(Message.seq))
            .label("rn")
        )
        inner = (
            select(Message, rn)
            .where(
                or_(
                    *(
                        (col(Message.conversation_id) == cid) & (col(Message.seq) > after)
                        for cid, after in r.items()
                    )
                )
            )
            .subquery()
        )
        found = aliased(Message, inner)
        rows = await session.execute(
            select(found).where(inner.c.rn <= limit).order_by(inner.c.conversation_id, inner.c.seq)
        )
        for cid, after in r.items():
            pages[(cid, after)] = []
        for m in rows.scalars():
            pages[(m.conversation_id, r[m.conversation_id])].append(m)
    return [pages[(cid, after)] for cid, after in asks]


async def get_conversation(session: AsyncSession, conversation_id: str) -> Conversation | None:
    return await session.get(Conversation, conversation_id)


async def open_conversation_of_buyer(
    session: AsyncSession, shop_id: str, buyer_id: str
) -> Conversation | None:
    row = await session.execute(
        select(Conversation).where(
            col(Conversation.shop_id) == shop_id,
            col(Conversation.buyer_id) == buyer_id,
            col(Conversation.status) != "closed",
        )
    )
    return row.scalars().first()


async def public_conversations(
    session: AsyncSession, conversations: list[Conversation], *, for_buyer: bool = False
) -> list[dict[str, Any]]:
    """CONV for each, with the shop slug and the assigned agent's display name.

    `for_buyer`: the buyer's copy, without the staff's tags (internal labels)."""
    if not conversations:
        return []
    shop_ids = {c.shop_id for c in conversations}
    agent_ids = {c.agent_id for c in conversations if c.agent_id}
    buyers: dict[tuple[str, str], tuple[str, int | None]] = {}
    for shop_id in shop_ids:
        ids = {c.buyer_id for c in conversations if c.shop_id == shop_id}
        rows = await session.execute(
            select(col(Buyer.id), col(Buyer.name), col(Buyer.vip)).where(
                col(Buyer.shop_id) == shop_id, col(Buyer.id).in_(ids)
            )
        )
        buyers.update({(shop_id, bid): (name, vip) for bid, name, vip in rows})
    # (A Result has .keys(), so dict(result) would treat it as a mapping: build it by hand.)
    slug_rows = await session.execute(
        select(col(Shop.id), col(Shop.slug), col(Shop.timezone)).where(col(Shop.id).in_(shop_ids))
    )
    slugs, zones = {}, {}
    for shop_id, slug, zone in slug_rows:
        slugs[shop_id], zones[shop_id] = slug, zone
    names: dict[str, str] = {}
    if agent_ids:
        name_rows = await session.execute(
            select(col(Agent.id), col(Agent.display_name)).where(col(Agent.id).in_(agent_ids))
        )
        names = {agent_id: name for agent_id, name in name_rows}
    tags = {} if for_buyer else await tags_service.tags_of(session, (c.id for c in conversations))
    left = await _left_messages(session, [c.id for c in conversations])
    return [
        {
            **conversation_public(
                c,
                shop_slug=slugs[c.shop_id],
                agent_name=names.get(c.agent_id or ""),
                buyer=buyers.get((c.shop_id, c.buyer_id), ("", None)),
                tags=None if for_buyer else tags.get(c.id, []),
            ),
            "left_message": (
                {**left[c.id], "time_zone": zones[c.shop_id]} if c.id in left else None
            ),
        }
        for c in conversations
    ]


async def _left_messages(session: AsyncSession, conv_ids: list[str]) -> dict[str, dict[str, Any]]:
    """CONV's `left_message` for those that waited as 留言 (routing.hours told the buyer
    nobody could answer): {"reason", "since", "opens_at"}; the rest have none."""
    rows = await session.execute(
        select(
            col(LeftMessage.conversation_id),
            col(LeftMessage.reason),
            col(LeftMessage.since),
            col(LeftMessage.opens_at),
        ).where(col(LeftMessage.conversation_id).in_(conv_ids))
    )
    return {
        cid: {"reason": reason, "since": iso(since), "opens_at": iso(opens)}
        for cid, reason, since, opens in rows
    }


async def public_conversation(
    session: AsyncSession, c: Conversation, *, for_buyer: bool = False
) -> dict[str, Any]:
    return (await public_conversations(session, [c], for_buyer=for_buyer))[0]


async def conversations_for_agent(
    session: AsyncSession, agent: Agent, *, status: str | None = None, whole_shop: bool = False
) -> list[Conversation]:
    """An agent's own conversations; supervisors and admins may ask for the whole shop's."""
    q = select(Conversation).where(col(Conversation.shop_id) == agent.shop_id)
    if not whole_shop:
        q = q.where(col(Conversation.agent_id) == agent.id)
    if status:
        q = q.where(col(Conversation.status) == status)
    elif not whole_shop:
        q = q.where(col(Conversation.status) != "closed")
    q = q.order_by(col(Conversation.opened_at).desc()).limit(500)
    return list((await session.execute(q)).scalars())


def agent_may_see(agent: Agent, conv: Conversation) -> bool:
    """The assigned agent, and the shop's supervisors and admins."""
    if conv.shop_id != agent.shop_id:
        return False
    return conv.agent_id == agent.id or may(agent.role, Permission.SUPERVISE_CHATS)


async def may_now(session: AsyncSession, agent_id: str, permission: Permission) -> bool:
    """Whether the agent, active and with their role as stored now, may do `permission`.

    A socket holds the agent as they were when it opened; a role changed since judges
    its very next frame (the socket itself is closed by the revocation soon after).
    """
    role = (
        await session.execute(
            select(col(Agent.role)).where(col(Agent.id) == agent_id, col(Agent.active))
        )
    ).scalar()
    return may(role, permission)


def buyer_may_see(shop_id: str, buyer_id: str, conv: Conversation) -> bool:
    return conv.shop_id == shop_id and conv.buyer_id == buyer_id


async def queue_positions(
    session: AsyncSession, conversations: list[Conversation]
) -> dict[str, int]:
    """`queue_position` of each waiting conversation, one read per queue they wait in.

    For the many sockets opening at once (`app.chat.opening`): a count per conversation
    scans the queue ahead of each, so 7,500 waiting buyers reconnecting cost 28 million
    index entries; here each queue is read once, up to the last one asked about.
    """
    by_queue: dict[tuple[str, str], list[Conversation]] = {}
    for conv in conversations:
        if conv.queued_at is None:  # not waiting: the single count says what it always did
            continue
        by_queue.setdefault((conv.shop_id, conv.queue), []).append(conv)
    out: dict[str, int] = {}
    for (shop_id, queue), convs in by_queue.items():
        last = max(c.queued_at for c in convs if c.queued_at is not None)
        pos = func.row_number().over(order_by=(col(Conversation.queued_at), col(Conversation.id)))
        ranked = (
            select(col(Conversation.id).label("id"), pos.label("pos"))
            .where(
                col(Conversation.shop_id) == shop_id,
                col(Conversation.queue) == queue,
                col(Conversation.status) == "queued",
                col(Conversation.queued_at) <= last,
            )
            .subquery()
        )
        rows = await session.execute(
            select(ranked.c.id, ranked.c.pos).where(ranked.c.id.in_([c.id for c in convs]))
        )
        out.update((cid, int(p)) for cid, p in rows.all())
    # One that no longer waits (read committed: assigned since it was read) is counted alone.
    for conv in conversations:
        if conv.id not in out:
            out[conv.id] = await queue_position(session, conv)
    return out


async def queue_position(session: AsyncSession, conv: Conversation) -> int:
    """Where a waiting conversation stands in its queue (1 = next to be served)."""
    ahead = await session.execute(
        select(func.count())
        .select_from(Conversation)
        .where(
            col(Conversation.shop_id) == conv.shop_id,
            col(Conversation.queue) == conv.queue,
            col(Conversation.status) == "queued",
            (col(Conversation.queued_at) < conv.queued_at)
            | ((col(Conversation.queued_at) == conv.queued_at) & (col(Conversation.id) < conv.id)),
        )
    )
    return int(ahead.scalar() or 0) + 1
