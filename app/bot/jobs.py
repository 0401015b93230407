"""The bot's periodic job: answer the buyer messages it should have answered but has not.

The bot answers a buyer's message after the message is committed and acked, in the
background (`bot.ws.after_buyer_message`), so a node that dies in between leaves the
message unanswered. No outbox row is needed to find it: in a conversation the bot holds
(status 'bot'), every buyer text gets a `bot_replies` row in the transaction that
answers it (answered, order, fallback or hand-off), so a buyer text with none is
pending. This job, on every node and worker, answers those a little older than the
live path takes (`PENDING_AFTER_S`) and not so old that an answer would be late
(`PENDING_WITHIN_S`), through the full path (`actions.respond`): the reply row is
claimed first, so whichever of the live path, this job on any node, or a second
run comes first answers, and the others write nothing.
"""

from __future__ import annotations

import logging
import weakref
from datetime import timedelta

from app.bot import actions, service
from app.bot.engine import BotEngine
from app.db import Database
from app.scheduler import JobContext

log = logging.getLogger(__name__)

BOT_PENDING_JOB = "bot_pending_answers"
BOT_PENDING_EVERY_S = 10.0
PENDING_AFTER_S = 5.0
PENDING_WITHIN_S = 600.0
PENDING_BATCH = 200

# The job's own cache of the shops' bots, one per database (a worker has no app context).
_engines: weakref.WeakKeyDictionary[Database, BotEngine] = weakref.WeakKeyDictionary()


def _engine(db: Database) -> BotEngine:
    engine = _engines.get(db)
    if engine is None:
        engine = _engines[db] = BotEngine(db)
    return engine


async def answer_pending(ctx: JobContext) -> int:
    """Answer the pending buyer messages (oldest first); returns how many were answered."""
    now = ctx.clock.now()
    async with ctx.db.read() as s:
        pending = await service.pending_questions(
            s,
            since=now - timedelta(seconds=PENDING_WITHIN_S),
            before=now - timedelta(seconds=PENDING_AFTER_S),
            limit=PENDING_BATCH,
        )
    engine = _engine(ctx.db)
    answered = 0
    for q in pending:
        try:
            settings = await engine.settings(q.shop_id)
            if not settings.ever_on:
                continue
            async with ctx.db.read() as s:
                is_open = await service.shop_is_open(s, q.shop_id, now)
            index = await engine.index(q.shop_id, settings.version)
            outcome = await ctx.db.run(
                actions.respond, q, index.match_memo(q.body), settings, now, is_open=is_open
            )
        except Exception:
            log.exception("answering pending message %s failed; will retry", q.message_id)
            continue
        answered += outcome is not None
    if answered:
        log.info("the bot answered %d pending messages", answered)
    return answered
