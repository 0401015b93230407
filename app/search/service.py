"""Search reads: messages whose text contains the query, newest first, within what the
caller may see (agents: conversations they served; supervisors and admins: the shop)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    String,
    any_,
    bindparam,
    column,
    literal_column,
    select,
    table,
    text,
    tuple_,
    union,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.chat.models import Conversation, Message, sent_by
from app.db import UnitOfWork
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
    # PostgreSQL, an agent's search: the conversations they served, read first (see below).
    served_ids: list[str] | None = None


@dataclass
class SearchPage:
    hits: list[tuple[Message, Conversation]]
    next_cursor: str | None
    partial: bool  # the page ended on the scan budget (1-2 character queries), not on hits
    indexed: bool  # served by the text index (3+ characters) or by the bounded scan


def _served(agent: Agent) -> Any:
    """The conversations an agent served: assigned to them, or they wrote in it (so one
    transferred away stays findable)."""
    assigned = select(col(Conversation.id)).where(
        col(Conversation.shop_id) == agent.shop_id, col(Conversation.agent_id) == agent.id
    )
    wrote = select(col(Message.conversation_id)).where(
        col(Message.shop_id) == agent.shop_id,
        sent_by("agent"),  # written out: the partial index of agents' messages serves it
        col(Message.sender_id) == agent.id,
    )
    return union(assigned, wrote)


def _conversations_of(
    agent: Agent, sq: SearchQuery, dialect: str, *, buyer_drives: bool = True
) -> list[Any]:
    """The caller's reach and the conversation filters, each as `conversation_id IN (...)`:
    a set the database builds once per query, then probes per message.

    A large set (an agent's conversations, a queue's, a tag's) is written
    `conversation_id || '' IN (...)`, which keeps the planner from driving the query from it
    (reading every message of thousands of conversations, then sorting them): the walk
    stays on the (shop, time) index or the text index, probing the set. A buyer's few
    conversations may drive the walk (`buyer_drives`), not SQLite's FTS5 (which, asked
    per message, evaluates its whole phrase each time)."""
    shop = agent.shop_id
    conds: list[Any] = []
    probe: Any = col(Message.conversation_id).concat("")
    if not may(agent.role, Permission.SUPERVISE_CHATS):
        if sq.served_ids is not None:
            # A constant array: PostgreSQL probes it by hash per message (as a filter), where
            # a subquery's set was joined by a nested loop on a poor row estimate.
            conds.append(probe == any_(bindparam("served", sq.served_ids, type_=ARRAY(String))))
        else:
            conds.append(probe.in_(_served(agent)))
    if sq.buyer_id:
        conds.append(
            (col(Message.conversation_id) if buyer_drives else probe).in_(
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


def _contains(dialect: str, q: str, *, by_index: bool = True) -> Any:
    """LIKE '%q%' (ASCII letters without case, as the indexes match). `by_index=False` on
    PostgreSQL writes `body || ''`, which the trigram index cannot serve: for a walk of the
    newest messages (a query of 1-2 characters has no trigram, and pg_trgm would read its
    whole index for it)."""
    pattern = rules.like_pattern(q)
    if dialect == "postgresql":
        body = col(Message.body) if by_index else col(Message.body).concat("")
        return body.ilike(pattern, escape="\\")
    return col(Message.body).like(pattern, escape="\\")


NEWEST_FIRST = (col(Message.created_at).desc(), col(Message.id).desc())
FTS = table("messages_fts", column("rowid"))
MESSAGE_ROWID: Any = literal_column("messages.rowid")


def _indexed_ids(
    dialect: str, agent: Agent, sq: SearchQuery, *, below: Any = None, limit: int = 0
) -> Any:
    """3+ characters, by the text index.

    PostgreSQL: ILIKE served by the pg_trgm GIN index (the planner may instead walk the
    (shop, time) index newest first when the words are common), newest first by time.
    SQLite: the FTS5 trigram table drives, newest first by rowid (the order messages were
    stored, which is their time order), so a common word stops after a page of hits and a
    rare one reads only its few postings; LIKE confirms each candidate.
    """
    conds = [
        col(Message.shop_id) == agent.shop_id,
        *_conversations_of(agent, sq, dialect, buyer_drives=dialect == "postgresql"),
        *_period(sq),
        _contains(dialect, sq.q),
    ]
    if dialect == "postgresql":
        if below is not None:
            conds.append(tuple_(col(Message.created_at), col(Message.id)) < tuple_(*below))
        return (
            select(col(Message.id))
            .where(*conds, *_after_cursor(sq))
            .order_by(*NEWEST_FIRST)
            .limit(limit or sq.limit + 1)
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


async def _walk(
    session: AsyncSession, dialect: str, agent: Agent, sq: SearchQuery
) -> tuple[list[str], Any]:
    """Hits among the newest SCAN_BUDGET messages below the cursor, by the (shop, time)
    index: first where that walk ends (the budget-th message's key, from the index alone;
    None when fewer remain), then the hits above it. A buyer filter counts only that
    buyer's messages (few); otherwise the budget counts every message of the shop in the
    period, so the cost is bounded whatever the other filters."""
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
    rows = await session.execute(
        select(col(Message.id))
        .where(
            col(Message.shop_id) == agent.shop_id,
            *_conversations_of(agent, sq, dialect),
            *_period(sq),
            *_after_cursor(sq),
            *window,
            _contains(dialect, sq.q, by_index=False),
        )
        .order_by(*NEWEST_FIRST)
        .limit(sq.limit + 1)
    )
    return [r[0] for r in rows], (tuple(edge) if edge is not None else None)


async def search_messages(
    session: AsyncSession, dialect: str, agent: Agent, sq: SearchQuery
) -> SearchPage:
    """A page of hits, newest first.

    1-2 characters: the bounded walk (`_walk`); the page may end on its budget (`partial`).
    3+ characters on SQLite: the FTS5 table drives (`_indexed_ids`), unless a buyer is
    named: their few messages are walked instead. 3+ on PostgreSQL: the
    walk first (common words fill a page there at once, whatever the filters), then, if
    the page is not full, the trigram index for what lies below the walk (rare words)."""
    indexed = rules.uses_index(sq.q)
    edge = None
    if dialect == "postgresql" and not may(agent.role, Permission.SUPERVISE_CHATS):
        served = await session.execute(_served(agent))
        sq = replace(sq, served_ids=[r[0] for r in served])
    if indexed and dialect != "postgresql" and not sq.buyer_id:
        message_ids = [r[0] for r in await session.execute(_indexed_ids(dialect, agent, sq))]
    else:
        message_ids, edge = await _walk(session, dialect, agent, sq)
        if indexed and edge is not None and len(message_ids) <= sq.limit:
            need = sq.limit + 1 - len(message_ids)
            rest = await session.execute(_indexed_ids(dialect, agent, sq, below=edge, limit=need))
            message_ids += [r[0] for r in rest]
            edge = None  # the index answered for everything below the walk
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


# PostgreSQL's text index (0012): a GIN index takes new entries into a pending list and
# merges the list into the index once it passes `gin_pending_list_limit` (4 MB), in the
# insert that crossed it. On 5,000,000 messages that merge held one group commit for
# 100-300 ms at 1,500 messages a second (issue 20: p99 430 ms against 11 ms with the list
# emptied every second). Search's job (`app.search.jobs`) empties it every second instead,
# on a connection of its own: inserts stay short, and searches read a short list.
TEXT_INDEX = "ix_messages_body_trgm"


async def empty_text_index_pending(uow: UnitOfWork) -> int:
    """PostgreSQL only (the job asks for it there): merge the text index's pending entries
    into it; the list's pages merged. A second caller waits for the first, then finds the
    list empty."""
    merged = await uow.session.scalar(
        text("SELECT gin_clean_pending_list(CAST(:index AS regclass))"), {"index": TEXT_INDEX}
    )
    return int(merged or 0)
