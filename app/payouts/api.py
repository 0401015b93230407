"""HTTP: payouts, their approval, the fund, the ledger (PROTOCOL.md "Payouts")."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from pydantic import BaseModel, Field, StrictInt

from app.deps import Ctx, CurrentAgent, require
from app.errors import BadInput, Forbidden, NotFound
from app.limits import MAX_BIGINT
from app.payouts import approvals, fund, requests, service
from app.payouts.models import LEDGER_ENTRIES, PAYOUT_STATUSES, Payout
from app.payouts.schemas import (
    CouponPublic,
    FundOut,
    LedgerLine,
    PayoutPublic,
    coupon_public,
    ledger_public,
    payout_public,
)
from app.schemas import ERROR_RESPONSES
from app.shops.models import Agent
from app.shops.policy import Permission, may

router = APIRouter(prefix="/api/v1", tags=["payouts"], responses=ERROR_RESPONSES)

FundKeeper = Annotated[Agent, require(Permission.TOP_UP_FUND)]


def _public(p: Payout) -> PayoutPublic:
    return PayoutPublic.model_validate(payout_public(p))


# Wide enough for any amount the domain should judge itself (≤ 0 is its 422, not ours).
AmountCents = Annotated[StrictInt, Field(ge=-(10**15), le=10**15)]


class PayoutIn(BaseModel):
    conversation_id: str = Field(min_length=1, max_length=64)
    order_id: str | None = Field(default=None, min_length=1, max_length=128)
    amount_cents: AmountCents
    reason: str = Field(max_length=64)
    note: str | None = Field(default=None, max_length=1000)


class DecisionIn(BaseModel):
    note: str | None = Field(default=None, max_length=1000)


class TopupIn(BaseModel):
    amount_cents: AmountCents


@router.post("/payouts", responses={201: {"model": PayoutPublic, "description": "A new payout."}})
async def create_payout(
    body: PayoutIn,
    agent: CurrentAgent,
    ctx: Ctx,
    response: Response,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> PayoutPublic:
    """201 for a new payout; 200 with the same payout when the Idempotency-Key is repeated."""
    req = requests.PayoutRequest(**body.model_dump())
    outcome = await requests.submit_payout(
        ctx.db,
        agent_id=agent.id,
        shop_id=agent.shop_id,
        idempotency_key=idempotency_key,
        req=req,
        now=ctx.clock.now(),
    )
    response.status_code = 201 if outcome.created else 200
    return _public(outcome.payout)


@router.get("/payouts")
async def list_payouts(
    agent: CurrentAgent,
    ctx: Ctx,
    status: str | None = None,
    agent_id: str | None = None,
    order_id: str | None = None,
    limit: int = Query(default=service.LIST_LIMIT, ge=1, le=service.LIST_LIMIT),
) -> list[PayoutPublic]:
    """Agents see their own payouts; supervisors and admins the whole shop's."""
    if status is not None and status not in PAYOUT_STATUSES:
        raise BadInput(
            f"Expected status one of {', '.join(PAYOUT_STATUSES)}, but got {status!r}.",
            code="bad_request",
        )
    if not may(agent.role, Permission.VIEW_PAYOUTS):
        if agent_id not in (None, agent.id):
            raise Forbidden("Agents see only their own payouts.")
        agent_id = agent.id
    async with ctx.db.read() as s:
        payouts = await service.list_payouts(
            s, agent.shop_id, status=status, agent_id=agent_id, order_id=order_id, limit=limit
        )
    return [_public(p) for p in payouts]


@router.get("/payouts/fund")
async def get_fund(agent: CurrentAgent, ctx: Ctx) -> FundOut:
    async with ctx.db.read() as s:
        return FundOut(balance_cents=await service.fund_balance(s, agent.shop_id))


@router.post("/payouts/fund/topup")
async def topup_fund(body: TopupIn, admin: FundKeeper, ctx: Ctx) -> FundOut:
    balance = await ctx.db.run(
        fund.topup_fund, admin_id=admin.id, amount_cents=body.amount_cents, now=ctx.clock.now()
    )
    return FundOut(balance_cents=balance)


@router.get("/payouts/ledger")
async def get_ledger(
    agent: CurrentAgent,
    ctx: Ctx,
    payout_id: str | None = None,
    entry: str | None = None,
    agent_id: str | None = None,
    order_id: str | None = None,
    after_id: int = Query(default=0, ge=0, le=MAX_BIGINT),
    limit: int = Query(default=service.LIST_LIMIT, ge=1, le=service.LIST_LIMIT),
) -> list[LedgerLine]:
    """The append-only ledger, oldest first (supervisors and admins)."""
    if not may(agent.role, Permission.VIEW_PAYOUTS):
        raise Forbidden("Only supervisors and admins read the payout ledger.")
    if entry is not None and entry not in LEDGER_ENTRIES:
        raise BadInput(
            f"Expected entry one of {', '.join(LEDGER_ENTRIES)}, but got {entry!r}.",
            code="bad_request",
        )
    async with ctx.db.read() as s:
        lines = await service.ledger(
            s,
            agent.shop_id,
            payout_id=payout_id,
            entry=entry,
            agent_id=agent_id,
            order_id=order_id,
            after_id=after_id,
            limit=limit,
        )
    return [LedgerLine.model_validate(ledger_public(e)) for e in lines]


@router.get("/payouts/coupons")
async def list_coupons(
    agent: CurrentAgent, ctx: Ctx, order_id: str | None = None, buyer_id: str | None = None
) -> list[CouponPublic]:
    """Late-shipment coupons issued (amount 0: the order was too small for one)."""
    async with ctx.db.read() as s:
        found = await service.coupons(s, agent.shop_id, order_id=order_id, buyer_id=buyer_id)
    return [CouponPublic.model_validate(coupon_public(c)) for c in found]


@router.get("/payouts/{payout_id}")
async def get_payout(payout_id: str, agent: CurrentAgent, ctx: Ctx) -> PayoutPublic:
    async with ctx.db.read() as s:
        payout = await service.get_payout(s, payout_id)
    if payout is None or payout.shop_id != agent.shop_id:  # another shop's: as if missing
        raise NotFound("No such payout.")
    if payout.agent_id != agent.id and not may(agent.role, Permission.VIEW_PAYOUTS):
        raise Forbidden("Agents see only their own payouts.")
    return _public(payout)


def _decision(approve: bool) -> Callable[..., Awaitable[PayoutPublic]]:
    """The handler of `approve` or `reject`: one shape for both. Who may decide is the
    domain's to say (`APPROVE_PAYOUTS`, checked in the transaction that reads the approver,
    and a refusal is itself written to the ledger)."""

    async def decide(
        payout_id: str, agent: CurrentAgent, ctx: Ctx, body: DecisionIn | None = None
    ) -> PayoutPublic:
        payout = await approvals.decide_payout(
            ctx.db,
            approver_id=agent.id,
            shop_id=agent.shop_id,
            payout_id=payout_id,
            approve=approve,
            note=body.note if body else None,
            now=ctx.clock.now(),
        )
        return _public(payout)

    return decide


approve = router.post("/payouts/{payout_id}/approve", name="approve")(_decision(True))
reject = router.post("/payouts/{payout_id}/reject", name="reject")(_decision(False))
