"""The console (/console) for supervisors and admins, in Chromium against a real server."""

from __future__ import annotations

import re
import secrets

from playwright.async_api import expect

from tests.browser.helpers import (
    agent_online,
    buyer_asks,
    conversation_item,
    demo_order,
    log_in,
    pay,
    screenshot,
    unique_buyer,
    widget,
)
from tests.support.words import zh

XSS = "<img src=x onerror=alert(1)>"


async def test_over_limit_payout_is_approved_in_the_console_and_reaches_the_buyer(web, new_tab):
    alice = (await new_tab()).page
    await agent_online(alice, web.http, "demo", "alice")
    buyer_id = unique_buyer("big")
    order_id = f"B{secrets.token_hex(4)}"
    await demo_order(web, buyer_id, order_id, 500_000)
    buyer = (await new_tab(embed=True)).page
    await buyer_asks(buyer, web, buyer_id, "茶壶摔坏了,很失望")
    await conversation_item(alice, buyer_id).click()
    await expect(alice.locator(f"#payout-order option[value='{order_id}']")).to_have_count(1)

    # ¥80 is above Alice's ¥50: it goes to approval (the note is someone's markup).
    await pay(alice, "80", "goodwill", XSS)
    await expect(alice.locator("#payout-result")).to_have_text("¥80.00 已提交主管审批")
    # ¥3,000 is above the supervisor's own ¥2,000 too.
    await pay(alice, "3000", "goodwill", "大额安抚")
    await expect(alice.locator("#payout-result")).to_have_text("¥3000.00 已提交主管审批")

    sam_tab = await new_tab()
    sam = sam_tab.page
    await log_in(sam, web.http, "demo", "sam", "demo")
    await sam.click("a.nav-link[href='/console']")
    await expect(sam.locator(".console-tabs a.active")).to_have_text(zh("Live queues"))
    await expect(sam.locator("#queue-table tr[data-queue=general]")).to_be_visible()
    await expect(sam.locator("#queue-table thead")).to_contain_text(zh("Longest wait"))
    await expect(sam.locator("#longest-wait")).to_have_text(re.compile(r"^\d+ 秒$"))
    await screenshot(sam, "console-queues")

    await sam.click(".console-tabs a[data-tab=approvals]")
    row = sam.locator("#approval-table tr", has=sam.locator(".note", has_text=XSS))
    await expect(row.locator(".amount")).to_have_text("¥80.00")
    await expect(row.locator(".agent-name")).to_have_text("Alice 小艾")
    big = sam.locator("#approval-table tr", has=sam.locator(".note", has_text="大额安抚"))
    await screenshot(sam, "console-approvals")

    # Above the supervisor's own limit: the 409 is shown and the payout stays pending.
    await big.locator("button.approve").click()
    await expect(sam.locator(".flash.error")).to_have_text(zh("Above my own per-payout limit"))
    await expect(big).to_be_visible()

    await row.locator("button.approve").click()
    await expect(sam.locator(".flash.ok")).to_have_text("已批准 ¥80.00,补偿卡片已发给买家")
    await expect(row).to_have_count(0)
    card = widget(buyer, ".card-compensation")
    await expect(card.locator(".card-price")).to_have_text("¥80.00")
    await expect(card.locator(".card-sub")).to_have_text("安抚补偿")

    await big.locator("button.reject").click()
    await expect(sam.locator(".flash.ok")).to_have_text("已拒绝 ¥3,000.00")
    await expect(sam.locator("#approvals-empty")).to_be_visible()

    # Fund and metrics: numbers and the chart.
    await sam.click(".console-tabs a[data-tab=fund]")
    await expect(sam.locator("#fund-balance")).to_contain_text("¥")
    await expect(sam.locator("form[hx-post='/console/fund']")).to_have_count(0)
    await sam.click(".console-tabs a[data-tab=metrics]")
    await expect(sam.locator("#agent-metrics tr[data-agent=alice]")).to_be_visible()
    await expect(sam.locator("#metrics-chart rect.bar")).not_to_have_count(0)
    await screenshot(sam, "console-metrics")
    assert sam_tab.dialogs == []


async def test_the_console_refuses_a_plain_agent(web, new_tab):
    alice_tab = await new_tab()
    alice_tab.expected_errors.append("403")  # the browser logs the refused page
    alice = alice_tab.page
    await log_in(alice, web.http, "demo", "alice", "demo")
    await expect(alice.locator("a.nav-link[href='/console']")).to_have_count(0)
    response = await alice.goto(web.http + "/console")
    assert response is not None and response.status == 403
    await expect(alice.locator("h1")).to_have_text(zh("No access to the console"))
    await expect(alice.locator("#section")).to_have_count(0)
    # Nor may an agent post to it.
    r = await alice.request.post(
        web.http + "/console/payouts/x/approve", headers={"HX-Request": "true"}
    )
    assert r.status == 403
    anonymous = (await new_tab()).page
    await anonymous.goto(web.http + "/console")
    await expect(anonymous).to_have_url(web.http + "/login")


async def test_admin_edits_agents_categories_and_fund_and_markup_stays_text(web, new_tab):
    admin_tab = await new_tab()
    admin = admin_tab.page
    await log_in(admin, web.http, "demo", "admin", "demo")
    await admin.goto(web.http + "/console?tab=agents")

    # A new agent whose display name is markup.
    username = f"xss{secrets.token_hex(3)}"
    await admin.click("#new-agent summary")
    form = admin.locator("#new-agent form")
    await form.locator("input[name=username]").fill(username)
    await form.locator("input[name=display_name]").fill(XSS)
    await form.locator("input[name=password]").fill("secret-pw")
    await form.locator("input[name=queues][value=general]").check()
    await form.locator("input[name=payout_limit]").fill("30")
    await form.locator("button[type=submit]").click()
    await expect(admin.locator(".flash.ok")).to_have_text(f"已创建 {XSS}")
    row = admin.locator(f"#agent-table tr[data-agent={username}]")
    await expect(row.locator(".agent-name")).to_have_text(XSS)
    await expect(row).to_contain_text("¥30.00")

    # Edit: the daily total, and a bad value is refused with its reason.
    await row.locator("details summary").click()
    edit = row.locator("details form")
    await edit.locator("input[name=payout_daily]").fill("1234.5")
    await edit.locator("button[type=submit]").click()
    await expect(admin.locator(".flash.ok")).to_have_text(f"已保存 {XSS}")
    row = admin.locator(f"#agent-table tr[data-agent={username}]")
    await expect(row).to_contain_text("¥1,234.50")
    await screenshot(admin, "console-agents")
    await row.locator("details summary").click()
    await row.locator("details form input[name=payout_limit]").fill("-5")
    await row.locator("details form button[type=submit]").click()
    await expect(admin.locator(".flash.error")).to_have_text(
        zh("Enter an amount above 0 with at most 2 decimals")
    )

    # Categories: one whose name is markup, routed to the elder-care queue.
    await admin.click(".console-tabs a[data-tab=categories]")
    new_row = admin.locator("#category-table tr.new-row").first
    await new_row.locator("input[name=category]").fill(XSS)
    await new_row.locator("select[name=queue]").select_option("elderly")
    await admin.click("#category-form button[type=submit]")
    await expect(admin.locator(".flash.ok")).to_have_text(zh("Categories saved"))
    await expect(admin.locator("#category-table input[name=category]").first).to_have_value(XSS)
    await screenshot(admin, "console-categories")

    # The fund: an admin tops it up.
    await admin.click(".console-tabs a[data-tab=fund]")
    balance = await admin.locator("#fund-balance").text_content()
    await admin.fill("form[hx-post='/console/fund'] input[name=amount]", "100.5")
    await admin.click("form[hx-post='/console/fund'] button[type=submit]")
    await expect(admin.locator(".flash.ok")).to_have_text("已充值 ¥100.50")
    await expect(admin.locator("#fund-balance")).not_to_have_text(balance or "")

    # The supervisor reads the categories as text; the metrics name the new agent as text.
    sam_tab = await new_tab()
    sam = sam_tab.page
    await log_in(sam, web.http, "demo", "sam", "demo")
    await sam.goto(web.http + "/console?tab=categories")
    await expect(
        sam.locator(f"#category-table tr[data-category='{XSS}'] .category-name")
    ).to_have_text(XSS)
    await sam.goto(web.http + "/console?tab=metrics")
    await expect(sam.locator(f"#agent-metrics tr[data-agent={username}] .agent-name")).to_have_text(
        XSS
    )
    await sam.goto(web.http + "/console?tab=agents")
    await expect(sam.locator(f"#agent-table tr[data-agent={username}] .agent-name")).to_have_text(
        XSS
    )

    for tab in (admin_tab, sam_tab):
        assert await tab.page.locator("main img").count() == 0
        await tab.page.wait_for_timeout(200)
        assert tab.dialogs == []
