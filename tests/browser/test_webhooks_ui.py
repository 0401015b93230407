"""The console's webhook tab in Chromium: an admin adds an endpoint (the secret shown once),
the server's own dispatcher job delivers the shop's events to a receiver (failing twice
first), and the deliveries tab shows each attempt and resends one."""

from __future__ import annotations

import asyncio
import time

import httpx
from playwright.async_api import expect

from tests.browser.helpers import log_in, reload_until_count, screenshot
from tests.support.factories import PASSWORD, make_shop
from tests.support.webhooks import SECRET, Receiver
from tests.support.words import zh


async def test_admin_adds_an_endpoint_and_reads_and_resends_its_deliveries(
    start_server, pages_database_url, vendored_htmx, new_tab
):
    web = await start_server(
        database_url=pages_database_url,
        HOMING_HTMX_LOCAL="true",
        HOMING_WEBHOOK_ALLOW_PRIVATE="true",
        HOMING_WEBHOOK_RETRY_BASE_S="0.3",
        HOMING_WEBHOOK_POLL_S="0.2",
    )
    receiver = await Receiver(script=[500, 500]).start()
    try:
        kit = await make_shop(web.ctx.db)
        tab = await new_tab()
        page = tab.page
        await log_in(page, web.http, kit.slug, "admin", PASSWORD)
        await page.goto(f"{web.http}/console?tab=webhooks")
        await expect(page.locator("#endpoints-empty")).to_be_visible()
        await page.click("#new-endpoint summary")
        await page.fill("#new-endpoint input[name=url]", receiver.url)
        await page.fill("#new-endpoint input[name=secret]", SECRET)
        await page.click("#new-endpoint button[type=submit]")
        flash = page.locator(".flash.ok")
        await expect(flash).to_contain_text(SECRET)  # once, now
        await expect(page.locator(".endpoint-url").first).to_have_text(receiver.url)
        await expect(page.locator(".group-list")).not_to_contain_text(SECRET)

        async with httpx.AsyncClient(base_url=web.http) as c:
            for sub in ("ui-1", "ui-2"):
                bh = {"Authorization": f"Bearer {kit.buyer_token(sub)}"}
                assert (await c.post("/api/v1/recall/opt-out", headers=bh)).status_code == 200
        deadline = time.monotonic() + 20
        while len(receiver.delivered()) < 2:
            assert time.monotonic() < deadline, receiver.received
            await asyncio.sleep(0.1)
        assert all(r.verified for r in receiver.received)

        # the receiver answered 200 a moment before the dispatcher records the delivery
        await reload_until_count(
            page, f"{web.http}/console?tab=webhooks", "#delivery-table tr[data-status=delivered]", 2
        )
        rows = page.locator("#delivery-table tbody tr")
        await expect(rows).to_have_count(2)
        await expect(page.locator("#delivery-table .attempt .code", has_text="500")).to_have_count(
            2
        )
        await expect(page.locator("#delivery-table .status-chip").first).to_have_text(
            zh("delivered")
        )
        await screenshot(page, "webhook-deliveries")

        await rows.first.locator("button.resend").click()
        await expect(page.locator(".flash.ok")).to_be_visible()
        deadline = time.monotonic() + 20
        while len(receiver.delivered()) < 3:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        first, second, again = (r.event["id"] for r in receiver.delivered())
        assert again in (first, second)  # a resend carries the event's own id
        await reload_until_count(
            page,
            f"{web.http}/console?tab=webhooks",
            "#delivery-table .attempt .code:text('200')",
            3,
        )
        await screenshot(page, "webhook-deliveries-resent")
    finally:
        await receiver.stop()
