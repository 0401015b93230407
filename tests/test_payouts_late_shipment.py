"""Proactive late-shipment compensation (晚发即赔): one coupon per late order, whoever runs the job.

These tests run the job against a database of their own, so the job sees only their
orders (and the shared server's job never sees them).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.chat.models import Conversation, Message
from app.clock import FrozenClock
from app.db import Database
from app.migrate import upgrade
from app.payouts import rules
from app.payouts.jobs import LATE_SHIPMENT_JOB
from app.payouts.models import LateShipmentCoupon, PayoutLedgerEntry
from tests.conftest import PG_ADMIN, _pg_exec, buyer
from tests.support.servers import NodeProcess
from tests.test_payouts_support import make_desk_shop, post_order

# order id -> (amount, status, ship_by offset from the test's base time in hours or None)
ORDERS = {
    "L-small": (299, "paid", 0),  # under ¥3: nothing
    "L-flat": (9900, "paid", 0),  # ¥3
    "L-edge": (30000, "paid", 0),  # ¥300: 1% is ¥3
    "L-pct": (45000, "paid", 0),  # 1%: ¥4.50
    "L-cap": (800000, "paid", 0),  # capped at ¥30
    "L-shipped": (45000, "shipped", 0),
    "L-refunded": (45000, "refunded", 0),
    "L-not-yet": (45000, "paid", 240),
    "L-no-promise": (45000, "paid", None),
}
DUE = {oid for oid, (_, status, offset) in ORDERS.items() if status == "paid" and offset == 0}


@pytest.fixture
async def own_database(backend, tmp_path) -> AsyncIterator[str]:
    """A freshly migrated database for this test alone."""
    name = f"homing_late_{secrets.token_hex(4)}"
    if backend == "postgres":
        await _pg_exec(f'CREATE DATABASE "{name}"')
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    else:
        url = f"sqlite:///{tmp_path / name}.db"
    await asyncio.to_thread(upgrade, url)
    yield url
    if backend == "postgres":
        await _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def post_orders(base: str, kit: Any, buyer_of: dict[str, str], t0: datetime) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for oid, (amount, status, offset) in ORDERS.items():
            ship_by = None if offset is None else t0 + timedelta(hours=offset)
            r = await post_order(
                http,
                kit,
                oid,
                buyer_of[oid],
                amount,
                status=status,
                ship_by=ship_by,
                created_at=t0 - timedelta(days=3),
            )
            assert r.status_code == 201, r.text


async def decisions(db: Database, shop_id: str) -> dict[str, list[LateShipmentCoupon]]:
    async with db.read() as s:
        rows = await s.execute(
            select(LateShipmentCoupon).where(LateShipmentCoupon.shop_id == shop_id)
        )
        found: dict[str, list[LateShipmentCoupon]] = {}
        for c in rows.scalars():
            found.setdefault(c.order_id, []).append(c)
        return found


async def coupon_cards(db: Database, shop_id: str) -> list[Message]:
    async with db.read() as s:
        rows = await s.execute(
            select(Message).where(Message.shop_id == shop_id, Message.kind == "coupon_card")
        )
        return list(rows.scalars())


async def assert_one_coupon_per_late_order(db: Database, shop_id: str) -> None:
    found = await decisions(db, shop_id)
    assert set(found) == DUE and all(len(v) == 1 for v in found.values())
    amounts = {oid: v[0].amount_cents for oid, v in found.items()}
    assert amounts == {"L-small": 0, "L-flat": 300, "L-edge": 300, "L-pct": 450, "L-cap": 3000}
    assert all(amounts[oid] == rules.late_shipment_coupon_cents(ORDERS[oid][0]) for oid in amounts)
    cards = await coupon_cards(db, shop_id)
    by_order = sorted(
        (m.payload["coupon"]["order_id"], m.payload["coupon"]["amount_cents"]) for m in cards
    )
    assert by_order == sorted((oid, a) for oid, a in amounts.items() if a)
    for m in cards:
        assert m.sender == "system" and m.payload["opt_out"] is False
        assert m.payload["coupon"]["min_spend_cents"] == 0
    async with db.read() as s:
        rows = await s.execute(
            select(PayoutLedgerEntry).where(
                PayoutLedgerEntry.shop_id == shop_id, PayoutLedgerEntry.entry == "coupon_issued"
            )
        )
        ledger = list(rows.scalars())
    assert sorted((e.order_id, e.amount_cents) for e in ledger) == by_order
    assert {(e.actor_kind, e.actor_id, e.reason) for e in ledger} == {
        ("platform", None, "late_shipment")
    }


async def test_two_workers_with_an_injected_clock_give_each_late_order_one_coupon(
    own_database, start_server, connect, redis_url
):
    t0 = datetime.now(UTC) + timedelta(days=1)
    clocks = [FrozenClock(t0 - timedelta(hours=1)), FrozenClock(t0 - timedelta(hours=1))]
    # Two nodes sharing the database and a bus, so either worker's card reaches the buyer.
    shared = {
        "database_url": own_database,
        "REDIS_URL": redis_url,
        "HOMING_BUS_CHANNEL": f"homing:test:{secrets.token_hex(4)}",
    }
    a = await start_server(clock=clocks[0], run_jobs=False, **shared)
    b = await start_server(clock=clocks[1], run_jobs=False, **shared)
    kit = await make_desk_shop(a.ctx.db)
    # One buyer is chatting (their open conversation gets the card); the others are not.
    chatting = await buyer(
        a, kit, connect, "chatting", exp_in=7 * 86400
    )  # valid on the moved clock
    await chatting.send({"type": "message.send", "client_msg_id": "c1", "body": "什么时候发货?"})
    open_conv = (await chatting.expect("message.ack"))["message"]["conversation_id"]
    buyer_of = {oid: ("chatting" if oid == "L-pct" else f"quiet-{oid}") for oid in ORDERS}
    await post_orders(a.http, kit, buyer_of, t0)

    async def both_workers() -> list[Any]:
        return await asyncio.gather(*(srv.ctx.jobs.run_once(LATE_SHIPMENT_JOB) for srv in (a, b)))

    assert await both_workers() == [0, 0]  # an hour before ship_by: nothing is late
    assert await decisions(a.ctx.db, kit.shop_id) == {}

    for clock in clocks:
        clock.set(t0 + timedelta(minutes=1))
    issued = await both_workers()
    assert sum(issued) == 4  # ¥3, ¥3, ¥4.50, ¥30 (the ¥2.99 order gets nothing)
    await assert_one_coupon_per_late_order(a.ctx.db, kit.shop_id)
    assert await both_workers() == [0, 0]  # once per order, however often the job runs

    # The chatting buyer sees the coupon in their open conversation, live.
    frame = await chatting.expect("message.new", lambda f: f["message"]["kind"] == "coupon_card")
    assert frame["message"]["conversation_id"] == open_conv
    assert frame["message"]["payload"]["coupon"] == {
        **frame["message"]["payload"]["coupon"],
        "order_id": "L-pct",
        "amount_cents": 450,
    }
    # The others get it in a conversation that no agent is asked to take.
    async with a.ctx.db.read() as s:
        convs = (
            (await s.execute(select(Conversation).where(Conversation.shop_id == kit.shop_id)))
            .scalars()
            .all()
        )
    quiet = [c for c in convs if c.buyer_id.startswith("quiet-")]
    assert len(quiet) == 3 and all(c.status == "closed" and c.agent_id is None for c in quiet)
    assert {c.buyer_id for c in quiet} == {"quiet-L-flat", "quiet-L-edge", "quiet-L-cap"}

    # A late order that ships before the job gets to it earns nothing.
    async with httpx.AsyncClient(base_url=a.http) as http:
        await post_order(
            http, kit, "L-late-shipped", "quiet-x", 45000, ship_by=t0, status="shipped"
        )
    assert await both_workers() == [0, 0]


async def test_two_worker_processes_give_each_late_order_one_coupon(own_database, start_server):
    """Two real `homing serve` processes running the job at once on the same database."""
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    # A node for HTTP only (no jobs), to file the orders before any worker starts.
    front = await start_server(run_jobs=False, database_url=own_database)
    kit = await make_desk_shop(front.ctx.db)
    buyer_of = {oid: f"buyer-{i % 3}" for i, oid in enumerate(ORDERS)}
    await post_orders(front.http, kit, buyer_of, t0)
    env = {
        "DATABASE_URL": own_database,
        "HOMING_BUS_CHANNEL": f"homing:test:{secrets.token_hex(4)}",
    }
    workers = [NodeProcess(env, jobs=True), NodeProcess(env, jobs=True)]
    try:
        await asyncio.gather(*(w.start() for w in workers))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = await decisions(front.ctx.db, kit.shop_id)
            if set(found) == DUE and len(await coupon_cards(front.ctx.db, kit.shop_id)) == 4:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)  # let a straggler show itself, if there were one
    finally:
        for w in workers:
            w.stop()
    await assert_one_coupon_per_late_order(front.ctx.db, kit.shop_id)
