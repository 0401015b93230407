"""Recall reads: a buyer's intent, a campaign's audience and preview, progress and results."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.chat.models import Conversation, Message
from app.orders.models import Order
from app.recall import rules
from app.recall.models import (
    RecallCampaign,
    RecallCap,
    RecallEvent,
    RecallOptOut,
    RecallSend,
    RecallSettings,
)
from app.shops import service as shop_service
from app.shops.models import Shop

SIGNAL_KINDS = ("text", "product_card", "order_card")


def _consultation() -> object:
    # A notice conversation (born closed by the system to carry a card) is not a consultation.
    return or_(Conversation.close_reason.is_(None), Conversation.close_reason != "system")


@dataclass
class BuyerSignals:
    last_consulted_at: datetime | None = None
    counts: rules.SignalCounts = field(default_factory=rules.SignalCounts)


async def collect_signals(
    s: AsyncSession, shop_id: str, since: datetime, buyer_id: str | None = None
) -> dict[str, BuyerSignals]:
    """Every signal the shop saw since `since`, per buyer (one buyer when `buyer_id` is given).

    Read from what is already recorded as it happens: consultations and their messages,
    and the storefront's events. A handful of grouped queries, whatever the audience size.
    """
    found: dict[str, BuyerSignals] = {}

    def of(b: str) -> BuyerSignals:
        sig = found.get(b)
        if sig is None:
            sig = found[b] = BuyerSignals()
        return sig

    conv_filter = [
        Conversation.shop_id == shop_id,
        Conversation.opened_at >= since,
        _consultation(),
    ]
    if buyer_id is not None:
        conv_filter.append(Conversation.buyer_id == buyer_id)
    rows = await s.execute(
        select(Conversation.buyer_id, func.max(Conversation.opened_at), func.count())
        .where(*conv_filter)
        .group_by(Conversation.buyer_id)
    )
    for b, last, n in rows:
        sig = of(b)
        sig.last_consulted_at = last
        if n > 1:
            sig.counts.add("repeat_consultation", n - 1)

    rows = await s.execute(
        select(Conversation.buyer_id, Message.kind, Message.body)
        .join(Message, Message.conversation_id == Conversation.id)
        .where(*conv_filter, Message.sender == "buyer", Message.kind.in_(SIGNAL_KINDS))
    )
    for b, kind, body in rows:
        if kind == "text":
            for topic in rules.question_topics(body):
                of(b).counts.add(topic)
        else:
            of(b).counts.add(kind)

    ev_filter = [RecallEvent.shop_id == shop_id, RecallEvent.at >= since]
    if buyer_id is not None:
        ev_filter.append(RecallEvent.buyer_id == buyer_id)
    rows = await s.execute(
        select(RecallEvent.buyer_id, RecallEvent.type, func.count())
        .where(*ev_filter)
        .group_by(RecallEvent.buyer_id, RecallEvent.type)
    )
    for b, kind, n in rows:
        of(b).counts.add(kind, n)
    return found


async def buyer_intent(
    s: AsyncSession, shop_id: str, buyer_id: str, now: datetime
) -> tuple[rules.Intent, datetime | None]:
    signals = (await collect_signals(s, shop_id, now - rules.CONSULTATION_WINDOW, buyer_id)).get(
        buyer_id, BuyerSignals()
    )
    return rules.score_intent(signals.counts.counts), signals.last_consulted_at


@dataclass
class Audience:
    eligible: list[tuple[str, int]]  # (buyer_id, score), by buyer_id
    excluded: dict[str, int]


async def audience(s: AsyncSession, shop_id: str, min_intent: int, now: datetime) -> Audience:
    """Who a campaign with this threshold would recall now, and why the others would not be."""
    since = now - rules.CONSULTATION_WINDOW
    signals = await collect_signals(s, shop_id, since)
    last_order = dict(
        (
            await s.execute(
                select(Order.buyer_id, func.max(Order.created_at))
                .where(Order.shop_id == shop_id, Order.created_at >= since)
                .group_by(Order.buyer_id)
            )
        ).all()
    )
    opted_out = set(
        (
            await s.execute(select(RecallOptOut.buyer_id).where(RecallOptOut.shop_id == shop_id))
        ).scalars()
    )
    recalled = dict(
        (
            await s.execute(
                select(RecallCap.buyer_id, RecallCap.last_at).where(
                    RecallCap.shop_id == shop_id, RecallCap.last_at > rules.cap_cutoff(now)
                )
            )
        ).all()
    )
    result = Audience([], {reason: 0 for reason in rules.EXCLUSION_REASONS})
    for b in sorted(signals):
        sig = signals[b]
        if sig.last_consulted_at is None:
            continue  # storefront events alone: never consulted in the window
        score = rules.score_intent(sig.counts.counts).score
        facts = rules.AudienceFacts(
            score=score,
            last_consulted_at=sig.last_consulted_at,
            last_order_at=last_order.get(b),
            opted_out=b in opted_out,
            last_recalled_at=recalled.get(b),
        )
        reason = rules.exclusion_reason(facts, min_intent=min_intent, now=now)
        if reason is None:
            result.eligible.append((b, score))
        else:
            result.excluded[reason] += 1
    return result


async def get_campaign(s: AsyncSession, shop_id: str, campaign_id: str) -> RecallCampaign | None:
    c = await s.get(RecallCampaign, campaign_id)
    return c if c is not None and c.shop_id == shop_id else None


async def list_campaigns(s: AsyncSession, shop_id: str) -> list[RecallCampaign]:
    rows = await s.execute(
        select(RecallCampaign)
        .where(RecallCampaign.shop_id == shop_id)
        .order_by(RecallCampaign.created_at.desc())
    )
    return list(rows.scalars())


async def due_campaigns(s: AsyncSession, now: datetime, limit: int = 50) -> list[str]:
    rows = await s.execute(
        select(RecallCampaign.id)
        .where(RecallCampaign.status.in_(("scheduled", "running")), RecallCampaign.send_at <= now)
        .order_by(RecallCampaign.send_at)
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
    sent_filter = (RecallSend.campaign_id == campaign.id, RecallSend.status == "sent")
    sent, claimed = (
        await s.execute(select(func.count(), func.count(RecallSend.claimed_at)).where(*sent_filter))
    ).one()
    read = (
        await s.execute(
            select(func.count())
            .select_from(RecallSend)
            .join(Conversation, Conversation.id == RecallSend.conversation_id)
            .where(*sent_filter, Conversation.buyer_read_seq >= RecallSend.seq)
        )
    ).scalar_one()
    ordered = exists().where(
        and_(
            Order.shop_id == RecallSend.shop_id,
            Order.buyer_id == RecallSend.buyer_id,
            Order.created_at > RecallSend.sent_at,
            Order.created_at <= campaign.ends_at,
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
            RecallSend.shop_id == shop_id, RecallSend.buyer_id.in_(list(buyer_ids))
        )
    )
    return list(rows.scalars())
