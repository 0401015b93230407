"""Search reads: messages whose text contains the query, newest first, within what the
caller may see (agents: conversations they served; supervisors and admins: the shop)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import column, literal_column, select, table, text, tuple_, union
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.chat.models import Conversation, Message
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


def _conversations_of(agent: Agent, sq: SearchQuery, dialect: str) -> list[Any]:
    """The caller's reach and the conversation filters, each as `conversation_id IN (...)`:
    a set the database builds once per query, then probes per message.

    On SQLite a large set (an agent's conversations, a queue's, a tag's) is written
    `+conversation_id IN (...)`, which keeps the planner from driving the query from it
    (reading every message of thousands of conversations, then sorting them): the walk
    stays on the (shop, time) index or the text index, probing the set. A buyer's few
    conversations may drive."""
    shop = agent.shop_id
    conds: list[Any] = []
    probe: Any = col(Message.conversation_id)
    if dialect == "sqlite":
        probe = literal_column("+messages.conversation_id")
    if not may(agent.role, Permission.SUPERVISE_CHATS):
        # Served: assigned to them, or they wrote in it (a transferred one stays findable).
        assigned = select(col(Conversation.id)).where(
            col(Conversation.shop_id) == shop, col(Conversation.agent_id) == agent.id
        )
        wrote = select(col(Message.conversation_id)).where(
            col(Message.shop_id) == shop,
            col(Message.sender_id) == agent.id,
            col(Message.sender) == "agent",
        )
        conds.append(probe.in_(union(assigned, wrote)))
    if sq.buyer_id:
        conds.append(
            col(Message.conversation_id).in_(
                select(col(Conversation.id)).where(
                    col(Conversation.shop_id) == shop, col(Conversation.buyer_id) == sq.buyer_id
                )
            )
        )
    narrowed = [
        c
        for c in (
            col(Conversation.agent_id) == sq.agent_id if sq.agent_id else None,
            col(Conversation.queue) == sq.queue if sq.queue else None,
        )
        if c is not None
    ]
    if narrowed:
        conds.append(
            probe.in_(
                select(col(Conversation.id)).where(col(Conversation.shop_id) == shop, *narrowed)
            )
        )
    if sq.tag:
        conds.append(
            probe.in_(
                select(col(ConversationTag.conversation_id))
                .join(Tag, col(Tag.id) == col(ConversationTag.tag_id))
                .where(col(Tag.shop_id) == shop, col(Tag.name) == sq.tag)
            )
        )
    return conds


def _period(sq: SearchQuery) -> list[Any]:
    conds: list[Any] = []
    if sq.since:
        conds.append(col(Message.created_at) >= sq.since)
    if sq.until:
        conds.append(col(Message.created_at) < sq.until)
    return conds


def _after_cursor(sq: SearchQuery) -> list[Any]:
    if not sq.cursor:
        return []
    return [tuple_(col(Message.created_at), col(Message.id)) < tuple_(*sq.cursor)]


def _contains(dialect: str, q: str) -> Any:
    """LIKE '%q%' (ASCII letters without case, as the indexes match)."""
    pattern = rules.like_pattern(q)
    if dialect == "postgresql":
        return col(Message.body).ilike(pattern, escape="\\")
    return col(Message.body).like(pattern, escape="\\")


NEWEST_FIRST = (col(Message.created_at).desc(), col(Message.id).desc())
FTS = table("messages_fts", column("rowid"))
MESSAGE_ROWID: Any = literal_column("messages.rowid")


def _indexed_ids(dialect: str, agent: Agent, sq: SearchQuery) -> Any:
    """3+ characters, by the text index.

    PostgreSQL: ILIKE served by the pg_trgm GIN index (the planner may instead walk the
    (shop, time) index newest first when the words are common), newest first by time.
    SQLite: the FTS5 trigram table drives, newest first by rowid (the order messages were
    stored, which is their time order), so a common word stops after a page of hits and a
    rare one reads only its few postings; LIKE confirms each candidate.
    """
    conds = [
        col(Message.shop_id) == agent.shop_id,
        *_conversations_of(agent, sq, dialect),
        *_period(sq),
        _contains(dialect, sq.q),
    ]
    if dialect == "postgresql":
        return (
            select(col(Message.id))
            .where(*conds, *_after_cursor(sq))
            .order_by(*NEWEST_FIRST)
            .limit(sq.limit + 1)
        )
    stmt = (
        select(col(Message.id))
        .select_from(FTS)
        .join(Message, MESSAGE_ROWID == FTS.c.rowid)
        .where(text("messages_fts MATCH :phrase").bindparams(phrase=rules.fts_phrase(sq.q)), *conds)
    )
    if sq.cursor:
        at_cursor = (
            select(literal_column("rowid"))
            .select_from(table("messages"))
            .where(literal_column("id") == sq.cursor[1])
            .scalar_subquery()
        )
        stmt = stmt.where(FTS.c.rowid < at_cursor)
    return stmt.order_by(FTS.c.rowid.desc()).limit(sq.limit + 1)


async def search_messages(
    session: AsyncSession, dialect: str, agent: Agent, sq: SearchQuery
) -> SearchPage:
    indexed = rules.uses_index(sq.q)
    edge = None
    if indexed:
        ids_query = _indexed_ids(dialect, agent, sq)
    else:
        # Fewer than 3 characters: no gram to look up. Walk newest first through at most
        # SCAN_BUDGET messages: first find where that walk ends (the budget-th message's
        # key, from the (shop, time) index alone), then take the hits above it. A buyer
        # filter counts only that buyer's messages (few); otherwise the budget counts every
        # message of the shop in the period, so the cost is bounded whatever the filters.
        walk = [col(Message.shop_id) == agent.shop_id, *_period(sq), *_after_cursor(sq)]
        if sq.buyer_id:
            walk += _conversations_of(agent, sq, dialect)
        edge = (
            await session.execute(
                select(col(Message.created_at), col(Message.id))
                .where(*walk)
                .order_by(*NEWEST_FIRST)
                .offset(rules.SCAN_BUDGET - 1)
                .limit(1)
            )
        ).first()
        window = []
        if edge is not None:
            window = [tuple_(col(Message.created_at), col(Message.id)) >= tuple_(edge[0], edge[1])]
        ids_query = (
            select(col(Message.id))
            .where(
                col(Message.shop_id) == agent.shop_id,
                *_conversations_of(agent, sq, dialect),
                *_period(sq),
                *_after_cursor(sq),
                *window,
                _contains(dialect, sq.q),
            )
            .order_by(*NEWEST_FIRST)
            .limit(sq.limit + 1)
        )
    message_ids = [r[0] for r in await session.execute(ids_query)]
    more = len(message_ids) > sq.limit
    message_ids = message_ids[: sq.limit]
    found: list[tuple[Message, Conversation]] = []
    if message_ids:
        rows = await session.execute(
            select(Message, Conversation)
            .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
            .where(col(Message.id).in_(message_ids))
        )
        order = {mid: i for i, mid in enumerate(message_ids)}
        found = sorted(((m, c) for m, c in rows), key=lambda mc: order[mc[0].id])
    if more:
        last = found[-1][0]
        return SearchPage(found, rules.encode_cursor(last.created_at, last.id), False, indexed)
    if edge is not None:
        # The walk stopped on its budget: there may be older hits below the edge.
        return SearchPage(found, rules.encode_cursor(edge[0], edge[1]), True, indexed)
    return SearchPage(found, None, partial=False, indexed=indexed)
