"""HTTP for tags: the shop's list (admin edits, every agent reads), a conversation's tags,
and the shop's rule "a tag is required to close"."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response

from app.chat import service as chat_service
from app.chat.schemas import ConversationPublic
from app.deps import Ctx, CurrentAgent, require
from app.schemas import ERROR_RESPONSES
from app.shops.models import Agent
from app.shops.policy import Permission
from app.tags import actions, service
from app.tags.schemas import (
    ConversationTagsIn,
    TagIn,
    TagPublic,
    TagSettingsIn,
    TagSettingsPublic,
    tag_public,
)

router = APIRouter(prefix="/api/v1", tags=["tags"], responses=ERROR_RESPONSES)

TagManager = Annotated[Agent, require(Permission.MANAGE_TAGS)]


@router.get("/tags")
async def list_tags(agent: CurrentAgent, ctx: Ctx) -> list[TagPublic]:
    async with ctx.db.read() as s:
        usage = await service.tag_usage(s, agent.shop_id)
        return [tag_public(t, usage) for t in await service.shop_tags(s, agent.shop_id)]


@router.post("/tags", status_code=201)
async def create_tag(body: TagIn, admin: TagManager, ctx: Ctx) -> TagPublic:
    tag = await ctx.db.run(actions.create_tag, admin.shop_id, body.name, ctx.clock.now())
    return tag_public(tag, {})


@router.patch("/tags/{tag_id}")
async def rename_tag(tag_id: str, body: TagIn, admin: TagManager, ctx: Ctx) -> TagPublic:
    tag = await ctx.db.run(actions.rename_tag, admin.shop_id, tag_id, body.name)
    async with ctx.db.read() as s:
        return tag_public(tag, await service.tag_usage(s, admin.shop_id))


@router.delete("/tags/{tag_id}", status_code=204)
async def delete_tag(tag_id: str, admin: TagManager, ctx: Ctx) -> Response:
    await ctx.db.run(actions.delete_tag, admin.shop_id, tag_id)
    return Response(status_code=204)


@router.get("/tag-settings")
async def get_settings(agent: CurrentAgent, ctx: Ctx) -> TagSettingsPublic:
    async with ctx.db.read() as s:
        return TagSettingsPublic(
            required_to_close=await service.required_to_close(s, agent.shop_id)
        )


@router.put("/tag-settings")
async def put_settings(body: TagSettingsIn, admin: TagManager, ctx: Ctx) -> TagSettingsPublic:
    required = await ctx.db.run(
        actions.set_required_to_close, admin.shop_id, body.required_to_close
    )
    return TagSettingsPublic(required_to_close=required)


@router.put("/conversations/{conversation_id}/tags")
async def put_conversation_tags(
    conversation_id: str, body: ConversationTagsIn, agent: CurrentAgent, ctx: Ctx
) -> ConversationPublic:
    """Set the conversation's tags (names from the shop's list); answers the CONV."""
    await ctx.db.run(
        actions.set_conversation_tags, agent, conversation_id, body.tags, ctx.clock.now()
    )
    async with ctx.db.read() as s:
        conv = await chat_service.get_conversation(s, conversation_id)
        assert conv is not None  # the action found it
        return ConversationPublic.model_validate(await chat_service.public_conversation(s, conv))
