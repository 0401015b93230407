"""Landing, login and logout in Chromium; the language switch; where htmx comes from."""

from __future__ import annotations

import httpx
from playwright.async_api import expect

from app.config import HTMX_VERSION
from tests.browser.helpers import DEMO_PASSWORD, log_in, screenshot
from tests.support.factories import PASSWORD, make_shop
from tests.support.words import en, zh


async def test_landing_links_to_workbench_and_demo_shop(web, new_tab):
    tab = await new_tab()
    page = tab.page
    await page.goto(web.http + "/")
    await expect(page.locator("h1")).to_have_text(zh("Homing service desk"))
    assert await page.evaluate("typeof window.htmx") == "object", "local htmx did not load"
    await screenshot(page, "landing")
    await page.click("a.tile[href='/demo/shop']")
    await page.wait_for_url(web.http + "/demo/shop")
    await page.goto(web.http + "/")
    await page.click("a.tile[href='/workbench']")
    await page.wait_for_url(web.http + "/login")  # no session yet


async def test_login_failure_shows_the_error_and_throttle(
    start_server, pages_database_url, vendored_htmx, new_tab
):
    web = await start_server(
        database_url=pages_database_url, HOMING_HTMX_LOCAL="true", HOMING_LOGIN_MAX_FAILURES="2"
    )
    kit = await make_shop(web.ctx.db)
    tab = await new_tab()
    tab.expected_errors += ["401", "429"]  # the browser logs the failed logins' answers
    page = tab.page
    await page.goto(web.http + "/login")
    error = page.locator("#login-error")
    await expect(error).to_be_hidden()
    await page.fill("input[name=shop]", kit.slug)
    await page.fill("input[name=username]", "agent1")
    for _ in range(web.settings.login_max_failures):
        await page.fill("input[name=password]", "wrong-password")
        await page.click("form.login-card button[type=submit]")
        await expect(error).to_have_text(zh("Wrong shop, username or password."))
        await page.evaluate("document.getElementById('login-error').textContent = ''")
    # Past the limit even the right password is refused for a while (429 from the API).
    await page.fill("input[name=password]", PASSWORD)
    await page.click("form.login-card button[type=submit]")
    await expect(error).to_have_text(
        zh("Too many failed logins; wait a few minutes and try again.")
    )
    assert page.url == web.http + "/login"
    await screenshot(page, "login-error")


async def test_login_then_logout(web, new_tab):
    tab = await new_tab()
    page = tab.page
    await log_in(page, web.http, "demo", "sam", DEMO_PASSWORD)
    await expect(page.locator(".whoami")).to_contain_text("Sam")
    await page.click("#logout")
    await page.wait_for_url(web.http + "/login")
    await page.goto(web.http + "/workbench")
    await page.wait_for_url(web.http + "/login")


async def test_login_form_works_without_javascript(web, browser):
    context = await browser.new_context(java_script_enabled=False)
    try:
        page = await context.new_page()
        await page.goto(web.http + "/login")
        await page.fill("input[name=shop]", "demo")
        await page.fill("input[name=username]", "alice")
        await page.fill("input[name=password]", "nope")
        await page.click("form.login-card button[type=submit]")
        await expect(page.locator("#login-error")).to_have_text(
            zh("Wrong shop, username or password.")
        )
        await page.fill("input[name=password]", DEMO_PASSWORD)
        await page.click("form.login-card button[type=submit]")
        await page.wait_for_url(web.http + "/workbench")
    finally:
        await context.close()


async def test_english_switch_is_remembered(web, new_tab):
    tab = await new_tab()
    page = tab.page
    await page.goto(web.http + "/login")
    await expect(page.locator("h1")).to_have_text(zh("Agent login"))
    await page.click("a.lang")
    await expect(page.locator("h1")).to_have_text(en("Agent login"))
    await page.goto(web.http + "/")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.locator("h1")).to_have_text(en("Homing service desk"))
    # Switching keeps the rest of the address: the demo buyer stays the same.
    await page.goto(web.http + "/demo/shop?buyer=wang")
    await page.click("a.lang")
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    await expect(page.locator(".buyer-picker a.current")).to_contain_text("王奶奶")


async def test_htmx_comes_from_the_cdn_by_default(server):
    async with httpx.AsyncClient(base_url=server.http) as c:
        html = (await c.get("/login")).text
    assert f"https://unpkg.com/htmx.org@{HTMX_VERSION}/dist/htmx.min.js" in html
    assert "/static/vendor/htmx.min.js" not in html
