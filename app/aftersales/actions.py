"""After-sales state changes: a buyer's request, an agent's decision, the storefront's
completion, the shop's settings and product prices.

The room an order has left is shared with payouts (`orders.paid_out_cents`): a request
with an amount takes it at once by the conditional UPDATE payouts use
(`take_payout_room`), a declined one gives it back. So requests and payouts together
never pass the order's amount, however many race on however many nodes.

An approved 价保 (price protection) claim is paid by Homing from the shop's payout fund,
in the approving transaction, as a `price_protection` payout (`app.payouts.claims`),
which does not take the order's room again.

`submit_request` and `decide` take the Database because a refusal is written to the
after-sales ledger although the refused transaction rolls back (as payouts do).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlmodel import col

from app.aftersales import rules, service
from app.aftersales.models import AfterSale, AfterSaleLedgerEntry, AfterSaleSettings, ProductPrice
from app.aftersales.schemas import aftersale_public, card_payload, event_data
from app.care import actions as care_actions
from app.chat import notices
from app.chat.models import Conversation, Upload
from app.chat.service import agent_may_see
from app.db import Database, UnitOfWork, insert_ignore, rowcount
from app.errors import BadInput, Conflict, DomainError, Forbidden, NotFound
from app.orders import actions as order_actions
from app.orders.models import Order
from app.payouts import claims as payout_claims
from app.payouts import ledger as payout_ledger
from app.payouts import rules as payout_rules
from app.payouts.authority import acting_agent, authorise
from app.payouts.fund import order_cap_exceeded
from app.payouts.requests import has_photo, is_elder
from app.realtime.topics import agent_topic, shop_staff_topic
from app.shops.policy import Permission, check
from app.webhooks import outbox

# The card's words in Chinese for old clients; readers' clients render from the payload.
TYPE_LABELS = {
    "refund_only": "仅退款",
    "return_refund": "退货退款",
    "exchange": "换货",
    "damaged": "坏了包退",
    "price_protection": "价保",
}
STATUS_LABELS = {
    "pending": "待处理",
    "approved": "已同意",
    "declined": "已拒绝",
    "completed": "已完成",
}


@dataclass(frozen=True)
class AfterSaleRequest:
    """What a buyer asks for (POST /aftersales)."""

    conversation_id: str
    order_id: str
    type: str
    amount_cents: int
    reason: str
    upload_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Refusal:
    """Who was refused what, for the after-sales ledger."""

    shop_id: str
    actor_kind: str
    actor_id: str
    now: datetime
    aftersale_id: str | None = None
    order_id: str | None = None
    type: str | None = None
    amount_cents: int = 0
    note: str | None = None


async def record_refusal(uow: UnitOfWork, refusal: Refusal, error: DomainError) -> None:
    uow.session.add(
        AfterSaleLedgerEntry(
            shop_id=refusal.shop_id,
            at=refusal.now,
            entry="refused",
            aftersale_id=refusal.aftersale_id,
            actor_kind=refusal.actor_kind,
            actor_id=refusal.actor_id,
            order_id=refusal.order_id,
            type=refusal.type,
            amount_cents=refusal.amount_cents,
            code=error.code,
            note=f"{refusal.note + ': ' if refusal.note else ''}{error.message}",
        )
    )
    await _record_payment_refusal(uow, refusal, error)


async def _record_payment_refusal(uow: UnitOfWork, refusal: Refusal, error: DomainError) -> None:
    """A 价保 claim whose payment was refused (the fund, or the approver's authority) is in
    the payout ledger too: the platform was refused (automatic) or the approving agent."""
    if error.code not in payout_claims.PAYMENT_REFUSALS:
        return
    a = None
    if refusal.aftersale_id is not None:
        a = await service.get_aftersale(uow.session, refusal.shop_id, refusal.aftersale_id)
    if (a.type if a is not None else refusal.type) != "price_protection":
        return
    fields = {
        "order_id": a.order_id if a is not None else refusal.order_id,
        "conversation_id": a.conversation_id if a is not None else None,
        "buyer_id": a.buyer_id if a is not None else refusal.actor_id,
        "amount_cents": a.amount_cents if a is not None else refusal.amount_cents,
        "reason": "price_protection",
    }
    by_agent = refusal.actor_kind == "agent"
    await payout_ledger.record_refusal(
        uow,
        payout_ledger.Refusal(
            shop_id=refusal.shop_id,
            actor_id=refusal.actor_id if by_agent else None,
            now=refusal.now,
            request_fields={**fields, "agent_id": refusal.actor_id if by_agent else None},
            note=f"aftersale {refusal.aftersale_id}" if refusal.aftersale_id else "aftersale",
        ),
        error,
    )


def _record(
    uow: UnitOfWork,
    entry: str,
    a: AfterSale,
    *,
    actor_kind: str,
    actor_id: str | None,
    at: datetime,
    note: str | None = None,
) -> None:
    uow.session.add(
        AfterSaleLedgerEntry(
            shop_id=a.shop_id,
            at=at,
            entry=entry,
            aftersale_id=a.id,
            actor_kind=actor_kind,
            actor_id=actor_id,
            order_id=a.order_id,
            buyer_id=a.buyer_id,
            type=a.type,
            amount_cents=a.amount_cents,
            note=note,
        )
    )


async def _announce(uow: UnitOfWork, a: AfterSale) -> None:
    """The conversation's agent and the shop's supervisors hear of every change."""
    conv = await uow.session.get(Conversation, a.conversation_id)
    topics = [shop_staff_topic(a.shop_id)]
    if conv is not None and conv.agent_id:
        topics.append(agent_topic(conv.agent_id))
    uow.emit_many(topics, {"type": "aftersale.updated", "aftersale": aftersale_public(a)})


async def _post_card(uow: UnitOfWork, a: AfterSale, now: datetime) -> None:
    label, status = TYPE_LABELS[a.type], STATUS_LABELS[a.status]
    body = f"售后申请({label}){payout_rules.yuan(a.amount_cents)}:{status}"
    card = notices.Notice(
        a.buyer_id, "aftersale_card", body, card_payload(a), conversation_id=a.conversation_id
    )
    await notices.post(uow, a.shop_id, [card], now=now)


# ---- the buyer's request ------------------------------------------------------------------


async def submit_request(
    db: Database, *, shop_id: str, buyer_id: str, req: AfterSaleRequest, now: datetime
) -> AfterSale:
    refusal = Refusal(
        shop_id=shop_id,
        actor_kind="buyer",
        actor_id=buyer_id,
        now=now,
        order_id=req.order_id[:128],
        type=req.type[:24],
        amount_cents=req.amount_cents,
    )
    return await payout_ledger.run_or_record_refusal(
        db,
        request_aftersale,
        refusal,
        recorder=record_refusal,
        shop_id=shop_id,
        buyer_id=buyer_id,
        req=req,
        now=now,
    )


async def request_aftersale(
    uow: UnitOfWork, *, shop_id: str, buyer_id: str, req: AfterSaleRequest, now: datetime
) -> AfterSale:
    """Record a buyer's request, holding its amount of the order's room; approve it at
    once under 极速退款 or the shop's agent-free 价保 authority; post its card."""
    rules.check_request(req.type, req.amount_cents, req.reason, len(req.upload_ids))
    s = uow.session
    conv = await s.get(Conversation, req.conversation_id)
    if conv is None or conv.shop_id != shop_id or conv.buyer_id != buyer_id:
        raise NotFound("No such conversation.")
    order = await s.get(Order, (shop_id, req.order_id))
    if order is None or order.buyer_id != buyer_id:
        raise NotFound(f"No order {req.order_id!r} of yours in this shop.")
    if order.status == "refunded":
        raise Conflict("That order has been refunded already.", code="order_refunded")
    await _check_uploads(uow, shop_id, buyer_id, req.upload_ids)
    if req.type == "damaged":
        if not rules.damage_window_open(order.delivered_at, now):
            raise Conflict(
                "坏了包退 must be asked for within 24 hours of delivery.",
                code="damage_window_closed",
            )
        if (
            payout_rules.needs_evidence("damaged", elder=await is_elder(uow, conv))
            and not req.upload_ids
            and not await has_photo(uow, conv)
        ):
            raise BadInput(
                "A claim that goods arrived damaged needs a photo.", code="evidence_required"
            )
    settings = await service.settings_of(s, shop_id)
    if not await order_actions.take_payout_room(uow, shop_id, order.order_id, req.amount_cents):
        await s.refresh(order)
        raise order_cap_exceeded(order.amount_cents - order.paid_out_cents)
    if req.type == "price_protection":
        # After taking the room: the order's row is locked, so concurrent 价保 requests on
        # it are checked one after another, each seeing the ones before.
        owed = await service.price_drop(s, shop_id, order, now)
        if req.amount_cents > owed:
            raise BadInput(
                f"The price drop on this order is worth {payout_rules.yuan(owed)} now.",
                code="price_protection_exceeded",
            )

    history = await service.buyer_history(s, shop_id, buyer_id, now)
    auto = rules.fast_refund(
        req.type, req.amount_cents, settings.fast_refund_max_cents, history
    ) or (
        req.type == "price_protection"
        and rules.auto_price_protection(req.amount_cents, settings.price_protection_auto_cents)
    )
    if req.type == "price_protection" and not auto:
        await payout_claims.check_fund_covers(uow, shop_id, req.amount_cents)
    a = AfterSale(
        shop_id=shop_id,
        conversation_id=conv.id,
        order_id=order.order_id,
        buyer_id=buyer_id,
        type=req.type,
        amount_cents=req.amount_cents,
        reason=req.reason.strip(),
        upload_ids=list(req.upload_ids),
        status="approved" if auto else "pending",
        auto=auto,
        created_at=now,
        decided_at=now if auto else None,
    )
    s.add(a)
    await s.flush()
    _record(uow, "requested", a, actor_kind="buyer", actor_id=buyer_id, at=now)
    await outbox.record(uow, shop_id, "aftersale.requested", event_data(a), now=now)
    if auto:
        why = "fast_refund" if req.type == "refund_only" else "price_protection_auto"
        _record(uow, "approved", a, actor_kind="platform", actor_id=None, at=now, note=why)
        await outbox.record(uow, shop_id, "aftersale.decided", event_data(a), now=now)
    await _post_card(uow, a, now)
    if auto and a.type == "price_protection":
        # Paid by the platform on the shop's agent-free authority: no agent's daily total.
        await payout_claims.pay_claim(uow, _claim(a), approved_by=None, now=now)
    await _announce(uow, a)
    return a


def _claim(a: AfterSale) -> payout_claims.Claim:
    return payout_claims.Claim(
        id=a.id,
        shop_id=a.shop_id,
        conversation_id=a.conversation_id,
        order_id=a.order_id,
        buyer_id=a.buyer_id,
        amount_cents=a.amount_cents,
    )


async def _check_uploads(
    uow: UnitOfWork, shop_id: str, buyer_id: str, upload_ids: tuple[str, ...]
) -> None:
    """Photos must be this buyer's own uploads in this shop."""
    if not upload_ids:
        return
    mine = await uow.session.scalar(
        select(func.count()).where(
            col(Upload.id).in_(set(upload_ids)),
            col(Upload.shop_id) == shop_id,
            col(Upload.owner_kind) == "buyer",
            col(Upload.owner_id) == buyer_id,
        )
    )
    if mine != len(set(upload_ids)):
        raise NotFound("No such upload.")


# ---- an agent's decision ------------------------------------------------------------------


async def decide(
    db: Database,
    *,
    agent_id: str,
    shop_id: str,
    aftersale_id: str,
    approve: bool,
    note: str | None,
    now: datetime,
) -> AfterSale:
    refusal = Refusal(
        shop_id=shop_id,
        actor_kind="agent",
        actor_id=agent_id,
        now=now,
        aftersale_id=aftersale_id[:32],
        note="approve" if approve else "decline",
    )
    return await payout_ledger.run_or_record_refusal(
        db,
        decide_aftersale,
        refusal,
        recorder=record_refusal,
        agent_id=agent_id,
        aftersale_id=aftersale_id,
        approve=approve,
        note=note,
        now=now,
    )


async def decide_aftersale(
    uow: UnitOfWork,
    *,
    agent_id: str,
    aftersale_id: str,
    approve: bool,
    note: str | None,
    now: datetime,
) -> AfterSale:
    """Approve or decline a pending request, once: the agent serving the conversation or a
    supervisor, within the same authority as payouts (their per-payout limit and daily
    total, re-read now). A declined request gives its room back to the order."""
    agent = await acting_agent(uow, agent_id)
    s = uow.session
    a = await service.get_aftersale(s, agent.shop_id, aftersale_id)
    if a is None:
        raise NotFound("No such after-sales request.")
    conv = await s.get(Conversation, a.conversation_id)
    if conv is None or not agent_may_see(agent, conv):
        raise Forbidden(
            "Only the agent serving this conversation, or a supervisor, may decide on it."
        )
    status = "approved" if approve else "declined"
    claimed = await s.execute(
        update(AfterSale)
        .where(col(AfterSale.id) == a.id, col(AfterSale.status) == "pending")
        .values(status=status, decided_by=agent.id, decision_note=note, decided_at=now)
        .execution_options(synchronize_session=False)
    )
    await s.refresh(a)
    if rowcount(claimed) != 1:
        raise Conflict(f"This request is {a.status} already.", code="not_pending")
    if approve:
        await authorise(uow, agent, a.amount_cents, now)
    else:
        await order_actions.release_payout_room(uow, a.shop_id, a.order_id, a.amount_cents)
    _record(uow, status, a, actor_kind="agent", actor_id=agent.id, at=now, note=note)
    await outbox.record(uow, a.shop_id, "aftersale.decided", event_data(a), now=now)
    await _post_card(uow, a, now)
    if approve and a.type == "price_protection":
        # On the agent's own authority, reserved above by `authorise`.
        await payout_claims.pay_claim(uow, _claim(a), approved_by=agent, now=now)
    await _announce(uow, a)
    return a


# ---- the storefront's completion -----------------------------------------------------------


async def complete(uow: UnitOfWork, *, shop_id: str, aftersale_id: str, now: datetime) -> AfterSale:
    """The storefront has refunded, taken the return or shipped the exchange (once).
    A completed refund gets the shop's apology card if that care rule is on."""
    s = uow.session
    a = await service.get_aftersale(s, shop_id, aftersale_id)
    if a is None:
        raise NotFound("No such after-sales request.")
    done = await s.execute(
        update(AfterSale)
        .where(col(AfterSale.id) == a.id, col(AfterSale.status) == "approved")
        .values(status="completed", completed_at=now)
        .execution_options(synchronize_session=False)
    )
    await s.refresh(a)
    if rowcount(done) != 1:
        raise Conflict(
            f"Only an approved request can be completed; this one is {a.status}.",
            code="not_approved",
        )
    _record(uow, "completed", a, actor_kind="storefront", actor_id=None, at=now)
    await _post_card(uow, a, now)
    if a.type != "exchange":
        await care_actions.apologise_for_refund(
            uow,
            shop_id=shop_id,
            order_id=a.order_id,
            buyer_id=a.buyer_id,
            conversation_id=a.conversation_id,
            now=now,
        )
    await _announce(uow, a)
    return a


# ---- the shop's settings and product prices ------------------------------------------------


async def save_settings(
    uow: UnitOfWork, *, admin_id: str, values: dict[str, int], now: datetime
) -> AfterSaleSettings:
    admin = await acting_agent(uow, admin_id)
    check(admin.role, Permission.MANAGE_CARE)
    for name, v in values.items():
        if v < 0 or v > payout_rules.MAX_AMOUNT_CENTS:
            raise BadInput(f"{name} must be 0 or more.", code="invalid_setting")
    if not 1 <= values.get("price_protection_days", 30) <= 365:
        raise BadInput("price_protection_days must be 1 to 365.", code="invalid_setting")
    s = uow.session
    found = await s.get(AfterSaleSettings, admin.shop_id)
    if found is None:
        found = await service.settings_of(s, admin.shop_id)
        s.add(found)
    for name, v in values.items():
        setattr(found, name, v)
    found.updated_at = now
    return found


async def set_price(
    uow: UnitOfWork, *, shop_id: str, product_id: str, price_cents: int, now: datetime
) -> ProductPrice:
    """The storefront's current price of a product (价保 compares what buyers paid to it)."""
    values: dict[str, Any] = {"price_cents": price_cents, "changed_at": now}
    s = uow.session
    await s.execute(
        insert_ignore(
            uow.dialect,
            ProductPrice,
            ["shop_id", "product_id"],
            {"shop_id": shop_id, "product_id": product_id, **values},
        )
    )
    await s.execute(
        update(ProductPrice)
        .where(col(ProductPrice.shop_id) == shop_id, col(ProductPrice.product_id) == product_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    found = await s.get(ProductPrice, (shop_id, product_id), populate_existing=True)
    assert found is not None
    return found
