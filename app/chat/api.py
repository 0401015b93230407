"""HTTP: conversations and their messages (PROTOCOL.md)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlmodel import col

from app.chat import actions, service, uploads
from app.chat.models import Upload
from app.chat.schemas import ConversationPublic, MessagePublic, UploadOut, message_public
from app.deps import Ctx, CurrentAgent, CurrentCaller, caller_from_token
from app.errors import BadInput, NotFound
from app.limits import MAX_SEQ
from app.schemas import ERROR_RESPONSES
from app.shops.identities import BuyerIdentity
from app.shops.policy import Permission, may

router = APIRouter(prefix="/api/v1", tags=["chat"], responses=ERROR_RESPONSES)

STATUSES = ("queued", "assigned", "closed")


@router.get("/conversations")
async def list_conversations(
    agent: CurrentAgent, ctx: Ctx, status: str | None = None
) -> list[ConversationPublic]:
    if status is not None and status not in STATUSES:
        raise BadInput(
            f"Expected status one of {', '.join(STATUSES)}, but got {status!r}.", code="bad_request"
        )
    whole_shop = may(agent.role, Permission.SUPERVISE_CHATS)
    async with ctx.db.read() as s:
        convs = await service.conversations_for_agent(
            s, agent, status=status, whole_shop=whole_shop
        )
        return [
            ConversationPublic.model_validate(c)
            for c in await service.public_conversations(s, convs)
        ]


@router.get("/conversations/{conversation_id}/messages")
async def list_messages(
    conversation_id: str,
    caller: CurrentCaller,
    ctx: Ctx,
    after_seq: int = Query(default=0, ge=0, le=MAX_SEQ),
    limit: int = Query(default=service.SYNC_PAGE, ge=1, le=service.SYNC_PAGE),
) -> list[MessagePublic]:
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
        msgs = await service.messages_after(
            s, conversation_id, after_seq, limit, buyer_view=isinstance(caller, BuyerIdentity)
        )
        return [MessagePublic.model_validate(message_public(m)) for m in msgs]


class ClosedOut(BaseModel):
    closed: bool  # False: it was closed already


@router.post("/conversations/{conversation_id}/close")
async def close_conversation(conversation_id: str, agent: CurrentAgent, ctx: Ctx) -> ClosedOut:
    """As the socket's `conversation.close`: the agent's own, or any for supervisors and
    admins; `409 tag_required` when the shop requires a tag and it has none."""
    closed = await ctx.db.run(actions.agent_close, agent, conversation_id, ctx.clock.now())
    return ClosedOut(closed=bool(closed))


@router.post("/uploads", status_code=201)
async def upload(file: UploadFile, caller: CurrentCaller, ctx: Ctx) -> UploadOut:
    limit = ctx.settings.upload_max_bytes
    data = await file.read(limit + 1)
    if isinstance(caller, BuyerIdentity):
        shop_id, owner_kind, owner_id = caller.shop_id, "buyer", caller.buyer_id
    else:
        shop_id, owner_kind, owner_id = caller.shop_id, "agent", caller.id
    stored = await ctx.db.run(
        uploads.store_upload,
        shop_id=shop_id,
        owner_kind=owner_kind,
        owner_id=owner_id,
        data=data,
        max_bytes=limit,
        now=ctx.clock.now(),
    )
    return UploadOut(upload_id=stored.id)


IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")  # what uploads.sniff_image accepts


@router.get(
    "/uploads/{upload_id}",
    response_class=Response,
    responses={
        200: {
            "description": "The image, as uploaded.",
            "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in IMAGE_TYPES},
        }
    },
)
async def get_upload(upload_id: str, request: Request, ctx: Ctx) -> Response:
    """The image, to anyone of the same shop; `?token=` serves <img> tags in the widget."""
    caller = await caller_from_token(request, ctx, request.query_params.get("token"))
    async with ctx.db.read() as s:
        row = (
            await s.execute(
                select(col(Upload.content_type), col(Upload.data)).where(
                    col(Upload.id) == upload_id, col(Upload.shop_id) == caller.shop_id
                )
            )
        ).first()
    if row is None:
        raise NotFound("No such upload.")
    return Response(
        row[1],
        media_type=row[0],
        headers={"Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )
