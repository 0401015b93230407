"""HTTP: conversations and their messages (PROTOCOL.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from app.chat import service
from app.chat.actions import BuyerIdentity
from app.chat.schemas import message_public
from app.deps import CurrentAgent, CurrentCaller, Ctx
from app.errors import BadInput, NotFound

router = APIRouter(prefix="/api/v1")

STATUSES = ("queued", "assigned", "closed")


@router.get("/conversations")
async def list_conversations(agent: CurrentAgent, ctx: Ctx, status: str | None = None) -> list[dict[str, Any]]:
    if status is not None and status not in STATUSES:
        raise BadInput(f"Expected status one of {', '.join(STATUSES)}, but got {status!r}.", code="bad_request")
    whole_shop = agent.role in ("supervisor", "admin")
    async with ctx.db.read() as s:
        convs = await service.conversations_for_agent(s, agent, status=status, whole_shop=whole_shop)
        return await service.public_conversations(s, convs)


@router.get("/conversations/{conversation_id}/messages")
async def list_messages(
    conversation_id: str,
    caller: CurrentCaller,
    ctx: Ctx,
    after_seq: int = Query(default=0, ge=0),
    limit: int = Query(default=service.SYNC_PAGE, ge=1, le=service.SYNC_PAGE),
) -> list[dict[str, Any]]:
    async with ctx.db.read() as s:
        conv = await service.get_conversation(s, conversation_id)
        if conv is None:
            raise NotFound("No such conversation.")
        if isinstance(caller, BuyerIdentity):
            allowed = service.buyer_may_see(caller.shop_id, caller.buyer_id, conv)
        else:
            allowed = service.agent_may_see(caller, conv)
        if not allowed:
            # Same answer as "does not exist": don't confirm other shops' ids.
            raise NotFound("No such conversation.")
        msgs = await service.messages_after(s, conversation_id, after_seq, limit)
        return [message_public(m) for m in msgs]
