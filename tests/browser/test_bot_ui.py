"""The shop's assistant in Chromium: the widget's badge, 有帮助 and 转人工 (bot_first), and the
agent's suggested answers in the workbench (assist). Screenshots in test-artifacts/."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator

import httpx
from playwright.async_api import expect
from sqlalchemy import select

from app.chat.actions import close_conversation
from app.chat.models import Conversation
from tests.browser.helpers import (
    agent_online,
    conversation_item,
    demo_buyer_token,
    embed_widget,
    log_in,
    open_widget,
    screenshot,
    widget,
    widget_say,
)


async def close_chats_of(web, buyer_id: str) -> None:
    """Free alice's slot for the other browser tests (they share the demo shop)."""

    async def close(uow):
        rows = await uow.session.execute(
            select(Conversation).where(
                Conversation.buyer_id == buyer_id, Conversation.status != "closed"
            )
        )
        for conv in rows.scalars().all():
            await close_conversation(uow, conv, reason="agent", now=web.ctx.clock.now())

    await web.ctx.db.run(close)


@contextlib.asynccontextmanager
async def bot_mode(web, mode: str) -> AsyncIterator[None]:
    """The demo shop's assistant in `mode` for the test, off again afterwards (the demo's
    default, which the other browser tests expect)."""
    async with httpx.AsyncClient(base_url=web.http, timeout=30) as c:
        r = await c.post(
            "/api/v1/auth/login", json={"shop": "demo", "username": "admin", "password": "demo"}
        )
        auth = {"Authorization": f"Bearer {r.json()['token']}"}
        assert (await c.put("/api/v1/bot/settings", json={"mode": mode}, headers=auth)).is_success
        try:
            yield
        finally:
            await c.put("/api/v1/bot/settings", json={"mode": "off"}, headers=auth)


async def test_widget_badge_feedback_and_handoff_button(web, new_tab):
    async with bot_mode(web, "bot_first"):
        agent = (await new_tab()).page
        await agent_online(agent, web.http, "demo", "alice")
        buyer_id = f"bot-{secrets.token_hex(3)}"
        buyer = (await new_tab(embed=True)).page
        await embed_widget(buyer, web, demo_buyer_token(buyer_id))
        await open_widget(buyer)
        await widget_say(buyer, "请问包邮吗?")
        answer = widget(buyer, ".msg.from-bot")
        await expect(answer.locator(".bubble")).to_contain_text("满99元包邮", timeout=30_000)
        await expect(answer.locator(".bot-badge")).to_have_text("智能助手")
        handoff = widget(buyer, ".handoff")
        await expect(handoff).to_be_visible()
        await expect(handoff).to_have_text("转人工")
        await expect(widget(buyer, ".status-line")).to_have_text("智能助手为您服务中")
        # The assistant holds the chat: alice, online and free, is not given it.
        await expect(conversation_item(agent, buyer_id)).to_have_count(0)
        await screenshot(buyer, "bot-widget-handoff-button")

        await answer.locator(".bot-helpful").click()
        await expect(answer.locator(".bot-feedback")).to_have_text("感谢您的反馈")

        await handoff.click()
        await expect(handoff).to_be_hidden()
        await expect(widget(buyer, ".status-line")).to_have_text("客服 Alice 小艾 为您服务")
        await expect(conversation_item(agent, buyer_id)).to_have_count(1)
        await screenshot(buyer, "bot-widget-after-handoff")
        await close_chats_of(web, buyer_id)


async def test_workbench_suggested_answers_in_assist_mode(web, new_tab):
    async with bot_mode(web, "assist"):
        agent = (await new_tab()).page
        await agent_online(agent, web.http, "demo", "alice")
        buyer_id = f"assist-{secrets.token_hex(3)}"
        buyer = (await new_tab(embed=True)).page
        await embed_widget(buyer, web, demo_buyer_token(buyer_id))
        await open_widget(buyer)
        await widget_say(buyer, "紫砂壶是原矿的吗")
        item = conversation_item(agent, buyer_id)
        await item.click()
        suggestion = agent.locator("#messages .msg.from-buyer .suggestion").first
        await expect(suggestion).to_contain_text("宜兴原矿", timeout=30_000)
        await screenshot(agent, "bot-workbench-suggestions")
        await suggestion.click()
        box = agent.locator("#composer-input")
        await expect(box).to_have_value(
            "我们的紫砂壶都是宜兴原矿泥料手工制作,每把附检测报告和证书。"
        )
        await box.press("Enter")
        await expect(widget(buyer, ".msg.from-agent .text")).to_contain_text("宜兴原矿")
        # The assistant never wrote to the buyer.
        await expect(widget(buyer, ".msg.from-bot")).to_have_count(0)
        await close_chats_of(web, buyer_id)


async def test_console_tab_try_add_and_switch_mode(web, new_tab):
    admin = (await new_tab()).page
    await log_in(admin, web.http, "demo", "admin", "demo")
    await admin.goto(f"{web.http}/console?tab=bot")
    await expect(admin.locator("#bot-faqs tbody tr")).to_have_count(41)  # the demo's entries
    await admin.fill("#bot-try input[name=try]", "包邮不🙏")
    await admin.click("#bot-try button")
    await expect(admin.locator("#bot-matches li").first).to_contain_text("包邮吗")
    await screenshot(admin, "bot-console-try")
    await admin.click("#bot-new summary")
    await admin.fill("#bot-new input[name=question]", "可以开收据吗")
    await admin.fill("#bot-new textarea[name=answer]", "可以,下单备注即可。")
    await admin.click("#bot-new button[type=submit]")
    await expect(admin.locator(".flash.ok")).to_contain_text("可以开收据吗")
    await expect(admin.locator("#bot-faqs tbody tr")).to_have_count(42)
    await admin.select_option("#bot-mode select[name=mode]", "bot_first")
    await admin.click("#bot-mode button")
    await expect(admin.locator(".flash.ok")).to_contain_text("bot_first")
    await admin.select_option("#bot-mode select[name=mode]", "off")
    await admin.click("#bot-mode button")
    await expect(admin.locator(".flash.ok")).to_contain_text("off")
    row = admin.locator("#bot-faqs tbody tr", has_text="可以开收据吗")
    await row.locator("button.danger").click()
    await expect(admin.locator("#bot-faqs tbody tr")).to_have_count(41)
