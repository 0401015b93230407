"""The workbench's desk tools in Chromium: tags on a conversation, the buyer's history
panel (earlier conversations, read-only, 历史消息 when scrolling up) and message search
with highlighted, escaped hits that open the conversation at the message."""

from __future__ import annotations

import httpx
from playwright.async_api import expect

from app.demo import DEMO_PASSWORD
from app.shops.actions import DEMO_SLUG
from tests.browser.helpers import (
    agent_online,
    buyer_writes,
    conversation_item,
    demo_buyer_token,
    screenshot,
    unique_buyer,
)
from tests.support.words import zh


async def _api(server, username: str) -> httpx.AsyncClient:
    async with httpx.AsyncClient(base_url=server.http) as c:
        r = await c.post(
            "/api/v1/auth/login",
            json={"shop": DEMO_SLUG, "username": username, "password": DEMO_PASSWORD},
        )
        r.raise_for_status()
        token = r.json()["token"]
    return httpx.AsyncClient(base_url=server.http, headers={"Authorization": f"Bearer {token}"})


async def test_history_panel_tags_and_search_with_highlights(web, new_tab):
    admin = await _api(web, "admin")
    alice = await _api(web, "alice")
    try:
        for name in ("物流", "催发货"):
            r = await admin.post("/api/v1/tags", json={"name": name})
            assert r.status_code in (201, 409), r.text
        tab = await new_tab()
        page = tab.page
        await agent_online(page, web.http, DEMO_SLUG, "alice")
        buyer_id = unique_buyer("desk")
        token = demo_buyer_token(buyer_id, "老顾客")

        # An earlier conversation, served by alice and closed.
        await buyer_writes(web, token, "上次买的茶具什么时候发货?")
        await expect(conversation_item(page, buyer_id)).to_have_count(1)
        convs = (await alice.get("/api/v1/conversations")).json()
        [old] = [c for c in convs if c["buyer_id"] == buyer_id]
        await alice.put(f"/api/v1/conversations/{old['id']}/tags", json={"tags": ["物流"]})
        await buyer_writes(web, token, "<b>加急</b> 请尽快发货")
        assert (await alice.post(f"/api/v1/conversations/{old['id']}/close")).status_code == 200
        # Today's conversation.
        await buyer_writes(web, token, "又来问一下: 发货了吗")
        item = conversation_item(page, buyer_id).and_(page.locator(":not(.closed)"))
        await expect(item).to_have_count(1)
        await item.click()

        # The buyer panel lists the earlier conversation: date, agent, first line, tags.
        history = page.locator("#history-list .history-item")
        await expect(history).to_have_count(1)
        await expect(history.first).to_contain_text("上次买的茶具什么时候发货?")
        await expect(history.first).to_contain_text("Alice 小艾")
        await expect(history.first.locator(".tag")).to_have_text(["物流"])

        # Tag today's conversation from the chat header.
        await page.select_option("#tag-pick", "催发货")
        await expect(page.locator("#tag-list .tag")).to_contain_text(["催发货"])
        await screenshot(page, "desk-history-panel")

        # Open the earlier conversation read-only.
        await history.first.locator("button").click()
        viewer = page.locator("#history-view")
        await expect(viewer).to_be_visible()
        await expect(viewer.locator(".msg.from-buyer")).to_have_count(2)
        await expect(viewer.locator(".msg.from-buyer").nth(1)).to_contain_text(
            "<b>加急</b> 请尽快发货"
        )
        await expect(viewer.locator("b")).to_have_count(0)
        await screenshot(page, "desk-history-read-only")
        await page.click("#history-view-close")

        # Scrolling up in the chat loads the previous conversation's messages (历史消息).
        await page.locator("#messages").evaluate(
            "(n) => { n.scrollTop = 0; n.dispatchEvent(new Event('scroll')); }"
        )
        await expect(page.locator("#messages .history-divider")).to_have_count(1)
        await expect(page.locator("#messages .msg.history").first).to_contain_text("上次买的茶具")

        # Search: 发货 (two characters) finds all three, highlighted and escaped.
        await page.click("#search-open")
        await page.fill("#search-q", "发货")
        await page.fill("#search-buyer", buyer_id)
        await page.click("#search-submit")
        hits = page.locator("#search-results .search-hit")
        await expect(hits).to_have_count(3)
        await expect(page.locator("#search-results mark")).to_have_count(3)
        await expect(page.locator("#search-results .hit-text b")).to_have_count(0)
        await expect(hits.nth(1)).to_contain_text("<b>加急</b> 请尽快发货")
        await expect(page.locator("#search-status")).to_have_text(
            zh("%(n)s results").replace("%(n)s", "3")
        )
        await screenshot(page, "desk-search-highlighted")
        # A hit opens its conversation at that message.
        await hits.nth(1).locator("button").click()
        await expect(page.locator("#history-view .msg.hit")).to_contain_text("请尽快发货")
        assert tab.unexpected_errors == []
    finally:
        await admin.aclose()
        await alice.aclose()
