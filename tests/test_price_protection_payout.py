"""一键价保 paid as a `price_protection` payout from the shop's fund: automatically within
the shop's agent-free amount (no agent, actor "platform", no agent's daily total), by an
agent within their own authority above it; the fund must cover it, the order's room is
taken once, the buyer gets the compensation card and the shop's webhooks `payout.paid`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.aftersales.models import AfterSale
from app.payouts.models import PayoutDailyTotal
from app.webhooks import rules as webhook_rules
from tests import test_aftersales_support as support
from tests.support.webhooks import add_endpoint, cancel_pending, shop_events
from tests.test_aftersales_support import as_ledger, ask, buyer_auth, decide, ship
from tests.test_payouts_support import Desk, assert_ledger_reconciles, open_desk

# The desk and its HTTP client (tests/test_aftersales_support.py).
http, desk = support.http, support.desk


@pytest.fixture
async def poor_desk(server: Any, connect: Any, http: httpx.AsyncClient) -> AsyncIterator[Desk]:
    """A desk whose payout fund holds only ¥50."""
    d = await open_desk(server, connect, http, fund_cents=5000)
    yield d
    await support.read_all(d)


async def price_dropped(
    desk: Desk, order_id: str, *, now_cents: int, auto_cents: int, sku: str = "SKU-1"
) -> None:
    """The shop pays 价保 up to `auto_cents` without an agent; the buyer bought two at
    ¥100 and the storefront now sells them at `now_cents`."""
    r = await desk.http.post(
        "/api/v1/aftersales/settings",
        json={"price_protection_auto_cents": auto_cents},
        headers=desk.auth("admin"),
    )
    assert r.status_code == 200, r.text
    await ship(desk, order_id, 20000, product_id=sku, unit_price_cents=10000)
    r = await desk.http.post(
        f"/api/v1/products/{sku}/price", json={"price_cents": now_cents}, headers=desk.api_key
    )
    assert r.status_code == 200, r.text


def card_for(payout_id: str):
    return lambda f: (
        f["message"]["kind"] == "compensation_card"
        and f["message"]["payload"]["payout_id"] == payout_id
    )


async def paid_out(desk: Desk, order_id: str) -> int:
    room = await desk.http.get(f"/api/v1/aftersales/orders/{order_id}", headers=buyer_auth(desk))
    assert room.status_code == 200, room.text
    return int(room.json()["amount_cents"] - room.json()["room_cents"])


async def daily_totals(desk: Desk) -> dict[str, int]:
    async with desk.db.read() as s:
        rows = await s.execute(
            select(PayoutDailyTotal.agent_id, func.sum(PayoutDailyTotal.paid_cents))
            .where(PayoutDailyTotal.shop_id == desk.kit.shop_id)
            .group_by(PayoutDailyTotal.agent_id)
        )
        return {agent_id: int(c) for agent_id, c in rows if c}


def entries(lines: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["entry"], e["actor_kind"], e["actor_id"], e["code"]) for e in lines]


async def test_within_the_shops_amount_the_platform_pays_it_at_once(desk: Desk):
    db, shop_id = desk.db, desk.kit.shop_id
    await add_endpoint(db, shop_id, "https://93.184.216.34/hooks", list(webhook_rules.EVENT_TYPES))
    try:
        await price_dropped(desk, "P-1", now_cents=9600, auto_cents=1000)  # ¥8 owed
        before = await desk.fund()
        r = await ask(desk, "P-1", 800, "price_protection", reason="一键价保")
        assert r.status_code == 201, r.text
        claim = r.json()
        assert (claim["status"], claim["auto"]) == ("approved", True)

        [payout] = await desk.payouts("sup", order_id="P-1")
        assert (payout["status"], payout["reason"], payout["amount_cents"]) == (
            "paid",
            "price_protection",
            800,
        )
        assert (payout["agent_id"], payout["approved_by"]) == (None, None)
        assert await desk.fund() == before - 800
        # The claim's hold is the payout's room: taken once, not twice.
        assert await paid_out(desk, "P-1") == 800
        assert entries(await desk.ledger(payout_id=payout["id"])) == [
            ("approved", "platform", None, None),
            ("paid", "platform", None, None),
        ]
        card = await desk.buyer_ws.expect("message.new", card_for(payout["id"]))
        assert card["message"]["payload"]["reason"] == "price_protection"
        assert card["message"]["payload"]["amount_cents"] == 800
        paid_events = [e for e in await shop_events(db, shop_id) if e.type == "payout.paid"]
        assert [(e.data["id"], e.data["agent_id"]) for e in paid_events] == [(payout["id"], None)]
        # No agent's authority was used, and the totals all agree with the ledger.
        assert await daily_totals(desk) == {}
        assert await assert_ledger_reconciles(desk) == {None: 800}
        again = await ask(desk, "P-1", 800, "price_protection")
        assert again.json()["error"]["code"] == "price_protection_exceeded"
    finally:
        await cancel_pending(db, shop_id)


async def test_above_it_an_agent_pays_it_within_their_own_authority(desk: Desk):
    await price_dropped(desk, "P-1", now_cents=6000, auto_cents=1000)  # ¥80 owed
    before = await desk.fund()
    claim = (await ask(desk, "P-1", 8000, "price_protection")).json()
    assert (claim["status"], claim["auto"]) == ("pending", False)
    assert await desk.payouts("sup", order_id="P-1") == []
    assert await desk.fund() == before
    assert await paid_out(desk, "P-1") == 8000  # held for the claim

    # agent1 may pay ¥50 a payout: refused, in both ledgers, and the claim stays pending.
    r = await decide(desk, claim["id"], "approve")
    assert r.status_code == 409 and r.json()["error"]["code"] == "payout_limit_exceeded"
    refused = [e for e in await desk.ledger(entry="refused")]
    assert [(e["actor_id"], e["reason"], e["amount_cents"], e["order_id"]) for e in refused] == [
        (desk.kit.agents["agent1"], "price_protection", 8000, "P-1")
    ]
    assert [e["code"] for e in await as_ledger(desk, aftersale_id=claim["id"])] == [
        None,
        "payout_limit_exceeded",
    ]
    assert await desk.payouts("sup", order_id="P-1") == []

    await desk.set_limits("agent1", per_payout=10000)
    r = await decide(desk, claim["id"], "approve", note="已核实降价")
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text
    agent1 = desk.kit.agents["agent1"]
    [payout] = await desk.payouts("sup", order_id="P-1")
    assert (payout["status"], payout["agent_id"], payout["amount_cents"]) == ("paid", agent1, 8000)
    assert await desk.fund() == before - 8000
    assert await paid_out(desk, "P-1") == 8000
    assert entries(await desk.ledger(payout_id=payout["id"])) == [
        ("approved", "agent", agent1, None),
        ("paid", "agent", agent1, None),
    ]
    await desk.buyer_ws.expect("message.new", card_for(payout["id"]))
    assert await daily_totals(desk) == {agent1: 8000}
    assert await assert_ledger_reconciles(desk) == {agent1: 8000}


async def test_a_fund_too_small_is_refused_and_nothing_is_half_done(poor_desk: Desk):
    desk = poor_desk  # ¥50 in the fund
    await price_dropped(desk, "P-1", now_cents=7000, auto_cents=10000)  # ¥60 owed
    r = await ask(desk, "P-1", 6000, "price_protection")
    assert r.status_code == 409 and r.json()["error"]["code"] == "insufficient_funds"
    assert await desk.fund() == 5000
    assert await paid_out(desk, "P-1") == 0
    async with desk.db.read() as s:
        assert (
            await s.scalar(select(func.count()).where(AfterSale.shop_id == desk.kit.shop_id))
        ) == 0
    [refused] = await desk.ledger(entry="refused")
    assert (refused["actor_kind"], refused["actor_id"], refused["code"]) == (
        "platform",
        None,
        "insufficient_funds",
    )
    assert (refused["reason"], refused["amount_cents"], refused["buyer_id"]) == (
        "price_protection",
        6000,
        desk.buyer_id,
    )

    # Left for an agent (above the shop's amount), then the fund runs low before approval.
    r = await desk.http.post(
        "/api/v1/aftersales/settings",
        json={"price_protection_auto_cents": 1000},
        headers=desk.auth("admin"),
    )
    claim = (await ask(desk, "P-1", 3000, "price_protection")).json()
    assert claim["status"] == "pending", claim
    await desk.order("G-1", 10000)
    assert (await desk.pay(3000, order_id="G-1")).json()["status"] == "paid"  # fund: ¥20
    agent1 = desk.kit.agents["agent1"]
    r = await decide(desk, claim["id"], "approve")
    assert r.status_code == 409 and r.json()["error"]["code"] == "insufficient_funds"
    assert await daily_totals(desk) == {agent1: 3000}  # the goodwill payout only
    assert await paid_out(desk, "P-1") == 3000  # still held by the pending claim
    assert [(e["actor_id"], e["code"]) for e in await desk.ledger(entry="refused")][1:] == [
        (agent1, "insufficient_funds")
    ]
    assert (await desk.topup(10000)).status_code == 200
    r = await decide(desk, claim["id"], "approve")
    assert r.status_code == 200, r.text
    assert await desk.fund() == 12000 - 3000
    assert await assert_ledger_reconciles(desk) == {agent1: 6000}


async def test_ten_taps_at_once_pay_once(desk: Desk):
    await price_dropped(desk, "P-1", now_cents=9600, auto_cents=1000)
    before = await desk.fund()
    results = await asyncio.gather(
        *(ask(desk, "P-1", 800, "price_protection", reason="一键价保") for _ in range(10))
    )
    codes = sorted(r.status_code for r in results)
    assert codes == [201] + [422] * 9, [r.text for r in results]
    assert {r.json()["error"]["code"] for r in results if r.status_code == 422} == {
        "price_protection_exceeded"
    }
    [payout] = await desk.payouts("sup", order_id="P-1")
    assert (payout["status"], payout["amount_cents"]) == ("paid", 800)
    assert await desk.fund() == before - 800
    assert await paid_out(desk, "P-1") == 800
    assert await assert_ledger_reconciles(desk) == {None: 800}
