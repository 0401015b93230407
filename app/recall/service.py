"""Recall reads: a buyer's intent, a campaign's audience and preview, progress and results."""

from __future__ import annotations

import string
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    Text,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.chat.models import Conversation, Message, sent_by
from app.db import UTCDateTime
from app.orders.models import Order
from app.recall import rules
from app.recall.models import (
    EVENT_TYPES,
    RecallCampaign,
    RecallCap,
    RecallEvent,
    RecallOptOut,
    RecallSend,
    RecallSettings,
)
from app.shops import service as shop_service
from app.shops.minors import ADULT_AGE
from app.shops.models import Buyer, Shop

# The whole audience is scored by the database in a few set-based statements, from the
# same rules as `rules.score_intent` (the weights) and `rules.question_topics` (the words),
# so that a 100,000-buyer preview moves counts, not 200,000 messages, into Python.
CARD_KINDS = ("product_card", "order_card")
EVENT_SIGNALS = EVENT_TYPES


def dialect_of(s: AsyncSession) -> str:
    return s.get_bind().dialect.name


def consultation() -> ColumnElement[bool]:
    """A conversation the buyer opened: not a notice (born closed by the system to carry a card)."""
    return or_(col(Conversation.close_reason).is_(None), col(Conversation.close_reason) != "system")


def _mentions(padded: Any, words: tuple[str, ...], dialect: str) -> ColumnElement[bool]:
    """`rules.question_topics` in SQL: a word occurs in the padded, folded text."""
    find = func.strpos if dialect == "postgresql" else func.instr
    return or_(*(find(padded, literal(w, String)) > 0 for w in words))


def _padded_folded(column: Any, dialect: str) -> ColumnElement[str]:
    """The text as `rules.question_topics` searches it: ASCII letters folded, a space added
    at each end. SQLite's lower() folds ASCII only; PostgreSQL's follows the locale, so it
    gets translate() instead."""
    if dialect == "postgresql":
        folded = func.translate(column, string.ascii_uppercase, string.ascii_lowercase)
    else:
        folded = func.lower(column)
    return literal(" ", String) + folded + literal(" ", String)


def _flag(cond: ColumnElement[bool]) -> ColumnElement[int]:
    return case((cond, 1), else_=0)


def signals_sql(
    shop_id: str, since: datetime, dialect: str, buyer_id: str | None = None
) -> Select[Any]:
    """Per buyer who left any signal since `since`: `last_consulted_at`, `consultations`,
    and a count column named after each other signal of `rules.WEIGHTS`.

    One GROUP BY over the union of consultations, the buyer's messages in them and the
    storefront's events: no join between aggregates, whose plan a database without fresh
    statistics can get quadratically wrong. A text is folded once, in the union, and
    then searched for every topic's words.
    """
    flags = ["consultation", *CARD_KINDS, *EVENT_SIGNALS]

    def row(buyer: Any, consulted_at: Any, text: Any = None, **set_: Any) -> list[Any]:
        return [
            buyer.label("buyer_id"),
            (consulted_at if consulted_at is not None else cast(null(), UTCDateTime())).label(
                "consulted_at"
            ),
            (text if text is not None else cast(null(), Text)).label("text"),
            *(set_.get(name, literal(0)).label(name) for name in flags),
        ]

    in_window = [
        col(Conversation.shop_id) == shop_id,
        col(Conversation.opened_at) >= since,
        consultation(),
    ]
    events = [col(RecallEvent.shop_id) == shop_id, col(RecallEvent.at) >= since]
    if buyer_id is not None:
        in_window.append(col(Conversation.buyer_id) == buyer_id)
        events.append(col(RecallEvent.buyer_id) == buyer_id)
    union = union_all(
        select(
            *row(col(Conversation.buyer_id), col(Conversation.opened_at), consultation=literal(1))
        ).where(*in_window),
        select(
            *row(
                col(Conversation.buyer_id),
                None,
                case((col(Message.kind) == "text", _padded_folded(col(Message.body), dialect))),
                **{kind: _flag(col(Message.kind) == kind) for kind in CARD_KINDS},
            )
        )
        .join(Message, col(Message.conversation_id) == col(Conversation.id))
        .where(*in_window, sent_by("buyer"), col(Message.kind).in_(("text", *CARD_KINDS))),
        select(
            *row(
                col(RecallEvent.buyer_id),
                None,
                **{t: _flag(col(RecallEvent.type) == t) for t in EVENT_SIGNALS},
            )
        ).where(*events),
    ).subquery("signal")
    return select(
        union.c.buyer_id,
        func.max(union.c.consulted_at).label("last_consulted_at"),
        func.sum(union.c.consultation).label("consultations"),
        *(func.sum(union.c[name]).label(name) for name in flags[1:]),
        *(
            func.count(union.c.text).filter(_mentions(union.c.text, words, dialect)).label(topic)
            for topic, words in rules.QUESTION_WORDS.items()
        ),
    ).group_by(union.c.buyer_id)


def signal_counts(row: Any) -> dict[str, ColumnElement[int]]:
    """The count per signal of `rules.WEIGHTS` from a `signals_sql` row (columns or values)."""
    counts = {name: row[name] for name in (*CARD_KINDS, *rules.QUESTION_WORDS, *EVENT_SIGNALS)}
    counts["repeat_consultation"] = row["consultations"] - 1
    return counts


def score_sql(counts: dict[str, ColumnElement[int]]) -> ColumnElement[int]:
    """`rules.score_intent(...).score` in SQL, from a count column per signal."""
    if set(counts) != set(rules.WEIGHTS):
        raise ValueError(
            f"Expected a count for each of {sorted(rules.WEIGHTS)}, got {sorted(counts)}"
        )
    total: ColumnElement[int] = literal(0)
    for name, (per, most) in rules.WEIGHTS.items():
        points = counts[name] * per
        total = total + case((points > most, most), else_=points)
    return case((total > rules.MAX_SCORE, rules.MAX_SCORE), else_=total)


async def buyer_intent(
    s: AsyncSession, shop_id: str, buyer_id: str, now: datetime
) -> tuple[rules.Intent, datetime | None]:
    """The buyer's score with the signals that made it (the same counts as an audience's)."""
    since = now - rules.CONSULTATION_WINDOW
    row = (await s.execute(signals_sql(shop_id, since, dialect_of(s), buyer_id))).mappings().first()
    if row is None:
        return rules.score_intent({}), None
    counts: dict[str, Any] = signal_counts(row)
    return rules.score_intent(counts), row["last_consulted_at"]


async def buyer_recall_state(s: AsyncSession, shop_id: str, buyer_id: str) -> dict[str, Any]:
    """What a buyer's own recall cards should show: opted out or not, which coupons are claimed."""
    opted = await s.get(RecallOptOut, (shop_id, buyer_id))
    claimed = (
        await s.execute(
            select(col(RecallSend.id))
            .where(
                col(RecallSend.shop_id) == shop_id,
                col(RecallSend.buyer_id) == buyer_id,
                col(RecallSend.claimed_at).is_not(None),
            )
            .order_by(col(RecallSend.claimed_at))
        )
    ).scalars()
    return {"opted_out": opted is not None, "claimed": list(claimed)}


def ordered_after(shop_id: str, buyer: Any, at: Any) -> ColumnElement[bool]:
    """The buyer has ordered from the shop after `at` (their last consultation); ever, for None."""
    after = [] if at is None else [col(Order.created_at) > at]
    return exists().where(col(Order.shop_id) == shop_id, col(Order.buyer_id) == buyer, *after)


def opted_out(shop_id: str, buyer: Any) -> ColumnElement[bool]:
    return exists().where(col(RecallOptOut.shop_id) == shop_id, col(RecallOptOut.buyer_id) == buyer)


def minor(shop_id: str, buyer: Any) -> ColumnElement[bool]:
    """`rules.exclusion_reason`'s "minor" in SQL: the stored identity says under 18."""
    return exists().where(
        col(Buyer.shop_id) == shop_id, col(Buyer.id) == buyer, col(Buyer.age) < ADULT_AGE
    )


def last_consultation(shop_id: str, buyer: Any) -> Any:
    """The buyer's latest consultation with the shop, as a correlated scalar subquery."""
    return (
        select(func.max(col(Conversation.opened_at)))
        .where(
            col(Conversation.shop_id) == shop_id,
            col(Conversation.buyer_id) == buyer,
            consultation(),
        )
        .correlate_except(Conversation)  # nested in an EXISTS, it would not correlate by itself
        .scalar_subquery()
    )


def audience_sql(shop_id: str, min_intent: int, now: datetime, dialect: str) -> Select[Any]:
    """Every buyer who consulted in the window: (buyer_id, score, reason), reason NULL for
    the eligible, else the first of `rules.EXCLUSION_REASONS` that applies (as
    `rules.exclusion_reason` decides for one buyer)."""
    found = signals_sql(shop_id, now - rules.CONSULTATION_WINDOW, dialect)
    c = found.having(found.selected_columns.consultations > 0).subquery("c")
    scored = select(
        c.c.buyer_id, c.c.last_consulted_at, score_sql(signal_counts(c.c)).label("score")
    ).subquery("scored")
    b = scored.c.buyer_id
    why = {
        "minor": minor(shop_id, b),
        "opted_out": opted_out(shop_id, b),
        "purchased": ordered_after(shop_id, b, scored.c.last_consulted_at),
        "low_intent": scored.c.score < min_intent,
        "capped": exists().where(
            col(RecallCap.shop_id) == shop_id,
            col(RecallCap.buyer_id) == b,
            col(RecallCap.last_at) > rules.cap_cutoff(now),
        ),
    }
    reason = case(*((why[r], literal(r, String)) for r in rules.EXCLUSION_REASONS), else_=null())
    return select(b.label("buyer_id"), scored.c.score, reason.label("reason"))


@dataclass
class Audience:
    eligible: int
    excluded: dict[str, int]


async def audience(s: AsyncSession, shop_id: str, min_intent: int, now: datetime) -> Audience:
    """How many a campaign with this threshold would recall now, and why the others would not be."""
    rows = audience_sql(shop_id, min_intent, now, dialect_of(s)).subquery("a")
    result = Audience(0, {reason: 0 for reason in rules.EXCLUSION_REASONS})
    for reason, n in await s.execute(select(rows.c.reason, func.count()).group_by(rows.c.reason)):
        if reason is None:
            result.eligible = n
        else:
            result.excluded[reason] = n
    return result


async def get_campaign(s: AsyncSession, shop_id: str, campaign_id: str) -> RecallCampaign | None:
    c = await s.get(RecallCampaign, campaign_id)
    return c if c is not None and c.shop_id == shop_id else None


async def list_campaigns(s: AsyncSession, shop_id: str) -> list[RecallCampaign]:
    rows = await s.execute(
        select(RecallCampaign)
        .where(col(RecallCampaign.shop_id) == shop_id)
        .order_by(col(RecallCampaign.created_at).desc())
    )
    return list(rows.scalars())


async def due_campaigns(s: AsyncSession, now: datetime, limit: int = 50) -> list[str]:
    rows = await s.execute(
        select(col(RecallCampaign.id))
        .where(
            col(RecallCampaign.status).in_(("scheduled", "running")),
            col(RecallCampaign.send_at) <= now,
        )
        .order_by(col(RecallCampaign.send_at))
        .limit(limit)
    )
    return list(rows.scalars())


async def sending_window(s: AsyncSession, shop_id: str) -> tuple[int, int]:
    row = await s.get(RecallSettings, shop_id)
    return (row.window_start_min, row.window_end_min) if row else rules.DEFAULT_WINDOW


async def window_open(s: AsyncSession, shop_id: str, now: datetime) -> bool:
    shop = await s.get(Shop, shop_id)
    if shop is None:
        return False
    return rules.in_window(now, shop_service.shop_zone(shop), await sending_window(s, shop_id))


@dataclass(frozen=True)
class Results:
    sent: int
    read: int
    claimed: int
    converted: int

    @property
    def conversion_rate(self) -> float:
        return round(self.converted / self.sent, 4) if self.sent else 0.0


async def results(s: AsyncSession, campaign: RecallCampaign) -> Results:
    """sent; read (the buyer's read mark reached the card); claimed; converted (an order by
    the buyer after the card and before the promotion ended)."""
    sent_filter = (col(RecallSend.campaign_id) == campaign.id, col(RecallSend.status) == "sent")
    sent, claimed = (
        await s.execute(
            select(func.count(), func.count(col(RecallSend.claimed_at))).where(*sent_filter)
        )
    ).one()
    read = (
        await s.execute(
            select(func.count())
            .select_from(RecallSend)
            .join(Conversation, col(Conversation.id) == col(RecallSend.conversation_id))
            .where(*sent_filter, col(Conversation.buyer_read_seq) >= col(RecallSend.seq))
        )
    ).scalar_one()
    ordered = exists().where(
        and_(
            col(Order.shop_id) == col(RecallSend.shop_id),
            col(Order.buyer_id) == col(RecallSend.buyer_id),
            col(Order.created_at) > col(RecallSend.sent_at),
            col(Order.created_at) <= campaign.ends_at,
        )
    )
    converted = (
        await s.execute(select(func.count()).select_from(RecallSend).where(*sent_filter, ordered))
    ).scalar_one()
    return Results(sent=sent, read=read, claimed=claimed, converted=converted)


async def sends_of_buyers(
    s: AsyncSession, shop_id: str, buyer_ids: Iterable[str]
) -> list[RecallSend]:
    rows = await s.execute(
        select(RecallSend).where(
            col(RecallSend.shop_id) == shop_id, col(RecallSend.buyer_id).in_(list(buyer_ids))
        )
    )
    return list(rows.scalars())
