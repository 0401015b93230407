"""Reads of quick phrases: the lists an agent sees, the search, the values of variables."""

from __future__ import annotations

from sqlalchemy import case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.chat.models import Conversation, Message
from app.errors import NotFound
from app.orders import service as order_service
from app.phrases import rules
from app.phrases.models import SHOP, Phrase
from app.shops.models import Agent, Buyer, Shop

LIST_LIMIT = 2000


def owner_key(agent: Agent, scope: str) -> str:
    return SHOP if scope == "shop" else agent.id


def scope_of(phrase: Phrase) -> str:
    return "shop" if phrase.owner_key == SHOP else "mine"


async def list_phrases(
    session: AsyncSession, agent: Agent, *, scope: str | None = None, q: str | None = None
) -> list[Phrase]:
    """The shop's phrases and the agent's own (or one of the two), the agent's first, each
    list in its order; `q` matches the text (any case) or the pinyin initials."""
    owners = [owner_key(agent, scope)] if scope else [agent.id, SHOP]
    query = select(Phrase).where(
        col(Phrase.shop_id) == agent.shop_id, col(Phrase.owner_key).in_(owners)
    )
    q = (q or "").strip()
    if q:
        matches = [func.lower(col(Phrase.text)).contains(q.lower(), autoescape=True)]
        letters = rules.initials(q) if q.isascii() else ""
        if letters:
            matches.append(col(Phrase.initials).contains(letters, autoescape=True))
        query = query.where(or_(*matches))
    mine_first = case((col(Phrase.owner_key) == SHOP, 1), else_=0)
    rows = await session.execute(
        query.order_by(
            mine_first, col(Phrase.position), col(Phrase.created_at), col(Phrase.id)
        ).limit(LIST_LIMIT)
    )
    return list(rows.scalars())


async def phrase_of(session: AsyncSession, agent: Agent, phrase_id: str) -> Phrase:
    """A phrase the agent can see: the shop's, or their own (anyone else's is not found)."""
    phrase = await session.get(Phrase, phrase_id)
    if (
        phrase is None
        or phrase.shop_id != agent.shop_id
        or phrase.owner_key not in (SHOP, agent.id)
    ):
        raise NotFound("No such phrase.")
    return phrase


async def variable_values(
    session: AsyncSession, agent: Agent, conv: Conversation | None
) -> dict[str, str | None]:
    """What each variable stands for, for this agent in this conversation."""
    shop = await session.get(Shop, agent.shop_id)
    values: dict[str, str | None] = {
        rules.AGENT_NAME: agent.display_name,
        rules.SHOP_NAME: shop.name if shop else None,
    }
    if conv is None:
        return values
    buyer = await session.get(Buyer, (conv.shop_id, conv.buyer_id))
    values[rules.BUYER_NAME] = (buyer.name if buyer else "") or conv.buyer_id
    # The conversation's latest order: the newest order card naming one of the buyer's
    # orders, else the buyer's newest order with the shop.
    linked = await order_service.linked_order_ids(session, conv)
    if linked:
        values[rules.ORDER_ID] = linked[0]
    else:
        orders = await order_service.orders_of_buyer(session, conv.shop_id, conv.buyer_id)
        values[rules.ORDER_ID] = orders[0].order_id if orders else None
    card = await session.execute(
        select(col(Message.payload))
        .where(col(Message.conversation_id) == conv.id, col(Message.kind) == "product_card")
        .order_by(col(Message.seq).desc())
        .limit(1)
    )
    payload = card.scalar() or {}
    title = payload.get("title") if isinstance(payload, dict) else None
    values[rules.PRODUCT] = title if isinstance(title, str) else None
    return values
