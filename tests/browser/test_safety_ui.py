"""Trust and safety in Chromium: the composer's compliance warning before sending, the
console's rules tab, the quality review page with its scorecard, and the agent's own scores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from playwright.async_api import expect
from sqlalchemy import insert, select

from app.chat.models import Conversation, Message, Rating
from app.db import new_id
from app.demo import DEMO_SLUG
from app.quality import actions as quality_actions
from app.quality.models import QaReview
from app.shops.models import Agent, Shop
from tests.browser.helpers import (
    agent_online,
    buyer_writes,
    conversation_item,
    demo_buyer_token,
    log_in,
    screenshot,
    unique_buyer,
)
from tests.support.words import zh


async def test_the_composer_warns_before_sending(web, new_tab):
    tab = await new_tab()
    agent = tab.page
    await agent_online(agent, web.http, "demo", "alice")
    buyer_id = unique_buyer("rules")
    await buyer_writes(web, demo_buyer_token(buyer_id), "这个杯子什么时候发货?")
    await conversation_item(agent, buyer_id).click()
    warning = agent.locator("#compliance-warning")
    await expect(warning).to_be_hidden()

    await agent.fill("#composer-input", "")
    await agent.locator("#composer-input").press_sequentially(
        "方便的话加 微 信,或打 1 3 8 0 0 1 3 8 0 0 0"
    )
    await expect(warning).to_be_visible()
    await expect(warning).to_have_attribute("data-action", "block")
    await expect(warning).to_contain_text("13800138000")
    await expect(warning).to_contain_text(
        zh("This reply would not be sent: it contains %(found)s.").split("%")[0]
    )
    await screenshot(agent, "safety-composer-block-warning")

    # Sent anyway: refused by the server, nothing reaches the buyer; the warning stays.
    await agent.locator("#composer-input").press("Enter")
    await expect(agent.locator("#messages .failed")).to_have_count(1)
    await expect(warning).to_have_attribute("data-action", "block")

    await agent.fill("#composer-input", "")
    await agent.locator("#composer-input").press_sequentially("款式可以看 www.othershop.com")
    await expect(warning).to_have_attribute("data-action", "flag")
    await screenshot(agent, "safety-composer-flag-warning")
    await agent.fill("#composer-input", "")
    await agent.locator("#composer-input").press_sequentially("明天就发货,请放心")
    await expect(warning).to_be_hidden()


async def test_the_console_rules_tab(web, new_tab):
    admin = (await new_tab()).page
    await log_in(admin, web.http, "demo", "admin", "demo")
    await admin.goto(f"{web.http}/console?tab=compliance")
    await expect(admin.locator("#default-rules [data-rule=phone_number]")).to_be_visible()
    await admin.fill("#rules-text", "返利群, block, custom\n私人微信群, flag, contact")
    await admin.click("#rules-save")
    await expect(admin.locator(".flash.ok")).to_be_visible()
    # Stored and shown again in word order.
    await expect(admin.locator("#rules-text")).to_have_value(
        "私人微信群, flag, contact\n返利群, block, custom"
    )
    await screenshot(admin, "safety-console-rules-tab")
    # A supervisor reads the rules but has no form to change them.
    sup = (await new_tab()).page
    await log_in(sup, web.http, "demo", "sam", "demo")
    await sup.goto(f"{web.http}/console?tab=compliance")
    await expect(sup.locator("#own-rules")).to_contain_text("返利群")
    await expect(sup.locator("#rules-form")).to_have_count(0)


async def _a_low_rated_conversation_of(web, username: str) -> str:
    """A conversation `username` closed yesterday, rated 1 by its buyer: up for review."""
    now = datetime.now(UTC)
    at = now - timedelta(days=1)
    conv_id = new_id()
    db = web.ctx.db
    async with db.read() as s:
        shop = (await s.execute(select(Shop).where(Shop.slug == DEMO_SLUG))).scalar_one()
        agent_id = (
            await s.execute(
                select(Agent.id).where(Agent.shop_id == shop.id, Agent.username == username)
            )
        ).scalar_one()

    async def write(uow):
        await uow.session.execute(
            insert(Conversation),
            [
                Conversation(
                    id=conv_id, shop_id=shop.id, buyer_id=unique_buyer("qa"), status="closed",
                    agent_id=agent_id, opened_at=at, assigned_at=at, closed_at=at + timedelta(minutes=5),
                    close_reason="agent", last_seq=2,
                ).model_dump()
            ],
        )  # fmt: skip
        for seq, (sender, body) in enumerate(
            (("buyer", "杯子碎了"), ("agent", "抱歉,马上补发")), 1
        ):
            uow.session.add(
                Message(
                    shop_id=shop.id, conversation_id=conv_id, seq=seq, sender=sender,
                    sender_id=agent_id if sender == "agent" else "b", kind="text", body=body,
                    payload={}, created_at=at + timedelta(minutes=seq),
                )
            )  # fmt: skip
        uow.session.add(
            Rating(
                conversation_id=conv_id,
                shop_id=shop.id,
                buyer_id="b",
                agent_id=agent_id,
                score=1,
                created_at=at,
            )
        )

    await db.run(write)
    await db.run(quality_actions.draw_for_shop, shop.id, now)
    async with db.read() as s:
        return (
            await s.execute(select(QaReview.id).where(QaReview.conversation_id == conv_id))
        ).scalar_one()


async def test_the_qa_review_page_and_the_agents_own_scores(web, new_tab):
    review_id = await _a_low_rated_conversation_of(web, "alice")
    sup = (await new_tab()).page
    await log_in(sup, web.http, "demo", "sam", "demo")
    await sup.goto(f"{web.http}/console?tab=quality&review={review_id}")
    await expect(sup.locator(f'.group-list [data-review="{review_id}"]')).to_be_visible()
    await expect(sup.locator("#qa-conversation")).to_contain_text("杯子碎了")
    # Up for review for its rating, not merely drawn in the daily sample.
    await expect(sup.locator("#qa-detail .detail-head .chip")).to_have_text(zh("rated 1–2"))
    card = sup.locator("#scorecard")
    await expect(card.locator("input[type=number]")).to_have_count(5)
    await expect(card).to_contain_text(zh("Greeting"))
    for key, value in (
        ("greeting", "8"),
        ("accuracy", "25"),
        ("attitude", "18"),
        ("resolution", "20"),
        ("compliance", "10"),
    ):
        await card.locator(f"input[name=score_{key}]").fill(value)
    await card.locator("textarea[name=comment]").fill("补发及时,道歉到位")
    await screenshot(sup, "safety-qa-review-scorecard")
    await sup.click("#score-save")
    await expect(sup.locator(f'#qa-done [data-review="{review_id}"]')).to_contain_text("81 / 100")
    await screenshot(sup, "safety-qa-scored")

    alice = (await new_tab()).page
    await log_in(alice, web.http, "demo", "alice", "demo")
    await alice.click("#my-scores-link")
    mine = alice.locator(f'.scorecard-view[data-review="{review_id}"]')
    await expect(mine.locator(".score-total")).to_have_text("81 / 100")
    await expect(mine).to_contain_text("补发及时,道歉到位")
    await expect(mine.locator("[data-item=accuracy]")).to_contain_text("25 / 30")
    await screenshot(alice, "safety-agent-own-scores")

    # Another agent's page never shows alice's scorecard.
    bob = (await new_tab()).page
    await log_in(bob, web.http, "demo", "bob", "demo")
    await bob.goto(f"{web.http}/workbench/scores")
    await expect(bob.locator(f'[data-review="{review_id}"]')).to_have_count(0)
