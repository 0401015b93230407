"""HTTP for the buyer's history: their conversations with the shop and, read-only, the
messages of any of them (for the staff who may; see rules.py)."""

from __future__ import annotations

from fastapi import APIRouter, Query

from app.chat.models import Conversation
from app.chat.schemas import MessagePublic, message_public
from app.deps import Ctx, CurrentAgent
from app.errors import BadInput, NotFound
from app.history import service
from app.history.schemas import HistoryPage, history_entry
from app.limits import MAX_SEQ
from app.schemas import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1", tags=["history"], responses=ERROR_RESPONSES)


@router.get("/buyers/{buyer_id}/conversations")
async def buyer_history(
    buyer_id: str,
    agent: CurrentAgent,
    ctx: Ctx,
    before: str | None = Query(default=None, max_length=32),
    limit: int = Query(default=service.PAGE, ge=1, le=100),
) -> HistoryPage:
    """The buyer's conversations with this shop, newest first (the open one included)."""
    async with ctx.db.read() as s:
        await service.check_history_reader(s, agent, buyer_id)
        cursor = None
        if before is not None:
            conv = await s.get(Conversation, before)
            if conv is None or conv.shop_id != agent.shop_id or conv.buyer_id != buyer_id:
                raise BadInput(
                    "Expected ?before= one of this buyer's conversations.", code="bad_request"
                )
            cursor = (conv.opened_at, conv.id)
        found = await service.buyer_conversations(
            s, agent.shop_id, buyer_id, before=cursor, limit=limit + 1
        )
    more = len(found) > limit
    found = found[:limit]
    return HistoryPage(
        buyer_id=buyer_id,
        conversations=[history_entry(x) for x in found],
        next_before=found[-1].conversation.id if more else None,
    )


@router.get("/history/conversations/{conversation_id}/messages")
async def history_messages(
    conversation_id: str,
    agent: CurrentAgent,
    ctx: Ctx,
    after_seq: int = Query(default=0, ge=0, le=MAX_SEQ),
    before_seq: int | None = Query(default=None, ge=1, le=MAX_SEQ),
    limit: int = Query(default=100, ge=1, le=500),
) -> list[MessagePublic]:
    """A past conversation's messages, read-only, in seq order: after `after_seq`, or the
    last `limit` before `before_seq` (scrolling up)."""
    async with ctx.db.read() as s:
        conv = await service.readable_conversation(s, agent, conversation_id)
        if conv is None:
            raise NotFound("No such conversation.")
        msgs = await service.messages_page(
            s, conv.id, after_seq=after_seq, before_seq=before_seq, limit=limit
        )
        return [MessagePublic.model_validate(message_public(m)) for m in msgs]
