"""Fan groups in Chromium: the console's group management, and a buyer in the widget who
joins, chats, checks in and claims a giveaway."""

from __future__ import annotations

import secrets

import httpx
from playwright.async_api import expect

from app.demo import DEMO_SLUG
from tests.browser.helpers import (
    DEMO_PASSWORD,
    PHONE,
    as_buyer,
    demo_buyer_token,
    embed_widget,
    log_in,
    open_widget,
    screenshot,
    unique_buyer,
    widget,
)
from tests.support.servers import InProcessServer
from tests.support.words import zh

XSS = "<img src=x onerror=alert(1)>"


async def staff_api(
    server: InProcessServer, username: str, method: str, path: str, body: dict
) -> dict:
    """A call as a demo-shop agent through the HTTP API (the console is tested elsewhere)."""
    async with httpx.AsyncClient(base_url=server.http) as c:
        r = await c.post(
            "/api/v1/auth/login",
            json={"shop": DEMO_SLUG, "username": username, "password": DEMO_PASSWORD},
        )
        r.raise_for_status()
        headers = {"Authorization": f"Bearer {r.json()['token']}"}
        r = await c.request(method, f"/api/v1{path}", headers=headers, json=body)
        assert r.status_code in (200, 201), r.text
        return r.json()  # type: ignore[no-any-return]


async def buyer_posts(
    server: InProcessServer, token: str, group_id: str, body: str
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.http) as c:
        return await c.post(
            f"/api/v1/groups/{group_id}/messages",
            headers={"Authorization": f"Bearer {token}"},
            json={"client_msg_id": secrets.token_hex(6), "body": body},
        )


async def test_console_creates_a_group_moderates_members_and_starts_a_giveaway(web, new_tab):
    admin_tab = await new_tab()
    admin = admin_tab.page
    await log_in(admin, web.http, "demo", "admin", "demo")
    await admin.goto(web.http + "/console")
    await admin.click(".console-tabs a[data-tab=groups]")

    # A group whose name is markup.
    name = f"{XSS} 茶友会 {secrets.token_hex(2)}"
    await admin.click("#new-group summary")
    await admin.fill("#new-group input[name=name]", name)
    await admin.click("#new-group button[type=submit]")
    await expect(admin.locator(".flash.ok")).to_have_text(f"已创建粉丝群「{name}」")
    detail = admin.locator("#group-detail")
    await expect(detail.locator("h2.group-name")).to_have_text(name)
    await expect(admin.locator("#members-empty")).to_be_visible()
    group_id = await detail.get_attribute("data-group")
    assert group_id

    # Two buyers join; one writes markup.
    lin, zhou = unique_buyer("lin"), unique_buyer("zhou")
    tokens = {b: demo_buyer_token(b) for b in (lin, zhou)}
    for b in (lin, zhou):
        r = await as_buyer(web, tokens[b], "POST", f"/groups/{group_id}/join")
        assert r.status_code == 200, r.text
    assert (await buyer_posts(web, tokens[lin], group_id, XSS)).status_code == 201
    await admin.click("#group-detail .refresh-link")
    await expect(admin.locator("#member-table tbody tr")).to_have_count(2)
    await expect(admin.locator("#member-count")).to_have_text("2 / 500 人")
    await expect(admin.locator("#group-messages .gmsg.from-buyer .body")).to_have_text(XSS)

    # Mute Lin for 10 minutes: the page says so and Lin cannot post; then lift it.
    lin_row = admin.locator(f"#member-table tr[data-buyer='{lin}']")
    await lin_row.locator("select[name=minutes]").select_option("10")
    await lin_row.locator("button.mute").click()
    await expect(admin.locator(".flash.ok")).to_have_text(f"已禁言 {lin}(10 分钟)")
    await expect(lin_row.locator(".muted-tag")).to_contain_text("禁言至")
    r = await buyer_posts(web, tokens[lin], group_id, "能说话吗")
    assert r.status_code == 403 and r.json()["error"]["code"] == "muted"
    await lin_row.locator("button.unmute").click()
    await expect(admin.locator(".flash.ok")).to_have_text(zh("Mute lifted"))
    await expect(lin_row.locator(".muted-tag")).to_have_count(0)
    assert (await buyer_posts(web, tokens[lin], group_id, "能说话了")).status_code == 201

    # Remove Zhou for good.
    await admin.locator(f"#member-table tr[data-buyer='{zhou}'] button.remove").click()
    await expect(admin.locator(".flash.ok")).to_have_text(f"已将 {zhou} 移出群")
    await expect(admin.locator("#member-table tbody tr")).to_have_count(1)
    await expect(admin.locator("#member-count")).to_have_text("1 / 500 人")
    r = await as_buyer(web, tokens[zhou], "POST", f"/groups/{group_id}/join")
    assert r.status_code == 403, r.text

    # A giveaway: posted into the group and listed with what is claimed.
    form = admin.locator("#giveaway-form")
    await form.locator("input[name=title]").fill(f"{XSS} 新人券")
    await form.locator("input[name=quantity]").fill("3")
    await form.locator("input[name=amount]").fill("5")
    await form.locator("button[type=submit]").click()
    await expect(admin.locator(".flash.ok")).to_have_text(f"已发放福利「{XSS} 新人券」")
    gw_row = admin.locator("#giveaway-table tbody tr").first
    await expect(gw_row.locator(".giveaway-title")).to_have_text(f"{XSS} 新人券")
    await expect(gw_row.locator(".claimed")).to_have_text("0 / 3")
    await expect(admin.locator("#group-messages .gmsg.kind-giveaway .body")).to_contain_text(XSS)

    # Everyone muted, then not; the shop posts as itself.
    await admin.click("#group-mute")
    await expect(admin.locator("#group-muted")).to_be_visible()
    assert (await buyer_posts(web, tokens[lin], group_id, "全员禁言了吗")).status_code == 403
    await admin.click("#group-mute")
    await expect(admin.locator("#group-muted")).to_have_count(0)
    await admin.fill("#group-post input[name=body]", f"店长:{XSS}")
    await admin.click("#group-post button[type=submit]")
    await expect(admin.locator("#group-messages .gmsg.from-agent .body").last).to_have_text(
        f"店长:{XSS}"
    )
    await screenshot(admin, "console-groups")

    # A supervisor manages but does not create groups, and reads the names as text.
    sam_tab = await new_tab()
    sam = sam_tab.page
    await log_in(sam, web.http, "demo", "sam", "demo")
    await sam.goto(f"{web.http}/console?tab=groups&group={group_id}")
    await expect(sam.locator("#new-group")).to_have_count(0)
    await expect(sam.locator(f".group-list a[data-group='{group_id}'] .group-name")).to_have_text(
        name
    )
    # Joined over HTTP only, never on a socket: no name is known, the id stands in.
    member = sam.locator(f"#member-table tr[data-buyer='{lin}'] .member-name")
    await expect(member).to_have_text(lin)
    r = await sam.request.post(
        f"{web.http}/console/groups", headers={"HX-Request": "true"}, form={"name": "x"}
    )
    assert r.status == 403
    sam_tab.expected_errors.append("403")

    for tab in (admin_tab, sam_tab):
        assert await tab.page.locator("main img").count() == 0
        assert tab.dialogs == []


async def test_buyer_joins_a_group_in_the_widget_checks_in_and_claims_a_giveaway(web, new_tab):
    name = f"{XSS} 老茶客 {secrets.token_hex(2)}"
    group = await staff_api(web, "admin", "POST", "/groups", {"name": name})
    gid = group["id"]

    buyer_tab = await new_tab(PHONE, embed=True)
    buyer = buyer_tab.page
    me = unique_buyer("fan")
    await embed_widget(buyer, web, demo_buyer_token(me))
    await open_widget(buyer)
    await widget(buyer, ".tab-groups").click()
    item = widget(buyer, f".group-item[data-group='{gid}']")
    await expect(item.locator(".group-name")).to_have_text(name)
    await item.locator("button.join").click()
    await expect(widget(buyer, ".room-name")).to_have_text(name)

    # Check in: day one of a streak (again the same day changes nothing).
    await widget(buyer, "button.checkin").click()
    await expect(widget(buyer, "button.checkin")).to_have_text("已签到 · 连续 1 天")

    # Chat in the group; others' markup is text.
    box = widget(buyer, ".group-input")
    await box.fill("大家好")
    await box.press("Enter")
    await expect(widget(buyer, ".gmsg.mine:not(.pending) .text")).to_have_text("大家好")
    other = demo_buyer_token(unique_buyer("other"))
    assert (await as_buyer(web, other, "POST", f"/groups/{gid}/join")).status_code == 200
    assert (await buyer_posts(web, other, gid, XSS)).status_code == 201
    await expect(widget(buyer, ".gmsg.from-buyer:not(.mine) .text")).to_have_text(XSS)

    # The shop starts a giveaway of one coupon: it arrives live, the buyer takes it.
    gw = await staff_api(
        web,
        "sam",
        "POST",
        f"/groups/{gid}/giveaways",
        {"title": "签到福利", "quantity": 1, "coupon": {"amount_cents": 800}},
    )
    card = widget(buyer, f".card-giveaway[data-giveaway='{gw['id']}']")
    await expect(card.locator(".card-price")).to_have_text("¥8.00")
    await card.locator("button.claim-giveaway").click()
    await expect(card.locator("button.claim-giveaway")).to_have_text("已领取")
    await expect(widget(buyer, ".gmsg.from-system .text")).to_have_text("福利「签到福利」已领完")
    r = await as_buyer(web, other, "POST", f"/giveaways/{gw['id']}/claim")
    assert r.status_code == 409 and r.json()["error"]["code"] == "sold_out"
    await screenshot(buyer, "widget-groups")

    # Muted by the shop: the widget says so and will not send.
    await staff_api(web, "sam", "POST", f"/groups/{gid}/mute", {"buyer_id": me, "minutes": 30})
    await expect(widget(buyer, ".room-status")).to_contain_text("您被禁言到")
    await expect(box).to_be_disabled()

    # Back to the list: the group is marked as joined.
    await widget(buyer, "button.back").click()
    await expect(item.locator("button.enter")).to_be_visible()
    assert await buyer.locator("img").count() == 0
    assert buyer_tab.dialogs == []
