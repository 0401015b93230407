"""The bot on the buyer's socket: whether a new conversation starts with the bot, answering
a buyer's message once it is committed and acked, and the frames `handoff.request` and
`bot.feedback`. Parse → one action → reply; the rules live in actions and rules."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from app.bot import actions, fast, service
from app.bot.rules import Question, bot_holds_new
from app.chat.protocol import get_bool, get_str
from app.context import AppContext
from app.shops.identities import BuyerIdentity

log = logging.getLogger(__name__)


async def prepare(ctx: AppContext, shop_id: str) -> None:
    """Have the shop's bot settings at hand (a read at most every few seconds per shop)."""
    if ctx.bot.cached(shop_id) is None:
        await ctx.bot.settings(shop_id)


def holds(ctx: AppContext, shop_id: str) -> Callable[[str, bool], bool] | None:
    """Whether a conversation opening in (queue, elder) starts with the bot; None when the
    shop's bot is off everywhere (the opening may then take the group commit). Asked right
    after `prepare`: what it read counts, however close to its TTL."""
    facts = ctx.bot.last_known(shop_id)
    if facts is None or not facts.ever_on:
        return None
    return lambda queue, elder: bot_holds_new(facts, queue=queue, elder=elder)


def after_buyer_message(ctx: AppContext, buyer: BuyerIdentity, msg: dict[str, Any]) -> None:
    """The buyer's message is stored and acked: the bot answers it in the background, so
    it never delays the ack. Only plain text is read.

    The settings `prepare` read before the commit may have aged past their TTL by the ack:
    they still say whether the bot is on at all (the answer re-reads the shop's settings
    before it speaks), so a message is never skipped for a cache expiring in between."""
    facts = ctx.bot.last_known(buyer.shop_id)
    if facts is None or not facts.ever_on or msg.get("kind") != "text":
        return
    if msg.get("sender") != "buyer" or not msg.get("conversation_id") or msg.get("group_id"):
        return  # a fan-group message is not the bot's
    question = Question(
        shop_id=buyer.shop_id,
        conversation_id=msg["conversation_id"],
        message_id=msg["id"],
        buyer_id=buyer.buyer_id,
        body=msg.get("body") or "",
    )
    ctx.bot.spawn(answer(ctx, question))


async def answer(ctx: AppContext, q: Question) -> str | None:
    """Answer the buyer's message (the outcome, or None: the bot stays silent).

    A sure, plain answer in a conversation the bot holds is decided from this process's
    cache of the shop's bot and written in the chat's group commit (`fast`); the rest,
    and everything on PostgreSQL, takes the full path (`actions.respond`)."""
    try:
        now = ctx.clock.now()
        settings = await ctx.bot.settings(q.shop_id)
        if not settings.ever_on:
            return None
        if ctx.db.is_sqlite:
            index = await ctx.bot.index(q.shop_id, settings.version)
            answers = ctx.bot.answers(q.shop_id, index)
            p = fast.plan(q, settings, index.match_memo(q.body), answers, index.version)
            if p is not None:
                done = await ctx.appender.join(functools.partial(fast.write, p, now))
                if done is not None:
                    return cast("str | None", done.value)
        return await respond(ctx, q, now)
    except Exception:
        log.exception("the bot could not answer message %s", q.message_id)
        return None


async def respond(ctx: AppContext, q: Question, now: datetime) -> str | None:
    """The full path: read whether the bot may speak, then decide and write in one
    transaction (shared with other grouped writes)."""
    async with ctx.db.read() as s:
        settings = await service.settings_if_bot_may_speak(s, q.shop_id, q.conversation_id)
        if settings is None:
            return None  # a person serves it (or the bot is off for its queue): no write
        is_open = await service.shop_is_open(s, q.shop_id, now)
    index = await ctx.bot.index(q.shop_id, settings.version)
    matches = index.match_memo(q.body)
    outcome: str | None = await ctx.db.run_grouped(
        actions.respond, q, matches, settings, now, is_open=is_open
    )
    return outcome


async def on_handoff_request(session: Any, frame: dict[str, Any]) -> None:
    """`{"type": "handoff.request", "conversation_id"}`: the widget's 转人工 button."""
    await session.ctx.db.run(
        actions.request_handoff, session.buyer, get_str(frame, "conversation_id"), session.now()
    )


async def on_feedback(session: Any, frame: dict[str, Any]) -> None:
    """`{"type": "bot.feedback", "message_id", "helpful": bool}`: 有帮助 / 没帮助."""
    helpful = get_bool(frame, "helpful")
    message_id = get_str(frame, "message_id")
    await session.ctx.db.run(actions.feedback, session.buyer, message_id, helpful)
    session.conn.push({"type": "bot.feedback", "message_id": message_id, "helpful": helpful})


async def on_elder_mode(ctx: AppContext, buyer: BuyerIdentity, on: bool) -> None:
    """Elder mode on: a conversation the bot holds goes to the elderly queue at once."""
    if on:
        await ctx.db.run(actions.elder_mode_on, buyer.shop_id, buyer.buyer_id, ctx.clock.now())
