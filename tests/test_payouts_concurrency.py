"""Payouts under real concurrent HTTP requests: limits hold, retries pay once, the ledger agrees.

Requests are sent at once with asyncio.gather over real sockets. On PostgreSQL they are
spread over two server nodes sharing the database (a multi-node deployment); SQLite
deployments are single-node, so there every request goes to the one server.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.chat.models import Message
from app.payouts.models import PayoutDailyTotal
from tests.test_payouts_support import Desk, assert_ledger_reconciles, open_desk, paid_total


@pytest.fixture
async def http(server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.http, timeout=60) as c:
        yield c


@pytest.fixture
async def desk(server, connect, http) -> Desk:
    return await open_desk(server, connect, http)


@pytest.fixture
async def nodes(backend, server, start_server) -> AsyncIterator[list[httpx.AsyncClient]]:
    """HTTP clients for every node a deployment on this backend may run."""
    bases = [server.http]
    if backend == "postgres":
        bases.append((await start_server(run_jobs=False)).http)
    clients = [httpx.AsyncClient(base_url=b, timeout=60) for b in bases]
    yield clients
    for c in clients:
        await c.aclose()


async def at_once(
    desk: Desk, nodes: list[httpx.AsyncClient], calls: list[dict[str, Any]]
) -> list[httpx.Response]:
    """POST every call at the same moment, round-robin over the nodes."""
    ring = itertools.cycle(nodes)

    def send(call: dict[str, Any]) -> Any:
        client = next(ring)
        return client.post(call["path"], json=call.get("json"), headers=call["headers"])

    return list(await asyncio.gather(*(send(c) for c in calls)))


def payout_call(
    desk: Desk, amount: int, order_id: str, key: str, username: str = "agent1"
) -> dict[str, Any]:
    return {
        "path": "/api/v1/payouts",
        "json": {
            "conversation_id": desk.conversation_id,
            "order_id": order_id,
            "amount_cents": amount,
            "reason": "goodwill",
        },
        "headers": {**desk.auth(username), "Idempotency-Key": key},
    }


async def cards(desk: Desk) -> list[Message]:
    async with desk.db.read() as s:
        rows = await s.execute(
            select(Message).where(
                Message.shop_id == desk.kit.shop_id, Message.kind == "compensation_card"
            )
        )
        return list(rows.scalars())


async def test_20_concurrent_payouts_never_pass_the_agents_daily_total(desk: Desk, nodes):
    await desk.order("BIG", 1_000_000)
    # Defaults: ¥50 a payout, ¥500 a day. 20 x ¥40: 12 fit (¥480), the rest must wait.
    calls = [payout_call(desk, 4000, "BIG", f"k-{i}") for i in range(20)]
    results = await at_once(desk, nodes, calls)
    assert [r.status_code for r in results] == [201] * 20, [
        r.text for r in results if r.status_code != 201
    ]
    statuses = sorted(r.json()["status"] for r in results)
    assert statuses == ["paid"] * 12 + ["pending_approval"] * 8
    payouts = await desk.payouts("sup", agent_id=desk.kit.agents["agent1"])
    paid = paid_total(payouts)
    assert len(payouts) == 20 and paid <= 50000 and paid == 48000
    assert await desk.fund() == 1_000_000 - 48000
    async with desk.db.read() as s:
        counted = await s.scalar(
            select(PayoutDailyTotal.paid_cents).where(
                PayoutDailyTotal.agent_id == desk.kit.agents["agent1"]
            )
        )
    assert counted == 48000
    assert sorted(m.payload["payout_id"] for m in await cards(desk)) == sorted(
        p["id"] for p in payouts if p["status"] == "paid"
    )
    await assert_ledger_reconciles(desk)


async def test_10_concurrent_payouts_on_one_order_never_pass_its_amount(desk: Desk, nodes):
    await desk.order("O-1", 10000)
    calls = [
        payout_call(desk, 3000, "O-1", f"k-{i}", username=("agent1", "sup")[i % 2])
        for i in range(10)
    ]
    results = await at_once(desk, nodes, calls)
    codes = sorted(r.status_code for r in results)
    assert codes == [201] * 3 + [409] * 7
    assert {r.json()["error"]["code"] for r in results if r.status_code == 409} == {
        "order_cap_exceeded"
    }
    payouts = await desk.payouts("sup", order_id="O-1")
    paid = paid_total(payouts)
    assert paid <= 10000 and paid == 9000
    assert (await desk.panel())[0]["paid_out_cents"] == 9000
    assert len(await desk.ledger(entry="refused")) == 7
    await assert_ledger_reconciles(desk)


async def test_the_same_idempotency_key_10_times_at_once_is_one_payout(desk: Desk, nodes):
    await desk.order("O-1", 10000)
    results = await at_once(
        desk, nodes, [payout_call(desk, 2500, "O-1", "once") for _ in range(10)]
    )
    assert sorted(r.status_code for r in results) == [200] * 9 + [201]
    assert len({r.json()["id"] for r in results}) == 1
    assert len(await desk.payouts("sup")) == 1
    assert await desk.fund() == 1_000_000 - 2500
    assert len(await cards(desk)) == 1
    entries = [e["entry"] for e in await desk.ledger()]
    assert (
        entries.count("requested") == 1
        and entries.count("paid") == 1
        and entries.count("replayed") == 9
    )
    await assert_ledger_reconciles(desk)


async def test_concurrent_payouts_never_overdraw_the_fund(server, connect, http, nodes):
    desk = await open_desk(server, connect, http, fund_cents=10000)
    for i in range(10):
        await desk.order(f"O-{i}", 5000)
    results = await at_once(
        desk, nodes, [payout_call(desk, 3000, f"O-{i}", f"k-{i}") for i in range(10)]
    )
    assert sorted(r.status_code for r in results) == [201] * 3 + [409] * 7
    assert {r.json()["error"]["code"] for r in results if r.status_code == 409} == {
        "insufficient_funds"
    }
    assert await desk.fund() == 1000
    await assert_ledger_reconciles(desk)


async def test_concurrent_approvals_hold_the_approvers_limits_and_decide_once(desk: Desk, nodes):
    await desk.order("O-1", 1_000_000)
    await desk.set_limits("sup", per_payout=10000, daily=30000)
    pending = [(await desk.pay(8000, order_id="O-1")).json()["id"] for _ in range(6)]
    approvals = [
        {"path": f"/api/v1/payouts/{pid}/approve", "headers": desk.auth("sup")} for pid in pending
    ]
    results = await at_once(desk, nodes, approvals)
    assert sorted(r.status_code for r in results) == [200] * 3 + [409] * 3  # 3 x ¥80 fit in ¥300
    assert {r.json()["error"]["code"] for r in results if r.status_code == 409} == {
        "daily_limit_exceeded"
    }

    # One payout, decided by two supervisors at once: exactly one decision sticks.
    still = [pid for pid, r in zip(pending, results, strict=True) if r.status_code == 409]
    race = [
        {"path": f"/api/v1/payouts/{still[0]}/approve", "headers": desk.auth("sup2")},
        {"path": f"/api/v1/payouts/{still[0]}/reject", "headers": desk.auth("admin")},
        {"path": f"/api/v1/payouts/{still[0]}/approve", "headers": desk.auth("admin")},
    ]
    results = await at_once(desk, nodes, race)
    assert sorted(r.status_code for r in results) == [200, 409, 409]
    assert {r.json()["error"]["code"] for r in results if r.status_code == 409} == {"not_pending"}
    decided = [
        e for e in await desk.ledger(payout_id=still[0]) if e["entry"] in ("approved", "rejected")
    ]
    assert len(decided) == 1
    by_agent = await assert_ledger_reconciles(desk)
    assert by_agent[desk.kit.agents["agent1"]] in (24000, 32000)
