"""Payout state changes: request, approve, reject, top up the fund, late-shipment coupons.

Functions taking a UnitOfWork run inside one transaction and leave committing to the
caller; `submit_payout` and `decide_payout` take the Database because a refusal must
be written to the ledger although the refused transaction rolls back.

Limits hold under concurrency because every total is a counter changed by a
conditional UPDATE (`... SET total = total + x WHERE total + x <= limit`), which the
database evaluates against the latest committed row while holding its lock. Within one
transaction the rows are always taken in the same order (payout, daily total, order,
fund), so two payouts never wait on each other in a cycle.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import Insert
from sqlmodel import SQLModel, col

from app.chat import actions as chat_actions
from app.chat import service as chat_service
from app.chat.models import Conversation, Message
from app.chat.schemas import message_public
from app.chat.service import agent_may_see
from app.db import Database, UnitOfWork, new_id, rowcount, table_of
from app.errors import BadInput, Conflict, ConversationClosed, DomainError, Forbidden, NotFound
from app.orders import actions as order_actions
from app.orders import service as order_service
from app.orders.models import Order
from app.payouts import rules
from app.payouts import service as payout_service
from app.payouts.models import (
    LateShipmentCoupon,
    Payout,
    PayoutDailyTotal,
    PayoutFund,
    PayoutLedgerEntry,
)
from app.payouts.schemas import payout_public
from app.realtime.topics import agent_topic, buyer_topic, shop_staff_topic
from app.routing.rules import BuyerFacts, choose_queue
from app.shops.models import Agent, Buyer, Shop
from app.shops.roles import STAFF_ROLES

log = logging.getLogger(__name__)

APPROVER_ROLES = STAFF_ROLES
MAX_KEY_CHARS = 200


@dataclass(frozen=True)
class PayoutRequest:
    """What an agent asks to pay (POST /payouts); `order_id` None: the conversation's order card."""

    conversation_id: str
    order_id: str | None
    amount_cents: int
    reason: str
    note: str | None = None


@dataclass
class Outcome:
    payout: Payout
    created: bool  # False: the idempotency key had been used for this very request


# --- requests ------------------------------------------------------------------------


async def submit_payout(
    db: Database,
    *,
    agent_id: str,
    shop_id: str,
    idempotency_key: str | None,
    req: PayoutRequest,
    now: datetime,
) -> Outcome:
    """Request a payout in one transaction; a refusal is then written to the ledger in another."""
    try:
        outcome: Outcome = await db.run(
            request_payout, agent_id=agent_id, idempotency_key=idempotency_key, req=req, now=now
        )
        return outcome
    except DomainError as exc:
        await db.run(
            record_refusal,
            shop_id=shop_id,
            actor_id=agent_id,
            error=exc,
            now=now,
            agent_id=agent_id,
            idempotency_key=idempotency_key,
            req=req,
        )
        raise


async def request_payout(
    uow: UnitOfWork,
    *,
    agent_id: str,
    idempotency_key: str | None,
    req: PayoutRequest,
    now: datetime,
) -> Outcome:
    """Pay at once within the agent's authority; otherwise leave it for a supervisor.

    The payout row is inserted before any counter is touched: it claims the idempotency
    key, so of concurrent requests with one key exactly one goes on (the others wait on
    the unique index and then answer with the winner's payout).
    """
    s = uow.session
    agent = await _agent(uow, agent_id)
    key = _checked_key(idempotency_key)
    fingerprint = rules.request_fingerprint(
        agent_id=agent.id,
        conversation_id=req.conversation_id,
        order_id=req.order_id,
        amount_cents=req.amount_cents,
        reason=req.reason,
        note=req.note,
    )
    existing = await payout_service.payout_by_key(s, agent.shop_id, key)
    if existing is not None:
        return _replay(uow, existing, agent, fingerprint, now)

    rules.check_amount(req.amount_cents)
    rules.check_reason(req.reason)
    conv = await _conversation_for_payout(uow, agent, req.conversation_id)
    order = await _order_for_payout(uow, conv, req.order_id)
    if rules.needs_evidence(req.reason, elder=await _is_elder(uow, conv)) and not await _has_photo(
        uow, conv
    ):
        raise BadInput(
            "A claim that goods arrived damaged needs a photo from the buyer in this conversation.",
            code="evidence_required",
        )

    payout = Payout(
        shop_id=agent.shop_id,
        idempotency_key=key,
        request_hash=fingerprint,
        conversation_id=conv.id,
        order_id=order.order_id,
        buyer_id=conv.buyer_id,
        agent_id=agent.id,
        amount_cents=req.amount_cents,
        reason=req.reason,
        note=req.note,
        status="pending_approval",
        created_at=now,
    )
    try:
        async with s.begin_nested():
            s.add(payout)
            await s.flush()
    except IntegrityError:
        existing = await payout_service.payout_by_key(s, agent.shop_id, key)
        if existing is None:
            raise
        return _replay(uow, existing, agent, fingerprint, now)
    _ledger(uow, "requested", payout, actor_id=agent.id, at=now)

    authority = rules.PayoutAuthority(agent.payout_limit_cents, agent.payout_daily_cents)
    if authority.within_payout_limit(payout.amount_cents) and await _reserve_daily(
        uow, agent, payout.amount_cents, now
    ):
        payout.status, payout.decided_at, payout.paid_at = "paid", now, now
        await _pay(uow, payout, authorised_by=agent, now=now)
    else:
        # Not counted against anything until approved; but refuse now what could never be paid.
        await _check_payable_later(uow, payout)
        _ledger(uow, "pending_approval", payout, actor_id=agent.id, at=now)
        _announce(uow, payout)
    return Outcome(payout, True)


def _replay(
    uow: UnitOfWork, existing: Payout, agent: Agent, fingerprint: str, now: datetime
) -> Outcome:
    if existing.request_hash != fingerprint:
        raise BadInput(
            "This Idempotency-Key was already used for a different payout request.",
            code="idempotency_mismatch",
        )
    _ledger(uow, "replayed", existing, actor_id=agent.id, at=now)
    return Outcome(existing, False)


def _checked_key(key: str | None) -> str:
    key = (key or "").strip()
    if not key:
        raise BadInput(
            "The Idempotency-Key header is required.", code="idempotency_key_required", status=400
        )
    if len(key) > MAX_KEY_CHARS:
        raise BadInput(
            f"An Idempotency-Key is at most {MAX_KEY_CHARS} characters.",
            code="bad_request",
            status=400,
        )
    return key


async def _agent(uow: UnitOfWork, agent_id: str) -> Agent:
    # Re-read in this transaction: limits and role as they are now, not at login.
    agent = await uow.session.get(Agent, agent_id, populate_existing=True)
    if agent is None:
        raise NotFound("No such agent.")
    return agent


async def _conversation_for_payout(
    uow: UnitOfWork, agent: Agent, conversation_id: str
) -> Conversation:
    conv = await uow.session.get(Conversation, conversation_id)
    # Another shop's id gets the same answer as a missing one: its existence is not ours to confirm.
    if conv is None or conv.shop_id != agent.shop_id:
        raise NotFound("No such conversation.")
    if not agent_may_see(agent, conv):
        raise Forbidden("Only the agent serving this conversation, or a supervisor, may pay in it.")
    return conv


async def _order_for_payout(uow: UnitOfWork, conv: Conversation, order_id: str | None) -> Order:
    s = uow.session
    if order_id is None:
        linked = await order_service.linked_order_ids(s, conv)
        if not linked:
            raise BadInput(
                "Name the order: this conversation has no order card.", code="order_required"
            )
        order_id = linked[0]
    order = await order_service.get_order(s, conv.shop_id, order_id)
    if order is None:
        raise NotFound(f"No order {order_id!r} in this shop.")
    if order.buyer_id != conv.buyer_id:
        raise BadInput("That order is not this conversation's buyer's.", code="order_mismatch")
    if order.status == "refunded":
        raise Conflict(
            "That order has been refunded; there is nothing left to compensate.",
            code="order_refunded",
        )
    return order


async def _is_elder(uow: UnitOfWork, conv: Conversation) -> bool:
    if conv.elder:
        return True
    buyer = await uow.session.get(Buyer, (conv.shop_id, conv.buyer_id))
    return buyer is not None and BuyerFacts(age=buyer.age, elder_mode=buyer.elder_mode).is_elder


async def _has_photo(uow: UnitOfWork, conv: Conversation) -> bool:
    row = await uow.session.execute(
        select(col(Message.id))
        .where(
            col(Message.conversation_id) == conv.id,
            col(Message.kind) == "image",
            col(Message.sender) == "buyer",
        )
        .limit(1)
    )
    return row.first() is not None


async def _check_payable_later(uow: UnitOfWork, payout: Payout) -> None:
    """A pending payout reserves nothing; but one the order or the fund could not cover even
    now is refused rather than left for a supervisor to find unpayable."""
    s = uow.session
    row = (
        await s.execute(
            select(col(Order.amount_cents), col(Order.paid_out_cents)).where(
                col(Order.shop_id) == payout.shop_id, col(Order.order_id) == payout.order_id
            )
        )
    ).one()
    if row.paid_out_cents + payout.amount_cents > row.amount_cents:
        raise _order_cap_exceeded(row.amount_cents - row.paid_out_cents)
    if await payout_service.fund_balance(s, payout.shop_id) < payout.amount_cents:
        raise _insufficient_funds()


# --- approvals -----------------------------------------------------------------------


async def decide_payout(
    db: Database,
    *,
    approver_id: str,
    shop_id: str,
    payout_id: str,
    approve: bool,
    note: str | None,
    now: datetime,
) -> Payout:
    """Approve or reject in one transaction; a refused decision is then written to the ledger."""
    decide = approve_payout if approve else reject_payout
    try:
        payout: Payout = await db.run(
            decide, approver_id=approver_id, payout_id=payout_id, note=note, now=now
        )
        return payout
    except DomainError as exc:
        await db.run(
            record_refusal,
            shop_id=shop_id,
            actor_id=approver_id,
            error=exc,
            now=now,
            payout_id=payout_id,
            entry_note="approve" if approve else "reject",
        )
        raise


async def approve_payout(
    uow: UnitOfWork, *, approver_id: str, payout_id: str, note: str | None, now: datetime
) -> Payout:
    """Pay a pending payout on the approver's own authority, if it still fits everything.

    Checked again now, as if the approver had asked: their per-payout limit, their daily
    total, the order's cap and the fund. Any of them failing is a 409 and the payout
    stays pending (for someone with more authority, or after a top-up).
    """
    approver = await _agent(uow, approver_id)
    payout = await _claim_pending(uow, approver, payout_id, "paid", now)
    authority = rules.PayoutAuthority(approver.payout_limit_cents, approver.payout_daily_cents)
    if not authority.within_payout_limit(payout.amount_cents):
        raise Conflict(
            f"{rules.yuan(payout.amount_cents)} is above your own per-payout limit of "
            f"{rules.yuan(approver.payout_limit_cents)}.",
            code="payout_limit_exceeded",
        )
    if not await _reserve_daily(uow, approver, payout.amount_cents, now):
        raise Conflict(
            f"Approving {rules.yuan(payout.amount_cents)} would pass your own daily limit of "
            f"{rules.yuan(approver.payout_daily_cents)}.",
            code="daily_limit_exceeded",
        )
    order = await order_service.get_order(uow.session, payout.shop_id, payout.order_id)
    if order is not None and order.status == "refunded":
        raise Conflict(
            "That order has been refunded since; there is nothing left to compensate.",
            code="order_refunded",
        )
    _ledger(
        uow, "approved", payout, actor_id=approver.id, approver_id=approver.id, at=now, note=note
    )
    await _pay(uow, payout, authorised_by=approver, now=now)
    return payout


async def reject_payout(
    uow: UnitOfWork, *, approver_id: str, payout_id: str, note: str | None, now: datetime
) -> Payout:
    approver = await _agent(uow, approver_id)
    payout = await _claim_pending(uow, approver, payout_id, "rejected", now)
    _ledger(
        uow, "rejected", payout, actor_id=approver.id, approver_id=approver.id, at=now, note=note
    )
    _announce(uow, payout)
    return payout


async def _claim_pending(
    uow: UnitOfWork, approver: Agent, payout_id: str, status: str, now: datetime
) -> Payout:
    """Move a pending payout to `status`, once: concurrent deciders wait on the row and the
    later ones find it no longer pending."""
    s = uow.session
    payout = await payout_service.get_payout(s, payout_id)
    if payout is None or payout.shop_id != approver.shop_id:
        raise NotFound("No such payout.")
    if approver.role not in APPROVER_ROLES:
        raise Forbidden("Only supervisors and admins approve or reject payouts.")
    if payout.agent_id == approver.id:
        raise Forbidden("Someone else must decide on your own payout request.")
    values: dict[str, Any] = {"status": status, "approved_by": approver.id, "decided_at": now}
    if status == "paid":
        values["paid_at"] = now
    result = await s.execute(
        update(Payout)
        .where(col(Payout.id) == payout_id, col(Payout.status) == "pending_approval")
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    await s.refresh(payout)
    if rowcount(result) != 1:
        raise Conflict(f"This payout is {payout.status} already.", code="not_pending")
    return payout


# --- paying --------------------------------------------------------------------------


async def _pay(uow: UnitOfWork, payout: Payout, *, authorised_by: Agent, now: datetime) -> None:
    """Take the amount from the order's room and the fund, record it, and tell the buyer.

    Precondition: the authoriser's limits have been taken (the daily total reserved).
    """
    if not await order_actions.take_payout_room(
        uow, payout.shop_id, payout.order_id, payout.amount_cents
    ):
        order = await order_service.get_order(uow.session, payout.shop_id, payout.order_id)
        room = (order.amount_cents - order.paid_out_cents) if order is not None else 0
        raise _order_cap_exceeded(room)
    if not await _take_from_fund(uow, payout.shop_id, payout.amount_cents, now):
        raise _insufficient_funds()
    approver_id = payout.approved_by
    _ledger(uow, "paid", payout, actor_id=authorised_by.id, approver_id=approver_id, at=now)
    label = rules.REASON_LABELS[payout.reason]
    await post_to_buyer(
        uow,
        shop_id=payout.shop_id,
        buyer_id=payout.buyer_id,
        conversation_id=payout.conversation_id,
        kind="compensation_card",
        body=f"已为您补偿 {rules.yuan(payout.amount_cents)}({label})",
        payload={
            "payout_id": payout.id,
            "amount_cents": payout.amount_cents,
            "reason": payout.reason,
        },
        now=now,
    )
    _announce(uow, payout)


async def _reserve_daily(uow: UnitOfWork, agent: Agent, amount_cents: int, now: datetime) -> bool:
    """Add to the agent's total for today (shop time) if it stays within their daily limit."""
    s = uow.session
    shop = await s.get(Shop, agent.shop_id)
    day = rules.shop_day(now, shop.timezone if shop else "UTC")
    await s.execute(
        _insert_ignore(
            uow,
            PayoutDailyTotal,
            ["agent_id", "day"],
            {"agent_id": agent.id, "day": day, "shop_id": agent.shop_id, "paid_cents": 0},
        )
    )
    # PayoutAuthority.fits_daily, evaluated by the database on the locked, latest row.
    result = await s.execute(
        update(PayoutDailyTotal)
        .where(
            col(PayoutDailyTotal.agent_id) == agent.id,
            col(PayoutDailyTotal.day) == day,
            col(PayoutDailyTotal.paid_cents) + amount_cents <= agent.payout_daily_cents,
        )
        .values(paid_cents=col(PayoutDailyTotal.paid_cents) + amount_cents)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


async def _take_from_fund(uow: UnitOfWork, shop_id: str, amount_cents: int, now: datetime) -> bool:
    result = await uow.session.execute(
        update(PayoutFund)
        .where(col(PayoutFund.shop_id) == shop_id, col(PayoutFund.balance_cents) >= amount_cents)
        .values(balance_cents=col(PayoutFund.balance_cents) - amount_cents, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


def _order_cap_exceeded(room_cents: int) -> Conflict:
    left = rules.yuan(max(room_cents, 0))
    return Conflict(
        f"Payouts on this order would pass its paid amount; at most {left} is left.",
        code="order_cap_exceeded",
    )


def _insufficient_funds() -> Conflict:
    return Conflict(
        "The shop's payout fund cannot cover this payout; ask the shop admin to top it up.",
        code="insufficient_funds",
    )


# --- the fund ------------------------------------------------------------------------


async def topup_fund(uow: UnitOfWork, *, admin_id: str, amount_cents: int, now: datetime) -> int:
    """Add to the shop's payout fund; returns the new balance."""
    admin = await _agent(uow, admin_id)
    if admin.role != "admin":
        raise Forbidden("Only the shop's admin may top up the payout fund.")
    rules.check_amount(amount_cents)
    s = uow.session
    await s.execute(
        _insert_ignore(
            uow,
            PayoutFund,
            ["shop_id"],
            {"shop_id": admin.shop_id, "balance_cents": 0, "updated_at": now},
        )
    )
    balance = (
        await s.execute(
            update(PayoutFund)
            .where(col(PayoutFund.shop_id) == admin.shop_id)
            .values(balance_cents=col(PayoutFund.balance_cents) + amount_cents, updated_at=now)
            .returning(col(PayoutFund.balance_cents))
            .execution_options(synchronize_session=False)
        )
    ).scalar_one()
    s.add(
        PayoutLedgerEntry(
            shop_id=admin.shop_id,
            at=now,
            entry="fund_topup",
            actor_kind="agent",
            actor_id=admin.id,
            amount_cents=amount_cents,
        )
    )
    uow.emit(
        shop_staff_topic(admin.shop_id), {"type": "payout.fund", "balance_cents": int(balance)}
    )
    return int(balance)


# --- late shipment (晚发即赔) ---------------------------------------------------------


class _NotDue(Exception):
    """The order shipped (or moved its ship_by) since the job listed it."""


async def issue_late_shipment_coupon(
    uow: UnitOfWork, *, shop_id: str, order_id: str, now: datetime
) -> LateShipmentCoupon | None:
    """Decide 晚发即赔 for one late order, once: None if another worker has, or it is no longer due.

    The first statement claims the order by inserting its row (unique per order), so a
    second worker waits for the first and then finds the claim; on SQLite, writing first
    also takes the write lock before this transaction has read anything.
    """
    s = uow.session
    try:
        async with s.begin_nested():
            claim = await s.execute(
                _insert_ignore(
                    uow,
                    LateShipmentCoupon,
                    ["shop_id", "order_id"],
                    {
                        "id": new_id(),
                        "shop_id": shop_id,
                        "order_id": order_id,
                        "buyer_id": "",
                        "amount_cents": 0,
                        "issued_at": now,
                    },
                )
            )
            if rowcount(claim) != 1:
                return None
            order = (
                (
                    await s.execute(
                        select(Order)
                        .where(col(Order.shop_id) == shop_id, col(Order.order_id) == order_id)
                        .with_for_update()
                        .execution_options(populate_existing=True)
                    )
                )
                .scalars()
                .first()
            )
            if (
                order is None
                or order.status != "paid"
                or order.ship_by is None
                or order.ship_by > now
            ):
                raise _NotDue
    except _NotDue:
        return None
    coupon = (
        await s.execute(
            select(LateShipmentCoupon).where(
                col(LateShipmentCoupon.shop_id) == shop_id,
                col(LateShipmentCoupon.order_id) == order_id,
            )
        )
    ).scalar_one()
    coupon.buyer_id = order.buyer_id
    coupon.amount_cents = rules.late_shipment_coupon_cents(order.amount_cents)
    if coupon.amount_cents == 0:
        return coupon  # under ¥3: decided, and nothing to give
    amount = rules.yuan(coupon.amount_cents)
    msg = await post_to_buyer(
        uow,
        shop_id=shop_id,
        buyer_id=order.buyer_id,
        conversation_id=None,
        kind="coupon_card",
        body=f"抱歉,您的订单 {order_id} 未能按时发货。送您一张 {amount} 无门槛券(晚发即赔)。",
        payload={
            "coupon": {
                "id": coupon.id,
                "title": f"晚发即赔 {amount} 无门槛券",
                "amount_cents": coupon.amount_cents,
                "min_spend_cents": 0,
                "reason": "late_shipment",
                "order_id": order_id,
            },
            "opt_out": False,
        },
        now=now,
    )
    coupon.conversation_id, coupon.message_id = msg.conversation_id, msg.message_id
    s.add(
        PayoutLedgerEntry(
            shop_id=shop_id,
            at=now,
            entry="coupon_issued",
            actor_kind="platform",
            order_id=order_id,
            conversation_id=msg.conversation_id,
            buyer_id=order.buyer_id,
            amount_cents=coupon.amount_cents,
            reason="late_shipment",
        )
    )
    return coupon


# --- telling the buyer ---------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    """A system card for a buyer who is not chatting (see `post_notices`); the ids of its
    conversation and message may be chosen by the caller."""

    buyer_id: str
    kind: str
    body: str
    payload: dict[str, Any]
    conversation_id: str = field(default_factory=new_id)
    message_id: str = field(default_factory=new_id)


@dataclass(frozen=True)
class Posted:
    """Where a card landed."""

    conversation_id: str
    message_id: str
    seq: int


async def post_to_buyer(
    uow: UnitOfWork,
    *,
    shop_id: str,
    buyer_id: str,
    conversation_id: str | None,
    kind: str,
    body: str,
    payload: dict[str, Any],
    now: datetime,
) -> Posted:
    """A system card in the buyer's chat: in the given conversation while it is open, else in
    the buyer's open conversation, else in a notice conversation of its own."""
    s = uow.session
    candidates: list[Conversation] = []
    if conversation_id is not None:
        given = await s.get(Conversation, conversation_id)
        if given is not None and given.status != "closed":
            candidates.append(given)
    current = await chat_service.open_conversation_of_buyer(s, shop_id, buyer_id)
    if current is not None and current not in candidates:
        candidates.append(current)
    for conv in candidates:
        try:
            msg, _ = await chat_actions.append_message(
                uow,
                conv,
                sender="system",
                sender_id=None,
                kind=kind,
                body=body,
                payload=payload,
                now=now,
            )
            return Posted(msg.conversation_id, msg.id, msg.seq)
        except ConversationClosed:
            continue  # closed a moment ago: try the next place
    (posted,) = await post_notices(uow, shop_id, [Notice(buyer_id, kind, body, payload)], now=now)
    return posted


async def post_notices(
    uow: UnitOfWork, shop_id: str, notices: list[Notice], *, now: datetime
) -> list[Posted]:
    """Each card as the one message (seq 1) of a conversation born closed, for buyers who
    are not chatting; in the order given.

    A notice is not a request for help: opening a routed conversation would queue it for
    an agent, and closing one through the chat core invites a rating of a service nobody
    gave. So it is written here directly, as the one message of a closed conversation
    (`last_seq` 1: numbering stays gap-free); the buyer hears of it like any new message,
    after commit. Two bulk INSERTs from one template row of each kind, whether for one
    payout card or a recall campaign's thousands (model instances would cost more than
    the writes).
    """
    if not notices:
        return []
    s = uow.session
    facts_of = {
        b: BuyerFacts(age=age, elder_mode=elder_mode)
        for b, age, elder_mode in await s.execute(
            select(col(Buyer.id), col(Buyer.age), col(Buyer.elder_mode)).where(
                col(Buyer.shop_id) == shop_id, col(Buyer.id).in_({n.buyer_id for n in notices})
            )
        )
    }
    conv_row = Conversation(
        id="",
        shop_id=shop_id,
        buyer_id="",
        status="closed",
        last_seq=1,
        opened_at=now,
        closed_at=now,
        close_reason="system",
    ).model_dump()
    template = Message(
        id="",
        shop_id=shop_id,
        conversation_id="",
        seq=1,
        sender="system",
        sender_id=None,
        kind="",
        body="",
        payload={},
        created_at=now,
    )
    frame, msg_row = message_public(template), template.model_dump()
    convs, msgs, posted = [], [], []
    for n in notices:
        facts = facts_of.get(n.buyer_id, BuyerFacts())
        conv_id, msg_id = n.conversation_id, n.message_id
        card = {"id": msg_id, "conversation_id": conv_id, "kind": n.kind, "body": n.body}
        convs.append(
            {
                **conv_row,
                "id": conv_id,
                "buyer_id": n.buyer_id,
                "queue": choose_queue(facts),
                "elder": facts.is_elder,
            }
        )
        msgs.append({**msg_row, **card, "payload": n.payload})
        posted.append(Posted(conv_id, msg_id, 1))
        uow.emit(
            buyer_topic(shop_id, n.buyer_id),
            {"type": "message.new", "message": {**frame, **card, "payload": n.payload}},
        )
    await s.execute(insert(table_of(Conversation)), convs)
    await s.execute(insert(table_of(Message)), msgs)
    return posted


def _announce(uow: UnitOfWork, payout: Payout) -> None:
    """The requesting agent and the shop's supervisors hear of every change (after commit)."""
    uow.emit_many(
        [agent_topic(payout.agent_id), shop_staff_topic(payout.shop_id)],
        {"type": "payout.updated", "payout": payout_public(payout)},
    )


# --- the ledger ----------------------------------------------------------------------


def _ledger(
    uow: UnitOfWork, entry: str, payout: Payout, *, actor_id: str, at: datetime, **fields: Any
) -> None:
    """Append one line about `payout`. The ledger is only ever inserted into."""
    uow.session.add(
        PayoutLedgerEntry(
            shop_id=payout.shop_id,
            at=at,
            entry=entry,
            payout_id=payout.id,
            actor_kind="agent",
            actor_id=actor_id,
            agent_id=payout.agent_id,
            order_id=payout.order_id,
            conversation_id=payout.conversation_id,
            buyer_id=payout.buyer_id,
            amount_cents=payout.amount_cents,
            reason=payout.reason,
            idempotency_key=payout.idempotency_key,
            **fields,
        )
    )


async def record_refusal(
    uow: UnitOfWork,
    *,
    shop_id: str,
    actor_id: str,
    error: DomainError,
    now: datetime,
    agent_id: str | None = None,
    idempotency_key: str | None = None,
    req: PayoutRequest | None = None,
    payout_id: str | None = None,
    entry_note: str | None = None,
) -> None:
    """A refused request or decision, in its own transaction (the refused one rolled back)."""
    s = uow.session
    fields: dict[str, Any] = {}
    if payout_id is not None:
        payout = await s.get(Payout, payout_id)
        if payout is not None and payout.shop_id == shop_id:
            fields = {
                "payout_id": payout.id,
                "agent_id": payout.agent_id,
                "order_id": payout.order_id,
                "conversation_id": payout.conversation_id,
                "buyer_id": payout.buyer_id,
                "amount_cents": payout.amount_cents,
                "reason": payout.reason,
            }
        else:
            entry_note = (
                f"{entry_note or ''} {payout_id}".strip()
            )  # not this shop's: keep only the id
    if req is not None:
        fields = {
            "agent_id": agent_id,
            "order_id": (req.order_id or "")[:128] or None,
            "conversation_id": req.conversation_id[:32],
            "amount_cents": req.amount_cents,
            "reason": req.reason[:32],
        }
    s.add(
        PayoutLedgerEntry(
            shop_id=shop_id,
            at=now,
            entry="refused",
            actor_kind="agent",
            actor_id=actor_id,
            code=error.code,
            idempotency_key=(idempotency_key or None) and idempotency_key[:MAX_KEY_CHARS],
            note=f"{entry_note + ': ' if entry_note else ''}{error.message}",
            **fields,
        )
    )


# --- helpers -------------------------------------------------------------------------


def _insert_ignore(
    uow: UnitOfWork, model: type[SQLModel], keys: list[str], values: dict[str, Any]
) -> Insert:
    """INSERT ... ON CONFLICT (keys) DO NOTHING, in the dialect at hand."""
    upsert = pg_insert if uow.is_postgres else sqlite_insert
    return upsert(table_of(model)).values(**values).on_conflict_do_nothing(index_elements=keys)
