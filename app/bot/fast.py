"""The bot's common answer, written in the chat's group commit (SQLite).

Most of what a bot in `bot_first` says is one knowledge-base answer to a question it is
sure of, in a conversation it holds. That answer is decided from what this process
already has (the shop's settings and index at a version, the entries' answers: the
`BotEngine`), then written as a `Job` of the `MessageAppender`: many answers share the
transaction of the buyers' messages, five small statements each (look at the
conversation, take the next `seq`, store the message, record the reply, count it) on
the appender's own connection.

The rules are `actions.respond`'s, and the transaction holds SQLite's write lock from
its BEGIN, so what the look sees holds until the commit: the conversation is still the
bot's (a hand-off or an agent taking it is seen), the buyer is not an elder, the
message has no reply yet (one answer per message, whichever node or path comes first),
and the shop's bot is at the version the answer was decided with. Anything else is
handed back (`None`) and takes the full path (`actions.respond`, which knows every case):
a question about the buyer's orders when they have one, a hand-off, an answer below the threshold, a product card, a
conversation that waits for a person (human_first), a newer version.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.bot.matcher import Match, normalise
from app.bot.rules import (
    BOT_FIRST,
    BotSettingsFacts,
    Question,
    handoff_reason,
    is_elder_conversation,
    order_intent,
)
from app.bot.service import FaqAnswer
from app.chat.appender import Done, Stored, append_sqlite, sqlite_time
from app.routing.rules import ELDER_AGE

# Outcomes of the write (`Done.value`): answered, or silent (not the bot's to answer now,
# or answered already).
ANSWERED = "answered"
SILENT = None

_LOOK = (
    "SELECT c.status, c.queue, c.elder, b.elder_mode, b.age, s.version, "
    "bc.conversation_id IS NOT NULL, "
    "EXISTS (SELECT 1 FROM bot_replies r WHERE r.message_id = ?), "
    "? AND EXISTS (SELECT 1 FROM orders o WHERE o.shop_id = c.shop_id AND o.buyer_id = c.buyer_id) "
    "FROM conversations c "
    "LEFT JOIN buyers b ON b.shop_id = c.shop_id AND b.id = c.buyer_id "
    "LEFT JOIN bot_settings s ON s.shop_id = c.shop_id "
    "LEFT JOIN bot_conversations bc ON bc.conversation_id = c.id "
    "WHERE c.id = ? AND c.shop_id = ?"
)
_REPLY = (
    "INSERT INTO bot_replies (message_id, shop_id, conversation_id, question, outcome, faq_id, "
    "score, bot_message_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_COUNT = (
    "INSERT INTO bot_conversations (conversation_id, shop_id, mode, started_at, answers, "
    "low_streak) VALUES (?, ?, ?, ?, 1, 0) ON CONFLICT (conversation_id) DO UPDATE SET "
    "answers = answers + 1, low_streak = 0"
)


@dataclass(frozen=True)
class Plan:
    """A sure answer to a buyer's question, decided at `version` of the shop's bot."""

    question: Question
    top: Match
    body: str
    version: int
    greeting: str
    asks_order: bool  # "where is my order": answered from the buyer's orders if they have any


def plan(
    q: Question,
    settings: BotSettingsFacts,
    matches: list[Match],
    answers: dict[str, FaqAnswer],
    index_version: int,
) -> Plan | None:
    """The answer the bot gives if it holds the conversation, when it is a plain one
    (`respond`'s "answered" with no product card); None: the full path decides."""
    if index_version != settings.version or not matches:
        return None
    top = matches[0]
    if top.score < settings.threshold:
        return None
    text = normalise(q.body)
    # Sure of the answer, so no low-confidence hand-off; the words may still ask for one.
    if handoff_reason(text, settings, low_streak=0, confident=True) is not None:
        return None
    faq = answers.get(top.faq_id)
    if faq is None or faq.product:
        return None
    asks_order = order_intent(text) == "status"
    return Plan(q, top, faq.answer, settings.version, settings.greeting, asks_order)


def write(p: Plan, now: datetime, conn: sqlite3.Connection) -> Done | None:
    """The appender's `Job`: store the answer if the bot still holds the conversation."""
    q = p.question
    look = (q.message_id, p.asks_order, q.conversation_id, q.shop_id)
    row = conn.execute(_LOOK, look).fetchone()
    if row is None:
        return None
    status, queue, elder, elder_mode, age, version, started, replied, has_orders = row
    if replied:
        return Done(SILENT)  # answered already (another node, or the recovery job)
    if status != "bot":
        # Waiting for a person: human_first may cover it (the full path knows); served or
        # closed: not the bot's.
        return None if status == "queued" else Done(SILENT)
    buyer_elder = bool(elder_mode) or (age is not None and age >= ELDER_AGE)
    if is_elder_conversation(elder=bool(elder), queue=queue, buyer_elder=buyer_elder):
        return Done(SILENT)  # never the bot's (PRODUCT.md §2)
    if version != p.version:
        return None  # the shop's bot changed since: decide again with what it is now
    if has_orders:
        return None  # the order card answers it (the full path reads the orders)
    events: list[tuple[str, dict[str, Any]]] = []
    if not started and p.greeting:
        greeted = _say(conn, q, p.greeting, {"bot": {"greeting": True}}, now)
        if greeted is None:
            return None
        events.extend(greeted.events)
    payload = {"bot": {"reply_to": q.message_id, "faq_id": p.top.faq_id, "score": p.top.score}}
    said = _say(conn, q, p.body, payload, now)
    if said is None:
        return None
    events.extend(said.events)
    conn.execute(
        _REPLY,
        (
            q.message_id,
            q.shop_id,
            q.conversation_id,
            q.body[:2000],
            ANSWERED,
            p.top.faq_id,
            p.top.score,
            said.message["id"],
            sqlite_time(now),
        ),
    )
    conn.execute(_COUNT, (q.conversation_id, q.shop_id, BOT_FIRST, sqlite_time(now)))
    return Done(ANSWERED, events)


def _say(
    conn: sqlite3.Connection, q: Question, body: str, payload: dict[str, Any], now: datetime
) -> Stored | None:
    return append_sqlite(
        conn,
        shop_id=q.shop_id,
        conversation_id=q.conversation_id,
        status="bot",
        sender="bot",
        kind="text",
        body=body,
        payload=payload,
        now=now,
    )
