"""Bot state changes: the knowledge base and settings (each bumps the shop's version and
announces it), answering a buyer's message, handing a conversation over to a human, and
the buyer's feedback on an answer.

One node answers a given buyer message: the answer inserts the `bot_replies` row keyed by
that message first (insert-ignore); the node whose insert loses writes nothing.
The conversation row is locked before anything is decided, so an agent taking the
conversation (human_first) or a hand-off racing the answer is seen as committed.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlmodel import col

from app.bot.engine import BOT_TOPIC
from app.bot.matcher import Match, normalise
from app.bot.models import BotConversation, BotFaq, BotReply, BotSettings
from app.bot.rules import (
    BOT_FIRST,
    ELDERLY_QUEUE,
    FALLBACK_BODY,
    HANDOFF_BODY,
    HUMAN_FIRST,
    MODES,
    BotSettingsFacts,
    OrderFacts,
    Question,
    clean_words,
    handoff_reason,
    human_first_covers,
    is_elder_conversation,
    order_answer,
    order_body,
    order_intent,
)
from app.bot.service import agents_online_for, get_faq
from app.chat.actions import append_message, conversation_for_buyer
from app.chat.models import Conversation
from app.db import UnitOfWork, insert_ignore, rowcount
from app.errors import N_, BadInput, Conflict, NotFound
from app.orders.service import orders_of_buyer
from app.realtime.topics import buyer_topic, shop_staff_topic
from app.routing import actions as routing
from app.routing.rules import ELDER_AGE, OVERFLOW_TO
from app.shops.identities import BuyerIdentity
from app.shops.models import Buyer

MAX_IMPORT = 10_000
MAX_SIMILAR = 50


# ---- knowledge base and settings ---------------------------------------------------------


async def _settings_for_update(uow: UnitOfWork, shop_id: str, now: datetime) -> BotSettings:
    await uow.session.execute(
        insert_ignore(
            uow.dialect,
            BotSettings,
            ["shop_id"],
            {
                "shop_id": shop_id,
                "mode": "off",
                "queue_modes": {},
                "threshold": BotSettingsFacts().threshold,
                "handoff_words": [],
                "anger_words": [],
                "greeting": "",
                "version": 1,
                "updated_at": now,
            },
        )
    )
    row = (
        await uow.session.execute(
            select(BotSettings).where(col(BotSettings.shop_id) == shop_id).with_for_update()
        )
    ).scalar_one()
    return row


async def bump_version(uow: UnitOfWork, shop_id: str, now: datetime) -> int:
    """The shop's bot changed: a new version, announced to every node after commit."""
    await _settings_for_update(uow, shop_id, now)
    version = (
        await uow.session.execute(
            update(BotSettings)
            .where(col(BotSettings.shop_id) == shop_id)
            .values(version=col(BotSettings.version) + 1, updated_at=now)
            .returning(col(BotSettings.version))
            .execution_options(synchronize_session=False)
        )
    ).scalar_one()
    uow.emit(BOT_TOPIC, {"type": "bot.changed", "shop_id": shop_id, "version": version})
    return int(version)


@dataclass(frozen=True)
class FaqInput:
    question: str
    answer: str
    similar: tuple[str, ...] = ()
    category: str | None = None
    enabled: bool = True
    product: dict[str, Any] | None = None


def _clean_similar(similar: Sequence[str]) -> list[str]:
    return clean_words(similar, limit=MAX_SIMILAR, max_len=200)


async def create_faq(uow: UnitOfWork, shop_id: str, data: FaqInput, now: datetime) -> BotFaq:
    faq = BotFaq(
        shop_id=shop_id,
        question=data.question.strip(),
        similar=_clean_similar(data.similar),
        answer=data.answer,
        category=data.category,
        enabled=data.enabled,
        product=data.product,
        created_at=now,
        updated_at=now,
    )
    uow.session.add(faq)
    await uow.session.flush()
    await bump_version(uow, shop_id, now)
    return faq


async def update_faq(
    uow: UnitOfWork, shop_id: str, faq_id: str, changes: dict[str, Any], now: datetime
) -> BotFaq:
    faq = await get_faq(uow.session, shop_id, faq_id)
    if faq is None:
        raise NotFound(N_("No such knowledge-base entry."))
    for key in ("question", "answer", "category", "enabled", "product"):
        if key in changes:
            setattr(faq, key, changes[key].strip() if key == "question" else changes[key])
    if "similar" in changes:
        faq.similar = _clean_similar(changes["similar"])
    faq.updated_at = now
    await uow.session.flush()
    await bump_version(uow, shop_id, now)
    return faq


async def delete_faq(uow: UnitOfWork, shop_id: str, faq_id: str, now: datetime) -> None:
    faq = await get_faq(uow.session, shop_id, faq_id)
    if faq is None:
        raise NotFound(N_("No such knowledge-base entry."))
    await uow.session.delete(faq)
    await bump_version(uow, shop_id, now)


CSV_COLUMNS = ("question", "similar", "answer", "category", "enabled")
SIMILAR_SEP = "|"


def parse_import(data: bytes) -> list[FaqInput]:
    """Entries from an export (JSON array, or CSV with the export's columns; UTF-8, BOM or not)."""
    text = data.decode("utf-8-sig", errors="strict").strip()
    items: list[dict[str, Any]]
    if text.startswith("["):
        loaded = json.loads(text)
        if not isinstance(loaded, list):
            raise BadInput(N_("A JSON import is an array of entries."))
        items = [i for i in loaded if isinstance(i, dict)]
    else:
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is None or "question" not in reader.fieldnames:
            raise BadInput(N_('A CSV import needs a header row with "question" and "answer".'))
        items = []
        for row in reader:
            similar = row.get("similar") or ""
            enabled = (row.get("enabled") or "true").strip().lower()
            items.append(
                {
                    **row,
                    "similar": [s for s in similar.split(SIMILAR_SEP) if s.strip()],
                    "enabled": enabled not in ("false", "0", "no", "否"),
                }
            )
    if len(items) > MAX_IMPORT:
        raise BadInput(
            N_("At most %(max)s entries in one import, but got %(n)s."),
            params={"max": MAX_IMPORT, "n": len(items)},
        )
    out = []
    for n, item in enumerate(items, start=1):
        question = str(item.get("question") or "").strip()[:200]
        answer = str(item.get("answer") or "").strip()[:4000]
        if not question or not answer:
            raise BadInput(N_("Entry %(n)s needs a question and an answer."), params={"n": n})
        similar = item.get("similar") or []
        if not isinstance(similar, list):
            raise BadInput(N_('Entry %(n)s: "similar" is a list of phrasings.'), params={"n": n})
        category = item.get("category")
        out.append(
            FaqInput(
                question=question,
                answer=answer,
                similar=tuple(str(s) for s in similar),
                category=str(category)[:64] if category else None,
                enabled=bool(item.get("enabled", True)),
            )
        )
    return out


async def import_faqs(
    uow: UnitOfWork, shop_id: str, entries: list[FaqInput], now: datetime
) -> tuple[int, int]:
    """Add the entries; one whose question the shop already has replaces that entry's content.
    Returns (added, updated)."""
    existing = {
        f.question: f
        for f in (
            await uow.session.execute(select(BotFaq).where(col(BotFaq.shop_id) == shop_id))
        ).scalars()
    }
    added = updated = 0
    for e in entries:
        faq = existing.get(e.question)
        if faq is None:
            faq = BotFaq(
                shop_id=shop_id, question=e.question, answer="", created_at=now, updated_at=now
            )
            uow.session.add(faq)
            existing[e.question] = faq
            added += 1
        else:
            updated += 1
        faq.similar = _clean_similar(e.similar)
        faq.answer = e.answer
        faq.category = e.category
        faq.enabled = e.enabled
        faq.updated_at = now
    await uow.session.flush()
    await bump_version(uow, shop_id, now)
    return added, updated


DEMO_FAQS = Path(__file__).with_name("demo_faqs.json")


def demo_entries() -> list[FaqInput]:
    """The demo shop's knowledge base (a tea-set store, in Chinese; bench/ measures it)."""
    return parse_import(DEMO_FAQS.read_bytes())


def export_csv(faqs: Sequence[BotFaq]) -> bytes:
    """UTF-8 with a BOM, so Excel opens the Chinese as Chinese."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_COLUMNS)
    for f in faqs:
        w.writerow(
            [
                f.question,
                SIMILAR_SEP.join(f.similar),
                f.answer,
                f.category or "",
                str(f.enabled).lower(),
            ]
        )
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def export_json(faqs: Sequence[BotFaq]) -> bytes:
    items = [
        {
            "question": f.question,
            "similar": list(f.similar),
            "answer": f.answer,
            "category": f.category,
            "enabled": f.enabled,
        }
        for f in faqs
    ]
    return json.dumps(items, ensure_ascii=False, indent=1).encode("utf-8")


async def put_settings(
    uow: UnitOfWork, shop_id: str, changes: dict[str, Any], now: datetime
) -> BotSettings:
    row = await _settings_for_update(uow, shop_id, now)
    if "mode" in changes:
        if changes["mode"] not in MODES:
            raise BadInput(
                N_('"mode" must be one of %(modes)s.'), params={"modes": ", ".join(MODES)}
            )
        row.mode = changes["mode"]
    if "queue_modes" in changes:
        modes = changes["queue_modes"] or {}
        if any(m not in MODES for m in modes.values()):
            raise BadInput(
                N_("Each queue mode must be one of %(modes)s."), params={"modes": ", ".join(MODES)}
            )
        row.queue_modes = {str(q)[:64]: m for q, m in modes.items()}
    if "threshold" in changes:
        row.threshold = float(changes["threshold"])
    if "handoff_words" in changes:
        row.handoff_words = clean_words(changes["handoff_words"])
    if "anger_words" in changes:
        row.anger_words = clean_words(changes["anger_words"])
    if "greeting" in changes:
        row.greeting = str(changes["greeting"])[:500]
    await uow.session.flush()
    await bump_version(uow, shop_id, now)
    await uow.session.refresh(row)
    return row


# ---- answering -------------------------------------------------------------------------


def _bot_payload(q: Question, match: Match | None, **extra: Any) -> dict[str, Any]:
    bot: dict[str, Any] = {"reply_to": q.message_id}
    if match is not None:
        bot |= {"faq_id": match.faq_id, "score": match.score}
    return {"bot": bot, **extra}


async def _say(
    uow: UnitOfWork,
    conv: Conversation,
    body: str,
    payload: dict[str, Any],
    now: datetime,
    kind: str = "text",
) -> str:
    msg, _ = await append_message(
        uow, conv, sender="bot", sender_id=None, kind=kind, body=body, payload=payload, now=now
    )
    return msg.id


async def _buyer_is_elder(uow: UnitOfWork, shop_id: str, buyer_id: str) -> bool:
    buyer = await uow.session.get(Buyer, (shop_id, buyer_id))
    if buyer is None:
        return False
    return buyer.elder_mode or (buyer.age is not None and buyer.age >= ELDER_AGE)


async def _bot_conversation(
    uow: UnitOfWork, conv: Conversation, mode: str, now: datetime
) -> tuple[BotConversation, bool]:
    """The conversation's bot record, created on the bot's first word (True: just now)."""
    result = await uow.session.execute(
        insert_ignore(
            uow.dialect,
            BotConversation,
            ["conversation_id"],
            {
                "conversation_id": conv.id,
                "shop_id": conv.shop_id,
                "mode": mode,
                "started_at": now,
                "answers": 0,
                "low_streak": 0,
            },
        )
    )
    row = await uow.session.get(BotConversation, conv.id, populate_existing=True)
    assert row is not None  # inserted or already there
    return row, rowcount(result) == 1


async def respond(
    uow: UnitOfWork,
    q: Question,
    matches: Sequence[Match],
    settings: BotSettingsFacts,
    now: datetime,
    *,
    is_open: bool = True,
) -> str | None:
    """Answer the buyer's message if the bot speaks in this conversation now; the outcome
    (answered, order, fallback, handoff), or None when the bot stays silent."""
    s = uow.session
    conv = await s.get(
        Conversation, q.conversation_id, with_for_update=True, populate_existing=True
    )
    if conv is None or conv.shop_id != q.shop_id or conv.status == "closed":
        return None
    if is_elder_conversation(
        elder=conv.elder,
        queue=conv.queue,
        buyer_elder=await _buyer_is_elder(uow, q.shop_id, q.buyer_id),
    ):
        return None  # never the bot's (PRODUCT.md §2), in any mode
    mode = settings.mode_for(conv.queue)
    if conv.status == "bot":
        held = True
    elif conv.status == "queued" and mode == HUMAN_FIRST:
        online = await agents_online_for(s, conv.shop_id, conv.queue)
        if not human_first_covers(waiting=True, agents_online=online, is_open=is_open):
            return None
        held = False
    else:
        return None
    text = normalise(q.body)
    top = matches[0] if matches else None
    confident = top is not None and top.score >= settings.threshold
    reply = {
        "message_id": q.message_id,
        "shop_id": q.shop_id,
        "conversation_id": conv.id,
        "question": q.body[:2000],
        "outcome": "pending",
        "faq_id": top.faq_id if top else None,
        "score": top.score if top else 0.0,
        "created_at": now,
    }
    claimed = await s.execute(insert_ignore(uow.dialect, BotReply, ["message_id"], reply))
    if rowcount(claimed) != 1:
        return None  # another node answers it
    record, started = await _bot_conversation(uow, conv, BOT_FIRST if held else HUMAN_FIRST, now)
    if started and settings.greeting:
        await _say(uow, conv, settings.greeting, {"bot": {"greeting": True}}, now)

    outcome: str
    said: str | None = None
    low_streak = record.low_streak
    reason = (
        handoff_reason(text, settings, low_streak=low_streak, confident=confident) if held else None
    )
    intent = order_intent(text)
    order_reply = None
    if reason is None and intent == "status":
        orders = await orders_of_buyer(s, q.shop_id, q.buyer_id)
        order_reply = order_answer(
            [OrderFacts(o.order_id, o.status, o.created_at, o.ship_by) for o in orders]
        )
    if reason is not None:
        await handoff(uow, conv, reason, now)
        outcome = "handoff"
    elif order_reply is not None:
        code, params = order_reply
        said = await _say(
            uow,
            conv,
            order_body(code, params),
            _bot_payload(q, None, order_id=params["order_id"], notice=code, params=params),
            now,
            kind="order_card",
        )
        outcome, low_streak = "order", 0
    elif confident and top is not None and (faq := await get_faq(s, q.shop_id, top.faq_id)):
        said = await _say(uow, conv, faq.answer, _bot_payload(q, top), now)
        if faq.product:
            await _say(
                uow,
                conv,
                faq.product.get("title", ""),
                _bot_payload(q, top, **faq.product),
                now,
                "product_card",
            )
        outcome, low_streak = "answered", 0
    elif held:
        said = await _say(
            uow, conv, FALLBACK_BODY, _bot_payload(q, None, notice="bot_fallback", params={}), now
        )
        outcome, low_streak = "fallback", low_streak + 1
    else:
        outcome = "unmatched"  # human_first: the buyer waits for a person; noted for the shop
    await s.execute(
        update(BotReply)
        .where(col(BotReply.message_id) == q.message_id)
        .values(outcome=outcome, bot_message_id=said)
    )
    await s.execute(
        update(BotConversation)
        .where(col(BotConversation.conversation_id) == conv.id)
        .values(
            low_streak=low_streak,
            answers=col(BotConversation.answers) + (1 if outcome in ("answered", "order") else 0),
        )
    )
    return outcome


async def handoff(
    uow: UnitOfWork, conv: Conversation, reason: str, now: datetime, *, to_elderly: bool = False
) -> bool:
    """The bot lets go: the conversation joins its queue as of now (its place is the time of
    the hand-off), and routing assigns it as any other. False if the bot did not hold it.

    The conditional UPDATE (status 'bot' → 'queued') makes it happen once, and the
    dispatcher assigns only queued conversations, so no conversation is assigned twice.
    """
    values: dict[str, Any] = {"status": "queued", "handled_by": "human", "queued_at": now}
    if to_elderly:
        values |= {"queue": ELDERLY_QUEUE, "elder": True}
    result = await uow.session.execute(
        update(Conversation)
        .where(col(Conversation.id) == conv.id, col(Conversation.status) == "bot")
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        return False
    await uow.session.refresh(conv)
    await _bot_conversation(uow, conv, BOT_FIRST, now)
    await uow.session.execute(
        update(BotConversation)
        .where(
            col(BotConversation.conversation_id) == conv.id,
            col(BotConversation.handed_off_at).is_(None),
        )
        .values(handed_off_at=now, handoff_reason=reason)
    )
    frame = {
        "type": "conversation.handed_off",
        "conversation_id": conv.id,
        "reason": reason,
        "queue": conv.queue,
    }
    uow.emit_many([buyer_topic(conv.shop_id, conv.buyer_id), shop_staff_topic(conv.shop_id)], frame)
    await append_message(
        uow,
        conv,
        sender="system",
        sender_id=None,
        kind="system",
        body=HANDOFF_BODY,
        payload={"notice": "bot_handed_off", "params": {"reason": reason}},
        now=now,
    )
    await routing.announce_position(uow, conv)
    uow.signal("dispatch", (conv.shop_id, conv.queue))
    if conv.queue in OVERFLOW_TO:
        uow.signal("dispatch", (conv.shop_id, OVERFLOW_TO[conv.queue]))
    return True


async def request_handoff(
    uow: UnitOfWork, buyer: BuyerIdentity, conversation_id: str, now: datetime
) -> None:
    """The buyer pressed 转人工 (frame handoff.request)."""
    conv = await conversation_for_buyer(uow, buyer, conversation_id)
    await uow.session.refresh(conv, with_for_update=True)
    if not await handoff(uow, conv, "button", now):
        raise Conflict(N_("The assistant is not holding this conversation."), code="not_with_bot")


async def elder_mode_on(uow: UnitOfWork, shop_id: str, buyer_id: str, now: datetime) -> bool:
    """The buyer switched to elder mode: a conversation the bot holds goes to the elderly queue."""
    conv = (
        (
            await uow.session.execute(
                select(Conversation).where(
                    col(Conversation.shop_id) == shop_id,
                    col(Conversation.buyer_id) == buyer_id,
                    col(Conversation.status) == "bot",
                )
            )
        )
        .scalars()
        .first()
    )
    if conv is None:
        return False
    return await handoff(uow, conv, "elder", now, to_elderly=True)


async def feedback(uow: UnitOfWork, buyer: BuyerIdentity, message_id: str, helpful: bool) -> None:
    """The buyer's 有帮助 / 没帮助 on one of the bot's answers to them (the last word counts)."""
    reply = (
        (
            await uow.session.execute(
                select(BotReply).where(
                    col(BotReply.bot_message_id) == message_id,
                    col(BotReply.shop_id) == buyer.shop_id,
                )
            )
        )
        .scalars()
        .first()
    )
    if reply is None:
        raise NotFound(N_("No such answer."))
    await conversation_for_buyer(uow, buyer, reply.conversation_id)  # theirs, or not found
    reply.helpful = helpful
    await uow.session.flush()
