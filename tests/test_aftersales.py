"""After-sales requests end to end: the buyer asks over HTTP, the card reaches both sockets,
the agent decides within their payout authority, the storefront completes; 坏了包退's
24-hour window and photo rule (elders exempt), 极速退款, 价保, and the ledger."""

from __future__ import annotations

from datetime import timedelta

import httpx

from tests import test_aftersales_support as support
from tests.test_aftersales_support import (
    as_ledger,
    ask,
    buyer_auth,
    decide,
    ship,
    upload_photo,
)
from tests.test_payouts_support import Desk, make_desk_shop, open_desk, sessions_for

# The desk and its HTTP client (tests/test_aftersales_support.py).
http, desk = support.http, support.desk


def is_card(status: str):
    return lambda f: (
        f["message"]["kind"] == "aftersale_card" and f["message"]["payload"]["status"] == status
    )


async def test_a_request_is_a_card_on_both_sides_and_the_agent_decides(desk: Desk, server):
    await ship(desk, "A-1", 10000)
    r = await ask(desk, "A-1", 3000, "return_refund", reason="尺码不合适")
    assert r.status_code == 201, r.text
    a = r.json()
    assert (a["status"], a["type"], a["amount_cents"], a["auto"]) == (
        "pending",
        "return_refund",
        3000,
        False,
    )
    for ws in (desk.buyer_ws, desk.agent_ws):
        card = (await ws.expect("message.new", is_card("pending")))["message"]
        assert card["conversation_id"] == desk.conversation_id
        assert card["payload"]["aftersale_id"] == a["id"] and card["sender"] == "system"
    news = await desk.agent_ws.expect("aftersale.updated")
    assert news["aftersale"]["id"] == a["id"]
    # The room is held: the order shows it taken, a payout cannot pass it.
    assert (await desk.panel())[0]["paid_out_cents"] == 3000
    listed = await desk.http.get(
        "/api/v1/aftersales",
        params={"order_id": "A-1", "status": "pending"},
        headers=desk.auth("agent1"),
    )
    assert [x["id"] for x in listed.json()] == [a["id"]]

    r = await decide(desk, a["id"], "approve", note="同意退货")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["decided_by"]) == ("approved", desk.kit.agents["agent1"])
    assert (await desk.buyer_ws.expect("message.new", is_card("approved")))["message"]["payload"][
        "note"
    ] == "同意退货"
    again = await decide(desk, a["id"], "decline", username="sup")
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_pending"

    done = await desk.http.post(f"/api/v1/aftersales/{a['id']}/complete", headers=desk.api_key)
    assert done.status_code == 200 and done.json()["status"] == "completed"
    assert [e["entry"] for e in await as_ledger(desk, aftersale_id=a["id"])] == [
        "requested",
        "approved",
        "refused",
        "completed",
    ]


async def test_declining_gives_the_room_back_and_is_in_the_ledger(desk: Desk):
    await ship(desk, "A-1", 5000)
    a = (await ask(desk, "A-1", 5000)).json()
    full = await ask(desk, "A-1", 1)
    assert full.status_code == 409 and full.json()["error"]["code"] == "order_cap_exceeded"
    r = await decide(desk, a["id"], "decline", note="已发货,请走退货退款")
    assert r.status_code == 200 and r.json()["status"] == "declined"
    assert (await desk.panel())[0]["paid_out_cents"] == 0
    assert (await ask(desk, "A-1", 5000, "return_refund")).status_code == 201
    entries = [(e["entry"], e["code"]) for e in await as_ledger(desk)]
    assert entries == [
        ("requested", None),
        ("refused", "order_cap_exceeded"),
        ("declined", None),
        ("requested", None),
    ]


async def test_approval_is_held_to_the_agents_payout_authority(desk: Desk):
    await ship(desk, "A-1", 100000)
    a = (await ask(desk, "A-1", 8000)).json()  # agent1: ¥50 a payout by default
    r = await decide(desk, a["id"], "approve")
    assert r.status_code == 409 and r.json()["error"]["code"] == "payout_limit_exceeded"
    await desk.set_limits("sup", per_payout=5000)
    sup = await decide(desk, a["id"], "approve", username="sup")
    assert sup.status_code == 409  # the supervisor's own limit, as for payouts
    await desk.set_limits("sup", per_payout=10000)
    assert (await decide(desk, a["id"], "approve", username="sup")).json()["status"] == "approved"
    refused = [e for e in await as_ledger(desk) if e["entry"] == "refused"]
    assert {e["code"] for e in refused} == {"payout_limit_exceeded"} and len(refused) == 2


async def test_only_this_shops_serving_agent_or_a_supervisor_decides(server, desk: Desk):
    await ship(desk, "A-1", 5000)
    a = (await ask(desk, "A-1", 1000)).json()
    other = await make_desk_shop(server.ctx.db)
    outsider = (await sessions_for(server.ctx.db, other))["sup"]
    r = await desk.http.post(
        f"/api/v1/aftersales/{a['id']}/approve", headers={"Authorization": f"Bearer {outsider}"}
    )
    assert r.status_code == 404  # another shop's request: as if missing
    r = await desk.http.post(f"/api/v1/aftersales/{a['id']}/approve", headers=buyer_auth(desk))
    assert r.status_code == 401
    # A buyer of the same shop cannot see it either.
    stranger = {"Authorization": f"Bearer {desk.kit.buyer_token('someone-else')}"}
    assert (
        await desk.http.get(f"/api/v1/aftersales/{a['id']}", headers=stranger)
    ).status_code == 404
    mine = await desk.http.get("/api/v1/aftersales", headers=stranger)
    assert mine.json() == []
    assert (await decide(desk, a["id"], "approve", username="sup2")).status_code == 200


async def test_damaged_needs_a_photo_and_comes_within_24_hours_of_delivery(desk: Desk, server):
    now = server.ctx.clock.now()
    await ship(desk, "D-old", 5000, delivered_at=now - timedelta(hours=25))
    await ship(desk, "D-new", 5000, delivered_at=now - timedelta(hours=23))
    await ship(desk, "D-none", 5000)
    photo = await upload_photo(desk)
    for order_id in ("D-old", "D-none"):
        r = await ask(desk, order_id, 1000, "damaged", upload_ids=[photo])
        assert r.status_code == 409 and r.json()["error"]["code"] == "damage_window_closed"
    r = await ask(desk, "D-new", 1000, "damaged")
    assert r.status_code == 422 and r.json()["error"]["code"] == "evidence_required"
    r = await ask(desk, "D-new", 1000, "damaged", upload_ids=[photo])
    assert r.status_code == 201 and r.json()["upload_ids"] == [photo]
    # Someone else's upload is no evidence of this buyer's.
    r = await ask(desk, "D-new", 1000, "damaged", upload_ids=["nope"])
    assert r.status_code == 404
    codes = [e["code"] for e in await as_ledger(desk) if e["entry"] == "refused"]
    assert codes == [
        "damage_window_closed",
        "damage_window_closed",
        "evidence_required",
        "not_found",
    ]


async def test_an_elder_buyers_damaged_claim_needs_no_photo_but_the_same_window(
    server, connect, http
):
    desk = await open_desk(server, connect, http, age=72)
    now = server.ctx.clock.now()
    await ship(desk, "D-1", 5000, delivered_at=now - timedelta(hours=2))
    await ship(desk, "D-2", 5000, delivered_at=now - timedelta(hours=30))
    assert (await ask(desk, "D-1", 1000, "damaged")).status_code == 201
    late = await ask(desk, "D-2", 1000, "damaged")
    assert late.status_code == 409 and late.json()["error"]["code"] == "damage_window_closed"


async def test_fast_refund_approves_small_refunds_for_a_clean_record(desk: Desk):
    r = await desk.http.post(
        "/api/v1/aftersales/settings",
        json={"fast_refund_max_cents": 2000},
        headers=desk.auth("admin"),
    )
    assert r.status_code == 200 and r.json()["fast_refund_max_cents"] == 2000
    forbidden = await desk.http.post(
        "/api/v1/aftersales/settings", json={"fast_refund_max_cents": 1}, headers=desk.auth("sup")
    )
    assert forbidden.status_code == 403
    await ship(desk, "F-1", 10000)
    fast = (await ask(desk, "F-1", 2000)).json()
    assert (fast["status"], fast["auto"], fast["decided_by"]) == ("approved", True, None)
    card = await desk.buyer_ws.expect("message.new", is_card("approved"))
    assert card["message"]["payload"]["auto"] is True
    assert (await ask(desk, "F-1", 2001)).json()["status"] == "pending"  # above the amount
    assert (await ask(desk, "F-1", 500, "return_refund")).json()["status"] == "pending"
    pending = (await ask(desk, "F-1", 100)).json()
    assert pending["status"] == "approved"
    await decide(desk, (await ask(desk, "F-1", 300, "exchange")).json()["id"], "decline")
    declined = await ask(desk, "F-1", 100, "return_refund")
    await decide(desk, declined.json()["id"], "decline")
    # A declined refund request spoils the record: no more 极速退款 for this buyer.
    assert (await ask(desk, "F-1", 100)).json()["status"] == "pending"
    approved = [e for e in await as_ledger(desk) if e["entry"] == "approved"]
    assert [(e["actor_kind"], e["note"]) for e in approved] == [("platform", "fast_refund")] * 2


async def test_completion_by_the_storefront_and_the_apology_card(desk: Desk):
    await desk.http.post(
        "/api/v1/care/settings", json={"apology_on": True}, headers=desk.auth("admin")
    )
    await ship(desk, "C-1", 10000)
    a = (await ask(desk, "C-1", 1000)).json()
    early = await desk.http.post(f"/api/v1/aftersales/{a['id']}/complete", headers=desk.api_key)
    assert early.status_code == 409 and early.json()["error"]["code"] == "not_approved"
    await decide(desk, a["id"], "approve")
    done = await desk.http.post(f"/api/v1/aftersales/{a['id']}/complete", headers=desk.api_key)
    assert done.json()["status"] == "completed"
    sorry = await desk.buyer_ws.expect("message.new", lambda f: f["message"]["kind"] == "care_card")
    assert sorry["message"]["payload"]["notice"] == "care_apology"
    assert sorry["message"]["conversation_id"] == desk.conversation_id
    b = (await ask(desk, "C-1", 1000)).json()
    await decide(desk, b["id"], "approve")
    await desk.http.post(f"/api/v1/aftersales/{b['id']}/complete", headers=desk.api_key)
    r = await desk.http.get(
        "/api/v1/care/actions", params={"order_id": "C-1"}, headers=desk.auth("agent1")
    )
    assert [x["rule"] for x in r.json()] == ["refund_apology"]  # once per order


async def test_tracking_updates_keep_the_latest_line(desk: Desk, server):
    now = server.ctx.clock.now()
    await ship(desk, "T-1", 5000, shipped_at=now, carrier="顺丰", tracking_no="SF123")

    async def track(at, line: str, **extra) -> httpx.Response:
        return await desk.http.post(
            "/api/v1/orders/T-1/tracking",
            json={"at": at.isoformat(), "line": line, **extra},
            headers=desk.api_key,
        )

    assert (await track(now + timedelta(hours=2), "已到达【杭州转运中心】")).status_code == 200
    late = await track(now + timedelta(hours=1), "已揽收")  # an older update arriving late
    assert late.json()["tracking_line"] == "已到达【杭州转运中心】"
    panel = (await desk.panel())[0]
    assert (panel["carrier"], panel["tracking_no"], panel["tracking_line"]) == (
        "顺丰",
        "SF123",
        "已到达【杭州转运中心】",
    )
    done = await track(now + timedelta(hours=20), "已签收", delivered=True)
    assert done.json()["delivered_at"] is not None
    assert (
        await desk.http.post(
            "/api/v1/orders/NOPE/tracking",
            json={"at": now.isoformat(), "line": "x"},
            headers=desk.api_key,
        )
    ).status_code == 404
    from app.orders.service import latest_tracking

    async with server.ctx.db.read() as s:
        assert await latest_tracking(s, desk.kit.shop_id, "T-1") == "已签收"


async def test_price_protection_pays_the_drop_within_the_window(desk: Desk, server):
    await desk.http.post(
        "/api/v1/aftersales/settings",
        json={"price_protection_auto_cents": 1000},
        headers=desk.auth("admin"),
    )
    now = server.ctx.clock.now()
    await ship(desk, "P-1", 20000, product_id="SKU-1", unit_price_cents=10000)  # two at ¥100
    await ship(
        desk,
        "P-old",
        10000,
        product_id="SKU-1",
        unit_price_cents=10000,
        created_at=now - timedelta(days=31),
    )
    r = await desk.http.post(
        "/api/v1/products/SKU-1/price", json={"price_cents": 9600}, headers=desk.api_key
    )
    assert r.status_code == 200 and r.json()["price_cents"] == 9600
    room = await desk.http.get("/api/v1/aftersales/orders/P-1", headers=buyer_auth(desk))
    assert room.json()["price_protection_cents"] == 800
    old = await desk.http.get("/api/v1/aftersales/orders/P-old", headers=buyer_auth(desk))
    assert old.json()["price_protection_cents"] == 0  # bought 31 days ago: outside 30
    too_much = await ask(desk, "P-1", 801, "price_protection")
    assert too_much.status_code == 422
    assert too_much.json()["error"]["code"] == "price_protection_exceeded"
    paid = (await ask(desk, "P-1", 800, "price_protection")).json()
    assert (paid["status"], paid["auto"]) == ("approved", True)  # within ¥10: no agent
    await desk.http.post(
        "/api/v1/products/SKU-1/price", json={"price_cents": 9000}, headers=desk.api_key
    )
    twice = await ask(desk, "P-1", 1201, "price_protection")  # ¥20 dropped, ¥8 paid already
    assert twice.json()["error"]["code"] == "price_protection_exceeded"
    big = (await ask(desk, "P-1", 1200, "price_protection")).json()
    assert (big["status"], big["auto"]) == ("pending", False)  # above it: an agent decides


async def test_requests_and_decisions_are_reported_by_webhook(desk: Desk):
    """The storefront acts on after-sales: each request and each decision (a 极速退款
    approval included) is an outbox event written with it."""
    from app.webhooks import rules as webhook_rules
    from tests.support.webhooks import add_endpoint, cancel_pending, shop_events

    db, shop_id = desk.db, desk.kit.shop_id
    await add_endpoint(db, shop_id, "https://93.184.216.34/hooks", list(webhook_rules.EVENT_TYPES))
    try:
        await ship(desk, "W-1", 10000)
        r = await desk.http.post(
            "/api/v1/aftersales/settings",
            json={"fast_refund_max_cents": 5000},
            headers=desk.auth("admin"),
        )
        assert r.status_code == 200, r.text
        fast = (await ask(desk, "W-1", 1000)).json()
        assert fast["status"] == "approved", fast
        asked = (await ask(desk, "W-1", 3000, "return_refund")).json()
        assert (await decide(desk, asked["id"], "decline", note="请先寄回")).status_code == 200
        events = [
            (e.type, e.data["id"], e.data["status"])
            for e in await shop_events(db, shop_id)
            if e.type.startswith("aftersale.")
        ]
        assert events == [
            ("aftersale.requested", fast["id"], "approved"),
            ("aftersale.decided", fast["id"], "approved"),
            ("aftersale.requested", asked["id"], "pending"),
            ("aftersale.decided", asked["id"], "declined"),
        ]
    finally:
        await cancel_pending(db, shop_id)
