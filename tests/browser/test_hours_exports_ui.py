"""Service hours, trends and exports in Chromium: the widget's 留言 banner with the shop's
auto-reply (Chinese and English), the workbench's 留言 badge, the 体验分 trend charts in
zh-CN and English, and an export's progress while the CSV streams in."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import httpx
from playwright.async_api import expect
from sqlalchemy import insert

from app.chat.models import Conversation, Message, Rating
from app.db import new_id, table_of
from tests.browser.helpers import (
    PHONE,
    conversation_item,
    embed_widget,
    log_in,
    open_widget,
    screenshot,
    widget,
    widget_say,
)
from tests.support.factories import PASSWORD, login, make_shop
from tests.support.words import zh

SH_OFFSET = timedelta(hours=8)


async def closed_today(web, kit) -> dict:
    token = await login(web.http, kit, "admin")
    today = (web.ctx.clock.now() + SH_OFFSET).date()
    body = {
        "weekly": {"mon": [["09:00", "21:00"]]},
        "exceptions": [
            {"date": today.isoformat(), "hours": []},
            {"date": (today + timedelta(days=1)).isoformat(), "hours": [["09:00", "18:00"]]},
        ],
        "auto_reply": "您好, 今天店铺休息, 明天 9 点起为您服务",
    }
    async with httpx.AsyncClient(base_url=web.http) as c:
        r = await c.put(
            "/api/v1/service-hours", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 200, r.text
    return r.json()


async def test_the_widget_tells_the_buyer_nobody_can_answer_and_the_agent_sees_the_leave_message(
    web, new_tab
):
    kit = await make_shop(web.ctx.db)
    await closed_today(web, kit)
    buyer = (await new_tab(PHONE, embed=True)).page
    await embed_widget(buyer, web, kit.buyer_token("leave-zh", name="王女士"))
    await open_widget(buyer)
    await widget_say(buyer, "在吗? 我的快递还没到")
    banner = widget(buyer, ".away")
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("客服暂时不在, 您可以留言, 上线后第一时间回复您")
    await expect(banner).to_contain_text("09:00")
    await expect(banner).to_have_attribute("data-reason", "outside_hours")
    await expect(widget(buyer, ".messages")).to_contain_text("今天店铺休息")
    await screenshot(buyer, "widget-offline-banner-zh")

    english = (await new_tab(PHONE, embed=True)).page
    await embed_widget(english, web, kit.buyer_token("leave-en"), lang="en")
    await open_widget(english)
    await widget_say(english, "Hello, anyone there?")
    await expect(widget(english, ".away")).to_contain_text(
        "Our agents are away right now. Leave a message"
    )
    await expect(widget(english, ".away")).to_contain_text("09:00")
    await screenshot(english, "widget-offline-banner-en")

    # An agent comes online: the 留言 are theirs, marked with the wait; the banner goes.
    agent = (await new_tab()).page
    await log_in(agent, web.http, kit.slug, "agent1", PASSWORD)
    online = agent.locator(".status-switch [data-status=online]")
    await online.click()
    item = conversation_item(agent, "leave-zh")
    await expect(item.locator(".badge-left")).to_contain_text(zh("Left message"))
    await screenshot(agent, "workbench-leave-message-badge")
    await expect(widget(buyer, ".away")).to_be_hidden()


async def store_history(db, kit, days: int, messages_per_conv: int = 3) -> int:
    """Conversations over `days` days (busier at 10:00 and 20:00 Shanghai), set-based."""
    rng = random.Random(7)
    a1 = kit.agents["agent1"]
    convs, msgs, ratings = [], [], []
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
        days=days
    )
    for day in range(days):
        for n in range(20 + 6 * (day % 4)):
            hour = rng.choice([1, 2, 2, 3, 5, 6, 12, 12, 12, 13])  # UTC: 09-21 Shanghai
            opened = start + timedelta(days=day, hours=hour, minutes=rng.randrange(60))
            cid = new_id()
            reply = rng.choice([20, 60, 120, 170, 240, 400])
            convs.append(
                {
                    "id": cid,
                    "shop_id": kit.shop_id,
                    "buyer_id": f"hb-{day}-{n}",
                    "queue": "general",
                    "status": "closed",
                    "agent_id": a1,
                    "elder": False,
                    "last_seq": messages_per_conv,
                    "buyer_read_seq": 0,
                    "agent_read_seq": 0,
                    "opened_at": opened,
                    "queued_at": opened,
                    "assigned_at": opened + timedelta(seconds=3),
                    "closed_at": opened + timedelta(minutes=20),
                    "close_reason": "agent",
                }
            )
            for seq in range(1, messages_per_conv + 1):
                sender = "agent" if seq % 2 == 0 else "buyer"
                msgs.append(
                    {
                        "id": new_id(),
                        "shop_id": kit.shop_id,
                        "conversation_id": cid,
                        "seq": seq,
                        "sender": sender,
                        "sender_id": a1 if sender == "agent" else f"hb-{day}-{n}",
                        "kind": "text",
                        "body": "请问什么时候发货?" if sender == "buyer" else "今天下午就发",
                        "payload": {},
                        "created_at": opened + timedelta(seconds=seq * reply),
                    }
                )
            if n % 3 == 0:
                ratings.append(
                    {
                        "conversation_id": cid,
                        "shop_id": kit.shop_id,
                        "buyer_id": f"hb-{day}-{n}",
                        "agent_id": a1,
                        "score": rng.choice([2, 4, 5, 5]),
                        "comment": "",
                        "created_at": opened + timedelta(minutes=21),
                    }
                )

    async def build(uow):
        s = uow.session
        await s.execute(insert(table_of(Conversation)), convs)
        for i in range(0, len(msgs), 5000):
            await s.execute(insert(table_of(Message)), msgs[i : i + 5000])
        await s.execute(insert(table_of(Rating)), ratings)

    await db.run(build)
    return len(msgs)


async def test_trend_charts_in_chinese_and_english(web, new_tab):
    kit = await make_shop(web.ctx.db)
    await store_history(web.ctx.db, kit, days=14)
    page = (await new_tab({"width": 1280, "height": 1500})).page
    await log_in(page, web.http, kit.slug, "admin", PASSWORD)
    await page.goto(f"{web.http}/console?tab=metrics")
    trends = page.locator("#trends")
    await expect(trends.locator("[data-chart]")).to_have_count(5)
    for key in ("reply", "first", "satisfaction", "volume"):
        chart = trends.locator(f'[data-chart="{key}"]')
        await expect(chart.locator("polyline")).not_to_have_count(0)
        await expect(chart.locator("circle")).not_to_have_count(0)
    await expect(trends.locator('[data-chart="reply"] figcaption')).to_have_text(
        zh("Replied within 3 min")
    )
    await expect(trends.locator("#heat-map rect.heat-cell")).to_have_count(7 * 24)
    busy = trends.locator('#heat-map rect.heat-cell:not([data-count="0"])')
    await expect(busy).not_to_have_count(0)
    await trends.scroll_into_view_if_needed()
    await screenshot(page, "console-trends-zh")
    await page.goto(f"{web.http}/console?tab=metrics&lang=en")
    await expect(page.locator('#trends [data-chart="volume"] figcaption')).to_have_text(
        "Incoming conversations"
    )
    await expect(page.locator("#trends .heat figcaption")).to_contain_text(
        "Incoming conversations by weekday and hour"
    )
    await page.locator("#trends").scroll_into_view_if_needed()
    await screenshot(page, "console-trends-en")


async def test_an_export_shows_its_progress_and_saves_the_csv(web, new_tab):
    kit = await make_shop(web.ctx.db)
    stored = await store_history(web.ctx.db, kit, days=14, messages_per_conv=24)
    tab = await new_tab({"width": 1280, "height": 1100})
    page = tab.page
    await log_in(page, web.http, kit.slug, "admin", PASSWORD)
    today = (datetime.now(UTC) + SH_OFFSET).date()
    first = today - timedelta(days=16)
    await page.goto(f"{web.http}/console?tab=metrics&from={first}&to={today}")
    box = page.locator("#exports")
    await expect(box).to_be_visible()
    # A slow line, so the download takes a few seconds as a big export would.
    cdp = await tab.context.new_cdp_session(page)
    await cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": 120_000, "uploadThroughput": -1},
    )
    async with page.expect_download(timeout=60_000) as download_info:
        await box.locator('button[data-export="messages"]').click()
        await expect(box).to_have_attribute("data-state", "running")
        await expect(box.locator(".export-status")).to_contain_text("/")
        await box.scroll_into_view_if_needed()
        await screenshot(page, "console-export-progress")
        await expect(box).to_have_attribute("data-state", "done", timeout=60_000)
    download = await download_info.value
    assert download.suggested_filename.startswith("homing-messages-")
    path = await download.path()
    data = path.read_bytes()
    assert data.startswith("\ufeff".encode())
    lines = data.decode("utf-8-sig").count("\r\n")
    assert lines - 1 == stored
    await expect(box).to_have_attribute("data-rows", str(stored))
    await screenshot(page, "console-export-done")
