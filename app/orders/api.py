"""HTTP: orders from the storefront server, and the buyer panel's view of them."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field, StrictInt, field_validator

from app.deps import Ctx, CurrentAgent, CurrentShop
from app.errors import NotFound
from app.orders import actions, service
from app.orders.schemas import OrderPublic, PanelOrder, order_public
from app.schemas import ERROR_RESPONSES, IsoDatetime

router = APIRouter(prefix="/api/v1", tags=["orders"], responses=ERROR_RESPONSES)


class OrderIn(BaseModel):
    order_id: str = Field(min_length=1, max_length=128)
    buyer_id: str = Field(min_length=1, max_length=128)
    amount_cents: StrictInt = Field(ge=0, le=10**12)
    status: str = Field(max_length=16)
    category: str | None = Field(default=None, max_length=64)
    created_at: IsoDatetime
    ship_by: IsoDatetime | None = None
    shipped_at: IsoDatetime | None = None
    delivered_at: IsoDatetime | None = None
    carrier: str | None = Field(default=None, max_length=64)
    tracking_no: str | None = Field(default=None, max_length=128)
    product_id: str | None = Field(default=None, min_length=1, max_length=128)
    unit_price_cents: StrictInt | None = Field(default=None, ge=0, le=10**12)

    @field_validator("created_at", "ship_by", "shipped_at", "delivered_at")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        # PROTOCOL times carry an offset; a storefront that leaves it out means UTC.
        if v is not None and v.tzinfo is None:
            return v.replace(tzinfo=UTC)
        return v


@router.post("/orders", responses={201: {"model": OrderPublic, "description": "A new order."}})
async def put_order(body: OrderIn, shop: CurrentShop, ctx: Ctx, response: Response) -> OrderPublic:
    """Create or update an order (the storefront's API key): 201 when new, 200 when known."""
    report = actions.OrderReport(**body.model_dump())
    order, created = await ctx.db.run(actions.upsert_order, shop.id, report, ctx.clock.now())
    response.status_code = 201 if created else 200
    return OrderPublic.model_validate(order_public(order))


class TrackingIn(BaseModel):
    at: IsoDatetime
    line: str = Field(min_length=1, max_length=500)
    delivered: bool = False

    @field_validator("at")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return v if v.tzinfo is not None else v.replace(tzinfo=UTC)


@router.post("/orders/{order_id}/tracking")
async def post_tracking(
    order_id: str, body: TrackingIn, shop: CurrentShop, ctx: Ctx
) -> OrderPublic:
    """A tracking update from the storefront (its API key); the order keeps the latest line."""
    order = await ctx.db.run(
        actions.add_tracking,
        shop.id,
        order_id,
        at=body.at,
        line=body.line,
        delivered=body.delivered,
        now=ctx.clock.now(),
    )
    return OrderPublic.model_validate(order_public(order))


@router.get("/orders/{order_id}")
async def get_order(order_id: str, agent: CurrentAgent, ctx: Ctx) -> OrderPublic:
    async with ctx.db.read() as s:
        order = await service.get_order(s, agent.shop_id, order_id)
    if order is None:
        raise NotFound("No such order.")
    return OrderPublic.model_validate(order_public(order))


@router.get("/buyers/{buyer_id}/orders", response_model_exclude_unset=True)
async def buyer_orders(
    buyer_id: str, agent: CurrentAgent, ctx: Ctx, conversation_id: str | None = None
) -> list[PanelOrder]:
    async with ctx.db.read() as s:
        rows = await service.buyer_panel(s, agent.shop_id, buyer_id, conversation_id)
    return [PanelOrder.model_validate(order_public(o, linked=linked)) for o, linked in rows]
