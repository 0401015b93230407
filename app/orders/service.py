"""Reads of orders: the buyer panel, an order card's order, the order a conversation is about."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.chat.models import Conversation, Message
from app.errors import NotFound
from app.orders.models import Order

BUYER_PANEL_LIMIT = 100


async def get_order(session: AsyncSession, shop_id: str, order_id: str) -> Order | None:
    return await session.get(Order, (shop_id, order_id))


async def orders_of_buyer(session: AsyncSession, shop_id: str, buyer_id: str) -> list[Order]:
    rows = await session.execute(
        select(Order)
        .where(col(Order.shop_id) == shop_id, col(Order.buyer_id) == buyer_id)
        .order_by(col(Order.created_at).desc(), col(Order.order_id))
        .limit(BUYER_PANEL_LIMIT)
    )
    return list(rows.scalars())


async def linked_order_ids(session: AsyncSession, conv: Conversation) -> list[str]:
    """Orders the conversation is about: those named by its order cards, newest card first.

    A card names an order only if the order exists and is the conversation buyer's own
    (the payload is kept as the buyer sent it, so it proves nothing by itself).
    """
    rows = await session.execute(
        select(col(Message.payload))
        .where(col(Message.conversation_id) == conv.id, col(Message.kind) == "order_card")
        .order_by(col(Message.seq).desc())
    )
    named: list[str] = []
    for (payload,) in rows:
        oid = (payload or {}).get("order_id")
        if isinstance(oid, str) and oid and oid not in named:
            named.append(oid)
    if not named:
        return []
    owned = await session.execute(
        select(col(Order.order_id)).where(
            col(Order.shop_id) == conv.shop_id,
            col(Order.buyer_id) == conv.buyer_id,
            col(Order.order_id).in_(named),
        )
    )
    mine = {oid for (oid,) in owned}
    return [oid for oid in named if oid in mine]


async def buyer_panel(
    session: AsyncSession, shop_id: str, buyer_id: str, conversation_id: str | None = None
) -> list[tuple[Order, bool | None]]:
    """The buyer's orders for the agent's side panel, newest first.

    With a conversation, each order says whether that conversation's order cards name
    it, and the named ones come first (the order the buyer is asking about).
    """
    orders = await orders_of_buyer(session, shop_id, buyer_id)
    if conversation_id is None:
        return [(o, None) for o in orders]
    conv = await session.get(Conversation, conversation_id)
    if conv is None or conv.shop_id != shop_id or conv.buyer_id != buyer_id:
        raise NotFound("No such conversation with this buyer.")
    linked = await linked_order_ids(session, conv)
    rank = {oid: i for i, oid in enumerate(linked)}
    orders.sort(key=lambda o: rank.get(o.order_id, len(rank)))
    return [(o, o.order_id in rank) for o in orders]


async def latest_tracking(session: AsyncSession, shop_id: str, order_id: str) -> str | None:
    """The order's latest tracking line (what a buyer asking 到哪了 is told), or None."""
    row = await session.execute(
        select(col(Order.tracking_line)).where(
            col(Order.shop_id) == shop_id, col(Order.order_id) == order_id
        )
    )
    found = row.first()
    return found[0] if found else None
