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
from app.errors import NotFound
from app.payouts import rules
from app.payouts.models import PayoutDailyTotal
from app.shops.models import Agent, Shop
from app.shops.roles import STAFF_ROLES

APPROVER_ROLES = STAFF_ROLES


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
