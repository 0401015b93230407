"""Reads for the exports: a shop's period, page by page, as CSV text.

Every export is read in keyset pages (`WHERE (at, id) > (last_at, last_id) ORDER BY at, id
LIMIT n`, served by an index on (shop_id, at, id)), each page in its own short read
session, and handed on as one chunk of CSV text before the next is read. So memory holds
one page however long the period, no transaction stays open while a slow client reads,
and the chat's writers never wait behind an export. Times are on the shop's wall clock.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, func, or_, select, true
from sqlmodel import col

from app.chat.models import Conversation, Message, Rating
from app.chat.visibility import buyer_visible
from app.db import Database
from app.errors import BadInput, NotFound
from app.exports import rules
from app.exports.rules import Cell
from app.metrics import service as metrics_service
from app.metrics.rules import Said, resolve_period, score_conversation
from app.metrics.trend_rules import days_of
from app.payouts.models import PayoutLedgerEntry
from app.routing import hours
from app.routing.hours_models import LeftMessage
from app.shops import service as shop_service
from app.shops.models import Agent, Buyer, Shop
from app.shops.roles import MEASURED_ROLES
from app.tags import service as tags_service

# Rows a page: small enough that turning one into CSV never holds the event loop long
# (the chat shares it), large enough that the keyset queries cost little.
PAGE = 1000
CONVERSATION_PAGE = 250

HEADERS: dict[str, list[str]] = {
    "conversations": [
        "conversation_id",
        "opened_at",
        "assigned_at",
        "closed_at",
        "close_reason",
        "buyer_id",
        "buyer_name",
        "agent_username",
        "agent_name",
        "queue",
        "tags",
        "elder",
        "left_message",
        "rating",
        "first_response_s",
        "buyer_messages",
        "agent_messages",
        "messages",
    ],
    "messages": [
        "created_at",
        "conversation_id",
        "seq",
        "sender",
        "sender_id",
        "sender_name",
        "kind",
        "body",
    ],
    "metrics": [
        "date",
        "agent_username",
        "agent_name",
        "handled",
        "reply_3min_rate",
        "avg_first_response_s",
        "satisfaction_rate",
        "dissatisfaction_rate",
        "payouts_yuan",
    ],
    "ledger": [
        "at",
        "entry",
        "payout_id",
        "actor_kind",
        "actor_id",
        "agent_id",
        "approver_id",
        "order_id",
        "conversation_id",
        "buyer_id",
        "amount_yuan",
        "reason",
        "code",
        "idempotency_key",
        "note",
    ],
}


@dataclass(frozen=True)
class Export:
    kind: str
    shop_id: str
    zone: ZoneInfo
    start: datetime
    end: datetime
    rows: int  # how many data rows will follow (counted before streaming; for progress)
    tag_id: str | None = None  # only conversations with this tag (and their messages)

    @property
    def filename(self) -> str:
        return rules.filename(
            self.kind, self.start, self.end - timedelta(microseconds=1), self.zone
        )


async def prepare(
    db: Database,
    kind: str,
    shop_id: str,
    start_text: str | None,
    end_text: str | None,
    now: datetime,
    tag: str | None = None,
) -> Export:
    """Check the request and count its rows (NotFound for an unknown kind, BadInput for a bad
    period or a tag the shop does not have, or a tag on an export that is not per conversation)."""
    if kind not in rules.KINDS:
        raise NotFound(f"Expected an export among {', '.join(rules.KINDS)}, but got {kind!r}.")
    if tag is not None and kind not in ("conversations", "messages"):
        raise BadInput("Only the conversations and messages exports take a tag.", code="bad_tag")
    async with db.read() as s:
        shop = await s.get(Shop, shop_id)
        zone = shop_service.shop_zone(shop) if shop else ZoneInfo(shop_service.DEFAULT_TIMEZONE)
        start, end = resolve_period(start_text, end_text, now=now, tz=zone)
        tag_id = await tags_service.known_tag_id(s, shop_id, tag)
        if kind == "conversations":
            count = select(func.count()).where(_conversations_in(shop_id, start, end, tag_id))
        elif kind == "messages":
            count = select(func.count()).where(_messages_in(shop_id, start, end, tag_id))
        elif kind == "ledger":
            count = select(func.count()).where(_ledger_in(shop_id, start, end))
        else:
            measured = await _measured_agents(s, shop_id)
            return Export(
                kind, shop_id, zone, start, end, len(days_of(start, end, zone)) * len(measured)
            )
        rows = int((await s.execute(count)).scalar() or 0)
    return Export(kind, shop_id, zone, start, end, rows, tag_id)


async def stream(db: Database, export: Export) -> AsyncIterator[str]:
    """The export as CSV text chunks: the BOM and header, then a page of rows at a time."""
    yield rules.BOM + rules.lines([HEADERS[export.kind]])
    pages = {
        "conversations": _conversation_pages,
        "messages": _message_pages,
        "metrics": _metric_pages,
        "ledger": _ledger_pages,
    }[export.kind]
    async for page in pages(db, export):
        if page:
            # Formatted on a worker thread: the loop keeps serving sockets meanwhile.
            yield await asyncio.to_thread(rules.lines, page)


def _from(last: tuple[datetime, Any] | None, export: Export) -> datetime:
    """The lower bound of the next page: the last row's time once there is one.

    The index range must start there: with only the period's start as its bound, each
    page would scan the period from its beginning and filter up to the last row (on
    PostgreSQL the OR below is a filter, not an index condition), quadratic in the rows.
    """
    return export.start if last is None else last[0]


def _after(at: Any, key: Any, last: tuple[Any, Any] | None) -> Any:
    """The keyset tie-break (at, key) > last among the rows at `last`'s time (see `_from`)."""
    if last is None:
        return true()
    return or_(at > last[0], and_(at == last[0], key > last[1]))


# ---- conversations ---------------------------------------------------------------------


def _conversations_in(
    shop_id: str, start: datetime, end: datetime, tag_id: str | None = None
) -> ColumnElement[bool]:
    return and_(
        col(Conversation.shop_id) == shop_id,
        col(Conversation.opened_at) >= start,
        col(Conversation.opened_at) < end,
        # A notice conversation (born closed to carry a card) was nobody's request for help.
        or_(col(Conversation.close_reason).is_(None), col(Conversation.close_reason) != "system"),
        tags_service.tagged(col(Conversation.id), tag_id),
    )


async def _conversation_pages(db: Database, export: Export) -> AsyncIterator[list[list[Cell]]]:
    agents: dict[str, tuple[str, str]] = {}
    clock_start: Callable[[datetime], datetime] | None = None
    last: tuple[datetime, str] | None = None
    while True:
        async with db.read() as s:
            if clock_start is None:
                agents = {
                    a_id: (username, name)
                    for a_id, username, name in await s.execute(
                        select(col(Agent.id), col(Agent.username), col(Agent.display_name)).where(
                            col(Agent.shop_id) == export.shop_id
                        )
                    )
                }
                clock_start = (await hours.shop_hours(s, export.shop_id)).clock_start()
            convs = list(
                (
                    await s.execute(
                        select(Conversation)
                        .where(
                            _conversations_in(
                                export.shop_id, _from(last, export), export.end, export.tag_id
                            ),
                            _after(col(Conversation.opened_at), col(Conversation.id), last),
                        )
                        .order_by(col(Conversation.opened_at), col(Conversation.id))
                        .limit(CONVERSATION_PAGE)
                    )
                ).scalars()
            )
            if not convs:
                return
            ids = [c.id for c in convs]
            said: dict[str, list[Said]] = defaultdict(list)
            for conv_id, sender, at in await s.execute(
                select(col(Message.conversation_id), col(Message.sender), col(Message.created_at))
                # Internal notes are no part of the chat: neither replies nor messages.
                .where(col(Message.conversation_id).in_(ids), buyer_visible())
                .order_by(col(Message.conversation_id), col(Message.seq))
            ):
                if sender in ("buyer", "agent"):
                    said[conv_id].append(Said(sender, at))
            ratings = {
                k: v
                for k, v in await s.execute(
                    select(col(Rating.conversation_id), col(Rating.score)).where(
                        col(Rating.conversation_id).in_(ids)
                    )
                )
            }
            left = {
                k: v
                for k, v in await s.execute(
                    select(col(LeftMessage.conversation_id), col(LeftMessage.reason)).where(
                        col(LeftMessage.conversation_id).in_(ids)
                    )
                )
            }
            tags = await tags_service.tags_of(s, ids)
            names = {
                k: v
                for k, v in await s.execute(
                    select(col(Buyer.id), col(Buyer.name)).where(
                        col(Buyer.shop_id) == export.shop_id,
                        col(Buyer.id).in_({c.buyer_id for c in convs}),
                    )
                )
            }
        z = export.zone
        page: list[list[Cell]] = []
        for c in convs:
            messages = said.get(c.id, [])
            score = score_conversation(c.assigned_at, messages, clock_start=clock_start)
            username, agent_name = agents.get(c.agent_id or "", (None, None))
            buyers = sum(m.sender == "buyer" for m in messages)
            page.append(
                [
                    c.id,
                    rules.local(c.opened_at, z),
                    rules.local(c.assigned_at, z),
                    rules.local(c.closed_at, z),
                    c.close_reason,
                    c.buyer_id,
                    names.get(c.buyer_id),
                    username,
                    agent_name,
                    c.queue,
                    "; ".join(tags.get(c.id, [])),
                    int(c.elder),
                    left.get(c.id),
                    ratings.get(c.id),
                    rules.seconds(score.first_response_s),
                    buyers,
                    len(messages) - buyers,
                    c.last_seq,
                ]
            )
        yield page
        last = (convs[-1].opened_at, convs[-1].id)


# ---- messages --------------------------------------------------------------------------


def _messages_in(
    shop_id: str, start: datetime, end: datetime, tag_id: str | None = None
) -> ColumnElement[bool]:
    return and_(
        col(Message.shop_id) == shop_id,
        col(Message.created_at) >= start,
        col(Message.created_at) < end,
        tags_service.tagged(col(Message.conversation_id), tag_id),
    )


async def _message_pages(db: Database, export: Export) -> AsyncIterator[list[list[Cell]]]:
    agents: dict[str, str] | None = None
    last: tuple[datetime, str] | None = None
    while True:
        async with db.read() as s:
            if agents is None:
                agents = {
                    k: v
                    for k, v in await s.execute(
                        select(col(Agent.id), col(Agent.display_name)).where(
                            col(Agent.shop_id) == export.shop_id
                        )
                    )
                }
            rows = (
                await s.execute(
                    select(
                        col(Message.created_at),
                        col(Message.id),
                        col(Message.conversation_id),
                        col(Message.seq),
                        col(Message.sender),
                        col(Message.sender_id),
                        col(Message.kind),
                        col(Message.body),
                    )
                    .where(
                        _messages_in(
                            export.shop_id, _from(last, export), export.end, export.tag_id
                        ),
                        _after(col(Message.created_at), col(Message.id), last),
                    )
                    .order_by(col(Message.created_at), col(Message.id))
                    .limit(PAGE)
                )
            ).all()
        if not rows:
            return
        z = export.zone
        yield [
            [
                rules.local(at, z),
                conv_id,
                seq,
                sender,
                sender_id,
                agents.get(sender_id or "") if sender == "agent" else None,
                kind,
                body,
            ]
            for at, _id, conv_id, seq, sender, sender_id, kind, body in rows
        ]
        last = (rows[-1][0], rows[-1][1])


# ---- metrics per agent per day ---------------------------------------------------------


async def _measured_agents(s: Any, shop_id: str) -> Sequence[Any]:
    rows: Sequence[Any] = (
        await s.execute(
            select(col(Agent.id)).where(
                col(Agent.shop_id) == shop_id, col(Agent.role).in_(MEASURED_ROLES)
            )
        )
    ).all()
    return rows


async def _metric_pages(db: Database, export: Export) -> AsyncIterator[list[list[Cell]]]:
    """One day at a time, through the metrics' own reading (the same numbers as the console)."""
    for day, lo, hi in days_of(export.start, export.end, export.zone):
        async with db.read() as s:
            report = await metrics_service.metrics_between(s, export.shop_id, lo, hi)
        yield [
            [
                day,
                a.username,
                a.display_name,
                a.metrics.handled,
                a.metrics.reply_3min_rate,
                a.metrics.avg_first_response_s,
                a.metrics.satisfaction_rate,
                a.metrics.dissatisfaction_rate,
                rules.yuan(a.metrics.payouts_cents),
            ]
            for a in report.agents
        ]


# ---- the payout ledger -----------------------------------------------------------------


def _ledger_in(shop_id: str, start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(
        col(PayoutLedgerEntry.shop_id) == shop_id,
        col(PayoutLedgerEntry.at) >= start,
        col(PayoutLedgerEntry.at) < end,
    )


async def _ledger_pages(db: Database, export: Export) -> AsyncIterator[list[list[Cell]]]:
    last: tuple[datetime, int] | None = None
    while True:
        async with db.read() as s:
            entries = list(
                (
                    await s.execute(
                        select(PayoutLedgerEntry)
                        .where(
                            _ledger_in(export.shop_id, _from(last, export), export.end),
                            _after(col(PayoutLedgerEntry.at), col(PayoutLedgerEntry.id), last),
                        )
                        .order_by(col(PayoutLedgerEntry.at), col(PayoutLedgerEntry.id))
                        .limit(PAGE)
                    )
                ).scalars()
            )
        if not entries:
            return
        yield [
            [
                rules.local(e.at, export.zone),
                e.entry,
                e.payout_id,
                e.actor_kind,
                e.actor_id,
                e.agent_id,
                e.approver_id,
                e.order_id,
                e.conversation_id,
                e.buyer_id,
                rules.yuan(e.amount_cents),
                e.reason,
                e.code,
                e.idempotency_key,
                e.note,
            ]
            for e in entries
        ]
        last = (entries[-1].at, entries[-1].id or 0)
