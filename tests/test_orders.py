"""Orders from the storefront server (shop API key) and the agent's buyer panel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.test_payouts_support import Desk, open_desk, post_order


@pytest.fixture
async def http(server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.http, timeout=60) as c:
        yield c


@pytest.fixture
async def desk(server, connect, http) -> Desk:
    return await open_desk(server, connect, http)


async def test_the_storefront_upserts_orders_by_their_id(desk: Desk):
    created = datetime.now(UTC).replace(microsecond=0)
    # Promised well ahead: the shared server's late-shipment job must not act on it.
    ship_by = created + timedelta(days=300)
    r = await post_order(
        desk.http, desk.kit, "O-1", desk.buyer_id, 12900, ship_by=ship_by, created_at=created
    )
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["order_id"] == "O-1" and order["buyer_id"] == desk.buyer_id
    assert (order["amount_cents"], order["status"], order["category"]) == (12900, "paid", "家居")
    assert datetime.fromisoformat(order["ship_by"]) == ship_by
    assert datetime.fromisoformat(order["created_at"]) == created
    assert order["paid_out_cents"] == 0

    assert (await desk.pay(900, order_id="O-1")).status_code == 201
    r = await post_order(
        desk.http, desk.kit, "O-1", desk.buyer_id, 12900, status="shipped", created_at=created
    )
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["ship_by"]) == ("shipped", None)
    assert r.json()["paid_out_cents"] == 900  # payouts' counter is not the storefront's to reset
    assert [o["order_id"] for o in await desk.panel()] == ["O-1"]


async def test_orders_need_the_shops_api_key(server, connect, http, desk: Desk):
    body = {
        "order_id": "O-1",
        "buyer_id": desk.buyer_id,
        "amount_cents": 100,
        "status": "paid",
        "created_at": datetime.now(UTC).isoformat(),
    }
    assert (await http.post("/api/v1/orders", json=body)).status_code == 401
    assert (
        await http.post("/api/v1/orders", json=body, headers=desk.auth("admin"))
    ).status_code == 401
    buyer = {"Authorization": f"Bearer {desk.buyer_token}"}
    assert (await http.post("/api/v1/orders", json=body, headers=buyer)).status_code == 401
    # Another shop's key files the order under that shop, never this one.
    other = await open_desk(server, connect, http, fund_cents=0)
    assert (await http.post("/api/v1/orders", json=body, headers=other.api_key)).status_code == 201
    assert await desk.panel() == []
    r = await http.get(f"/api/v1/buyers/{desk.buyer_id}/orders", headers=other.auth("agent1"))
    assert [o["order_id"] for o in r.json()] == ["O-1"]
    assert (await http.get("/api/v1/orders/O-1", headers=desk.auth("agent1"))).status_code == 404
    assert (await http.get("/api/v1/orders/O-1", headers=other.auth("agent1"))).status_code == 200


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"status": "lost"}, "invalid_status"),
        ({"amount_cents": -1}, "invalid"),
        ({"amount_cents": 1.5}, "invalid"),
        ({"order_id": ""}, "invalid"),
        ({"created_at": "yesterday"}, "invalid"),
    ],
)
async def test_malformed_orders_are_422(http, desk: Desk, change, field):
    body = {
        "order_id": "O-1",
        "buyer_id": desk.buyer_id,
        "amount_cents": 100,
        "status": "paid",
        "created_at": datetime.now(UTC).isoformat(),
        **change,
    }
    r = await http.post("/api/v1/orders", json=body, headers=desk.api_key)
    assert r.status_code == 422 and r.json()["error"]["code"] == field


async def test_a_time_without_offset_is_utc(http, desk: Desk):
    body = {
        "order_id": "O-1",
        "buyer_id": desk.buyer_id,
        "amount_cents": 100,
        "status": "paid",
        "created_at": "2099-05-01T08:00:00",
        "ship_by": "2099-05-03T08:00:00",
    }
    r = await http.post("/api/v1/orders", json=body, headers=desk.api_key)
    assert r.status_code == 201
    assert r.json()["ship_by"] == "2099-05-03T08:00:00+00:00"


async def test_the_buyer_panel_shows_the_buyers_orders_newest_first(http, desk: Desk):
    now = datetime.now(UTC)
    for i, age_days in enumerate((3, 1, 2)):
        await post_order(
            desk.http,
            desk.kit,
            f"O-{i}",
            desk.buyer_id,
            1000 + i,
            created_at=now - timedelta(days=age_days),
        )
    await post_order(desk.http, desk.kit, "O-other", "another-buyer", 500)
    assert [o["order_id"] for o in await desk.panel()] == ["O-1", "O-2", "O-0"]
    assert [o["order_id"] for o in await desk.panel("another-buyer")] == ["O-other"]
    assert await desk.panel("nobody") == []
    buyer = {"Authorization": f"Bearer {desk.buyer_token}"}
    assert (
        await http.get(f"/api/v1/buyers/{desk.buyer_id}/orders", headers=buyer)
    ).status_code == 401
    assert (await http.get(f"/api/v1/buyers/{desk.buyer_id}/orders")).status_code == 401


async def test_an_order_card_links_the_conversation_to_its_order(http, desk: Desk):
    now = datetime.now(UTC)
    await post_order(
        desk.http, desk.kit, "O-old", desk.buyer_id, 5000, created_at=now - timedelta(days=9)
    )
    await post_order(desk.http, desk.kit, "O-new", desk.buyer_id, 5000, created_at=now)
    await post_order(desk.http, desk.kit, "O-stranger", "another-buyer", 5000, created_at=now)
    # The buyer asks about their older order, and names someone else's (which proves nothing).
    await desk.buyer_says("order_card", "这个订单", {"order_id": "O-stranger"})
    await desk.buyer_says("order_card", "这个订单", {"order_id": "O-old"})
    panel = await desk.panel(conversation_id=desk.conversation_id)
    assert [(o["order_id"], o["linked"]) for o in panel] == [("O-old", True), ("O-new", False)]
    assert all("linked" not in o for o in await desk.panel())
    r = await http.get(
        "/api/v1/buyers/another-buyer/orders",
        params={"conversation_id": desk.conversation_id},
        headers=desk.auth("agent1"),
    )
    assert r.status_code == 404

    # A payout that names no order is for the order the conversation is about.
    r = await desk.pay(1200, order_id=None, reason="price_protection")
    assert r.status_code == 201 and r.json()["order_id"] == "O-old"
    assert (await desk.panel())[1]["paid_out_cents"] == 1200
