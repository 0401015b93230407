"""Recall state changes: storefront events, campaigns, opt-out, coupon claims, and the send.

The rolling 7-day cap holds because a buyer is recalled only by `claim_recall_slots`, a
conditional upsert on the buyer's `recall_caps` row that the database evaluates against
the latest committed row while holding its lock; the send record and the card are
written in the same transaction, so a crash leaves either all three or none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.chat.models import Conversation, Message
from app.chat.schemas import message_public
from app.db import UnitOfWork, new_id
from app.errors import BadInput, Conflict, NotFound
from app.payouts import actions as payout_actions
from app.realtime.topics import buyer_topic
from app.recall import rules, service
from app.recall.models import (
    RecallCampaign,
    RecallCap,
    RecallEvent,
    RecallOptOut,
    RecallSend,
    RecallSettings,
)
from app.routing.rules import BuyerFacts, choose_queue
from app.shops.models import Buyer

SEND_BATCH = 200


def _insert(uow: UnitOfWork) -> Any:
    return pg_insert if uow.is_postgres else sqlite_insert


# --- signals and buyer choices -----------------------------------------------------------


@dataclass(frozen=True)
class StorefrontEvent:
    buyer_id: str
    type: str
    product_id: str | None
    category: str | None
    at: datetime


async def record_event(
    uow: UnitOfWork, shop_id: str, ev: StorefrontEvent, now: datetime
) -> RecallEvent:
    if ev.type not in ("cart_add", "product_view"):
        raise BadInput("type must be cart_add or product_view.", code="invalid_type")
    row = RecallEvent(
        shop_id=shop_id,
        buyer_id=ev.buyer_id,
        type=ev.type,
        product_id=ev.product_id,
        category=ev.category,
        at=min(ev.at, now),
        received_at=now,
    )
    uow.session.add(row)
    await uow.session.flush()
    return row


async def opt_out(uow: UnitOfWork, shop_id: str, buyer_id: str, now: datetime) -> None:
    """The buyer wants no more recalls from this shop (idempotent)."""
    await uow.session.execute(
        _insert(uow)(RecallOptOut.__table__)
        .values(shop_id=shop_id, buyer_id=buyer_id, at=now)
        .on_conflict_do_nothing(index_elements=["shop_id", "buyer_id"])
    )


async def claim_coupon(
    uow: UnitOfWork, shop_id: str, buyer_id: str, coupon_id: str, now: datetime
) -> RecallSend:
    """The buyer takes the coupon of a recall card; claiming again changes nothing."""
    s = uow.session
    await s.execute(
        update(RecallSend)
        .where(
            RecallSend.id == coupon_id,
            RecallSend.shop_id == shop_id,
            RecallSend.buyer_id == buyer_id,
            RecallSend.status == "sent",
            RecallSend.claimed_at.is_(None),
        )
        .values(claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    send = (
        await s.execute(
            select(RecallSend)
            .where(RecallSend.id == coupon_id)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if (
        send is None
        or send.shop_id != shop_id
        or send.buyer_id != buyer_id
        or send.status != "sent"
    ):
        raise NotFound("No such coupon.")
    return send


async def set_window(
    uow: UnitOfWork, shop_id: str, start_min: int, end_min: int, now: datetime
) -> None:
    """The shop's sending window, minutes after local midnight (0..1440: all day)."""
    if not rules.valid_window(start_min, end_min):
        raise BadInput("The window needs 0 <= start < end <= 1440.", code="invalid_window")
    ins = _insert(uow)(RecallSettings.__table__).values(
        shop_id=shop_id, window_start_min=start_min, window_end_min=end_min, updated_at=now
    )
    await uow.session.execute(
        ins.on_conflict_do_update(
            index_elements=["shop_id"],
            set_={"window_start_min": start_min, "window_end_min": end_min, "updated_at": now},
        )
    )


# --- campaigns ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignDraft:
    name: str
    send_at: datetime
    ends_at: datetime
    min_intent: int
    coupon: dict[str, Any]
    message: str


async def create_campaign(
    uow: UnitOfWork, shop_id: str, agent_id: str, draft: CampaignDraft, now: datetime
) -> RecallCampaign:
    if draft.ends_at <= draft.send_at:
        raise BadInput("ends_at must be after send_at.", code="invalid_dates")
    if not 0 <= draft.min_intent <= rules.MAX_SCORE:
        raise BadInput("min_intent must be 0..100.", code="invalid_min_intent")
    c = RecallCampaign(
        shop_id=shop_id,
        name=draft.name,
        send_at=draft.send_at,
        ends_at=draft.ends_at,
        min_intent=draft.min_intent,
        coupon=draft.coupon,
        message=draft.message,
        created_by=agent_id,
        created_at=now,
    )
    uow.session.add(c)
    await uow.session.flush()
    return c


async def _campaign_for_update(
    uow: UnitOfWork, campaign_id: str, shop_id: str | None = None
) -> RecallCampaign:
    c = (
        await uow.session.execute(
            select(RecallCampaign)
            .where(RecallCampaign.id == campaign_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if c is None or (shop_id is not None and c.shop_id != shop_id):
        raise NotFound("No such campaign.")
    return c


async def schedule_campaign(
    uow: UnitOfWork, shop_id: str, campaign_id: str, now: datetime
) -> RecallCampaign:
    """Draft → scheduled. The job sends it at `send_at` (at once if that has passed)."""
    c = await _campaign_for_update(uow, campaign_id, shop_id)
    if c.status != "draft":
        raise Conflict(f"Expected a draft campaign, but it is {c.status}.", code="not_draft")
    if c.ends_at <= now:
        raise Conflict("The promotion has already ended.", code="campaign_ended")
    c.status = "scheduled"
    await uow.session.flush()
    return c


async def cancel_campaign(
    uow: UnitOfWork, shop_id: str, campaign_id: str, now: datetime
) -> RecallCampaign:
    """Stops a campaign before or while it runs; cards already sent stay sent."""
    c = await _campaign_for_update(uow, campaign_id, shop_id)
    if c.status in ("completed", "cancelled"):
        raise Conflict(f"The campaign is already {c.status}.", code="campaign_finished")
    c.status, c.finished_at = "cancelled", now
    await uow.session.flush()
    return c


# --- the send ----------------------------------------------------------------------------


async def start_campaign(uow: UnitOfWork, campaign_id: str, now: datetime) -> bool:
    """Scheduled → running, snapshotting its audience as `pending` sends, in one transaction.

    Only one worker wins the conditional UPDATE; a crash before commit leaves it scheduled.
    """
    s = uow.session
    won = await s.execute(
        update(RecallCampaign)
        .where(
            RecallCampaign.id == campaign_id,
            RecallCampaign.status == "scheduled",
            RecallCampaign.send_at <= now,
        )
        .values(status="running", started_at=now)
        .execution_options(synchronize_session=False)
    )
    if won.rowcount != 1:
        return False
    c = await _campaign_for_update(uow, campaign_id)
    found = await service.audience(s, c.shop_id, c.min_intent, now)
    if found.eligible:
        await s.execute(
            _insert(uow)(RecallSend.__table__),
            [
                {
                    "id": new_id(),
                    "shop_id": c.shop_id,
                    "campaign_id": c.id,
                    "buyer_id": b,
                    "score": score,
                    "status": "pending",
                }
                for b, score in found.eligible
            ],
        )
    c.total = len(found.eligible)
    await s.flush()
    return True


async def claim_recall_slots(
    uow: UnitOfWork, shop_id: str, campaign_id: str, buyer_ids: list[str], now: datetime
) -> set[str]:
    """Take the 7-day recall slot of each buyer who is free; returns those taken.

    INSERT ... ON CONFLICT DO UPDATE ... WHERE last_at <= now - 7 days: a row is written
    (and returned) only for a buyer never recalled or last recalled 7+ days ago. A
    concurrent claimer of the same buyer waits for this transaction and then sees its row.
    Buyers are taken in a fixed (sorted) order so concurrent batches never deadlock.
    """
    if not buyer_ids:
        return set()
    table = RecallCap.__table__
    ins = _insert(uow)(table).values(
        [
            {"shop_id": shop_id, "buyer_id": b, "last_at": now, "campaign_id": campaign_id}
            for b in sorted(buyer_ids)
        ]
    )
    ins = ins.on_conflict_do_update(
        index_elements=["shop_id", "buyer_id"],
        set_={"last_at": ins.excluded.last_at, "campaign_id": ins.excluded.campaign_id},
        where=table.c.last_at <= rules.cap_cutoff(now),
    ).returning(table.c.buyer_id)
    return set((await uow.session.execute(ins)).scalars())


async def send_batch(
    uow: UnitOfWork, campaign_id: str, now: datetime, size: int = SEND_BATCH
) -> int | None:
    """Send the next `size` pending buyers of a running campaign; how many were handled,
    or None when the campaign is not running (cancelled, finished, not started).

    The campaign row is locked first, so workers running the same campaign take turns
    batch by batch; a pending row becomes `sent` or `capped` in the same transaction as
    its cap claim and card, so a crash mid-batch leaves the whole batch pending.
    """
    s = uow.session
    c = await _campaign_for_update(uow, campaign_id)
    if c.status != "running":
        return None
    pending = list(
        (
            await s.execute(
                select(RecallSend)
                .where(RecallSend.campaign_id == c.id, RecallSend.status == "pending")
                .order_by(RecallSend.buyer_id)
                .limit(size)
            )
        ).scalars()
    )
    if not pending:
        c.status, c.finished_at = "completed", now
        await s.flush()
        return 0
    taken = await claim_recall_slots(uow, c.shop_id, c.id, [p.buyer_id for p in pending], now)
    sends = [p for p in pending if p.buyer_id in taken]
    placed = await _post_cards(uow, c, sends, now)
    for p in pending:
        if p.buyer_id in taken:
            p.status, p.sent_at = "sent", now
            p.conversation_id, p.message_id, p.seq = placed[p.id]
        else:
            p.status = "capped"
    c.sent += len(sends)
    c.skipped += len(pending) - len(sends)
    await s.flush()
    return len(pending)


def card_for(c: RecallCampaign, send_id: str) -> tuple[str, dict[str, Any]]:
    coupon = {
        "id": send_id,
        "title": c.coupon.get("title", ""),
        "amount_cents": c.coupon.get("amount_cents", 0),
        "min_spend_cents": c.coupon.get("min_spend_cents", 0),
        "ends_at": c.ends_at.isoformat(),
        "reason": "recall",
    }
    return c.message or coupon["title"], {"coupon": coupon, "campaign_id": c.id, "opt_out": True}


async def _post_cards(
    uow: UnitOfWork, c: RecallCampaign, sends: list[RecallSend], now: datetime
) -> dict[str, tuple[str, str, int]]:
    """The coupon card of each send: (conversation_id, message_id, seq) by send id.

    A buyer who is chatting gets it in the open conversation (payouts' `post_to_buyer`);
    the others, most of an audience, get notice conversations like `post_to_buyer`'s,
    written here in two bulk INSERTs, because one at a time a 100,000-buyer campaign
    would take minutes.
    """
    s = uow.session
    if not sends:
        return {}
    by_buyer = {p.buyer_id: p for p in sends}
    chatting = set(
        (
            await s.execute(
                select(Conversation.buyer_id).where(
                    Conversation.shop_id == c.shop_id,
                    Conversation.buyer_id.in_(list(by_buyer)),
                    Conversation.status != "closed",
                )
            )
        ).scalars()
    )
    placed: dict[str, tuple[str, str, int]] = {}
    for b in sorted(chatting):
        body, payload = card_for(c, by_buyer[b].id)
        msg = await payout_actions.post_to_buyer(
            uow,
            shop_id=c.shop_id,
            buyer_id=b,
            conversation_id=None,
            kind="coupon_card",
            body=body,
            payload=payload,
            now=now,
        )
        placed[by_buyer[b].id] = (msg.conversation_id, msg.id, msg.seq)
    quiet = [b for b in by_buyer if b not in chatting]
    if not quiet:
        return placed
    buyers = {
        row.id: row
        for row in (
            await s.execute(select(Buyer).where(Buyer.shop_id == c.shop_id, Buyer.id.in_(quiet)))
        ).scalars()
    }
    # One template row of each kind (the models' defaults and types), copied per buyer:
    # building 100,000 model instances would cost more than writing them.
    conv_template = Conversation(
        id="",
        shop_id=c.shop_id,
        buyer_id="",
        status="closed",
        last_seq=1,
        opened_at=now,
        closed_at=now,
        close_reason="system",
    ).model_dump()
    msg_template = Message(
        id="",
        shop_id=c.shop_id,
        conversation_id="",
        seq=1,
        sender="system",
        sender_id=None,
        kind="coupon_card",
        body="",
        payload={},
        created_at=now,
    )
    frame_template = message_public(msg_template)
    msg_row = msg_template.model_dump()
    convs, msgs = [], []
    for b in quiet:
        known = buyers.get(b)
        facts = BuyerFacts(age=known.age, elder_mode=known.elder_mode) if known else BuyerFacts()
        conv_id, msg_id = new_id(), new_id()
        body, payload = card_for(c, by_buyer[b].id)
        convs.append(
            {
                **conv_template,
                "id": conv_id,
                "buyer_id": b,
                "queue": choose_queue(facts),
                "elder": facts.is_elder,
            }
        )
        msgs.append(
            {**msg_row, "id": msg_id, "conversation_id": conv_id, "body": body, "payload": payload}
        )
        placed[by_buyer[b].id] = (conv_id, msg_id, 1)
        uow.emit(
            buyer_topic(c.shop_id, b),
            {
                "type": "message.new",
                "message": {
                    **frame_template,
                    "id": msg_id,
                    "conversation_id": conv_id,
                    "body": body,
                    "payload": payload,
                },
            },
        )
    await s.execute(_insert(uow)(Conversation.__table__), convs)
    await s.execute(_insert(uow)(Message.__table__), msgs)
    return placed
