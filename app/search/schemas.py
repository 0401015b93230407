"""Typed HTTP shapes of search (docs/protocol-notes.md)."""

from __future__ import annotations

from pydantic import BaseModel

from app.chat.models import Conversation, Message
from app.chat.schemas import iso


class SearchHit(BaseModel):
    message_id: str
    conversation_id: str
    seq: int  # open the conversation at this message
    sender: str
    sender_id: str | None
    kind: str
    created_at: str | None
    highlight: str  # HTML: the text escaped, each hit in <mark>
    buyer_id: str
    buyer_name: str
    agent_id: str | None
    agent_name: str | None
    queue: str
    status: str
    tags: list[str]


class SearchResults(BaseModel):
    q: str
    hits: list[SearchHit]  # newest first
    next_cursor: str | None  # pass as ?cursor= for the next page; None: no more
    partial: bool  # 1-2 character queries: this page ended on the scan budget, not on hits
    indexed: bool  # served by the text index (3+ characters) rather than the bounded scan


def search_hit(
    m: Message,
    c: Conversation,
    *,
    highlight: str,
    buyer_name: str,
    agent_name: str | None,
    tags: list[str],
) -> SearchHit:
    return SearchHit(
        message_id=m.id,
        conversation_id=c.id,
        seq=m.seq,
        sender=m.sender,
        sender_id=m.sender_id,
        kind=m.kind,
        created_at=iso(m.created_at),
        highlight=highlight,
        buyer_id=c.buyer_id,
        buyer_name=buyer_name,
        agent_id=c.agent_id,
        agent_name=agent_name,
        queue=c.queue,
        status=c.status,
        tags=tags,
    )
