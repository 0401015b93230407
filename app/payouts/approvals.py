"""Approvals: a supervisor or admin pays or rejects a pending payout, once.

`decide_payout` takes the Database because a refused decision must be written to the
ledger although the refused transaction rolls back; `approve_payout` and
`reject_payout` run inside the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import col

from app.db import Database, UnitOfWork, rowcount
from app.errors import Conflict, Forbidden, NotFound
from app.orders import service as order_service
from app.payouts import ledger
from app.payouts import service as payout_service
from app.payouts.authority import acting_agent, authorise
from app.payouts.fund import pay
from app.payouts.ledger import Refusal
from app.payouts.models import Payout
from app.shops.models import Agent
from app.shops.policy import Permission, check


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
    refusal = Refusal(
        shop_id=shop_id,
        actor_id=approver_id,
        now=now,
        payout_id=payout_id,
        note="approve" if approve else "reject",
    )
    return await ledger.run_or_record_refusal(
        db,
        approve_payout if approve else reject_payout,
        refusal,
        approver_id=approver_id,
        payout_id=payout_id,
        note=note,
        now=now,
    )


async def approve_payout(
    uow: UnitOfWork, *, approver_id: str, payout_id: str, note: str | None, now: datetime
) -> Payout:
    """Pay a pending payout on the approver's own authority, if it still fits everything.

    Checked again now, as if the approver had asked: their per-payout limit, their daily
    total, the order's cap and the fund. Any of them failing is a 409 and the payout
    stays pending (for someone with more authority, or after a top-up).
    """
    approver, payout = await _claim_pending(uow, approver_id, payout_id, "paid", now)
    await authorise(uow, approver, payout.amount_cents, now)
    order = await order_service.get_order(uow.session, payout.shop_id, payout.order_id)
    if order is not None and order.status == "refunded":
        raise Conflict(
            "That order has been refunded since; there is nothing left to compensate.",
            code="order_refunded",
        )
    _record_decision(uow, "approved", payout, approver, note, now)
    await pay(uow, payout, authorised_by=approver, now=now)
    return payout


async def reject_payout(
    uow: UnitOfWork, *, approver_id: str, payout_id: str, note: str | None, now: datetime
) -> Payout:
    approver, payout = await _claim_pending(uow, approver_id, payout_id, "rejected", now)
    _record_decision(uow, "rejected", payout, approver, note, now)
    ledger.announce(uow, payout)
    await ledger.report(uow, "payout.rejected", payout, now)
    return payout


def _record_decision(
    uow: UnitOfWork, entry: str, payout: Payout, approver: Agent, note: str | None, now: datetime
) -> None:
    ledger.record(
        uow, entry, payout, actor_id=approver.id, approver_id=approver.id, at=now, note=note
    )


async def _claim_pending(
    uow: UnitOfWork, approver_id: str, payout_id: str, status: str, now: datetime
) -> tuple[Agent, Payout]:
    """Move a pending payout to `status`, once, on the approver's say: concurrent deciders
    wait on the row and the later ones find it no longer pending."""
    approver = await acting_agent(uow, approver_id)
    s = uow.session
    payout = await payout_service.get_payout(s, payout_id)
    if payout is None or payout.shop_id != approver.shop_id:
        raise NotFound("No such payout.")
    check(
        approver.role,
        Permission.APPROVE_PAYOUTS,
        "Only supervisors and admins approve or reject payouts.",
    )
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
    return approver, payout
