"""The widget in English: the cards and notices the shop's system sends (compensation,
late-shipment coupon, the rating invitation, a giveaway that ran out) are rendered from
their payload in the buyer's language, while the stored body stays Chinese for old clients
and the agent's workbench shows them in its own language."""

from __future__ import annotations

import secrets

from playwright.async_api import expect

from app.payouts.jobs import LATE_SHIPMENT_JOB
from tests.browser.helpers import (
    PHONE,
    agent_online,
    as_buyer,
    conversation_item,
    demo_buyer_token,
    demo_order,
    embed_widget,
    open_widget,
    pay,
    screenshot,
    unique_buyer,
    widget,
    widget_say,
)
from tests.browser.test_groups_ui import staff_api


async def test_an_english_widget_shows_system_cards_and_notices_in_english(web, new_tab):
    agent = (await new_tab()).page
    await agent_online(agent, web.http, "demo", "alice")
    buyer_id = unique_buyer("english")
    token = demo_buyer_token(buyer_id)
    order_id = f"EN-{secrets.token_hex(3)}"
    await demo_order(web, buyer_id, order_id, 10_000)
    buyer_tab = await new_tab(PHONE, embed=True)
    buyer = buyer_tab.page
    await embed_widget(buyer, web, token, lang="en")
    await expect(widget(buyer, ".launcher")).to_contain_text("Chat with us")
    await open_widget(buyer)
    await widget_say(buyer, "My teapot arrived late")
    item = conversation_item(agent, buyer_id)
    await item.click()

    # Compensation within Alice's authority: a card in English for the buyer, in Chinese
    # on Alice's (Chinese) workbench.
    await agent.select_option("#payout-order", order_id)
    await pay(agent, "12.5", "late_shipment")
    card = widget(buyer, ".card-compensation")
    await expect(card.locator(".card-label")).to_have_text("Compensation")
    await expect(card.locator(".card-price")).to_have_text("¥12.50")
    await expect(card.locator(".card-sub")).to_have_text("late shipment")
    await expect(card.locator(".card-caption")).to_have_text(
        "We have compensated you ¥12.50 (late shipment)"
    )
    await expect(agent.locator("#messages .card-compensation .card-caption")).to_have_text(
        "已为您补偿 ¥12.50(晚发即赔)"
    )

    # An order that did not ship in time: the late-shipment job sends a coupon.
    late_id = f"LATE-{secrets.token_hex(3)}"
    await demo_order(web, buyer_id, late_id, 20_000, late=True)
    await web.ctx.jobs.run_once(LATE_SHIPMENT_JOB)
    coupon = widget(buyer, ".card-coupon")
    await expect(coupon.locator(".card-label")).to_have_text("Coupon")
    await expect(coupon.locator(".card-title")).to_have_text(
        "Late-shipment coupon: ¥3.00, no minimum spend"
    )
    await expect(coupon.locator(".card-sub")).to_have_text("no minimum")
    await expect(coupon.locator(".card-caption")).to_have_text(
        f"Sorry, your order {late_id} did not ship on time. "
        "Here is a ¥3.00 coupon with no minimum spend (late shipment)."
    )
    await expect(widget(buyer, ".kind-coupon_card .card-note")).to_have_text(
        "Already in your account"
    )

    # Alice closes: the rating invitation is a notice, in English too.
    await agent.click("#close-conv")
    await agent.click("#close-conv")
    await expect(widget(buyer, ".msg.kind-system .text").last).to_have_text(
        "This chat has ended. Please rate our service (1 to 5 stars)."
    )
    await expect(widget(buyer, ".csat-label")).to_have_text("Rate this chat")
    await screenshot(buyer, "widget-english-cards")
    await card.scroll_into_view_if_needed()
    await screenshot(buyer, "widget-english-compensation")

    # A fan-group giveaway that runs out: the system's notice in English.
    group = await staff_api(
        web, "admin", "POST", "/groups", {"name": f"Tea {secrets.token_hex(2)}"}
    )
    assert (await as_buyer(web, token, "POST", f"/groups/{group['id']}/join")).status_code == 200
    await widget(buyer, ".tab-groups").click()
    await widget(buyer, f".group-item[data-group='{group['id']}'] button.enter").click()
    gw = await staff_api(
        web,
        "sam",
        "POST",
        f"/groups/{group['id']}/giveaways",
        {"title": "签到福利", "quantity": 1, "coupon": {"amount_cents": 800}},
    )
    giveaway = widget(buyer, f".card-giveaway[data-giveaway='{gw['id']}']")
    await expect(giveaway.locator(".card-label")).to_have_text("Giveaway")
    await giveaway.locator("button.claim-giveaway").click()
    await expect(giveaway.locator("button.claim-giveaway")).to_have_text("Claimed")
    await expect(widget(buyer, ".gmsg.from-system .text")).to_have_text(
        "The giveaway 签到福利 has run out"
    )
    await screenshot(buyer, "widget-english-giveaway")
    assert buyer_tab.dialogs == []
