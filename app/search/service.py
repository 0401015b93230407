"""Search reads: messages whose text contains the query, newest first, within what the
caller may see (agents: conversations they served; supervisors and admins: the shop)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, literal_column, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.chat.models import Conversation, Message
from app.history.service import served_condition
from app.search import rules
from app.shops.models import Agent
from app.shops.policy import Permission, may
from app.tags.models import ConversationTag, Tag


@dataclass
class SearchQuery:
    q: str
    buyer_id: str | None = None
    agent_id: str | None = None
    queue: str | None = None
    tag: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    cursor: tuple[datetime, str] | None = None
    limit: int = rules.PAGE


@dataclass
class SearchPage:
    hits: list[tuple[Message, Conversation]]
    next_cursor: str | None
    partial: bool  # the page ended on the scan budget (1-2 character queries), not on hits
    indexed: bool  # served by the text index (3+ characters) or by the bounded scan


def _filters(agent: Agent, sq: SearchQuery) -> list[Any]:
    """Every condition but the text: shop, the caller's reach, the filters, the cursor."""
    conds: list[Any] = [
        col(Message.shop_id) == agent.shop_id,
        col(Conversation.shop_id) == agent.shop_id,
    ]
    if not may(agent.role, Permission.SUPERVISE_CHATS):
        conds.append(served_condition(agent))
    if sq.buyer_id:
        conds.append(col(Conversation.buyer_id) == sq.buyer_id)
    if sq.agent_id:
        conds.append(col(Conversation.agent_id) == sq.agent_id)
    if sq.queue:
        conds.append(col(Conversation.queue) == sq.queue)
    if sq.tag:
        conds.append(
            exists().where(
                col(ConversationTag.conversation_id) == col(Conversation.id),
                col(Tag.id) == col(ConversationTag.tag_id),
                col(Tag.shop_id) == agent.shop_id,
                col(Tag.name) == sq.tag,
            )
        )
    if sq.since:
        conds.append(col(Message.created_at) >= sq.since)
    if sq.until:
        conds.append(col(Message.created_at) < sq.until)
    if sq.cursor:
        conds.append(tuple_(col(Message.created_at), col(Message.id)) < tuple_(*sq.cursor))
    return conds


def _text_match(dialect: str, q: str) -> Any:
    """The text condition that uses the index: pg_trgm serves ILIKE on PostgreSQL; on
    SQLite the FTS5 trigram table gives the candidates and LIKE confirms each."""
    pattern = rules.like_pattern(q)
    if dialect == "postgresql":
        return col(Message.body).ilike(pattern, escape="\\")
    fts = text("SELECT rowid FROM messages_fts WHERE messages_fts MATCH :phrase").bindparams(
        phrase=rules.fts_phrase(q)
    )
    return literal_column("messages.rowid").in_(fts) & col(Message.body).like(pattern, escape="\\")


def _contains(dialect: str, q: str) -> Any:
    pattern = rules.like_pattern(q)
    if dialect == "postgresql":
        return col(Message.body).ilike(pattern, escape="\\")
    return col(Message.body).like(pattern, escape="\\")


NEWEST_FIRST = (col(Message.created_at).desc(), col(Message.id).desc())


async def search_messages(
    session: AsyncSession, dialect: str, agent: Agent, sq: SearchQuery
) -> SearchPage:
    conds = _filters(agent, sq)
    joined = select(Message, Conversation).join(
        Conversation, col(Conversation.id) == col(Message.conversation_id)
    )
    if rules.uses_index(sq.q):
        rows = await session.execute(
            joined.where(*conds, _text_match(dialect, sq.q))
            .order_by(*NEWEST_FIRST)
            .limit(sq.limit + 1)
        )
        found: list[tuple[Message, Conversation]] = [(m, c) for m, c in rows]
        more = len(found) > sq.limit
        found = found[: sq.limit]
        cursor = rules.encode_cursor(found[-1][0].created_at, found[-1][0].id) if more else None
        return SearchPage(found, cursor, partial=False, indexed=True)

    # Fewer than 3 characters: scan the newest SCAN_BUDGET messages the filters allow.
    window = (
        select(col(Message.id).label("id"))
        .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
        .where(*conds)
        .order_by(*NEWEST_FIRST)
        .limit(rules.SCAN_BUDGET)
        .subquery()
    )
    rows = await session.execute(
        joined.join(window, window.c.id == col(Message.id))
        .where(_contains(dialect, sq.q))
        .order_by(*NEWEST_FIRST)
        .limit(sq.limit + 1)
    )
    found: list[tuple[Message, Conversation]] = [(m, c) for m, c in rows]
    if len(found) > sq.limit:
        found = found[: sq.limit]
        last = found[-1][0]
        return SearchPage(found, rules.encode_cursor(last.created_at, last.id), False, False)
    # Fewer hits than a page: did the scan reach the end, or stop on its budget?
    edge = (
        await session.execute(
            select(col(Message.created_at), col(Message.id))
            .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
            .where(*conds)
            .order_by(*NEWEST_FIRST)
            .offset(rules.SCAN_BUDGET - 1)
            .limit(1)
        )
    ).first()
    if edge is None:
        return SearchPage(found, None, partial=False, indexed=False)
    return SearchPage(found, rules.encode_cursor(edge[0], edge[1]), partial=True, indexed=False)
