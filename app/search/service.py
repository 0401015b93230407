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


def _filters(agent: Agent, sq: SearchQuery) -> tuple[list[Any], list[Any]]:
    """Every condition but the text, as (on messages, on their conversations): the shop,
    the caller's reach, the filters, the cursor. No conversation condition: no join."""
    on_messages: list[Any] = [col(Message.shop_id) == agent.shop_id]
    on_conversations: list[Any] = []
    if not may(agent.role, Permission.SUPERVISE_CHATS):
        on_conversations.append(served_condition(agent))
    if sq.buyer_id:
        on_conversations.append(col(Conversation.buyer_id) == sq.buyer_id)
    if sq.agent_id:
        on_conversations.append(col(Conversation.agent_id) == sq.agent_id)
    if sq.queue:
        on_conversations.append(col(Conversation.queue) == sq.queue)
    if sq.tag:
        on_conversations.append(
            exists().where(
                col(ConversationTag.conversation_id) == col(Conversation.id),
                col(Tag.id) == col(ConversationTag.tag_id),
                col(Tag.shop_id) == agent.shop_id,
                col(Tag.name) == sq.tag,
            )
        )
    if on_conversations:
        on_conversations.append(col(Conversation.shop_id) == agent.shop_id)
    if sq.since:
        on_messages.append(col(Message.created_at) >= sq.since)
    if sq.until:
        on_messages.append(col(Message.created_at) < sq.until)
    if sq.cursor:
        on_messages.append(tuple_(col(Message.created_at), col(Message.id)) < tuple_(*sq.cursor))
    return on_messages, on_conversations


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


def _scope(stmt: Any, on_messages: list[Any], on_conversations: list[Any]) -> Any:
    if on_conversations:
        stmt = stmt.join(Conversation, col(Conversation.id) == col(Message.conversation_id))
    return stmt.where(*on_messages, *on_conversations)


async def search_messages(
    session: AsyncSession, dialect: str, agent: Agent, sq: SearchQuery
) -> SearchPage:
    on_messages, on_conversations = _filters(agent, sq)
    indexed = rules.uses_index(sq.q)
    if not indexed:
        # Fewer than 3 characters: no gram to look up. Walk newest first through at most
        # SCAN_BUDGET messages the filters allow: first find where that walk ends (the
        # budget-th message's key, by the (shop, time) index), then take the hits above it.
        edge = (
            await session.execute(
                _scope(
                    select(col(Message.created_at), col(Message.id)), on_messages, on_conversations
                )
                .order_by(*NEWEST_FIRST)
                .offset(rules.SCAN_BUDGET - 1)
                .limit(1)
            )
        ).first()
        if edge is not None:
            on_messages = [
                *on_messages,
                tuple_(col(Message.created_at), col(Message.id)) >= tuple_(edge[0], edge[1]),
            ]
        text_match = _contains(dialect, sq.q)
    else:
        edge = None
        text_match = _text_match(dialect, sq.q)
    ids = await session.execute(
        _scope(select(col(Message.id)), on_messages, on_conversations)
        .where(text_match)
        .order_by(*NEWEST_FIRST)
        .limit(sq.limit + 1)
    )
    message_ids = [r[0] for r in ids]
    more = len(message_ids) > sq.limit
    message_ids = message_ids[: sq.limit]
    found: list[tuple[Message, Conversation]] = []
    if message_ids:
        rows = await session.execute(
            select(Message, Conversation)
            .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
            .where(col(Message.id).in_(message_ids))
            .order_by(*NEWEST_FIRST)
        )
        found = [(m, c) for m, c in rows]
    if more:
        last = found[-1][0]
        return SearchPage(found, rules.encode_cursor(last.created_at, last.id), False, indexed)
    if edge is not None:
        # The walk stopped on its budget: there may be older hits below the edge.
        return SearchPage(found, rules.encode_cursor(edge[0], edge[1]), True, indexed)
    return SearchPage(found, None, partial=False, indexed=indexed)
