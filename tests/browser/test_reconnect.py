"""Dropped sockets in the widget and the workbench: offline banner, back-off, sync, no duplicates."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import Page, WebSocketRoute, expect

from tests.browser.helpers import (
    agent_online,
    conversation_item,
    embed_widget,
    log_in,
    open_widget,
    widget,
    widget_say,
)
from tests.support.factories import PASSWORD, make_shop

SOCKETS = re.compile(r"^wss?://[^/]+/ws/(buyer|agent)(\?|$)")


class Link:
    """A page's sockets routed through Playwright, so a test can cut them and refuse reconnects."""

    def __init__(self) -> None:
        self.up = True
        self.current: tuple[WebSocketRoute, WebSocketRoute] | None = None
        self.connects = 0

    async def route(self, page: Page) -> None:
        await page.route_web_socket(SOCKETS, self._handle)

    async def _handle(self, ws: WebSocketRoute) -> None:
        if not self.up:
            await ws.close(code=1012, reason="test: network down")
            return
        self.connects += 1
        self.current = (ws, ws.connect_to_server())

    async def cut(self) -> None:
        """The network goes: the open socket dies and new ones are refused until `restore`."""
        self.up = False
        assert self.current is not None
        page_side, server_side = self.current
        self.current = None
        await server_side.close(code=1001)
        await page_side.close(code=1012, reason="test: network down")

    def restore(self) -> None:
        self.up = True


async def test_widget_and_workbench_reconnect_and_catch_up(web, new_tab):
    kit = await make_shop(web.ctx.db, agents=(("gen", "agent", ("general",)),))
    agent = (await new_tab()).page
    agent_link = Link()
    await agent_link.route(agent)
    await agent_online(agent, web.http, kit.slug, "gen", PASSWORD)

    buyer = (await new_tab(embed=True)).page
    buyer_link = Link()
    await buyer_link.route(buyer)
    await embed_widget(buyer, web, kit.buyer_token("flaky-buyer"))
    await open_widget(buyer)
    await widget_say(buyer, "第一条")
    item = conversation_item(agent, "flaky-buyer")
    await item.click()
    await expect(agent.locator("#messages .msg.from-buyer")).to_have_count(1)

    # The buyer's network drops: the widget says so; meanwhile the agent writes, and the
    # buyer writes too (kept until the socket is back).
    await buyer_link.cut()
    await expect(widget(buyer, ".offline")).to_be_visible()
    await agent.locator("#composer-input").fill("您离线时发的消息")
    await agent.locator("#composer-input").press("Enter")
    await expect(agent.locator("#messages .msg.from-agent[data-seq='2']")).to_be_visible()
    await widget_say(buyer, "离线时写的")
    await expect(widget(buyer, ".msg.pending")).to_have_count(1)
    buyer_link.restore()
    await expect(widget(buyer, ".offline")).to_be_hidden()
    await expect(widget(buyer, ".msg.from-agent .text")).to_have_text(["您离线时发的消息"])
    await expect(widget(buyer, ".msg.pending")).to_have_count(0)
    await expect(agent.locator("#messages .msg.from-buyer")).to_have_count(2)
    assert buyer_link.connects >= 2

    # The agent's network drops: banner on the workbench; the buyer's words wait for it.
    await agent_link.cut()
    await expect(agent.locator("#offline-banner")).to_be_visible()
    await widget_say(buyer, "客服还在吗")
    await expect(widget(buyer, ".msg.from-buyer[data-seq='4']")).to_be_visible()
    agent_link.restore()
    await expect(agent.locator("#offline-banner")).to_be_hidden()
    bodies = agent.locator("#messages .msg.from-buyer .text")
    await expect(bodies).to_have_text(["第一条", "离线时写的", "客服还在吗"])
    await expect(agent.locator("#messages .msg")).to_have_count(4)


async def test_an_ended_session_sends_the_workbench_to_login(web, new_tab):
    tab = await new_tab()
    page = tab.page
    await log_in(page, web.http, "demo", "sam", "demo")
    await expect(page.locator("#conv-empty")).to_be_visible()

    async def refuse(ws: Any) -> None:
        await ws.close(code=4401, reason="test: session ended")

    # The session ends (as when logged out elsewhere): the next connection is refused.
    await page.route_web_socket(SOCKETS, refuse)
    await page.reload()
    await page.wait_for_url(web.http + "/login")
