"""HTTP: the shop's queues and its category → skill-queue map (PROTOCOL.md "Agents and configuration")."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field, StrictInt, StrictStr

from app.deps import Ctx, CurrentAgent, require
from app.routing import queues
from app.routing.schemas import QueuePublic
from app.schemas import ERROR_RESPONSES
from app.shops.models import Agent
from app.shops.policy import Permission

router = APIRouter(prefix="/api/v1", tags=["routing"], responses=ERROR_RESPONSES)

QueueManager = Annotated[Agent, require(Permission.MANAGE_QUEUES)]


class QueueIn(BaseModel):
    # Loose bounds keep bodies small; `queues` judges the values and answers 422.
    name: StrictStr = Field(max_length=1000)
    overflow_after_s: StrictInt | None = None


class QueuePatchIn(BaseModel):
    overflow_after_s: StrictInt


@router.get("/queues")
async def list_queues(agent: CurrentAgent, ctx: Ctx) -> list[QueuePublic]:
    async with ctx.db.read() as s:
        return [
            QueuePublic.model_validate(asdict(q))
            for q in await queues.list_queues(s, agent.shop_id, ctx.clock.now())
        ]


@router.post("/queues", status_code=201)
async def create_queue(body: QueueIn, admin: QueueManager, ctx: Ctx) -> QueuePublic:
    summary = await ctx.db.run(
        queues.create_queue, admin.shop_id, body.name, body.overflow_after_s, now=ctx.clock.now()
    )
    return QueuePublic.model_validate(asdict(summary))


@router.patch("/queues/{name}")
async def update_queue(name: str, body: QueuePatchIn, admin: QueueManager, ctx: Ctx) -> QueuePublic:
    summary = await ctx.db.run(
        queues.set_overflow, admin.shop_id, name, body.overflow_after_s, now=ctx.clock.now()
    )
    return QueuePublic.model_validate(asdict(summary))


@router.get("/routing/categories")
async def get_categories(agent: CurrentAgent, ctx: Ctx) -> dict[str, str]:
    async with ctx.db.read() as s:
        return await queues.category_map(s, agent.shop_id)


@router.put("/routing/categories")
async def replace_categories(
    body: Annotated[dict[str, Any], Body()], admin: QueueManager, ctx: Ctx
) -> dict[str, str]:
    mapping: dict[str, str] = await ctx.db.run(queues.replace_category_map, admin.shop_id, body)
    return mapping
