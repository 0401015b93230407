"""Issue 17's last desk gaps in Chromium, through a real server: a colleague offline when
@mentioned in a note finds the mention in their workbench when they log in later, and a
supervisor reads the conversation in the console, the note styled apart (zh-CN, English)."""

from __future__ import annotations

from datetime import UTC, datetime

from playwright.async_api import expect
from sqlalchemy import select
from sqlmodel import col

from app.chat.models import Conversation
from app.tags.models import ConversationTag, Tag
from tests.browser.helpers import (
    DEMO_PASSWORD,
    agent_online,
    buyer_asks,
    conversation_item,
    log_in,
    screenshot,
    unique_buyer,
)
from tests.browser.test_phrases_notes_ui import close_chat
from tests.support.words import en, zh


async def conversation_of(web, buyer_id: str) -> tuple[str, str]:
    """(conversation id, shop id) of the buyer's one conversation."""
    async with web.ctx.db.read() as s:
        row = await s.execute(
            select(col(Conversation.id), col(Conversation.shop_id)).where(
                col(Conversation.buyer_id) == buyer_id
            )
        )
        conv_id, shop_id = row.one()
        return str(conv_id), str(shop_id)


async def tag_conversation(web, shop_id: str, conv_id: str, name: str) -> None:
    async def tag(uow):
        t = Tag(shop_id=shop_id, name=name, created_at=datetime.now(UTC))
        uow.session.add(t)
        await uow.session.flush()
        uow.session.add(
            ConversationTag(
                shop_id=shop_id, conversation_id=conv_id, tag_id=t.id, created_at=t.created_at
            )
        )

    await web.ctx.db.run(tag)


async def test_a_mention_waits_for_the_colleague_and_the_console_shows_the_note(web, new_tab):
    alice = (await new_tab()).page
    await agent_online(alice, web.http, "demo", "alice")
    buyer_id = unique_buyer("waits")
    buyer = (await new_tab(embed=True)).page
    await buyer_asks(buyer, web, buyer_id, "我要退款,东西坏了")
    await conversation_item(alice, buyer_id).click()

    # Sam is not signed in anywhere when Alice names him.
    await alice.check("#note-mode")
    box = alice.locator("#composer-input")
    secret = "@Sam 主管 这位买家第二次退款了 <b>请看</b>"
    await box.fill(secret)
    await box.press("Enter")
    await expect(alice.locator("#messages .msg.kind-note .text")).to_have_text(secret)
    await alice.uncheck("#note-mode")
    await box.fill("亲,马上为您处理")
    await box.press("Enter")
    await expect(alice.locator("#messages .msg.from-agent:not(.kind-note) .text")).to_have_text(
        "亲,马上为您处理"
    )

    # Later Sam logs in: the mention waited for him.
    sam = (await new_tab()).page
    await log_in(sam, web.http, "demo", "sam", DEMO_PASSWORD)
    await expect(sam.locator("#mentions-panel")).to_be_visible()
    mine = sam.locator("#mention-list .mention", has_text="第二次退款了")
    await expect(mine.locator(".mention-text")).to_have_text(secret)
    await expect(mine.locator(".mention-head")).to_contain_text("Alice 小艾")
    await screenshot(sam, "mention-waited-for-colleague")
    # Marked read, it is gone, and stays gone after a reload.
    await mine.locator(".mention-read").click()
    await expect(mine).to_have_count(0)
    await sam.reload()
    await expect(sam.locator("body[data-connected=true]")).to_have_count(1)
    await expect(sam.locator("#mention-list .mention", has_text="第二次退款了")).to_have_count(0)

    # Sam reads the conversation in the console: the note apart, its text as written.
    conv_id, shop_id = await conversation_of(web, buyer_id)
    tag = f"退款-{buyer_id[-4:]}"
    await tag_conversation(web, shop_id, conv_id, tag)
    await sam.goto(f"{web.http}/console/conversations/{conv_id}")
    note = sam.locator("#conversation-messages .msg.kind-note")
    await expect(note.locator(".text")).to_have_text(secret)
    await expect(note.locator(".note-label")).to_have_text(zh("Internal note"))
    bubble = await note.locator(".bubble").evaluate("b => getComputedStyle(b).backgroundColor")
    plain = sam.locator("#conversation-messages .msg.from-agent.kind-text .bubble")
    plain_bg = await plain.evaluate("b => getComputedStyle(b).backgroundColor")
    assert bubble == "rgb(255, 248, 219)" and plain_bg != bubble
    await expect(sam.locator("#conversation-messages .msg.from-buyer .text")).to_have_text(
        "我要退款,东西坏了"
    )
    await expect(sam.locator("#conversation-tags")).to_have_text(tag)
    await screenshot(sam, "console-conversation-note")
    await sam.goto(f"{web.http}/console/conversations/{conv_id}?lang=en")
    await expect(note.locator(".note-label")).to_have_text(en("Internal note"))
    await screenshot(sam, "console-conversation-note-en")

    # The 体验分 tab for that tag only: this one conversation, and the trends follow.
    await sam.goto(f"{web.http}/console?tab=metrics&lang=zh")
    await sam.select_option("#metrics-tag", tag)
    await sam.click("[data-section=metrics] .inline-form button[type=submit]")
    await expect(sam.locator("#metrics-tag-shown")).to_have_text(
        zh("Only conversations tagged %(tag)s") % {"tag": tag}
    )
    await expect(sam.locator("#metrics-tag")).to_have_value(tag)
    await expect(sam.locator("#shop-metrics .stat").first.locator("strong")).to_have_text("1")
    await expect(sam.locator("#trends .chart.trend")).to_have_count(4)
    # One incoming conversation in the heat map: one cell counts 1, every other 0.
    await expect(sam.locator("#heat-map .heat-cell:not([data-count='0'])")).to_have_count(1)
    await expect(sam.locator("#heat-map .heat-cell[data-count='1']")).to_have_count(1)
    await screenshot(sam, "metrics-by-tag")
    await close_chat(alice)
