"""The console's conversation view (read-only) for supervisors and admins: one
conversation's messages — internal notes (内部备注) among them, styled apart — with its
buyer, agent, queue, status and tags, and the buyer's other conversations with the shop.

Opened from the console's lists that name a conversation (flagged messages, payouts to
approve, quality reviews) or by its id (`/console/conversations/{id}`). The reads are the
buyer's-history domain's (`app.history.service`): the same who-may-read rule and the same
message pages as `GET /api/v1/history/conversations/{id}/messages`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select
from sqlmodel import col

from app.chat.schemas import message_public
from app.deps import Ctx
from app.errors import NotFound
from app.history import service as history_service
from app.limits import MAX_SEQ
from app.pages.console import ConsoleStaff, local_time, page_values, shop_zone_of
from app.pages.views import render
from app.shops import service as shop_service
from app.shops.models import Buyer
from app.shops.policy import Permission, may
from app.tags import service as tags_service

router = APIRouter(include_in_schema=False)

PAGE = 500  # messages a page; a longer conversation continues with ?after_seq=
OTHERS = 10  # the buyer's other conversations listed beside it


@router.get("/console/conversations/{conversation_id}")
async def conversation_page(
    conversation_id: str,
    request: Request,
    ctx: Ctx,
    me: ConsoleStaff,
    after_seq: int = Query(default=0, ge=0, le=MAX_SEQ),
) -> Response:
    if not may(me.role, Permission.SUPERVISE_CHATS):
        return render(request, ctx, "console_forbidden.html", status=403, agent=me)
    zone = await shop_zone_of(ctx, me.shop_id)
    async with ctx.db.read() as s:
        try:
            conv = await history_service.readable_conversation(s, me, conversation_id)
        except NotFound:
            values = page_values(me, "conversation", {"conv": None})
            return render(request, ctx, "console.html", status=404, **values)
        found = await history_service.messages_page(s, conv.id, after_seq=after_seq, limit=PAGE + 1)
        others = await history_service.buyer_conversations(
            s, me.shop_id, conv.buyer_id, limit=OTHERS + 1
        )
        buyer = (
            await s.execute(
                select(col(Buyer.name)).where(
                    col(Buyer.shop_id) == me.shop_id, col(Buyer.id) == conv.buyer_id
                )
            )
        ).scalar()
        names = {
            a.agent.id: a.agent.display_name
            for a in await shop_service.agents_of_shop(s, me.shop_id)
        }
        tags = (await tags_service.tags_of(s, [conv.id])).get(conv.id, [])
    more = len(found) > PAGE
    messages = [message_public(m) for m in found[:PAGE]]
    data: dict[str, Any] = {
        "conv": conv,
        "buyer_name": buyer or conv.buyer_id,
        "agent_name": names.get(conv.agent_id or "", ""),
        "names": names,
        "tags": tags,
        "messages": messages,
        "next_after": messages[-1]["seq"] if more else None,
        "others": [o for o in others if o.conversation.id != conv.id][:OTHERS],
        "local": lambda iso: local_time(iso, zone),
        "local_at": lambda at: local_time(at.isoformat() if at else None, zone),
    }
    response = render(request, ctx, "console.html", **page_values(me, "conversation", data))
    response.headers["Cache-Control"] = "no-store"
    return response
