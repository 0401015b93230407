"""Typed HTTP shapes of the buyer's history (docs/protocol-notes.md)."""

from __future__ import annotations

from pydantic import BaseModel

from app.chat.schemas import iso
from app.history.service import Summary


class HistoryEntry(BaseModel):
    """One of the buyer's conversations, summed up for the buyer panel."""

    id: str
    status: str
    queue: str
    opened_at: str | None
    closed_at: str | None
    agent_id: str | None
    agent_name: str | None
    rating: int | None  # the buyer's 1-5, or None
    first_line: str  # the buyer's first message, on one line
    tags: list[str]
    messages: int  # how many messages it holds (its last seq)


class HistoryPage(BaseModel):
    buyer_id: str
    conversations: list[HistoryEntry]  # newest first
    next_before: str | None  # pass as ?before= for older ones; None: no more


def history_entry(s: Summary) -> HistoryEntry:
    c = s.conversation
    return HistoryEntry(
        id=c.id,
        status=c.status,
        queue=c.queue,
        opened_at=iso(c.opened_at),
        closed_at=iso(c.closed_at),
        agent_id=c.agent_id,
        agent_name=s.agent_name,
        rating=s.rating,
        first_line=s.first_line,
        tags=s.tags,
        messages=c.last_seq,
    )
