"""Webhook test helpers: a receiver on a real port that checks signatures with the README's
own example, endpoints added straight through the domain, and a dispatcher pump."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import select, update

from app.clock import Clock
from app.config import Settings
from app.db import Database
from app.webhooks import actions
from app.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEvent
from app.webhooks.sender import Sender
from tests.support.servers import free_port

README = Path(__file__).resolve().parents[2] / "README.md"
SECRET = "whsec_test_" + "s" * 20


def readme_verify() -> Callable[[str, str, bytes], bool]:
    """`verify` exactly as the README's "Webhooks" section prints it (at most 10 lines)."""
    section = README.read_text().split("## Webhooks", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None, "the README's Webhooks section has no Python example"
    assert len(code.group(1).strip().splitlines()) <= 10
    scope: dict[str, Any] = {}
    exec(code.group(1), scope)  # noqa: S102 - the documented example, run as a reader would
    return scope["verify"]  # type: ignore[no-any-return]


@dataclass
class Received:
    event: dict[str, Any]
    body: bytes
    signature: str
    verified: bool
    status: int


@dataclass
class Receiver:
    """An HTTP endpoint on 127.0.0.1: answers `script` in turn (then 200), optionally slowly,
    and remembers each request, whether its signature verified, and any overlap."""

    secret: str = SECRET
    script: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    received: list[Received] = field(default_factory=list)
    arrived: list[str] = field(default_factory=list)  # event ids, as requests came in
    # While set and not yet released, requests wait (a receiver that hangs).
    hold: asyncio.Event | None = None
    overlaps: int = 0
    _open: Counter[str] = field(default_factory=Counter)
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.verify = readme_verify()
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", interface="asgi3"
        )
        self.server = uvicorn.Server(config)
        self._task: asyncio.Task[Any] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        event = json.loads(body)
        self.arrived.append(event["id"])
        self._open[event["id"]] += 1
        if self._open[event["id"]] > 1:
            self.overlaps += 1
        try:
            await asyncio.sleep(self.delay_s)
            if self.hold is not None:
                await self.hold.wait()
            status = self.script.pop(0) if self.script else 200
            signature = headers.get("homing-signature", "")
            verified = self.verify(self.secret, signature, body)
            self.received.append(Received(event, body, signature, verified, status))
        finally:
            self._open[event["id"]] -= 1
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def delivered(self) -> list[Received]:
        return [r for r in self.received if 200 <= r.status < 300]

    def ids(self) -> Counter[str]:
        return Counter(r.event["id"] for r in self.delivered())

    async def start(self) -> Receiver:
        self._task = asyncio.create_task(self.server.serve())
        for _ in range(500):
            if self.server.started:
                return self
            await asyncio.sleep(0.01)
        raise RuntimeError("receiver did not start")

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task:
            await asyncio.wait_for(self._task, 10)


def dispatch_settings(settings: Settings, **overrides: Any) -> Settings:
    values = {
        "webhook_allow_private": True,
        "webhook_retry_base_s": 0.05,
        "webhook_timeout_s": 3.0,
        **overrides,
    }
    return settings.model_copy(update=values)


async def add_endpoint(
    db: Database, shop_id: str, url: str, events: list[str], *, secret: str = SECRET
) -> str:
    """An endpoint stored as the API would (the SSRF check is the API's, tested there)."""
    endpoint = await db.run(
        actions.create_endpoint,
        shop_id,
        url=url,
        secret=secret,
        events=events,
        created_by=None,
        now=Clock().now(),
    )
    return str(endpoint.id)


async def pump(
    db: Database,
    settings: Settings,
    until: Callable[[], bool],
    *,
    timeout_s: float = 20.0,
    clock: Clock | None = None,
    sender: Sender | None = None,
) -> Sender:
    """Run a dispatcher (real time: the receiver checks `t` against its own clock) until
    `until()` holds."""
    sender = sender or Sender()
    deadline = time.monotonic() + timeout_s
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError("the dispatcher did not get there in time")
        await sender.dispatch(db, clock or Clock(), settings)
        await asyncio.sleep(0.02)
    return sender


async def shop_events(db: Database, shop_id: str) -> list[WebhookEvent]:
    async with db.read() as s:
        rows = await s.execute(
            select(WebhookEvent)
            .where(WebhookEvent.shop_id == shop_id)
            .order_by(WebhookEvent.created_at, WebhookEvent.id)
        )
        return list(rows.scalars())


async def shop_deliveries(db: Database, shop_id: str) -> list[WebhookDelivery]:
    async with db.read() as s:
        rows = await s.execute(
            select(WebhookDelivery)
            .where(WebhookDelivery.shop_id == shop_id)
            .order_by(WebhookDelivery.id)
        )
        return list(rows.scalars())


async def attempts_of(db: Database, delivery_id: int) -> list[WebhookAttempt]:
    async with db.read() as s:
        rows = await s.execute(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.id)
        )
        return list(rows.scalars())


async def _cancel(uow: Any, shop_id: str) -> None:
    await uow.session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.shop_id == shop_id, WebhookDelivery.status == "pending")
        .values(status="cancelled")
    )


async def cancel_pending(db: Database, shop_id: str) -> None:
    """After a test: its leftovers must not keep other tests' dispatchers busy."""
    await db.run(_cancel, shop_id)
