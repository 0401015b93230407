"""What the browser tests do on pages: log in, go online, use the widget, take screenshots."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
from playwright.async_api import BrowserContext, Page, expect

from app.demo import DEMO_API_KEY, DEMO_BUYER_SECRET, DEMO_SLUG
from tests.support.client import WSClient
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


async def reload_until_count(
    page: Page, url: str, css: str, count: int, within_s: float = 20
) -> None:
    """Open url again until css matches count elements: for a page rendered once on the
    server, showing what a background job (a dispatcher, a worker) writes a moment later."""
    deadline = time.monotonic() + within_s
    while True:
        await page.goto(url)
        found = await page.locator(css).count()
        if found == count or time.monotonic() > deadline:
            break
        await page.wait_for_timeout(200)
    await expect(page.locator(css)).to_have_count(count)


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
    await expect(page.locator("body[data-connected=true]")).to_have_count(1)
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
    return page.locator(f'.conv-item[data-buyer="{buyer_id}"]')


def demo_buyer_token(sub: str, name: str = "测试买家") -> str:
    """A buyer of the demo shop, signed as the demo shop's own server would."""
    claims = {"sub": sub, "shop": DEMO_SLUG, "name": name, "exp": int(time.time()) + 3600}
    return jwt.encode(claims, DEMO_BUYER_SECRET, algorithm="HS256")


async def demo_order(
    server: InProcessServer,
    buyer_id: str,
    order_id: str,
    amount_cents: int,
    *,
    api_key: str = DEMO_API_KEY,
    late: bool = False,
) -> None:
    """An order of the demo shop (or the shop of `api_key`), sent as its storefront does
    (`POST /orders`, the API key); `late`: placed 3 days ago, due to ship an hour ago."""
    now = datetime.now(UTC)
    created_at = now - timedelta(days=3) if late else now
    # Shipping promised in the future (unless late): the late-shipment job leaves it alone.
    ship_by = now - timedelta(hours=1) if late else now + timedelta(days=3)
    async with httpx.AsyncClient(base_url=server.http) as c:
        r = await c.post(
            "/api/v1/orders",
            headers={"Authorization": f"Bearer {api_key}"},
            json={
                "order_id": order_id,
                "buyer_id": buyer_id,
                "amount_cents": amount_cents,
                "status": "paid",
                "category": "家居",
                "created_at": created_at.isoformat(),
                "ship_by": ship_by.isoformat(),
            },
        )
        assert r.status_code in (200, 201), r.text


async def buyer_asks(page: Page, server: InProcessServer, buyer_id: str, text: str) -> None:
    """A demo-shop buyer on a shop page with the widget, who writes first."""
    await embed_widget(page, server, demo_buyer_token(buyer_id))
    await open_widget(page)
    await widget_say(page, text)


async def pay(page: Page, amount: str, reason: str, note: str = "") -> None:
    """Fill the workbench's payout form and send it."""
    await page.fill("#payout-amount", amount)
    await page.select_option("#payout-reason", reason)
    await page.fill("#payout-note", note)
    await page.click("#payout-submit")


def unique_buyer(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


async def storefront_event(server: InProcessServer, api_key: str, buyer_id: str, kind: str) -> None:
    """A storefront signal (`POST /events`: cart_add or product_view), as the shop's server sends it."""
    async with httpx.AsyncClient(base_url=server.http) as c:
        r = await c.post(
            "/api/v1/events",
            headers={"Authorization": f"Bearer {api_key}"},
            json={"buyer_id": buyer_id, "type": kind, "product_id": "p-1", "category": "家居"},
        )
        assert r.status_code == 201, r.text


async def buyer_writes(server: InProcessServer, token: str, text: str) -> None:
    """A buyer who asks something over their own socket (no browser) and is gone again."""
    client = await WSClient.connect(f"{server.ws}/ws/buyer?token={token}")
    try:
        await client.expect("hello")
        await client.send(
            {"type": "message.send", "client_msg_id": secrets.token_hex(6), "body": text}
        )
        await client.expect("message.ack")
    finally:
        await client.close()


async def as_buyer(server: InProcessServer, token: str, method: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.http) as c:
        return await c.request(
            method, f"/api/v1{path}", headers={"Authorization": f"Bearer {token}"}
        )
