"""Payouts for a buyer's approved after-sales claim: 一键价保 paid from the shop's fund.

A price-protection claim (app/aftersales) is approved either by the platform, within the
shop's agent-free 价保 amount, or by an agent within their own payout authority (the
after-sales decision reserves their daily total, `authority.authorise`). Either way the
approval pays a `price_protection` payout here, in the approving transaction: the fund
is debited by the same conditional UPDATE as any payout (`fund.pay`), the ledger gets
its lines, the buyer their compensation card and the shop's webhooks `payout.paid`. If
the fund cannot cover it the approval fails as a whole (nothing half-done) and the
refusal is written to the payout ledger by the caller's refusal recorder.

The claim holds its amount of the order's room (`orders.paid_out_cents`) from the moment
it was made, so the payout does not take it again: together, claims and payouts still
never pass the order's amount.

A claim is paid at most once: the payout's idempotency key is the claim's id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.db import UnitOfWork
from app.payouts import ledger, rules
from app.payouts import service as payout_service
from app.payouts.fund import insufficient_funds, pay
from app.payouts.models import Payout
from app.shops.models import Agent

# Error codes that refuse the payment itself (the approval), not the claim's content.
PAYMENT_REFUSALS = ("insufficient_funds", "payout_limit_exceeded", "daily_limit_exceeded")


@dataclass(frozen=True)
class Claim:
    """An approved after-sales claim to pay (the facts of an `AfterSale` row)."""

    id: str
    shop_id: str
    conversation_id: str
    order_id: str
    buyer_id: str
    amount_cents: int
    reason: str = "price_protection"


def claim_key(claim_id: str) -> str:
    """The payout's idempotency key: one payout per claim."""
    return f"aftersale:{claim_id}"


async def pay_claim(
    uow: UnitOfWork, claim: Claim, *, approved_by: Agent | None, now: datetime
) -> Payout:
    """Pay `claim` now, inside the approving transaction.

    `approved_by` None: the platform approved it (agent-free authority); the payout has
    no agent and counts against no agent's daily total. Otherwise the approving agent is
    the payout's agent (as if they had paid it at once on their own authority; their
    daily total was reserved by the caller) and it counts in their metrics.
    """
    agent_id = approved_by.id if approved_by is not None else None
    payout = Payout(
        shop_id=claim.shop_id,
        idempotency_key=claim_key(claim.id),
        request_hash=rules.request_fingerprint(
            agent_id=agent_id or "platform",
            conversation_id=claim.conversation_id,
            order_id=claim.order_id,
            amount_cents=claim.amount_cents,
            reason=claim.reason,
            note=claim.id,
        ),
        conversation_id=claim.conversation_id,
        order_id=claim.order_id,
        buyer_id=claim.buyer_id,
        agent_id=agent_id,
        amount_cents=claim.amount_cents,
        reason=claim.reason,
        status="paid",
        created_at=now,
        decided_at=now,
        paid_at=now,
    )
    uow.session.add(payout)
    await uow.session.flush()  # a second payout for the claim fails on the unique key
    ledger.record(uow, "approved", payout, actor_id=agent_id, at=now, note=claim_key(claim.id))
    await pay(uow, payout, authorised_by=approved_by, now=now, room_held=True)
    return payout


async def check_fund_covers(uow: UnitOfWork, shop_id: str, amount_cents: int) -> None:
    """A claim left for an agent reserves nothing of the fund; but one it could not cover
    even now is refused rather than left for an agent to find unpayable (as payouts do)."""
    if await payout_service.fund_balance(uow.session, shop_id) < amount_cents:
        raise insufficient_funds()
