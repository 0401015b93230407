"""Typed HTTP shapes of stored mentions (docs/protocol-notes.md, "Desk gaps")."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from app.chat.schemas import MessagePublic
from app.shops.models import Agent


class MentionAuthor(BaseModel):
    id: str
    username: str
    display_name: str


class MentionPublic(BaseModel):
    """MENTION: a note that named the caller, as the live `note.mention` frame tells it,
    with when it was read (null: unread)."""

    mention_id: str
    conversation_id: str
    buyer_id: str
    buyer_name: str
    by: MentionAuthor
    message: MessagePublic
    created_at: str
    read_at: str | None


def mention_wire(
    *,
    mention_id: str,
    conversation_id: str,
    buyer_id: str,
    buyer_name: str,
    author: Agent,
    message: dict[str, Any],
) -> dict[str, Any]:
    """What a colleague is told of a mention: the live frame's body and a MENTION's."""
    return {
        "mention_id": mention_id,
        "conversation_id": conversation_id,
        "buyer_id": buyer_id,
        "buyer_name": buyer_name,
        "by": {"id": author.id, "username": author.username, "display_name": author.display_name},
        "message": message,
    }
