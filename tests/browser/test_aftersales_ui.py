"""After-sales and proactive care in Chromium: the buyer's 申请售后 sheet under an order
card, the after-sales card in both chats, the agent's decision in the workbench; a 回访
answered in the widget and its figures in the console."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from playwright.async_api import expect

from app.care.jobs import CARE_JOB
from app.demo import DEMO_API_KEY
from tests.browser.helpers import (
    DEMO_PASSWORD,
    agent_online,
    buyer_asks,
    conversation_item,
    log_in,
    screenshot,
    unique_buyer,
    widget,
)
from tests.support.words import zh


async def storefront(web: Any, path: str, body: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=web.http) as c:
        r = await c.post(path, json=body, headers={"Authorization": f"Bearer {DEMO_API_KEY}"})
        assert r.status_code in (200, 201), r.text


async def delivered_order(web: Any, buyer_id: str, order_id: str, *, ago: timedelta) -> None:
    now = datetime.now(UTC)
    await storefront(
        web,
        "/api/v1/orders",
        {
            "order_id": order_id,
            "buyer_id": buyer_id,
            "amount_cents": 12800,
            "status": "shipped",
            "category": "家居",
            "created_at": (now - ago - timedelta(days=2)).isoformat(),
            "shipped_at": (now - ago - timedelta(days=1)).isoformat(),
            "delivered_at": (now - ago).isoformat(),
            "carrier": "顺丰",
            "tracking_no": "SF1234567",
        },
    )


async def test_the_buyer_asks_for_after_sales_and_the_agent_approves(web, new_tab):
    agent = (await new_tab()).page
    await agent_online(agent, web.http, "demo", "alice")
    buyer_id = unique_buyer("as")
    order_id = f"A{secrets.token_hex(4)}"
    await delivered_order(web, buyer_id, order_id, ago=timedelta(hours=3))
    await storefront(
        web,
        f"/api/v1/orders/{order_id}/tracking",
        {"at": datetime.now(UTC).isoformat(), "line": "已签收,签收人:本人"},
    )
    buyer = (await new_tab(embed=True)).page
    await buyer_asks(buyer, web, buyer_id, "杯子收到就裂了")
    await buyer.evaluate(f"window.HomingWidget.sendOrder({order_id!r})")

    # The sheet: under the buyer's order card, with the room left on the order.
    ask = widget(buyer, ".kind-order_card .aftersale-open")
    await expect(ask).to_have_text(zh("After-sales"))
    tracking = widget(buyer, ".kind-order_card .tracking-line")
    await expect(tracking).to_have_text(zh("Tracking: %(line)s") % {"line": "已签收,签收人:本人"})
    await ask.click()
    sheet = widget(buyer, ".aftersale-sheet")
    await expect(sheet).to_be_visible()
    await expect(widget(buyer, ".aftersale-left")).to_contain_text("¥128.00")
    await expect(widget(buyer, ".aftersale-type")).to_have_count(5)
    await widget(buyer, ".aftersale-type").filter(has_text=zh("Return and refund")).click()
    await widget(buyer, ".aftersale-reason").fill("杯口有裂纹,申请退货")
    await widget(buyer, ".aftersale-amount").fill("50")
    await screenshot(buyer, "aftersales-sheet")
    await widget(buyer, ".aftersale-submit").click()
    await expect(sheet).to_have_count(0)

    # The card, in the buyer's chat and the agent's.
    card = widget(buyer, ".card-aftersale")
    await expect(card).to_have_count(1)
    await expect(card.locator(".card-status")).to_have_text(zh("Waiting for the shop"))
    await expect(card.locator(".card-title")).to_have_text(zh("Return and refund"))
    await screenshot(buyer, "aftersales-card")

    await conversation_item(agent, buyer_id).click()
    await expect(agent.locator(".msg .card-aftersale")).to_have_count(1)
    await expect(agent.locator("#order-list .tracking")).to_contain_text("已签收,签收人:本人")
    item = agent.locator("#aftersale-list .aftersale")
    await expect(item).to_have_count(1)
    await expect(item).to_contain_text("杯口有裂纹,申请退货")
    await item.locator("input").fill("已同意,请寄回")
    await item.locator(".aftersale-approve").click()
    await expect(agent.locator("#aftersale-list .aftersale .aftersale-status")).to_have_text(
        zh("Approved")
    )
    await expect(agent.locator(".msg .card-aftersale.status-approved")).to_have_count(1)
    await screenshot(agent, "aftersales-decision")
    approved = widget(buyer, ".card-aftersale.status-approved")
    await expect(approved.locator(".card-note")).to_have_text("已同意,请寄回")
    await screenshot(buyer, "aftersales-card-approved")


async def test_a_follow_up_visit_is_answered_in_the_widget_and_counted_in_the_console(web, new_tab):
    admin = (await new_tab()).page
    await log_in(admin, web.http, "demo", "admin", DEMO_PASSWORD)
    await admin.goto(f"{web.http}/console?tab=care")
    await expect(admin.locator(".console-tabs a.active")).to_have_text(zh("Proactive care"))
    await admin.check("input[name=visit_on]")
    await admin.fill("input[name=visit_days]", "2")
    await admin.click(".care-form button[type=submit]")
    await expect(admin.locator(".flash.ok")).to_have_text(zh("Saved the care rules"))

    buyer_id = unique_buyer("visit")
    order_id = f"V{secrets.token_hex(4)}"
    await delivered_order(web, buyer_id, order_id, ago=timedelta(days=3))
    buyer = (await new_tab(embed=True)).page
    await buyer_asks(buyer, web, buyer_id, "你好")
    await web.ctx.jobs.run_once(CARE_JOB)
    visit = widget(buyer, ".kind-care_card")
    await expect(visit).to_have_count(1)
    await expect(visit).to_contain_text(order_id)
    await visit.locator(".visit-goods .star[data-score='4']").click()
    await visit.locator(".visit-service .star[data-score='5']").click()
    await expect(visit.locator(".csat-thanks")).to_be_visible()
    await screenshot(buyer, "care-visit-answered")

    await admin.reload()
    await expect(admin.locator("#visit-goods")).to_have_text("4.00")
    await expect(admin.locator("#visit-service")).to_have_text("5.00")
    await screenshot(admin, "console-care")
