"""Helpers for the after-sales tests (no tests here): a desk whose buyer asks over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.test_payouts_support import Desk, open_desk


@pytest.fixture
async def http(server: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.http, timeout=60) as c:
        yield c


@pytest.fixture
async def desk(server: Any, connect: Any, http: httpx.AsyncClient) -> AsyncIterator[Desk]:
    """A desk (tests/test_payouts_support.py) whose sockets are read out before closing."""
    desk = await open_desk(server, connect, http)
    yield desk
    await read_all(desk)


async def ship(
    desk: Desk,
    order_id: str,
    amount_cents: int,
    *,
    delivered_at: datetime | None = None,
    shipped_at: datetime | None = None,
    created_at: datetime | None = None,
    **extra: Any,
) -> httpx.Response:
    body: dict[str, Any] = {
        "order_id": order_id,
        "buyer_id": desk.buyer_id,
        "amount_cents": amount_cents,
        "status": "shipped",
        "created_at": (created_at or datetime.now().astimezone()).isoformat(),
        **extra,
    }
    if delivered_at is not None:
        body["delivered_at"] = delivered_at.isoformat()
    if shipped_at is not None:
        body["shipped_at"] = shipped_at.isoformat()
    r = await desk.http.post("/api/v1/orders", json=body, headers=desk.api_key)
    assert r.status_code in (200, 201), r.text
    return r


def buyer_auth(desk: Desk) -> dict[str, str]:
    return {"Authorization": f"Bearer {desk.buyer_token}"}


async def ask(
    desk: Desk,
    order_id: str,
    amount_cents: int,
    kind: str = "refund_only",
    *,
    client: httpx.AsyncClient | None = None,
    **extra: Any,
) -> httpx.Response:
    body = {
        "conversation_id": desk.conversation_id,
        "order_id": order_id,
        "type": kind,
        "amount_cents": amount_cents,
        "reason": extra.pop("reason", "不想要了"),
        **extra,
    }
    return await (client or desk.http).post(
        "/api/v1/aftersales", json=body, headers=buyer_auth(desk)
    )


async def decide(
    desk: Desk, aftersale_id: str, verb: str, username: str = "agent1", note: str | None = None
) -> httpx.Response:
    return await desk.http.post(
        f"/api/v1/aftersales/{aftersale_id}/{verb}",
        json={"note": note} if note else None,
        headers=desk.auth(username),
    )


async def as_ledger(desk: Desk, **params: str) -> list[dict[str, Any]]:
    r = await desk.http.get("/api/v1/aftersales/ledger", params=params, headers=desk.auth("sup"))
    r.raise_for_status()
    return list(r.json())


async def upload_photo(desk: Desk) -> str:
    from tests.test_payouts_support import PNG

    r = await desk.http.post(
        "/api/v1/uploads",
        files={"file": ("broken.png", PNG, "image/png")},
        headers=buyer_auth(desk),
    )
    assert r.status_code == 201, r.text
    return str(r.json()["upload_id"])


async def read_all(desk: Desk) -> None:
    """Read what both sockets were sent: a client that leaves more than its queue unread
    stops reading the socket, and its close handshake then waits for a timeout."""
    for ws in (desk.buyer_ws, desk.agent_ws):
        await ws.drain(0.1)
