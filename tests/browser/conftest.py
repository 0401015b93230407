"""Browser tests: Debian's Chromium driven by Playwright (async API), against real servers.

The page servers use a database of their own with the demo shop seeded, so what these
tests do to the demo shop never meets the rest of the suite. htmx comes from
app/static/vendor (HOMING_HTMX_LOCAL): there is no internet here.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, async_playwright, expect
from sqlalchemy import select
from sqlmodel import col

from app.chat.actions import close_conversation
from app.chat.models import Conversation
from app.clock import Clock
from app.db import UnitOfWork
from app.demo import seed_demo
from app.migrate import upgrade
from tests.browser.helpers import DESKTOP, Tab
from tests.conftest import PG_ADMIN, _pg_exec
from tests.support.servers import ROOT, InProcessServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu"]

expect.set_options(timeout=10_000)


@pytest.fixture(scope="session")
def vendored_htmx() -> Path:
    """app/static/vendor/htmx.min.js, fetched by scripts/vendor.sh if this checkout lacks it."""
    path = ROOT / "app" / "static" / "vendor" / "htmx.min.js"
    if not path.exists():
        done = subprocess.run(
            ["bash", str(ROOT / "scripts" / "vendor.sh")],
            check=False,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0 or not path.exists():
            pytest.fail(f"scripts/vendor.sh could not fetch htmx: {done.stderr[-500:]}")
    return path


@pytest.fixture(scope="session")
def pages_database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database for the page servers only (sync: runs outside the loop)."""
    if backend == "postgres":
        name = f"homing_pages_{secrets.token_hex(4)}"
        asyncio.run(_pg_exec(f'CREATE DATABASE "{name}"'))
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
        upgrade(url)
        yield url
        asyncio.run(_pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('pages-db') / 'homing.db'}"
        upgrade(url)
        yield url


@pytest.fixture
async def web(
    start_server: Any, pages_database_url: str, vendored_htmx: Path
) -> AsyncIterator[InProcessServer]:
    """A server for the pages in demo mode: local htmx, its own database, the demo shop seeded.

    The browser tests share that database and its demo agents: after each one, whatever
    conversations it left open are closed, so the next test's agents start with empty lists."""
    srv: InProcessServer = await start_server(
        database_url=pages_database_url, HOMING_HTMX_LOCAL="true", HOMING_DEMO="true"
    )
    await srv.ctx.db.run(seed_demo, Clock().now())
    yield srv
    await srv.ctx.db.run(_close_every_open_conversation, Clock().now())


async def _close_every_open_conversation(uow: UnitOfWork, now: datetime) -> None:
    open_ = await uow.session.scalars(
        select(Conversation).where(col(Conversation.status) != "closed")
    )
    for conv in list(open_):
        await close_conversation(uow, conv, reason="inactive", now=now)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        await b.close()


NewTab = Callable[..., Awaitable[Tab]]


@pytest.fixture
async def new_tab(browser: Browser) -> AsyncIterator[NewTab]:
    """Open pages, each in its own context; fails the test on any script or console error."""
    tabs: list[Tab] = []

    async def open_(viewport: dict[str, int] | None = None, *, embed: bool = False) -> Tab:
        # A shop's page embedding the widget from a loopback server is a request into a
        # more private address space; Chromium asks the user first, here granted up front.
        context = await browser.new_context(
            viewport=viewport or DESKTOP,
            locale="zh-CN",
            permissions=["local-network-access"] if embed else [],
        )
        page = await context.new_page()
        tab = Tab(page, context)

        async def on_dialog(dialog: Any) -> None:
            tab.dialogs.append(f"{dialog.type}: {dialog.message}")
            await dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda exc: tab.errors.append(str(exc)))
        page.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
        tabs.append(tab)
        return tab

    yield open_
    for tab in tabs:
        await tab.context.close()
    for tab in tabs:
        assert not tab.unexpected_errors, f"errors on {tab.page.url}: {tab.unexpected_errors}"
