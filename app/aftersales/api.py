"""HTTP: after-sales requests (buyers ask, agents decide, the storefront completes), the
shop's after-sales settings, and product prices from the storefront (价保)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, StrictInt

from app.aftersales import actions, service
from app.aftersales.models import STATUSES, AfterSale
from app.aftersales.schemas import (
    AfterSaleLedgerLine,
    AfterSalePublic,
    AfterSaleSettingsOut,
    OrderRoom,
    PriceOut,
    aftersale_public,
    ledger_public,
)
from app.chat.schemas import iso
from app.deps import Ctx, CurrentAgent, CurrentBuyer, CurrentCaller, CurrentShop, require
from app.errors import BadInput, NotFound
from app.schemas import ERROR_RESPONSES
from app.shops.identities import BuyerIdentity
from app.shops.models import Agent
from app.shops.policy import Permission

router = APIRouter(prefix="/api/v1", tags=["aftersales"], responses=ERROR_RESPONSES)

CareManager = Annotated[Agent, require(Permission.MANAGE_CARE)]
LedgerReader = Annotated[Agent, require(Permission.VIEW_PAYOUTS)]


def _public(a: AfterSale) -> AfterSalePublic:
    return AfterSalePublic.model_validate(aftersale_public(a))


class AfterSaleIn(BaseModel):
    conversation_id: str = Field(min_length=1, max_length=64)
    order_id: str = Field(min_length=1, max_length=128)
    type: str = Field(max_length=32)
    amount_cents: StrictInt = Field(ge=-(10**15), le=10**15)
    reason: str = Field(max_length=2000)
    upload_ids: list[Annotated[str, Field(max_length=64)]] = Field(default=[], max_length=20)


class DecisionIn(BaseModel):
    note: str | None = Field(default=None, max_length=1000)


class SettingsIn(BaseModel):
    fast_refund_max_cents: StrictInt | None = Field(default=None, ge=-(10**15), le=10**15)
    price_protection_days: StrictInt | None = Field(default=None, ge=-(10**6), le=10**6)
    price_protection_auto_cents: StrictInt | None = Field(default=None, ge=-(10**15), le=10**15)


class PriceIn(BaseModel):
    price_cents: StrictInt = Field(ge=0, le=10**12)


@router.post(
    "/aftersales",
    status_code=201,
    responses={201: {"model": AfterSalePublic, "description": "The new request."}},
)
async def create_aftersale(body: AfterSaleIn, buyer: CurrentBuyer, ctx: Ctx) -> AfterSalePublic:
    """A buyer asks for after-sales on one of their orders (the buyer token only)."""
    req = actions.AfterSaleRequest(
        conversation_id=body.conversation_id,
        order_id=body.order_id,
        type=body.type,
        amount_cents=body.amount_cents,
        reason=body.reason,
        upload_ids=tuple(body.upload_ids),
    )
    a = await actions.submit_request(
        ctx.db, shop_id=buyer.shop_id, buyer_id=buyer.buyer_id, req=req, now=ctx.clock.now()
    )
    return _public(a)


@router.get("/aftersales")
async def list_aftersales(
    caller: CurrentCaller,
    ctx: Ctx,
    order_id: str | None = Query(default=None, max_length=128),
    status: str | None = None,
    conversation_id: str | None = Query(default=None, max_length=64),
    limit: int = Query(default=service.LIST_LIMIT, ge=1, le=service.LIST_LIMIT),
) -> list[AfterSalePublic]:
    """The shop's requests (agents), or a buyer's own (buyer token), newest first."""
    if status is not None and status not in STATUSES:
        raise BadInput(
            f"Expected status one of {', '.join(STATUSES)}, but got {status!r}.",
            code="bad_request",
        )
    mine = caller.buyer_id if isinstance(caller, BuyerIdentity) else None
    async with ctx.db.read() as s:
        found = await service.list_aftersales(
            s,
            caller.shop_id,
            order_id=order_id,
            status=status,
            buyer_id=mine,
            conversation_id=conversation_id,
            limit=limit,
        )
    return [_public(a) for a in found]


@router.get("/aftersales/orders/{order_id}")
async def order_room(order_id: str, buyer: CurrentBuyer, ctx: Ctx) -> OrderRoom:
    """What the buyer may still ask for on their order (the 申请售后 sheet, 一键价保)."""
    async with ctx.db.read() as s:
        found = await service.order_room(
            s, buyer.shop_id, buyer.buyer_id, order_id, ctx.clock.now()
        )
    if found is None:
        raise NotFound("No such order of yours.")
    return OrderRoom.model_validate(found)


@router.get("/aftersales/ledger")
async def get_ledger(
    agent: LedgerReader, ctx: Ctx, aftersale_id: str | None = Query(default=None, max_length=64)
) -> list[AfterSaleLedgerLine]:
    """The append-only after-sales ledger, oldest first (supervisors and admins)."""
    async with ctx.db.read() as s:
        lines = await service.ledger(s, agent.shop_id, aftersale_id=aftersale_id)
    return [AfterSaleLedgerLine.model_validate(ledger_public(e)) for e in lines]


@router.get("/aftersales/settings")
async def get_settings(agent: CurrentAgent, ctx: Ctx) -> AfterSaleSettingsOut:
    async with ctx.db.read() as s:
        found = await service.settings_of(s, agent.shop_id)
    return AfterSaleSettingsOut.model_validate(found.as_dict())


@router.post("/aftersales/settings")
async def save_settings(body: SettingsIn, admin: CareManager, ctx: Ctx) -> AfterSaleSettingsOut:
    """极速退款 (0: off) and 价保 (window in days, agent-free amount) for the shop (admin)."""
    values = {k: v for k, v in body.model_dump().items() if v is not None}
    found = await ctx.db.run(
        actions.save_settings, admin_id=admin.id, values=values, now=ctx.clock.now()
    )
    return AfterSaleSettingsOut.model_validate(found.as_dict())


@router.get("/aftersales/{aftersale_id}")
async def get_aftersale(aftersale_id: str, caller: CurrentCaller, ctx: Ctx) -> AfterSalePublic:
    async with ctx.db.read() as s:
        a = await service.get_aftersale(s, caller.shop_id, aftersale_id)
    if a is None or (isinstance(caller, BuyerIdentity) and a.buyer_id != caller.buyer_id):
        raise NotFound("No such after-sales request.")
    return _public(a)


def _decision(approve: bool) -> Callable[..., Awaitable[AfterSalePublic]]:
    """approve or decline: the serving agent or a supervisor, within payout authority."""

    async def decide(
        aftersale_id: str, agent: CurrentAgent, ctx: Ctx, body: DecisionIn | None = None
    ) -> AfterSalePublic:
        a = await actions.decide(
            ctx.db,
            agent_id=agent.id,
            shop_id=agent.shop_id,
            aftersale_id=aftersale_id,
            approve=approve,
            note=body.note if body else None,
            now=ctx.clock.now(),
        )
        return _public(a)

    return decide


approve = router.post("/aftersales/{aftersale_id}/approve", name="approve_aftersale")(
    _decision(True)
)
decline = router.post("/aftersales/{aftersale_id}/decline", name="decline_aftersale")(
    _decision(False)
)


@router.post("/aftersales/{aftersale_id}/complete")
async def complete(aftersale_id: str, shop: CurrentShop, ctx: Ctx) -> AfterSalePublic:
    """The storefront (its API key) has carried out an approved request."""
    a = await ctx.db.run(
        actions.complete, shop_id=shop.id, aftersale_id=aftersale_id, now=ctx.clock.now()
    )
    return _public(a)


@router.post("/products/{product_id}/price")
async def set_price(
    product_id: Annotated[str, Field(min_length=1, max_length=128)],
    body: PriceIn,
    shop: CurrentShop,
    ctx: Ctx,
) -> PriceOut:
    """The storefront's current price of a product: buyers who paid more within the
    shop's protection window can claim the difference (一键价保)."""
    found = await ctx.db.run(
        actions.set_price,
        shop_id=shop.id,
        product_id=product_id,
        price_cents=body.price_cents,
        now=ctx.clock.now(),
    )
    return PriceOut(
        product_id=found.product_id, price_cents=found.price_cents, changed_at=iso(found.changed_at)
    )
