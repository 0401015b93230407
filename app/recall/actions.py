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

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    case,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlmodel import col

from app.chat import notices
from app.db import UnitOfWork, UTCDateTime, dialect_insert, insert_ignore, rowcount, table_of
from app.errors import BadInput, Conflict, NotFound
from app.recall import rules, service
from app.recall.models import (
    RecallCampaign,
    RecallCap,
    RecallEvent,
    RecallOptOut,
    RecallSend,
    RecallSettings,
)
from app.webhooks import outbox
from app.webhooks.rules import coupon_data

SEND_BATCH = 1000
SENDS = table_of(RecallSend)


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
    """The buyer wants no more recalls from this shop (idempotent; webhooks hear it once)."""
    added = await uow.session.execute(
        insert_ignore(
            uow.dialect,
            RecallOptOut,
            ["shop_id", "buyer_id"],
            {"shop_id": shop_id, "buyer_id": buyer_id, "at": now},
        )
    )
    if rowcount(added) == 1:
        data = {"buyer_id": buyer_id, "opted_out_at": now.isoformat()}
        await outbox.record(
            uow, shop_id, "recall.opted_out", data, now=now, about=f"buyer:{buyer_id}"
        )


async def claim_coupon(
    uow: UnitOfWork, shop_id: str, buyer_id: str, coupon_id: str, now: datetime
) -> RecallSend:
    """The buyer takes the coupon of a recall card; claiming again changes nothing."""
    s = uow.session
    taken = await s.execute(
        update(RecallSend)
        .where(
            col(RecallSend.id) == coupon_id,
            col(RecallSend.shop_id) == shop_id,
            col(RecallSend.buyer_id) == buyer_id,
            col(RecallSend.status) == "sent",
            col(RecallSend.claimed_at).is_(None),
        )
        .values(claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    send = (
        await s.execute(
            select(RecallSend)
            .where(col(RecallSend.id) == coupon_id)
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
    if rowcount(taken) == 1:
        data = {
            "coupon_id": send.id,
            "source": "recall",
            "campaign_id": send.campaign_id,
            "buyer_id": buyer_id,
            "claimed_at": now.isoformat(),
        }
        await outbox.record(
            uow, shop_id, "coupon.claimed", data, now=now, about=f"coupon:{send.id}"
        )
    return send


async def set_window(
    uow: UnitOfWork, shop_id: str, start_min: int, end_min: int, now: datetime
) -> None:
    """The shop's sending window, minutes after local midnight (0..1440: all day)."""
    if not rules.valid_window(start_min, end_min):
        raise BadInput("The window needs 0 <= start < end <= 1440.", code="invalid_window")
    ins = dialect_insert(uow.dialect, RecallSettings).values(
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
            .where(col(RecallCampaign.id) == campaign_id)
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


def _random_id_sql(uow: UnitOfWork) -> Any:
    """An id like `new_id()` (24 random hex digits), made by the database for set-based inserts."""
    if uow.is_postgres:
        return func.substr(func.md5(cast(func.gen_random_uuid(), String)), 1, 24)
    return func.lower(func.hex(func.randomblob(12)))


async def start_campaign(uow: UnitOfWork, campaign_id: str, now: datetime) -> bool:
    """Scheduled → running, snapshotting its audience as `pending` sends, in one transaction.

    The snapshot is one INSERT ... SELECT of the preview's own query (`service.audience_sql`),
    so no buyer passes through Python. Only one worker wins the conditional UPDATE; a crash
    before commit leaves the campaign scheduled.
    """
    s = uow.session
    won = await s.execute(
        update(RecallCampaign)
        .where(
            col(RecallCampaign.id) == campaign_id,
            col(RecallCampaign.status) == "scheduled",
            col(RecallCampaign.send_at) <= now,
        )
        .values(status="running", started_at=now)
        .execution_options(synchronize_session=False)
    )
    if rowcount(won) != 1:
        return False
    c = await _campaign_for_update(uow, campaign_id)
    found = service.audience_sql(c.shop_id, c.min_intent, now, uow.dialect).subquery("a")
    snapshot = await s.execute(
        insert(SENDS).from_select(
            ["id", "shop_id", "campaign_id", "buyer_id", "score", "status"],
            select(
                _random_id_sql(uow),
                literal(c.shop_id, String),
                literal(c.id, String),
                found.c.buyer_id,
                found.c.score,
                literal("pending", String),
            ).where(found.c.reason.is_(None)),
        )
    )
    c.total = rowcount(snapshot)
    await s.flush()
    return True


async def claim_recall_slots(
    uow: UnitOfWork, shop_id: str, campaign_id: str, buyers: Select[Any], now: datetime
) -> set[str]:
    """Take the 7-day recall slot of each buyer `buyers` (a one-column SELECT, in buyer
    order) names who is free; returns those taken.

    INSERT ... SELECT ... ON CONFLICT DO UPDATE ... WHERE last_at <= now - 7 days: a row is
    written (and returned) only for a buyer never recalled or last recalled 7+ days ago. A
    concurrent claimer of the same buyer waits for this transaction and then sees its row.
    Buyers are taken in a fixed (sorted) order so concurrent batches never deadlock.
    """
    table = table_of(RecallCap)
    rows = buyers.subquery("b")
    ins = dialect_insert(uow.dialect, RecallCap).from_select(
        ["shop_id", "buyer_id", "last_at", "campaign_id"],
        select(
            literal(shop_id, String),
            rows.c.buyer_id,
            literal(now, UTCDateTime()),
            literal(campaign_id, String),
        )
        # WHERE: SQLite reads an ON CONFLICT after a bare FROM as a join's ON.
        .where(true())
        .order_by(rows.c.buyer_id),
    )
    claim = ins.on_conflict_do_update(
        index_elements=["shop_id", "buyer_id"],
        set_={"last_at": ins.excluded.last_at, "campaign_id": ins.excluded.campaign_id},
        where=table.c.last_at <= rules.cap_cutoff(now),
    ).returning(table.c.buyer_id)
    return set((await uow.session.execute(claim)).scalars())


async def send_batch(
    uow: UnitOfWork, campaign_id: str, now: datetime, size: int = SEND_BATCH
) -> int | None:
    """Send the next `size` pending buyers of a running campaign; how many were handled,
    or None when the campaign is not running (cancelled, finished, not started).

    The campaign row is locked first, so workers running the same campaign take turns
    batch by batch; a pending row becomes `sent`, `capped`, `opted_out` or `purchased` in
    the same transaction as its cap claim and card, so a crash mid-batch leaves the whole
    batch pending. The audience was snapshotted at the start; what may have changed since
    is checked again here: a buyer now known to be a minor, an opt-out, an order after the last consultation, and the cap
    (which only the claim decides).
    """
    s = uow.session
    c = await _campaign_for_update(uow, campaign_id)
    if c.status != "running":
        return None
    batch = (
        await s.execute(
            select(SENDS.c.id, SENDS.c.buyer_id)
            .where(SENDS.c.campaign_id == c.id, SENDS.c.status == "pending")
            .order_by(SENDS.c.buyer_id)
            .limit(size)
        )
    ).all()
    if not batch:
        c.status, c.finished_at = "completed", now
        await s.flush()
        return 0
    # The batch as a condition: pending rows are taken in buyer order, and while this
    # transaction holds the campaign row nobody else changes them.
    in_batch = and_(
        SENDS.c.campaign_id == c.id,
        SENDS.c.status == "pending",
        SENDS.c.buyer_id <= batch[-1].buyer_id,
    )
    left_out = {
        # Said to be under 18 since the snapshot: never a coupon card.
        "minor": service.minor(c.shop_id, SENDS.c.buyer_id),
        "opted_out": service.opted_out(c.shop_id, SENDS.c.buyer_id),
        "purchased": and_(
            # Most buyers have no order at all: one index probe, before the full rule's two.
            service.ordered_after(c.shop_id, SENDS.c.buyer_id, None),
            service.ordered_after(
                c.shop_id, SENDS.c.buyer_id, service.last_consultation(c.shop_id, SENDS.c.buyer_id)
            ),
        ),
    }
    await s.execute(
        update(SENDS)
        .where(in_batch, or_(*left_out.values()))
        .values(status=case(*((cond, literal(why, String)) for why, cond in left_out.items())))
    )
    taken = await claim_recall_slots(
        uow, c.shop_id, c.id, select(SENDS.c.buyer_id).where(in_batch), now
    )
    sent = await _post_cards(uow, c, in_batch, [(i, b) for i, b in batch if b in taken], now)
    await s.execute(update(SENDS).where(in_batch).values(status="capped"))
    c.sent += sent
    c.skipped += len(batch) - sent
    await s.flush()
    return len(batch)


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


def _issued(c: RecallCampaign, send_id: str, buyer_id: str, now: datetime) -> dict[str, Any]:
    return coupon_data(
        coupon_id=send_id,
        source="recall",
        buyer_id=buyer_id,
        title=c.coupon.get("title", ""),
        amount_cents=c.coupon.get("amount_cents", 0),
        min_spend_cents=c.coupon.get("min_spend_cents", 0),
        issued_at=now,
        campaign_id=c.id,
        ends_at=c.ends_at.isoformat(),
    )


async def _post_cards(
    uow: UnitOfWork,
    c: RecallCampaign,
    in_batch: ColumnElement[bool],
    sends: list[tuple[str, str]],
    now: datetime,
) -> int:
    """Post the coupon card of each (send id, buyer) and mark the send `sent` with where the
    card landed; returns how many.

    Most of an audience is not chatting, so their cards become notice conversations
    (`notices.post`): the sends are marked by one UPDATE that also picks the ids of those
    notice conversations and messages (the card is a notice's one message, seq 1), and all
    cards are then posted by one call. The few that landed in a buyer's open conversation
    instead (numbered like any message) get their send row corrected one by one.
    """
    if not sends:
        return 0
    s = uow.session
    marked = await s.execute(
        update(SENDS)
        .where(in_batch, SENDS.c.buyer_id.in_([b for _, b in sends]))
        .values(
            status="sent",
            sent_at=now,
            conversation_id=_random_id_sql(uow),
            message_id=_random_id_sql(uow),
            seq=1,
        )
        .returning(SENDS.c.id, SENDS.c.buyer_id, SENDS.c.conversation_id, SENDS.c.message_id)
    )
    cards = [
        (
            send_id,
            notices.Notice(
                b,
                "coupon_card",
                *card_for(c, send_id),
                notice_conversation_id=conv_id,
                notice_message_id=msg_id,
            ),
        )
        for send_id, b, conv_id, msg_id in marked
    ]
    posted = await notices.post(uow, c.shop_id, [n for _, n in cards], now=now)
    await outbox.record_many(
        uow,
        c.shop_id,
        [
            outbox.Event("coupon.issued", _issued(c, send_id, n.buyer_id, now), f"coupon:{send_id}")
            for send_id, n in cards
        ],
        now=now,
    )
    for (send_id, _), where in zip(cards, posted, strict=True):
        if where.in_notice:
            continue
        await s.execute(
            update(SENDS)
            .where(SENDS.c.id == send_id)
            .values(
                conversation_id=where.conversation_id, message_id=where.message_id, seq=where.seq
            )
        )
    return len(sends)
