"""After-sales requests and payouts racing on one order over real sockets: together they
never pass the order's amount. On PostgreSQL the requests are spread over two server
nodes sharing the database; SQLite deployments are single-node."""

from __future__ import annotations

import asyncio
import itertools
import secrets

from sqlalchemy import select

from app.aftersales.models import AfterSale
from app.orders.models import Order
from tests import test_aftersales_support as support
from tests import test_payouts_concurrency as payout_concurrency_tests
from tests.test_aftersales_support import as_ledger, buyer_auth, decide, ship
from tests.test_payouts_support import Desk

# The desk and its HTTP client (tests/test_aftersales_support.py).
http, desk = support.http, support.desk


# One HTTP client per node this backend may run (the payout concurrency tests').
nodes = payout_concurrency_tests.nodes


async def order_row(desk: Desk, order_id: str) -> Order:
    async with desk.db.read() as s:
        found = await s.get(Order, (desk.kit.shop_id, order_id))
        assert found is not None
        return found


async def held(desk: Desk, order_id: str) -> int:
    """What after-sales requests hold of the order (all but the declined)."""
    async with desk.db.read() as s:
        rows = await s.execute(
            select(AfterSale.amount_cents).where(
                AfterSale.shop_id == desk.kit.shop_id,
                AfterSale.order_id == order_id,
                AfterSale.status != "declined",
            )
        )
        return sum(a for (a,) in rows)


async def test_20_requests_and_payouts_at_once_never_pass_the_orders_amount(desk: Desk, nodes):
    await ship(desk, "R-1", 10000)
    ring = itertools.cycle(nodes)

    def aftersale(i: int):
        body = {
            "conversation_id": desk.conversation_id,
            "order_id": "R-1",
            "type": ("refund_only", "return_refund")[i % 4 // 2],
            "amount_cents": 3000,
            "reason": f"第 {i} 次",
        }
        return next(ring).post("/api/v1/aftersales", json=body, headers=buyer_auth(desk))

    def payout(i: int):
        body = {
            "conversation_id": desk.conversation_id,
            "order_id": "R-1",
            "amount_cents": 3000,
            "reason": "goodwill",
        }
        headers = {**desk.auth("agent1"), "Idempotency-Key": secrets.token_hex(8)}
        return next(ring).post("/api/v1/payouts", json=body, headers=headers)

    calls = [aftersale(i) if i % 2 else payout(i) for i in range(20)]
    results = await asyncio.gather(*calls)
    codes = sorted(r.status_code for r in results)
    assert codes == [201] * 3 + [409] * 17, [r.text for r in results]
    assert {r.json()["error"]["code"] for r in results if r.status_code == 409} == {
        "order_cap_exceeded"
    }
    paid = sum(p["amount_cents"] for p in await desk.payouts("sup", order_id="R-1"))
    assert paid + await held(desk, "R-1") == 9000
    assert (await order_row(desk, "R-1")).paid_out_cents == 9000
    refused = [e for e in await as_ledger(desk) if e["entry"] == "refused"]
    assert len(refused) == sum(1 for r in results[1::2] if r.status_code == 409)

    # Declining the after-sales requests gives their room back, once each, even at once.
    mine = [r.json()["id"] for r in results[1::2] if r.status_code == 201]
    if mine:
        twice = [decide(desk, a, "decline") for a in mine for _ in range(2)]
        answers = await asyncio.gather(*twice)
        assert sorted(r.status_code for r in answers) == [200] * len(mine) + [409] * len(mine)
    assert (await order_row(desk, "R-1")).paid_out_cents == paid


async def test_20_requests_at_once_from_the_buyer_alone(desk: Desk, nodes):
    await ship(desk, "R-2", 10000)
    ring = itertools.cycle(nodes)
    body = {
        "conversation_id": desk.conversation_id,
        "order_id": "R-2",
        "type": "refund_only",
        "amount_cents": 700,
        "reason": "多次点击",
    }
    results = await asyncio.gather(
        *(
            next(ring).post("/api/v1/aftersales", json=body, headers=buyer_auth(desk))
            for _ in range(20)
        )
    )
    assert sorted(r.status_code for r in results) == [201] * 14 + [409] * 6
    assert await held(desk, "R-2") == 9800 == (await order_row(desk, "R-2")).paid_out_cents
