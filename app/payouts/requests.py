"""Payout requests: an agent asks to pay a buyer; paid at once within their authority,
else left pending for a supervisor (`approvals`).

`submit_payout` takes the Database because a refusal must be written to the ledger
although the refused transaction rolls back; `request_payout` runs inside the caller's
transaction and leaves committing to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from app.chat.models import Conversation, Message, sent_by
from app.chat.service import agent_may_see
from app.db import Database, UnitOfWork
from app.errors import BadInput, Conflict, Forbidden, NotFound
from app.orders import service as order_service
from app.orders.models import Order
from app.payouts import ledger, rules
from app.payouts import service as payout_service
from app.payouts.authority import acting_agent, authority_of, reserve_daily
from app.payouts.fund import insufficient_funds, order_cap_exceeded, pay
from app.payouts.ledger import MAX_KEY_CHARS, Refusal
from app.payouts.models import Payout
from app.routing.rules import BuyerFacts
from app.shops.models import Agent, Buyer


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
    refusal = Refusal(
        shop_id=shop_id,
        actor_id=agent_id,
        now=now,
        idempotency_key=idempotency_key,
        request_fields={
            "agent_id": agent_id,
            "order_id": (req.order_id or "")[:128] or None,
            "conversation_id": req.conversation_id[:32],
            "amount_cents": req.amount_cents,
            "reason": req.reason[:32],
        },
    )
    return await ledger.run_or_record_refusal(
        db,
        request_payout,
        refusal,
        agent_id=agent_id,
        idempotency_key=idempotency_key,
        req=req,
        now=now,
    )


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
    agent = await acting_agent(uow, agent_id)
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
    if rules.needs_evidence(req.reason, elder=await is_elder(uow, conv)) and not await has_photo(
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
    ledger.record(uow, "requested", payout, actor_id=agent.id, at=now)

    if authority_of(agent).within_payout_limit(payout.amount_cents) and await reserve_daily(
        uow, agent, payout.amount_cents, now
    ):
        payout.status, payout.decided_at, payout.paid_at = "paid", now, now
        await pay(uow, payout, authorised_by=agent, now=now)
    else:
        # Not counted against anything until approved; but refuse now what could never be paid.
        await _check_payable_later(uow, payout)
        ledger.record(uow, "pending_approval", payout, actor_id=agent.id, at=now)
        ledger.announce(uow, payout)
    return Outcome(payout, True)


def _replay(
    uow: UnitOfWork, existing: Payout, agent: Agent, fingerprint: str, now: datetime
) -> Outcome:
    if existing.request_hash != fingerprint:
        raise BadInput(
            "This Idempotency-Key was already used for a different payout request.",
            code="idempotency_mismatch",
        )
    ledger.record(uow, "replayed", existing, actor_id=agent.id, at=now)
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


async def is_elder(uow: UnitOfWork, conv: Conversation) -> bool:
    """An elder buyer (简化举证): the conversation says so, or the buyer's record does."""
    if conv.elder:
        return True
    buyer = await uow.session.get(Buyer, (conv.shop_id, conv.buyer_id))
    return buyer is not None and BuyerFacts(age=buyer.age, elder_mode=buyer.elder_mode).is_elder


async def has_photo(uow: UnitOfWork, conv: Conversation) -> bool:
    """Whether the buyer has sent a photo in this conversation."""
    row = await uow.session.execute(
        select(col(Message.id))
        .where(
            col(Message.conversation_id) == conv.id,
            col(Message.kind) == "image",
            sent_by("buyer"),
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
        raise order_cap_exceeded(row.amount_cents - row.paid_out_cents)
    if await payout_service.fund_balance(s, payout.shop_id) < payout.amount_cents:
        raise insufficient_funds()
