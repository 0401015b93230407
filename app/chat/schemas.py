"""Wire shapes of PROTOCOL.md: MSG and CONV as the clients see them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from app.chat.models import Conversation, Message


def iso(dt: Any) -> str | None:
    return dt.isoformat() if dt is not None else None


def message_public(m: Message) -> dict[str, Any]:
    return message_wire(
        id=m.id,
        conversation_id=m.conversation_id,
        seq=m.seq,
        sender=m.sender,
        sender_id=m.sender_id,
        kind=m.kind,
        body=m.body,
        payload=m.payload,
        created_at=m.created_at,
        client_msg_id=m.client_msg_id,
    )


def message_wire(
    *,
    id: str,
    conversation_id: str,
    seq: int,
    sender: str,
    sender_id: str | None,
    kind: str,
    body: str,
    payload: dict[str, Any] | None,
    created_at: Any,
    client_msg_id: str | None,
) -> dict[str, Any]:
    """MSG, from its fields (also for messages written without an ORM object: the group commit)."""
    return {
        "id": id,
        "conversation_id": conversation_id,
        "seq": seq,
        "sender": sender,
        "sender_id": sender_id,
        "kind": kind,
        "body": body,
        "payload": payload or {},
        "created_at": iso(created_at),
        "client_msg_id": client_msg_id,
    }


def queued_frame(conversation_id: str, queue: str, position: int) -> dict[str, Any]:
    """PROTOCOL `conversation.queued`: where a waiting conversation stands (1 = next)."""
    return {
        "type": "conversation.queued",
        "conversation_id": conversation_id,
        "queue": queue,
        "position": position,
    }


def conversation_public(
    c: Conversation,
    *,
    shop_slug: str,
    agent_name: str | None,
    buyer: tuple[str, int | None] = ("", None),
    tags: list[str] | None = None,
) -> dict[str, Any]:
    """CONV; `tags` (the staff's labels, app/tags) only on staff copies: None leaves it out."""
    public: dict[str, Any] = {
        "id": c.id,
        "shop": shop_slug,
        "buyer_id": c.buyer_id,
        "buyer_name": buyer[0],
        "buyer_vip": buyer[1],
        "queue": c.queue,
        # A conversation the bot holds is stored as "bot" and shown as waiting (it is not
        # yet any agent's); `handled_by` says who answers it (docs/protocol-notes.md).
        "status": "queued" if c.status == "bot" else c.status,
        "handled_by": c.handled_by,
        "agent_id": c.agent_id,
        "agent_name": agent_name if c.agent_id else None,
        "elder": c.elder,
        "opened_at": iso(c.opened_at),
        "assigned_at": iso(c.assigned_at),
        "closed_at": iso(c.closed_at),
        "last_seq": c.last_seq,
        "buyer_read_seq": c.buyer_read_seq,
        "agent_read_seq": c.agent_read_seq,
    }
    if tags is not None:
        public["tags"] = tags
    return public


# ---- the same shapes as models, for the API's response declarations ----------------------


class MessagePublic(BaseModel):
    """MSG of PROTOCOL.md. Times are ISO 8601 strings with their offset, as sent."""

    id: str
    conversation_id: str | None
    seq: int
    sender: str
    sender_id: str | None
    kind: str
    body: str
    payload: dict[str, Any]
    created_at: str | None
    client_msg_id: str | None


class ConversationPublic(BaseModel):
    """CONV of PROTOCOL.md, with the buyer's name and VIP level for the workbench."""

    id: str
    shop: str
    buyer_id: str
    buyer_name: str
    buyer_vip: int | None
    queue: str
    status: str
    agent_id: str | None
    agent_name: str | None
    elder: bool
    opened_at: str | None
    assigned_at: str | None
    closed_at: str | None
    last_seq: int
    buyer_read_seq: int
    agent_read_seq: int
    tags: list[str] = []  # the conversation's tag names (app/tags), sorted
    # Waited as 留言 (nobody could answer): {"reason", "since", "opens_at"}; else null.
    left_message: dict[str, Any] | None = None
    handled_by: str = "human"


class UploadOut(BaseModel):
    upload_id: str
