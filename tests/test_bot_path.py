"""Issue 18's message path with the bot, over real sockets: the bot's answers on the chat's
group commit (SQLite) and what that path hands back, a pending answer recovered after a
node died between the ack and the answer, a supervisor's transfer ending the bot's hold,
and the console's refusals in both languages."""

from __future__ import annotations

import asyncio
import json

import httpx
from sqlalchemy import select

from app.bot import actions as bot_actions
from app.bot import ws as bot_ws
from app.bot.jobs import BOT_PENDING_JOB, PENDING_AFTER_S, PENDING_WITHIN_S
from app.bot.models import BotConversation, BotFaq, BotReply
from app.chat.models import Message
from app.db import UnitOfWork
from tests.conftest import buyer, online_agent
from tests.support.factories import PASSWORD
from tests.test_bot import bot_reply, bot_shop, conv_row, count, say

__all__ = ["bot_shop"]  # the fixture, shared with test_bot


async def bot_messages(server, conversation_id: str) -> list[Message]:
    async with server.ctx.db.read() as s:
        rows = await s.execute(
            select(Message)
            .where(Message.conversation_id == conversation_id, Message.sender == "bot")
            .order_by(Message.seq)
        )
        return list(rows.scalars())


async def test_many_answers_share_the_chats_group_commit(server, bot_shop, connect):
    await bot_shop.settings(mode="bot_first", greeting="您好")
    appender = server.ctx.appender
    jobs_before = appender.jobs
    buyers = [await buyer(server, bot_shop.kit, connect) for _ in range(6)]
    asked = await asyncio.gather(*(say(b, "包邮吗", f"c-{i}") for i, b in enumerate(buyers)))
    for b, q in zip(buyers, asked, strict=True):
        greeting = await bot_reply(b)
        answer = await bot_reply(b)
        assert greeting["body"] == "您好" and greeting["payload"] == {"bot": {"greeting": True}}
        assert answer["body"] == "满99元包邮。" and answer["payload"]["bot"]["reply_to"] == q["id"]
        assert (greeting["seq"], answer["seq"]) == (q["seq"] + 1, q["seq"] + 2)
        assert answer["sender_id"] is None and answer["client_msg_id"] is None
        stored = await bot_messages(server, q["conversation_id"])
        assert [m.id for m in stored] == [greeting["id"], answer["id"]]
        assert stored[1].created_at.isoformat().startswith(answer["created_at"][:19])
        async with server.ctx.db.read() as s:
            reply = await s.get(BotReply, q["id"])
            held = await s.get(BotConversation, q["conversation_id"])
        assert (reply.outcome, reply.bot_message_id, reply.faq_id) == (
            "answered",
            answer["id"],
            answer["payload"]["bot"]["faq_id"],
        )
        assert (held.mode, held.answers, held.low_streak) == ("bot_first", 1, 0)
        # A second question in the same conversation: no second greeting.
        await say(b, "可以退换吗", f"again-{q['id']}")
        assert (await bot_reply(b))["body"] == "支持7天无理由退换。"
    # SQLite: every answer was a job of the group commit; PostgreSQL: the full path.
    joined = appender.jobs - jobs_before
    assert joined == (12 if server.ctx.db.is_sqlite else 0)
    assert await count(server, BotReply, BotReply.shop_id == bot_shop.kit.shop_id) == 12


async def test_an_answer_decided_at_an_old_version_is_decided_again(server, bot_shop, connect):
    """A node that missed the bus's news of a change (its cache still at the old version)
    must not answer with the old entry: the write sees the newer version and hands back."""
    await bot_shop.settings(mode="bot_first")
    b = await buyer(server, bot_shop.kit, connect)
    await say(b, "包邮吗")
    assert (await bot_reply(b))["body"] == "满99元包邮。"
    async with server.ctx.db.read() as s:
        faq = (
            await s.execute(
                select(BotFaq).where(
                    BotFaq.shop_id == bot_shop.kit.shop_id, BotFaq.question == "包邮吗"
                )
            )
        ).scalar_one()
    # Changed and committed, but never announced (no publish: a missed bus message).
    async with server.ctx.db.write_sessionmaker() as session, session.begin():
        uow = UnitOfWork(session, server.ctx.db.dialect)
        await bot_actions.update_faq(
            uow, bot_shop.kit.shop_id, faq.id, {"answer": "全场包邮。"}, server.ctx.clock.now()
        )
    await say(b, "运费多少")
    assert (await bot_reply(b))["body"] == "全场包邮。"


async def test_a_pending_answer_is_given_after_the_node_died_before_answering(
    server, bot_shop, connect, monkeypatch
):
    await bot_shop.settings(mode="bot_first")
    b = await buyer(server, bot_shop.kit, connect)
    first = await say(b, "包邮吗")
    assert (await bot_reply(b))["body"] == "满99元包邮。"
    # The node acks the next message, then dies before the bot answers it.
    with monkeypatch.context() as m:
        m.setattr(bot_ws, "after_buyer_message", lambda *args: None)
        lost = await say(b, "可以退换吗")
    await asyncio.sleep(0.3)
    assert not [
        x for x in b.new_messages() if x["payload"].get("bot", {}).get("reply_to") == lost["id"]
    ]
    jobs = server.ctx.jobs
    assert await jobs.run_once(BOT_PENDING_JOB) == 0  # too fresh: the live path may be on it
    server.clock.advance(seconds=PENDING_AFTER_S + 1)
    assert await jobs.run_once(BOT_PENDING_JOB) == 1
    answer = await bot_reply(b)
    assert answer["body"] == "支持7天无理由退换。"
    assert answer["payload"]["bot"]["reply_to"] == lost["id"]
    # Once: neither the job again nor the live path answers it a second time.
    assert await jobs.run_once(BOT_PENDING_JOB) == 0
    assert await bot_ws.answer(server.ctx, _question(bot_shop, lost)) is None
    stored = await bot_messages(server, first["conversation_id"])
    assert [m.payload["bot"]["reply_to"] for m in stored] == [first["id"], lost["id"]]


async def test_a_pending_answer_too_old_is_left_alone(server, bot_shop, connect, monkeypatch):
    await bot_shop.settings(mode="bot_first")
    b = await buyer(server, bot_shop.kit, connect)
    with monkeypatch.context() as m:
        m.setattr(bot_ws, "after_buyer_message", lambda *args: None)
        await say(b, "包邮吗")
    server.clock.advance(seconds=PENDING_WITHIN_S + 1)
    assert await server.ctx.jobs.run_once(BOT_PENDING_JOB) == 0


def _question(shop, msg) -> bot_actions.Question:
    return bot_actions.Question(
        shop.kit.shop_id, msg["conversation_id"], msg["id"], "unused", msg["body"]
    )


async def test_a_supervisors_transfer_ends_the_bots_hold(server, bot_shop, connect):
    await bot_shop.settings(mode="bot_first")
    kit = bot_shop.kit
    agent = await online_agent(server, kit, "agent1", connect)
    sup = await online_agent(server, kit, "sup", connect)
    b = await buyer(server, kit, connect)
    q = await say(b, "包邮吗")
    await bot_reply(b)
    conv_id = q["conversation_id"]
    assert (await conv_row(server, conv_id)).handled_by == "bot"

    await sup.send(
        {
            "type": "conversation.transfer",
            "conversation_id": conv_id,
            "to_agent_id": kit.agents["agent1"],
            "note": "",
        }
    )
    off = await b.expect("conversation.handed_off")
    assert off == {
        "type": "conversation.handed_off",
        "conversation_id": conv_id,
        "reason": "transfer",
        "queue": "general",
    }
    assigned = await agent.expect("conversation.assigned")
    assert assigned["conversation"]["handled_by"] == "human"
    mine = await b.expect("conversation.assigned")
    assert mine["conversation"]["handled_by"] == "human"
    row = await conv_row(server, conv_id)
    assert (row.status, row.agent_id, row.handled_by) == ("assigned", kit.agents["agent1"], "human")
    async with server.ctx.db.read() as s:
        held = await s.get(BotConversation, conv_id)
    assert held.handoff_reason == "transfer" and held.handed_off_at is not None
    # A person serves it now: the bot stays silent.
    await say(b, "可以退换吗")
    await asyncio.sleep(0.4)
    assert [m for m in b.new_messages() if m["sender"] == "bot"][1:] == []


async def test_a_transfer_to_a_queue_ends_the_bots_hold(server, bot_shop, connect):
    await bot_shop.settings(mode="bot_first")
    kit = bot_shop.kit
    sup = await online_agent(server, kit, "sup", connect)
    b = await buyer(server, kit, connect)
    q = await say(b, "包邮吗")
    await bot_reply(b)
    await sup.send(
        {
            "type": "conversation.transfer",
            "conversation_id": q["conversation_id"],
            "to_queue": "general",
        }
    )
    assert (await b.expect("conversation.handed_off"))["reason"] == "transfer"
    row = await conv_row(server, q["conversation_id"])
    assert row.handled_by == "human" and row.status in ("queued", "assigned")
    await say(b, "可以退换吗")
    await asyncio.sleep(0.4)
    assert [m for m in b.new_messages() if m["sender"] == "bot"][1:] == []


async def test_the_bot_consoles_refusals_speak_both_languages(server, bot_shop):
    kit = bot_shop.kit
    async with httpx.AsyncClient(base_url=server.http) as c:
        r = await c.post(
            "/api/v1/auth/login",
            json={"shop": kit.slug, "username": "admin", "password": PASSWORD},
        )
        headers = {"X-CSRF-Token": r.json()["csrf_token"], "HX-Request": "true"}

        async def refusal(path: str, lang: str | None = None, **kwargs) -> str:
            params = {"lang": lang} if lang else {}
            r = await c.post(path, params=params, headers=headers, **kwargs)
            assert r.status_code == 200, r.text
            return r.text

        def upload(items) -> dict:
            data = json.dumps(items, ensure_ascii=False).encode()
            return {"file": ("kb.json", data, "application/json")}

        text = await refusal("/console/bot/settings", data={"mode": "bot_first", "threshold": "x"})
        assert "阈值应为 0 到 1 之间的数字。" in text
        text = await refusal("/console/bot/import", files=upload({"question": "q"}))
        assert "CSV 导入文件需要包含 “question” 和 “answer” 的表头行。" in text
        text = await refusal("/console/bot/import", files=upload([{"question": "q"}]))
        assert "第 1 条需要填写问题和答案。" in text
        text = await refusal("/console/bot/faqs", data={"question": "q", "answer": " "})
        assert "条目需要填写问题和答案。" in text
        text = await refusal(
            "/console/bot/import", "en", files={"file": ("kb.csv", b"\xff\xfe", "text/csv")}
        )
        assert "Could not read the file as UTF-8 CSV or JSON." in text
        text = await refusal("/console/bot/import", "en", files=upload([{"question": "q"}]))
        assert "Entry 1 needs a question and an answer." in text
        text = await refusal("/console/bot/faqs/nope/delete", "zh")
        assert "找不到这条记录" in text  # NotFound: the catalogs' label of its code
