"""Another site's page against a signed-in agent, in Chromium: its forged form post is refused,
its frame of our pages stays empty, and the demo page's contact button (now a script file,
not an inline handler) still opens the widget under the pages' CSP.

The other site is another port of 127.0.0.1: the same *site* as the server, so the
SameSite=Lax session cookie does go along with its requests, as it would from any
sibling subdomain or port; only the CSRF token stands in the way. (That the widget keeps
working embedded in a page of another origin is tests/browser/test_chat.py, `embed_widget`.)
"""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from tests.browser.helpers import DEMO_PASSWORD, log_in, widget
from tests.support.servers import free_port


async def serve_page(page: Any, url: str, html: str) -> None:
    async def fulfil(route: Any) -> None:
        await route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html)

    await page.route(url, fulfil)


async def test_a_cross_site_form_post_is_refused(web, new_tab):
    tab = await new_tab(embed=True)
    page = tab.page
    await log_in(page, web.http, "demo", "admin", DEMO_PASSWORD)
    evil = f"http://127.0.0.1:{free_port()}/win-a-prize.html"
    await serve_page(
        page,
        evil,
        (
            "<!doctype html><title>Prize</title>"
            f"<form id='f' method='post' action='{web.http}/api/v1/auth/logout'></form>"
            "<script>document.getElementById('f').submit()</script>"
        ),
    )
    tab.expected_errors.append("403")  # Chromium logs the refused post's status
    async with page.expect_response(f"{web.http}/api/v1/auth/logout") as answer:
        await page.goto(evil)
    response = await answer.value
    assert response.status == 403 and (await response.json())["error"]["code"] == "csrf_failed"
    # The session lives on: the workbench still opens and connects.
    me = await page.request.get(f"{web.http}/api/v1/me")
    assert me.status == 200 and (await me.json())["username"] == "admin"
    await page.goto(f"{web.http}/workbench")
    await expect(page.locator("body[data-connected=true]")).to_have_count(1)


async def test_another_site_cannot_frame_our_pages(web, new_tab):
    tab = await new_tab(embed=True)  # the page may reach a loopback server (see conftest)
    page = tab.page
    await log_in(page, web.http, "demo", "admin", DEMO_PASSWORD)
    evil = f"http://127.0.0.1:{free_port()}/frame.html"
    paths = ("/login", "/workbench", "/console")
    await serve_page(
        page,
        evil,
        "<!doctype html><title>Frames</title>"
        + "".join(f"<iframe src='{web.http}{p}' width=400 height=300></iframe>" for p in paths),
    )
    tab.expected_errors.append(
        "frame-ancestors"
    )  # "Refused to frame ... because ... frame-ancestors"
    await page.goto(evil)
    await page.wait_for_load_state("load")
    children = [f for f in page.frames if f != page.main_frame]
    assert len(children) == len(paths)
    for frame in children:
        # A blocked frame is Chromium's error page: none of our page's content is in it.
        assert await frame.locator("header.topbar").count() == 0, frame.url


async def test_the_demo_pages_contact_button_opens_the_widget(web, new_tab):
    page = (await new_tab()).page
    await page.goto(f"{web.http}/demo/shop?buyer=lin")
    await expect(widget(page, ".launcher")).to_be_visible()
    await page.click("#contact")
    await expect(widget(page, ".panel")).to_be_visible()
