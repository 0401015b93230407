"""A buyer in the widget and an agent in the workbench, in Chromium, through a real server."""

from __future__ import annotations

import struct
import zlib
from datetime import UTC, datetime, timedelta

import httpx
from playwright.async_api import expect

from app.pages.demo import DEMO_PRODUCT
from tests.browser.helpers import (
    PHONE,
    agent_online,
    conversation_item,
    embed_widget,
    log_in,
    open_widget,
    screenshot,
    widget,
    widget_say,
)
from tests.support.client import WSClient
from tests.support.factories import PASSWORD, login, make_shop
from tests.support.words import zh

XSS = "<img src=x onerror=alert(1)>"


async def test_widget_and_workbench_chat_both_ways(web, new_tab):
    agent = (await new_tab()).page
    await agent_online(agent, web.http, "demo", "alice")

    buyer = (await new_tab()).page
    await buyer.goto(web.http + "/demo/shop?buyer=lin")
    await open_widget(buyer)
    await widget_say(buyer, "你好,这个茶具有现货吗?")
    await expect(widget(buyer, ".msg.from-buyer[data-seq='1']")).to_contain_text("有现货吗")

    # The workbench lists it with an unread count and a waiting time; opening it reads it.
    item = conversation_item(agent, "demo-lin")
    await expect(item.locator(".unread")).to_have_text("1")
    await expect(item.locator(".wait")).to_contain_text(zh("waiting"))
    await expect(item.locator(".badge-elder")).to_have_count(0)
    await item.click()
    await expect(agent.locator("#messages .msg.from-buyer")).to_contain_text("有现货吗")
    await expect(item.locator(".unread")).to_have_count(0)
    await expect(widget(buyer, ".status-line")).to_have_text("客服 Alice 小艾 为您服务")
    await expect(widget(buyer, ".msg.from-buyer[data-seq='1'] .receipt")).to_have_text("已读")

    # A product card from the widget arrives as a card.
    await widget(buyer, ".product-send").click()
    card = agent.locator("#messages .msg.kind-product_card .card-product")
    await expect(card.locator(".card-title")).to_have_text(DEMO_PRODUCT["title"])
    await expect(card.locator(".card-price")).to_have_text("¥268.00")

    # The buyer types: the agent sees it.
    await widget(buyer, ".input").press_sequentially("还有")
    await expect(agent.locator("#typing")).to_be_visible()
    await widget(buyer, ".input").fill("")

    # Shift+Enter is a new line, Enter sends.
    box = agent.locator("#composer-input")
    await box.click()
    await box.press_sequentially("有的,现货")
    await box.press("Shift+Enter")
    await box.press_sequentially("今天下单明天发")
    await box.press("Enter")
    await expect(box).to_have_value("")
    reply = widget(buyer, ".msg.from-agent .text")
    await expect(reply).to_have_text("有的,现货\n今天下单明天发")
    # The buyer's widget is open, so the agent's message shows as read.
    await expect(agent.locator("#messages .msg.from-agent .receipt")).to_have_text(zh("Read"))

    # Canned replies go into the box.
    await agent.locator(".canned-use").first.click()
    await expect(box).not_to_have_value("")
    await box.press("Enter")
    await expect(widget(buyer, ".msg.from-agent")).to_have_count(2)
    await screenshot(agent, "workbench")

    # Closing asks once more, then the buyer is told.
    await agent.click("#close-conv")
    await expect(agent.locator("#close-conv")).to_have_text(zh("Really close?"))
    await agent.click("#close-conv")
    await expect(agent.locator("#messages .notice")).to_have_text(zh("Conversation closed"))
    await expect(widget(buyer, ".status-line")).to_have_text("本次会话已结束,发消息可以再次咨询")
    # The buyer is asked to rate; the agent sees the rating.
    await widget(buyer, ".csat .star[data-score='5']").click()
    await expect(widget(buyer, ".csat-thanks")).to_have_text("感谢您的评价!")
    await expect(agent.locator("#messages .rating")).to_have_text(zh("Buyer's rating") + " ★★★★★")
    await screenshot(buyer, "demo-shop")

    # Writing again opens a new conversation, which goes back to the same agent (熟客优先).
    await widget_say(buyer, "还有个问题")
    await expect(widget(buyer, ".divider")).to_be_visible()
    await expect(widget(buyer, ".msg.from-agent")).to_have_count(0)
    await expect(widget(buyer, ".status-line")).to_have_text("客服 Alice 小艾 为您服务")
    await expect(agent.locator(".conv-item")).to_have_count(2)
    await expect(agent.locator(".conv-item.closed")).to_have_count(1)


async def test_queue_position_then_the_agent_s_name(web, new_tab):
    kit = await make_shop(web.ctx.db, agents=(("gen", "agent", ("general",)),))
    buyer = (await new_tab(embed=True)).page
    await embed_widget(buyer, web, kit.buyer_token("waiting-buyer"))
    await open_widget(buyer)
    await expect(widget(buyer, ".status-line")).to_have_text("您好,请问有什么可以帮您?")
    await widget_say(buyer, "有人吗?")
    await expect(widget(buyer, ".status-line")).to_have_text("正在排队,您是第 1 位")

    agent = (await new_tab()).page
    await agent_online(agent, web.http, kit.slug, "gen", PASSWORD)
    await expect(widget(buyer, ".status-line")).to_have_text("客服 gen 客服 为您服务")
    await expect(conversation_item(agent, "waiting-buyer").locator(".unread")).to_have_text("1")


async def test_elder_buyer_of_72_lands_with_the_elderly_agent(web, new_tab):
    bob = (await new_tab()).page
    await agent_online(bob, web.http, "demo", "bob")

    buyer = (await new_tab(PHONE)).page
    await buyer.goto(web.http + "/demo/shop?buyer=wang")
    await screenshot(buyer, "demo-shop-phone")
    await open_widget(buyer)
    await widget_say(buyer, "我想问问这个壶能不能用来泡红茶")
    item = conversation_item(bob, "demo-wang")
    await expect(item.locator(".badge-elder")).to_have_text(zh("Elder"))
    await item.click()
    await expect(bob.locator("#chat-meta")).to_contain_text(zh("elder care"))
    await bob.locator("#composer-input").fill("可以的,奶奶,红茶绿茶都能泡。")
    await bob.locator("#composer-input").press("Enter")
    await expect(widget(buyer, ".msg.from-agent")).to_contain_text("红茶绿茶都能泡")
    await expect(widget(buyer, ".status-line")).to_contain_text("Bob 老鲍")
    await expect(widget(buyer, ".msg.from-buyer .receipt")).to_have_text("已读")
    await expect(bob.locator("#messages .msg.from-agent .receipt")).to_have_text(zh("Read"))
    await expect(bob.locator("#typing")).to_be_hidden()
    await screenshot(buyer, "widget")
    await screenshot(bob, "workbench-elder")

    await bob.click("#close-conv")
    await bob.click("#close-conv")
    await expect(widget(buyer, ".status-line")).to_have_text("本次会话已结束,发消息可以再次咨询")


async def test_elder_mode_switch_routes_the_next_conversation_to_elderly(web, new_tab):
    kit = await make_shop(
        web.ctx.db, agents=(("gen", "agent", ("general",)), ("old", "agent", ("elderly",)))
    )
    old = (await new_tab()).page
    await agent_online(old, web.http, kit.slug, "old", PASSWORD)

    buyer = (await new_tab(PHONE, embed=True)).page
    await embed_widget(buyer, web, kit.buyer_token("young-buyer", age=30))
    await open_widget(buyer)
    toggle = widget(buyer, ".elder-toggle")
    await expect(toggle).to_have_text("长辈模式")
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-pressed", "true")
    await expect(widget(buyer, ".panel")).to_have_class("panel elder")
    font_size = await widget(buyer, ".input").evaluate(
        "e => parseFloat(getComputedStyle(e).fontSize)"
    )
    assert font_size >= 20
    await widget_say(buyer, "有人吗")
    item = conversation_item(old, "young-buyer")
    await expect(item.locator(".badge-elder")).to_be_visible()
    await item.click()
    await old.locator("#composer-input").fill("您好,我在。")
    await old.locator("#composer-input").press("Enter")
    await expect(widget(buyer, ".status-line")).to_have_text("客服 old 客服 来帮您了")
    await expect(widget(buyer, ".msg.from-agent")).to_contain_text("您好,我在。")
    await expect(widget(buyer, ".msg.from-buyer .receipt")).to_have_text("已读")
    await expect(widget(buyer, ".typing")).to_be_hidden()
    await screenshot(buyer, "widget-elder")

    # The switch is remembered: a reload comes back in elder mode.
    await buyer.reload()
    await open_widget(buyer)
    await expect(widget(buyer, ".elder-toggle")).to_have_attribute("aria-pressed", "true")
    await expect(widget(buyer, ".msg.from-agent")).to_contain_text("您好,我在。")


async def test_markup_in_messages_is_shown_as_text_everywhere(web, new_tab):
    kit = await make_shop(web.ctx.db, agents=(("gen", "agent", ("general",)),))
    agent_tab = await new_tab()
    agent = agent_tab.page
    await agent_online(agent, web.http, kit.slug, "gen", PASSWORD)
    buyer_tab = await new_tab(embed=True)
    buyer = buyer_tab.page
    await embed_widget(buyer, web, kit.buyer_token("xss-buyer", name=XSS))
    await open_widget(buyer)

    await widget_say(buyer, XSS)
    item = conversation_item(agent, "xss-buyer")
    await item.click()
    await expect(agent.locator("#messages .msg.from-buyer .text")).to_have_text(XSS)
    # (Sent once the conversation is assigned: a message racing the assignment can miss
    # the agent on PostgreSQL, a core issue reported separately.)
    await buyer.evaluate(
        "p => window.HomingWidget.sendProduct(p)",
        {
            "product_id": "p<b>1</b>",
            "title": "<script>alert(2)</script>",
            "category": "x",
            "price_cents": 1,
        },
    )
    await expect(agent.locator("#messages .card-title")).to_have_text("<script>alert(2)</script>")
    await agent.locator("#composer-input").fill(f"回复 {XSS}")
    await agent.locator("#composer-input").press("Enter")
    await expect(widget(buyer, ".msg.from-agent .text")).to_have_text(f"回复 {XSS}")
    await expect(widget(buyer, ".msg.from-buyer .text")).to_have_text(XSS)
    await expect(agent.locator("#messages .msg.from-agent .text")).to_have_text(f"回复 {XSS}")

    # A campaign and a fan group named with markup, and markup said in the group: text in
    # the widget's group pane and in the console's recall and group tabs.
    now = datetime.now(UTC)
    admin_token = await login(web.http, kit, "admin")
    async with httpx.AsyncClient(
        base_url=web.http, headers={"Authorization": f"Bearer {admin_token}"}
    ) as c:
        r = await c.post(
            "/api/v1/recall/campaigns",
            json={
                "name": XSS,
                "send_at": now.isoformat(),
                "ends_at": (now + timedelta(days=2)).isoformat(),
                "coupon": {"title": XSS, "amount_cents": 500},
            },
        )
        assert r.status_code == 201, r.text
        r = await c.post("/api/v1/groups", json={"name": XSS})
        assert r.status_code == 201, r.text
        group_id = r.json()["id"]
    await widget(buyer, ".tab-groups").click()
    group = widget(buyer, f".group-item[data-group='{group_id}']")
    await expect(group.locator(".group-name")).to_have_text(XSS)
    await group.locator("button.join").click()
    await expect(widget(buyer, ".room-name")).to_have_text(XSS)
    await widget(buyer, ".group-input").fill(XSS)
    await widget(buyer, ".group-input").press("Enter")
    await expect(widget(buyer, ".gmsg.mine:not(.pending) .text")).to_have_text(XSS)
    admin_tab = await new_tab()
    admin = admin_tab.page
    await log_in(admin, web.http, kit.slug, "admin", PASSWORD)
    await admin.goto(web.http + "/console?tab=recall")
    await expect(admin.locator("#campaign-table .campaign-name")).to_have_text(XSS)
    await expect(admin.locator("#campaign-detail .coupon-title")).to_have_text(XSS)
    await admin.goto(web.http + "/console?tab=groups")
    await expect(admin.locator("#group-detail h2.group-name")).to_have_text(XSS)
    await expect(admin.locator("#group-messages .gmsg.from-buyer .body")).to_have_text(XSS)

    # No element came out of anyone's words, and no script ran.
    assert await agent.locator("#messages img, #messages script, #messages b").count() == 0
    assert await widget(buyer, ".messages img, .groups-pane img").count() == 0
    assert await admin.locator("main img").count() == 0
    await buyer.wait_for_timeout(300)
    assert agent_tab.dialogs == [] and buyer_tab.dialogs == [] and admin_tab.dialogs == []


async def test_a_transfer_moves_the_conversation_out_of_my_list(web, new_tab):
    agents = (
        ("gen", "agent", ("general",)),
        ("old", "agent", ("elderly",)),
        ("sup", "supervisor", ()),
    )
    kit = await make_shop(web.ctx.db, agents=agents)
    gen = (await new_tab()).page
    await agent_online(gen, web.http, kit.slug, "gen", PASSWORD)
    buyer = (await new_tab(embed=True)).page
    await embed_widget(buyer, web, kit.buyer_token("moving-buyer"))
    await open_widget(buyer)
    await widget_say(buyer, "我爸爸想问问")
    item = conversation_item(gen, "moving-buyer")
    await item.click()
    conv_id = await item.get_attribute("data-id")

    # A supervisor sends it to the elder-care queue, where nobody is online yet.
    sup = await WSClient.connect(f"{web.ws}/ws/agent?token={await login(web.http, kit, 'sup')}")
    try:
        await sup.expect("hello")
        await sup.send(
            {
                "type": "conversation.transfer",
                "conversation_id": conv_id,
                "to_queue": "elderly",
                "note": "长辈咨询",
            }
        )
        await expect(item.locator(".preview")).to_have_text(zh("Transferred to someone else"))
        await expect(gen.locator("#composer-input")).to_be_disabled()
        await expect(widget(buyer, ".status-line")).to_contain_text("正在排队")
    finally:
        await sup.close()

    old = (await new_tab()).page
    await agent_online(old, web.http, kit.slug, "old", PASSWORD)
    await expect(widget(buyer, ".status-line")).to_have_text("客服 old 客服 为您服务")
    await conversation_item(old, "moving-buyer").click()
    await expect(old.locator("#messages .msg.from-buyer .text")).to_have_text("我爸爸想问问")
    await expect(old.locator("#messages .msg.from-system")).to_contain_text("长辈咨询")


def tiny_png(width: int = 24, height: int = 16) -> bytes:
    """A real PNG (solid orange), made here so the test needs no files."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + b"\xff\x88\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


async def test_photos_show_in_the_widget_and_the_workbench(web, new_tab):
    kit = await make_shop(web.ctx.db, agents=(("gen", "agent", ("general",)),))
    agent = (await new_tab()).page
    await agent_online(agent, web.http, kit.slug, "gen", PASSWORD)
    token = kit.buyer_token("photo-buyer")
    buyer_tab = await new_tab(embed=True)
    buyer_tab.expected_errors.append("422")  # the refused upload, logged by the browser
    buyer = buyer_tab.page
    await embed_widget(buyer, web, token)
    await open_widget(buyer)
    await widget_say(buyer, "收到的杯子有裂纹")
    item = conversation_item(agent, "photo-buyer")
    await item.click()
    await expect(agent.locator("#messages .msg.from-buyer")).to_have_count(1)

    # The widget's photo button: uploaded, then sent as an image message.
    await widget(buyer, "input.file").set_input_files(
        files=[{"name": "crack.png", "mimeType": "image/png", "buffer": tiny_png()}]
    )
    for img in (agent.locator("#messages img.chat-image"), widget(buyer, "img.chat-image")):
        await expect(img).to_be_visible()
        assert await img.evaluate("i => i.decode().then(() => i.naturalWidth)") == 24

    # Something that is not an image is refused, and the widget says why.
    await widget(buyer, "input.file").set_input_files(
        files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"not really a picture"}]
    )
    await expect(widget(buyer, ".msg.uploading.failed .state")).to_contain_text("发送失败")
    await expect(agent.locator("#messages img.chat-image")).to_have_count(1)
