"""The shop's payout fund, and paying a payout out of it and the order's room.

The fund and the order's room hold under concurrency because each is a counter changed
by a conditional UPDATE that the database evaluates against the latest committed row
while holding its lock. Within one transaction the rows are always taken in the same
order (payout, daily total, order, fund), so two payouts never wait on each other in a
cycle.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import col

from app.chat import notices
from app.db import UnitOfWork, insert_ignore, rowcount
from app.errors import Conflict
from app.orders import actions as order_actions
from app.orders import service as order_service
from app.payouts import ledger, rules
from app.payouts.authority import acting_agent
from app.payouts.models import Payout, PayoutFund, PayoutLedgerEntry
from app.realtime.topics import shop_staff_topic
from app.shops.models import Agent
from app.shops.policy import Permission, check


async def topup_fund(uow: UnitOfWork, *, admin_id: str, amount_cents: int, now: datetime) -> int:
    """Add to the shop's payout fund; returns the new balance."""
    admin = await acting_agent(uow, admin_id)
    check(admin.role, Permission.TOP_UP_FUND, "Only the shop's admin may top up the payout fund.")
    rules.check_amount(amount_cents)
    s = uow.session
    await s.execute(
        insert_ignore(
            uow.dialect,
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


async def pay(
    uow: UnitOfWork,
    payout: Payout,
    *,
    authorised_by: Agent | None,
    now: datetime,
    room_held: bool = False,
) -> None:
    """Take the amount from the order's room and the fund, record it, and tell the buyer.

    Precondition: the authoriser's limits have been taken (the daily total reserved);
    `authorised_by` None: the platform pays on the shop's agent-free authority.
    `room_held`: the order's room was taken already (by the after-sales claim this pays,
    `claims`), so it is not taken twice.
    """
    if not room_held and not await order_actions.take_payout_room(
        uow, payout.shop_id, payout.order_id, payout.amount_cents
    ):
        order = await order_service.get_order(uow.session, payout.shop_id, payout.order_id)
        room = (order.amount_cents - order.paid_out_cents) if order is not None else 0
        raise order_cap_exceeded(room)
    if not await _take_from_fund(uow, payout.shop_id, payout.amount_cents, now):
        raise insufficient_funds()
    approver_id = payout.approved_by
    authoriser_id = authorised_by.id if authorised_by is not None else None
    ledger.record(uow, "paid", payout, actor_id=authoriser_id, approver_id=approver_id, at=now)
    label = rules.REASON_LABELS[payout.reason]
    card = notices.Notice(
        payout.buyer_id,
        "compensation_card",
        f"已为您补偿 {rules.yuan(payout.amount_cents)}({label})",
        {"payout_id": payout.id, "amount_cents": payout.amount_cents, "reason": payout.reason},
        conversation_id=payout.conversation_id,
    )
    await notices.post(uow, payout.shop_id, [card], now=now)
    ledger.announce(uow, payout)
    await ledger.report(uow, "payout.paid", payout, now)


async def _take_from_fund(uow: UnitOfWork, shop_id: str, amount_cents: int, now: datetime) -> bool:
    result = await uow.session.execute(
        update(PayoutFund)
        .where(col(PayoutFund.shop_id) == shop_id, col(PayoutFund.balance_cents) >= amount_cents)
        .values(balance_cents=col(PayoutFund.balance_cents) - amount_cents, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


def order_cap_exceeded(room_cents: int) -> Conflict:
    left = rules.yuan(max(room_cents, 0))
    return Conflict(
        f"Payouts on this order would pass its paid amount; at most {left} is left.",
        code="order_cap_exceeded",
    )


def insufficient_funds() -> Conflict:
    return Conflict(
        "The shop's payout fund cannot cover this payout; ask the shop admin to top it up.",
        code="insufficient_funds",
    )
