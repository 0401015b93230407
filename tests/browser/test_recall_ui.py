"""Recall campaigns in the console and their coupon cards in the widget, in Chromium.

The campaign runs on the page server's own periodic recall job (the `web` server runs its
jobs), exactly as in production: nothing here calls the job by hand. The shop is a fresh
one, so the audience is exactly the buyers made here.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import httpx
from playwright.async_api import expect

from tests.browser.helpers import (
    PHONE,
    as_buyer,
    buyer_writes,
    demo_order,
    embed_widget,
    log_in,
    open_widget,
    screenshot,
    storefront_event,
    unique_buyer,
    widget,
    widget_say,
)
from tests.support.client import WSClient
from tests.support.factories import PASSWORD, login, make_shop
from tests.support.words import zh

XSS = "<img src=x onerror=alert(1)>"
INTERESTED = "这个多少钱?尺码偏大吗?"  # a price and a size question: 30 points
ZH_WIDGET_CLOSED = "本次会话已结束,发消息可以再次咨询"


async def _recalls_all_day(web, kit) -> None:
    token = await login(web.http, kit, "admin")
    async with httpx.AsyncClient(base_url=web.http) as c:
        r = await c.put(
            "/api/v1/recall/settings",
            headers={"Authorization": f"Bearer {token}"},
            json={"window_start_min": 0, "window_end_min": 1440},
        )
        assert r.status_code == 200, r.text


def stat(page, name):
    return page.locator(f"#campaign-stats [data-stat={name}] strong")


def excluded(page, reason):
    return page.locator(f".preview-card [data-reason={reason}] strong")


async def test_merchant_creates_previews_and_schedules_a_campaign_and_the_buyer_claims(
    web, new_tab
):
    kit = await make_shop(web.ctx.db)
    await _recalls_all_day(web, kit)

    # The buyer consults in the widget (price and size) and put the teapot in the cart: 50.
    buyer_id = unique_buyer("keen")
    buyer_tab = await new_tab(PHONE, embed=True)
    buyer = buyer_tab.page
    await embed_widget(buyer, web, kit.buyer_token(buyer_id))
    await open_widget(buyer)
    await widget_say(buyer, INTERESTED)
    await expect(widget(buyer, ".msg.from-buyer[data-seq='1']")).to_be_visible()
    await storefront_event(web, kit.api_key, buyer_id, "cart_add")

    # Three more who consulted, each left out for a different reason.
    for who in ("opted", "bought"):
        token = kit.buyer_token(f"{who}-{buyer_id}")
        await buyer_writes(web, token, INTERESTED)
        await storefront_event(web, kit.api_key, f"{who}-{buyer_id}", "cart_add")
    r = await as_buyer(web, kit.buyer_token(f"opted-{buyer_id}"), "POST", "/recall/opt-out")
    assert r.status_code == 200, r.text
    await demo_order(
        web, f"bought-{buyer_id}", f"R{secrets.token_hex(4)}", 9900, api_key=kit.api_key
    )
    await buyer_writes(web, kit.buyer_token(f"idle-{buyer_id}"), "你好")

    # The merchant creates the campaign with the console's form.
    admin_tab = await new_tab()
    admin = admin_tab.page
    await log_in(admin, web.http, kit.slug, "admin", PASSWORD)
    await admin.goto(web.http + "/console")
    await admin.click(".console-tabs a[data-tab=recall]")
    await expect(admin.locator("#campaigns-empty")).to_be_visible()
    await admin.click("#new-campaign summary")
    form = admin.locator("#new-campaign form")
    await form.locator("input[name=name]").fill("双十二回访")
    await form.locator("input[name=min_intent]").fill("50")
    await form.locator("input[name=coupon_title]").fill("茶具专享券")
    await form.locator("input[name=amount]").fill("20")
    await form.locator("input[name=min_spend]").fill("199")
    await form.locator("textarea[name=message]").fill("您看过的茶具降价了,送您一张券")
    await form.locator("button[type=submit]").click()
    await expect(admin.locator(".flash.ok")).to_have_text("已创建「双十二回访」,确认受众后即可排期")

    # The preview: who would be recalled, and why the others would not.
    await expect(admin.locator("#preview-eligible")).to_have_text("1")
    await expect(excluded(admin, "opted_out")).to_have_text("1")
    await expect(excluded(admin, "purchased")).to_have_text("1")
    await expect(excluded(admin, "low_intent")).to_have_text("1")
    await expect(excluded(admin, "capped")).to_have_text("0")
    await expect(admin.locator("#campaign-status")).to_have_text(zh("draft"))
    await screenshot(admin, "console-recall-preview")

    # Scheduled to send now: the job starts it, and the page follows its progress.
    await admin.click(".preview-card button.schedule")
    await expect(admin.locator(".flash.ok")).to_have_text("已排期「双十二回访」")
    await expect(admin.locator("#campaign-status")).to_have_text(zh("completed"), timeout=30_000)
    await expect(stat(admin, "total")).to_have_text("1")
    await expect(stat(admin, "sent")).to_have_text("1")
    await expect(admin.locator("#campaigns[hx-trigger]")).to_have_count(0)  # polling stopped
    await expect(admin.locator("#campaign-detail button.cancel")).to_have_count(0)

    # The buyer sees the coupon in the open chat and claims it.
    card = widget(buyer, ".msg.kind-coupon_card")
    await expect(card.locator(".card-price")).to_have_text("¥20.00")
    await expect(card.locator(".card-title")).to_have_text("茶具专享券")
    await expect(card.locator(".card-sub")).to_have_text("满 ¥199.00 可用")
    await expect(card.locator(".card-caption")).to_have_text("您看过的茶具降价了,送您一张券")
    await card.locator("button.claim").click()
    await expect(card.locator("button.claim")).to_have_text("已领取")
    await expect(card.locator("button.claim")).to_be_disabled()
    await screenshot(buyer, "widget-coupon")

    # The results count the card as read and claimed; nothing ordered yet.
    await admin.goto(web.http + "/console?tab=recall")
    await expect(stat(admin, "claimed")).to_have_text("1")
    await expect(stat(admin, "read")).to_have_text("1")
    await expect(stat(admin, "rate")).to_have_text("0.0%")
    # The buyer orders before the offer ends: converted.
    await demo_order(web, buyer_id, f"R{secrets.token_hex(4)}", 26800, api_key=kit.api_key)
    await admin.reload()
    await expect(stat(admin, "converted")).to_have_text("1")
    await expect(stat(admin, "rate")).to_have_text("100.0%")
    await screenshot(admin, "console-recall-results")

    # One tap: no more recalls. A new preview now counts this buyer as opted out.
    await card.locator("button.opt-out").click()
    await expect(card.locator(".opted-out")).to_have_text("已退订,以后不再给您发送推荐")
    await admin.click("#campaign-detail button.preview-open")
    await expect(admin.locator("#preview-eligible")).to_have_text("0")
    await expect(excluded(admin, "opted_out")).to_have_text("2")
    await expect(admin.locator(".preview-card button.schedule")).to_have_count(0)

    # The buyer comes back later: the card loads again, claimed and opted out as they left it.
    await embed_widget(buyer, web, kit.buyer_token(buyer_id))
    await open_widget(buyer)
    card = widget(buyer, ".msg.kind-coupon_card")
    await expect(card.locator("button.claim")).to_have_text("已领取")
    await expect(card.locator("button.claim")).to_be_disabled()
    await expect(card.locator(".opted-out")).to_have_text("已退订,以后不再给您发送推荐")
    await expect(card.locator("button.opt-out")).to_have_count(0)
    assert buyer_tab.dialogs == [] and admin_tab.dialogs == []


async def test_campaign_form_refusals_cancel_and_markup_in_names(web, new_tab):
    admin_tab = await new_tab()
    admin = admin_tab.page
    await log_in(admin, web.http, "demo", "admin", "demo")
    await admin.goto(web.http + "/console?tab=recall")

    async def create(name: str, amount: str, ends_at: str | None = None) -> None:
        if not await admin.locator("#new-campaign[open]").count():  # a refusal leaves it open
            await admin.click("#new-campaign summary")
        form = admin.locator("#new-campaign form")
        await form.locator("input[name=name]").fill(name)
        await form.locator("input[name=coupon_title]").fill(name)
        await form.locator("input[name=amount]").fill(amount)
        if ends_at is not None:
            await form.locator("input[name=ends_at]").fill(ends_at)
        await form.locator("button[type=submit]").click()

    # Refused with the reason: a bad amount; an offer that ends before it is sent.
    await create("坏金额", "-3")
    await expect(admin.locator(".flash.error")).to_have_text(
        zh("Enter an amount above 0 with at most 2 decimals")
    )
    await expect(admin.locator("#new-campaign input[name=name]")).to_have_value("坏金额")  # kept
    await create("过期", "5", ends_at="2020-01-01T10:00")
    await expect(admin.locator(".flash.error")).to_have_text(
        zh("The offer must end after the send time")
    )
    await admin.locator("#new-campaign input[name=ends_at]").fill("2099-01-01T10:00")

    # A name that is markup stays text everywhere; scheduled for next year, then cancelled.
    await create(XSS, "5")
    await expect(admin.locator(".flash.ok")).to_have_text(f"已创建「{XSS}」,确认受众后即可排期")
    await expect(admin.locator(".preview-card .campaign-name")).to_have_text(XSS)
    row = admin.locator("#campaign-table tr", has=admin.locator(".campaign-name", has_text=XSS))
    await expect(row).to_have_count(1)
    await expect(admin.locator("#campaign-detail .coupon-title")).to_have_text(XSS)
    await admin.click("#new-campaign summary")
    await admin.locator("#new-campaign input[name=send_at]").fill("2099-01-01T09:00")
    await admin.locator("#new-campaign input[name=ends_at]").fill("2099-01-08T09:00")
    await admin.locator("#new-campaign input[name=name]").fill(f"{XSS} 明年")
    await admin.locator("#new-campaign input[name=coupon_title]").fill("明年券")
    await admin.locator("#new-campaign input[name=amount]").fill("8")
    await admin.locator("#new-campaign button[type=submit]").click()
    await expect(admin.locator(".flash.ok")).to_have_text(
        f"已创建「{XSS} 明年」,确认受众后即可排期"
    )
    await admin.click(".preview-card button.schedule")
    await expect(admin.locator("#campaign-status")).to_have_text(zh("scheduled"))
    await expect(admin.locator("#campaigns[hx-trigger]")).to_have_count(1)  # watching it
    await expect(admin.locator("#campaign-detail button.schedule")).to_have_count(0)
    await admin.click("#campaign-detail button.cancel")
    await expect(admin.locator(".flash.ok")).to_have_text(f"已取消「{XSS} 明年」")
    await expect(admin.locator("#campaign-status")).to_have_text(zh("cancelled"))

    # The supervisor reads the same list; an agent may not post to it.
    sam_tab = await new_tab()
    sam = sam_tab.page
    await log_in(sam, web.http, "demo", "sam", "demo")
    await sam.goto(web.http + "/console?tab=recall")
    await expect(sam.locator("#campaign-table .campaign-name")).to_contain_text(
        [f"{XSS} 明年", XSS]
    )
    await screenshot(sam, "console-recall")
    await sam.click("a.lang")
    await expect(sam.locator(".console-tabs a[data-tab=recall]")).to_have_text("Recall campaigns")
    await expect(sam.locator("#campaign-status")).to_have_text("cancelled")
    alice_tab = await new_tab()
    alice_tab.expected_errors.append("403")
    await log_in(alice_tab.page, web.http, "demo", "alice", "demo")
    r = await alice_tab.page.request.post(
        web.http + "/console/recall", headers={"HX-Request": "true"}, form={"name": "x"}
    )
    assert r.status == 403
    r = await alice_tab.page.request.get(web.http + "/console/recall/campaigns")
    assert r.status == 403

    for tab in (admin_tab, sam_tab):
        assert await tab.page.locator("main img").count() == 0
        assert tab.dialogs == []


async def test_a_coupon_after_the_chat_closed_arrives_as_a_notice_card(web, new_tab):
    """No open conversation: the card comes in a notice conversation, and the widget shows
    it below the closed chat (rating still there) instead of switching away."""
    kit = await make_shop(web.ctx.db)
    await _recalls_all_day(web, kit)
    agent = await WSClient.connect(
        f"{web.ws}/ws/agent?token={await login(web.http, kit, 'agent1')}"
    )
    try:
        await agent.expect("hello")
        await agent.send({"type": "agent.status", "status": "online"})
        await agent.expect("agent.status")
        buyer_id = unique_buyer("later")
        buyer_tab = await new_tab(PHONE, embed=True)
        buyer = buyer_tab.page
        await embed_widget(buyer, web, kit.buyer_token(buyer_id))
        await open_widget(buyer)
        await widget_say(buyer, INTERESTED)
        conv = (await agent.expect("conversation.assigned"))["conversation"]
        await agent.send({"type": "conversation.close", "conversation_id": conv["id"]})
        await expect(widget(buyer, ".csat .star")).to_have_count(5)
    finally:
        await agent.close()
    await storefront_event(web, kit.api_key, buyer_id, "cart_add")

    token = await login(web.http, kit, "admin")
    async with httpx.AsyncClient(
        base_url=web.http, headers={"Authorization": f"Bearer {token}"}
    ) as c:
        now = datetime.now(UTC)
        r = await c.post(
            "/api/v1/recall/campaigns",
            json={
                "name": "回头客",
                "send_at": now.isoformat(),
                "ends_at": (now + timedelta(days=3)).isoformat(),
                "coupon": {"title": "回头券", "amount_cents": 1000},
            },
        )
        assert r.status_code == 201, r.text
        r = await c.post(f"/api/v1/recall/campaigns/{r.json()['id']}/schedule")
        assert r.status_code == 200, r.text

    card = widget(buyer, ".msg.notice.kind-coupon_card")
    await expect(card.locator(".card-price")).to_have_text("¥10.00", timeout=30_000)
    await expect(widget(buyer, ".csat .star")).to_have_count(5)  # the closed chat is still there
    await expect(widget(buyer, ".status-line")).to_have_text(ZH_WIDGET_CLOSED)
    await card.locator("button.claim").click()
    await expect(card.locator("button.claim")).to_have_text("已领取")
    assert buyer_tab.dialogs == []
