"""What the browser tests do on pages: log in, go online, use the widget, take screenshots."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import BrowserContext, Page, expect

from tests.support.servers import ROOT, InProcessServer

SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 667}
DEMO_PASSWORD = "demo"


@dataclass
class Tab:
    """A page in its own browser context (own cookies), watched for dialogs and script errors."""

    page: Page
    context: BrowserContext
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    expected_errors: list[str] = field(default_factory=list)  # substrings a test expects to see

    @property
    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(x in e for x in self.expected_errors)]


async def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


async def log_in(page: Page, base: str, shop: str, username: str, password: str) -> None:
    await page.goto(f"{base}/login")
    await page.fill("input[name=shop]", shop)
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.click("form.login-card button[type=submit]")
    await page.wait_for_url(f"{base}/workbench")


async def agent_online(
    page: Page, base: str, shop: str, username: str, password: str = DEMO_PASSWORD
) -> None:
    """An agent on the workbench, logged in through the form and switched online."""
    await log_in(page, base, shop, username, password)
    await expect(page.locator("#conv-empty")).to_be_visible()
    online = page.locator(".status-switch [data-status=online]")
    await online.click()
    await expect(online).to_have_attribute("aria-checked", "true")


def widget(page: Page, css: str) -> Any:
    """A locator inside the widget (Playwright's CSS reaches into its open shadow root)."""
    return page.locator(f"#homing-widget {css}")


async def open_widget(page: Page) -> None:
    await widget(page, ".launcher").click()
    await expect(widget(page, ".panel")).to_be_visible()


async def widget_say(page: Page, text: str) -> None:
    box = widget(page, ".input")
    await box.fill(text)
    await box.press("Enter")


async def embed_widget(
    page: Page, server: InProcessServer, token: str, *, lang: str = "zh"
) -> None:
    """The widget on a page of another origin (a shop's own site), as its one script tag.

    The page's tab must be opened with `embed=True` (local network access granted).
    """
    shop_url = "http://shop.localhost/product/1"
    html = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Some shop</title></head>"
        "<body style='font-family:sans-serif'><h1>Some shop's product</h1>"
        f"<script src='{server.http}/static/widget.js' data-token='{token}' "
        f"data-server='{server.http}' data-lang='{lang}'></script></body></html>"
    )

    async def fulfil(route: Any) -> None:
        await route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html)

    await page.route(shop_url, fulfil)
    await page.goto(shop_url)
    await expect(widget(page, ".launcher")).to_be_visible()


def conversation_item(page: Page, buyer_id: str) -> Any:
    return page.locator(".conv-item", has=page.locator(".buyer", has_text=buyer_id))
