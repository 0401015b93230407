"""Proactive care (主动服务): stalled logistics and 回访 fire once per order with two
workers on one database and an injected clock; the buyer's 回访 answer and its figures.

The job runs against a database of this module's own (as the late-shipment tests do), so
it sees only these tests' orders."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from app.care.jobs import CARE_JOB
from app.care.models import CareAction
from app.chat.models import Message
from app.clock import FrozenClock
from app.payouts.jobs import LATE_SHIPMENT_JOB
from tests import test_payouts_late_shipment as late_shipment_tests
from tests.conftest import buyer
from tests.test_payouts_support import make_desk_shop, sessions_for

# A freshly migrated database for each test alone (the late-shipment tests' fixture).
own_database = late_shipment_tests.own_database


async def post(http: httpx.AsyncClient, path: str, key: str, body: dict[str, Any]) -> Any:
    r = await http.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code in (200, 201), r.text
    return r.json()


async def fired(db: Any, shop_id: str) -> list[CareAction]:
    async with db.read() as s:
        rows = await s.execute(select(CareAction).where(CareAction.shop_id == shop_id))
        return list(rows.scalars())


async def test_two_workers_fire_each_rule_once_per_order(own_database, start_server, redis_url):
    t0 = datetime.now(UTC).replace(microsecond=0)
    clocks = [FrozenClock(t0), FrozenClock(t0)]
    shared = {
        "database_url": own_database,
        "REDIS_URL": redis_url,
        "HOMING_BUS_CHANNEL": f"homing:test:{secrets.token_hex(4)}",
    }
    a = await start_server(clock=clocks[0], run_jobs=False, **shared)
    b = await start_server(clock=clocks[1], run_jobs=False, **shared)
    kit = await make_desk_shop(a.ctx.db)
    admin = (await sessions_for(a.ctx.db, kit))["admin"]
    async with httpx.AsyncClient(base_url=a.http) as http:
        await post(
            http,
            "/api/v1/care/settings",
            admin,
            {
                "stalled_on": True,
                "stalled_hours": 24,
                "stalled_coupon_cents": 500,
                "visit_on": True,
                "visit_days": 3,
            },
        )
        orders = {
            # order: (shipped hours before t0, delivered hours before t0, tracking h before t0)
            "S-quiet": (30, None, None),  # shipped 30 h ago, no news: stalled at once
            "S-news": (30, None, 2),  # news 2 h ago: not stalled (until 22 h later)
            "S-fresh": (5, None, None),
            "V-due": (100, 80, None),  # delivered 80 h ago: visit due (3 days = 72 h)
            "V-early": (50, 30, None),
        }
        for oid, (shipped, delivered, news) in orders.items():
            body: dict[str, Any] = {
                "order_id": oid,
                "buyer_id": f"buyer-{oid}",
                "amount_cents": 9900,
                "status": "shipped",
                "created_at": (t0 - timedelta(days=5)).isoformat(),
                "shipped_at": (t0 - timedelta(hours=shipped)).isoformat(),
            }
            if delivered is not None:
                body["delivered_at"] = (t0 - timedelta(hours=delivered)).isoformat()
            await post(http, "/api/v1/orders", kit.api_key, body)
            if news is not None:
                await post(
                    http,
                    f"/api/v1/orders/{oid}/tracking",
                    kit.api_key,
                    {"at": (t0 - timedelta(hours=news)).isoformat(), "line": "运输中"},
                )

    async def both() -> list[Any]:
        return await asyncio.gather(*(srv.ctx.jobs.run_once(CARE_JOB) for srv in (a, b)))

    assert sum(await both()) == 2
    assert sorted((c.order_id, c.rule) for c in await fired(a.ctx.db, kit.shop_id)) == [
        ("S-quiet", "logistics_stalled"),
        ("V-due", "follow_up_visit"),
    ]
    assert await both() == [0, 0]
    for clock in clocks:
        clock.advance(hours=23)  # S-news: 25 h without news; S-fresh: 28 h; V-early: 53 h
    assert sum(await both()) == 2
    for clock in clocks:
        clock.advance(hours=30)  # V-early: 83 h after delivery
    assert sum(await both()) == 1
    assert await both() == [0, 0]
    actions = await fired(a.ctx.db, kit.shop_id)
    assert len(actions) == 5 == len({(c.order_id, c.rule) for c in actions})
    stalled = [c for c in actions if c.rule == "logistics_stalled"]
    assert {c.order_id for c in stalled} == {"S-quiet", "S-news", "S-fresh"}
    assert all(c.coupon_cents == 500 and c.message_id for c in stalled)
    async with a.ctx.db.read() as s:
        cards = (
            (
                await s.execute(
                    select(Message).where(
                        Message.shop_id == kit.shop_id, Message.kind == "care_card"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert (
        sorted(m.payload["notice"] for m in cards)
        == ["care_stalled_coupon"] * 3 + ["care_visit"] * 2
    )
    assert {m.id for m in cards} == {c.message_id for c in actions}


async def test_the_buyer_answers_a_visit_once_and_the_figures_add_up(
    own_database, start_server, connect
):
    t0 = datetime.now(UTC)
    clock = FrozenClock(t0)
    srv = await start_server(clock=clock, run_jobs=False, database_url=own_database)
    kit = await make_desk_shop(srv.ctx.db)
    tokens = await sessions_for(srv.ctx.db, kit)
    chatting = await buyer(srv, kit, connect, "visited", exp_in=30 * 86400)
    async with httpx.AsyncClient(base_url=srv.http) as http:
        await post(
            http, "/api/v1/care/settings", tokens["admin"], {"visit_on": True, "visit_days": 2}
        )
        await post(
            http,
            "/api/v1/orders",
            kit.api_key,
            {
                "order_id": "V-1",
                "buyer_id": "visited",
                "amount_cents": 5000,
                "status": "shipped",
                "created_at": t0.isoformat(),
                "delivered_at": t0.isoformat(),
            },
        )
        clock.advance(days=2, minutes=1)
        assert await srv.ctx.jobs.run_once(CARE_JOB) == 1
        card = (await chatting.expect("message.new"))["message"]
        assert (card["kind"], card["payload"]["notice"]) == ("care_card", "care_visit")
        care_id = card["payload"]["care_id"]
        me = {"Authorization": f"Bearer {kit.buyer_token('visited')}"}
        other = {"Authorization": f"Bearer {kit.buyer_token('someone')}"}
        path = f"/api/v1/care/visits/{care_id}/rating"
        assert (
            await http.post(path, json={"goods": 5, "service": 4}, headers=other)
        ).status_code == 404
        bad = await http.post(path, json={"goods": 6, "service": 4}, headers=me)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_score"
        ok = await http.post(path, json={"goods": 5, "service": 4}, headers=me)
        assert ok.status_code == 200 and ok.json()["goods_score"] == 5
        again = await http.post(path, json={"goods": 1, "service": 1}, headers=me)
        assert again.status_code == 409
        clock.set(t0)  # the staff sessions below were made for the real hour
        results = await http.get(
            "/api/v1/care/visits/results", headers={"Authorization": f"Bearer {tokens['sup']}"}
        )
        assert results.json() == {"sent": 1, "answered": 1, "goods_avg": 5.0, "service_avg": 4.0}
        denied = await http.get(
            "/api/v1/care/visits/results", headers={"Authorization": f"Bearer {tokens['agent1']}"}
        )
        assert denied.status_code == 403


async def test_late_shipment_is_a_care_rule_the_admin_can_switch_off(own_database, start_server):
    t0 = datetime.now(UTC)
    srv = await start_server(clock=FrozenClock(t0), run_jobs=False, database_url=own_database)
    kit = await make_desk_shop(srv.ctx.db)
    admin = (await sessions_for(srv.ctx.db, kit))["admin"]
    async with httpx.AsyncClient(base_url=srv.http) as http:
        r = await http.get("/api/v1/care/settings", headers={"Authorization": f"Bearer {admin}"})
        assert r.json()["late_shipment_on"] is True  # on unless turned off: unchanged
        await post(http, "/api/v1/care/settings", admin, {"late_shipment_on": False})
        await post(
            http,
            "/api/v1/orders",
            kit.api_key,
            {
                "order_id": "L-1",
                "buyer_id": "b",
                "amount_cents": 9900,
                "status": "paid",
                "created_at": t0.isoformat(),
                "ship_by": (t0 - timedelta(hours=1)).isoformat(),
            },
        )
        assert await srv.ctx.jobs.run_once(LATE_SHIPMENT_JOB) == 0
        await post(http, "/api/v1/care/settings", admin, {"late_shipment_on": True})
        assert await srv.ctx.jobs.run_once(LATE_SHIPMENT_JOB) == 1
