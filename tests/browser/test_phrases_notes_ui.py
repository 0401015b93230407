"""Quick phrases and internal notes in the workbench, in Chromium, through a real server:
the "/" picker with a variable filled, phrases kept in a browser offered for upload once,
and a note with an @mention that reaches the colleague and never the buyer."""

from __future__ import annotations

import asyncio
import json

from playwright.async_api import expect
from sqlalchemy import select
from sqlmodel import col

from app.demo import DEMO_SLUG
from app.shops.models import Agent, Shop
from tests.browser.helpers import (
    DEMO_PASSWORD,
    agent_online,
    buyer_asks,
    conversation_item,
    demo_order,
    log_in,
    screenshot,
    unique_buyer,
    widget,
)
from tests.support.words import zh


async def close_chat(agent) -> None:
    """Close the conversation on screen (the demo agents serve the other browser tests too)."""
    await agent.click("#close-conv")
    await agent.click("#close-conv")
    await expect(agent.locator("#messages .notice")).to_have_text(zh("Conversation closed"))


async def demo_agent_id(web, username: str) -> str:
    async with web.ctx.db.read() as s:
        row = await s.execute(
            select(col(Agent.id))
            .join(Shop, col(Shop.id) == col(Agent.shop_id))
            .where(col(Shop.slug) == DEMO_SLUG, col(Agent.username) == username)
        )
        return str(row.scalar_one())


async def test_slash_picker_inserts_a_phrase_with_its_variable_filled(web, new_tab):
    alice_id = await demo_agent_id(web, "alice")
    agent_tab = await new_tab()
    agent = agent_tab.page
    # Canned replies this browser kept before they lived on the server.
    kept = json.dumps(["老浏览器里的快捷回复", "亲,稍等我查一下"], ensure_ascii=False)
    await agent.add_init_script(
        f"localStorage.setItem('homing.canned.{alice_id}', {json.dumps(kept)})"
    )
    await agent_online(agent, web.http, "demo", "alice")

    # Offered once; uploaded into my own phrases.
    await expect(agent.locator("#phrase-offer")).to_be_visible()
    await expect(agent.locator("#phrase-offer-text")).to_contain_text("2")
    await agent.click("#phrase-offer-upload")
    await expect(agent.locator("#phrase-offer")).to_be_hidden()
    await expect(agent.locator("#canned-list .canned-use")).to_have_text(
        ["老浏览器里的快捷回复", "亲,稍等我查一下"]
    )
    # The shop's phrases (the demo seeds them) under the other tab, by group.
    await agent.click(".phrase-scopes [data-scope=shop]")
    await expect(agent.locator("#canned-list .phrase-group").first).to_have_text("问候")

    buyer_id = unique_buyer("phrase")
    await demo_order(web, buyer_id, "DD-20261202-01", 26800)
    buyer = (await new_tab(embed=True)).page
    await buyer_asks(buyer, web, buyer_id, "我的订单发货了吗?")
    await conversation_item(agent, buyer_id).click()
    await expect(agent.locator("#messages .msg.from-buyer")).to_contain_text("发货了吗")

    # "/" then pinyin initials: 发货 is "fh".
    box = agent.locator("#composer-input")
    await box.click()
    await box.press_sequentially("/fh")
    options = agent.locator("#phrase-picker .phrase-option")
    await expect(options).to_have_count(2)
    await expect(options.first).to_contain_text("亲,您的订单{订单号}已发货")
    await box.press("ArrowDown")
    await expect(options.nth(1)).to_have_class("phrase-option active")
    await box.press("ArrowUp")
    await expect(options.first).to_have_class("phrase-option active")
    await screenshot(agent, "phrase-picker")
    await box.press("Enter")
    await expect(agent.locator("#phrase-picker")).to_be_hidden()
    filled = "亲,您的订单DD-20261202-01已发货,请留意物流信息。"
    await expect(box).to_have_value(filled)
    await screenshot(agent, "phrase-picker-filled")
    await box.press("Enter")
    await expect(widget(buyer, ".msg.from-agent .text")).to_have_text(filled)

    # Typed among other words, with the buyer's name; a click picks too.
    await box.press_sequentially("好的 /nhws")
    await expect(options).to_have_count(1)
    await options.first.dispatch_event("mousedown")
    await expect(box).to_have_value("好的 测试买家您好,我是Alice 小艾,很高兴为您服务!")

    # Reloaded: the upload is not offered again.
    await agent.reload()
    await expect(agent.locator("body[data-connected=true]")).to_have_count(1)
    await expect(agent.locator("#canned-list .canned-use").first).to_be_visible()
    await expect(agent.locator("#phrase-offer")).to_be_hidden()
    await conversation_item(agent, buyer_id).click()
    await close_chat(agent)


async def test_a_note_with_a_mention_reaches_the_colleague_and_never_the_buyer(web, new_tab):
    alice = (await new_tab()).page
    await agent_online(alice, web.http, "demo", "alice")
    sam = (await new_tab()).page
    await log_in(sam, web.http, "demo", "sam", DEMO_PASSWORD)  # connected, not taking chats
    await expect(sam.locator("body[data-connected=true]")).to_have_count(1)

    buyer_id = unique_buyer("note")
    buyer = (await new_tab(embed=True)).page
    await buyer_asks(buyer, web, buyer_id, "我要退款,东西坏了")
    await conversation_item(alice, buyer_id).click()

    await alice.check("#note-mode")
    await expect(alice.locator("#composer")).to_have_class("composer note-mode")
    box = alice.locator("#composer-input")
    secret = "@Sam 主管 这位买家第二次退款了,请帮忙看看"
    await box.fill(secret)
    await box.press("Enter")
    note = alice.locator("#messages .msg.kind-note")
    await expect(note.locator(".text")).to_have_text(secret)
    await expect(note.locator(".note-label")).to_have_text(zh("Internal note · buyer cannot see"))

    # The colleague is told in their workbench.
    await expect(sam.locator("#mentions-panel")).to_be_visible()
    await expect(sam.locator("#mention-list .mention-text")).to_have_text(secret)
    await expect(sam.locator("#mention-list .mention-head")).to_contain_text("Alice 小艾")
    await expect(sam.locator("#toast")).to_contain_text("Alice 小艾")
    await screenshot(sam, "note-mention-colleague")
    await screenshot(alice, "note-in-workbench")

    # A reply after the note reaches the buyer; the note never does.
    await alice.uncheck("#note-mode")
    await box.fill("亲,马上为您处理退款")
    await box.press("Enter")
    await expect(widget(buyer, ".msg.from-agent .text")).to_have_text("亲,马上为您处理退款")
    # Reloaded, the widget syncs from the start: seq 1 and 3, the note (seq 2) left out;
    # `sync.done` tells it it has everything up to 3 ...
    syncs: list[dict] = []

    def watch(ws) -> None:
        def sent(payload) -> None:
            frame = json.loads(payload) if isinstance(payload, str) else {}
            if frame.get("type") == "sync":
                syncs.append(frame)

        ws.on("framesent", sent)

    buyer.on("websocket", watch)
    await buyer.reload()
    await expect(widget(buyer, ".launcher")).to_be_visible()
    await widget(buyer, ".launcher").click()
    await expect(widget(buyer, ".msg.from-agent .text")).to_have_text("亲,马上为您处理退款")
    content = await buyer.evaluate("document.querySelector('#homing-widget').shadowRoot.innerHTML")
    assert "第二次退款" not in content
    assert [f["after_seq"] for f in syncs] == [0]
    # ... so when its socket drops, it resumes after 3, not again after 1 (below the note).
    [conn] = [
        c for c in web.ctx.hub.connections if c.kind == "buyer" and c.identity.buyer_id == buyer_id
    ]
    await conn.fail()
    for _ in range(150):  # the widget reconnects with back-off (about a second)
        if len(syncs) == 2:
            break
        await asyncio.sleep(0.1)
    assert [f["after_seq"] for f in syncs] == [0, 3]
    await close_chat(alice)
