"""Who may pay how much: the acting agent as stored now, and their daily total.

An agent's `payout_daily_cents` holds under concurrency because the day's total is a
counter raised by a conditional UPDATE (`... SET paid_cents = paid_cents + x WHERE
paid_cents + x <= limit`), which the database evaluates against the latest committed
row while holding its lock.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import col

from app.db import UnitOfWork, insert_ignore, rowcount
from app.errors import Conflict, NotFound
from app.payouts import rules
from app.payouts.models import PayoutDailyTotal
from app.shops.models import Agent, Shop


async def acting_agent(uow: UnitOfWork, agent_id: str) -> Agent:
    """The agent re-read in this transaction: limits and role as they are now, not at login."""
    agent = await uow.session.get(Agent, agent_id, populate_existing=True)
    if agent is None:
        raise NotFound("No such agent.")
    return agent


def authority_of(agent: Agent) -> rules.PayoutAuthority:
    return rules.PayoutAuthority(agent.payout_limit_cents, agent.payout_daily_cents)


async def reserve_daily(uow: UnitOfWork, agent: Agent, amount_cents: int, now: datetime) -> bool:
    """Add to the agent's total for today (shop time) if it stays within their daily limit."""
    s = uow.session
    shop = await s.get(Shop, agent.shop_id)
    day = rules.shop_day(now, shop.timezone if shop else "UTC")
    await s.execute(
        insert_ignore(
            uow.dialect,
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


async def authorise(uow: UnitOfWork, approver: Agent, amount_cents: int, now: datetime) -> None:
    """Approve `amount_cents` on the approver's own authority, or a 409: their per-payout
    limit, then their daily total (reserved here). Payout approvals and after-sales
    decisions both ask this."""
    if not authority_of(approver).within_payout_limit(amount_cents):
        raise Conflict(
            f"{rules.yuan(amount_cents)} is above your own per-payout limit of "
            f"{rules.yuan(approver.payout_limit_cents)}.",
            code="payout_limit_exceeded",
        )
    if not await reserve_daily(uow, approver, amount_cents, now):
        raise Conflict(
            f"Approving {rules.yuan(amount_cents)} would pass your own daily limit of "
            f"{rules.yuan(approver.payout_daily_cents)}.",
            code="daily_limit_exceeded",
        )
