"""The workbench's buyer panel: orders, the payout form and my remaining authority, transfer."""

from __future__ import annotations

import secrets
from typing import Any

from playwright.async_api import expect

from tests.browser.helpers import (
    agent_online,
    buyer_asks,
    conversation_item,
    demo_order,
    pay,
    screenshot,
    unique_buyer,
    widget,
)
from tests.support.words import zh


async def test_an_agent_pays_within_authority_and_the_buyer_sees_the_card(web, new_tab):
    agent_tab = await new_tab()
    agent_tab.expected_errors += ["409", "ERR_FAILED"]  # the refused payout; the dropped request
    agent = agent_tab.page
    await agent_online(agent, web.http, "demo", "alice")
    buyer_id = unique_buyer("pay")
    order_id = f"T{secrets.token_hex(4)}"
    small_order = f"S{secrets.token_hex(4)}"
    await demo_order(web, buyer_id, small_order, 1000)
    await demo_order(web, buyer_id, order_id, 26800)
    buyer = (await new_tab(embed=True)).page
    await buyer_asks(buyer, web, buyer_id, "茶具晚发了三天")

    item = conversation_item(agent, buyer_id)
    await item.click()
    await expect(agent.locator("#buyer-name")).to_have_text("测试买家")
    await expect(agent.locator("#buyer-id")).to_have_text(buyer_id)
    await expect(agent.locator("#order-list .order")).to_have_count(2)
    await expect(agent.locator("#payout-authority")).to_contain_text("单笔上限 ¥50.00")
    await expect(agent.locator("#payout-authority")).to_contain_text("/ ¥500.00")
    before = await agent.locator("#payout-authority").text_content()

    # Over my limit the form says it goes to approval; within it, it pays.
    await agent.fill("#payout-amount", "80")
    await expect(agent.locator("#payout-over")).to_be_visible()
    await expect(agent.locator("#payout-submit")).to_have_text(zh("Ask for approval"))

    # A bad amount is refused in the page.
    await pay(agent, "1.234", "late_shipment")
    await expect(agent.locator("#payout-result")).to_have_text(
        zh("Enter an amount with at most 2 decimals, e.g. 12.50")
    )

    # The order cannot cover it: the 409 is told clearly.
    await agent.select_option("#payout-order", small_order)
    await pay(agent, "20", "goodwill")
    await expect(agent.locator("#payout-result")).to_have_text(
        zh("More than this order can still be compensated")
    )

    # The first try is lost on the way; pressing again resends the same Idempotency-Key.
    keys: list[str] = []
    dropped = False

    async def watch(route: Any) -> None:
        nonlocal dropped
        keys.append(route.request.headers.get("idempotency-key", ""))
        if not dropped:
            dropped = True
            await route.abort()
        else:
            await route.continue_()

    await agent.route("**/api/v1/payouts", watch)
    await agent.select_option("#payout-order", order_id)
    await pay(agent, "12.5", "late_shipment", "晚发三天,补偿")
    await expect(agent.locator("#payout-result")).to_have_text(
        zh("Network trouble; press again to retry (it will not pay twice)")
    )
    await agent.click("#payout-submit")
    await expect(agent.locator("#payout-result")).to_have_text("已赔付 ¥12.50,买家已收到补偿卡片")
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0].startswith("pay-")

    # The buyer sees the card; the agent's chat shows it too, and my authority went down.
    card = widget(buyer, ".card-compensation")
    await expect(card.locator(".card-price")).to_have_text("¥12.50")
    await expect(card.locator(".card-sub")).to_have_text("晚发即赔")
    await expect(agent.locator("#messages .card-compensation .card-price")).to_have_text("¥12.50")
    await expect(agent.locator("#payout-authority")).not_to_have_text(before or "")
    await expect(agent.locator(f"#order-list [data-order='{order_id}'] .paid-out")).to_have_text(
        "已赔 ¥12.50"
    )

    # Another submission is a new key.
    await pay(agent, "3", "shipping_fee")
    await expect(agent.locator("#payout-result")).to_have_text("已赔付 ¥3.00,买家已收到补偿卡片")
    assert len(keys) == 3 and keys[2] != keys[0]
    await expect(widget(buyer, ".card-compensation")).to_have_count(2)
    await screenshot(agent, "workbench-payout")


async def test_transfer_to_a_queue_from_the_workbench(web, new_tab):
    agent = (await new_tab()).page
    await agent_online(agent, web.http, "demo", "alice")
    buyer_id = unique_buyer("move")
    buyer = (await new_tab(embed=True)).page
    await buyer_asks(buyer, web, buyer_id, "我妈妈想问问")
    item = conversation_item(agent, buyer_id)
    await item.click()

    await agent.click("#transfer-open")
    target = agent.locator("#transfer-target")
    await expect(target.locator("option[value='queue:elderly']")).to_have_count(1)
    await target.select_option("queue:elderly")
    await agent.fill("#transfer-note", "长辈咨询,请耐心")
    await agent.click("#transfer-send")
    await expect(item.locator(".preview")).to_have_text(zh("Transferred to someone else"))
    await expect(agent.locator("#composer-input")).to_be_disabled()
    await expect(agent.locator("#transfer-open")).to_be_disabled()

    # Bob (elder care) picks it up with the note.
    bob = (await new_tab()).page
    await agent_online(bob, web.http, "demo", "bob")
    moved = conversation_item(bob, buyer_id)
    await moved.click()
    await expect(bob.locator("#messages .msg.from-system")).to_contain_text("长辈咨询,请耐心")
    await expect(widget(buyer, ".status-line")).to_contain_text("Bob")
