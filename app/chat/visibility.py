"""Who sees which message of a conversation: internal notes (内部备注) are for staff only.

A note is numbered in the conversation's own `seq` space like any message, but the buyer
never gets it: not live (it is announced to the conversation's agent only), not in a
`sync`, not over HTTP. The buyer's socket still counts its `seq` as passed (a hidden
stub, never written; see `app.chat.delivery.BuyerLoader`), so the server's gap filling
closes over it, and a `sync` ends with `sync.done` saying how far the buyer now is, so
the widget's own gap filling does not stall below a note either.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement
from sqlmodel import col

from app.chat.models import Conversation, Message
from app.realtime.topics import agent_topic, conversation_sides

NOTE = "note"
STAFF_ONLY_KINDS = frozenset({NOTE})


def buyer_sees(kind: str) -> bool:
    return kind not in STAFF_ONLY_KINDS


def buyer_visible() -> ColumnElement[bool]:
    """The SQL condition for messages the buyer may see (and that count as the chat)."""
    return col(Message.kind).not_in(STAFF_ONLY_KINDS)


def message_topics(conv: Conversation, kind: str) -> list[str]:
    """Who hears of a new message of `kind`: both sides, or for a note only the agent."""
    if buyer_sees(kind):
        return conversation_sides(conv.shop_id, conv.buyer_id, conv.agent_id)
    return [agent_topic(conv.agent_id)] if conv.agent_id else []


def for_buyer(msg: dict[str, Any]) -> dict[str, Any]:
    """MSG as a buyer's socket may have it: itself, or a stub that only holds its place."""
    if buyer_sees(msg["kind"]):
        return msg
    return {"conversation_id": msg["conversation_id"], "seq": msg["seq"], "hidden": True}
