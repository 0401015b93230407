"""Payouts through a real server: limits, approvals, the fund, evidence, idempotency, the ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import httpx
import pytest
from sqlalchemy import text

from app.chat.models import Conversation
from app.payouts import rules
from app.payouts import service as payout_service
from app.payouts.rules import PayoutAuthority
from tests.conftest import buyer
from tests.test_payouts_support import Desk, assert_ledger_reconciles, open_desk, paid_total


@pytest.fixture
async def http(server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.http, timeout=60) as c:
        yield c


@pytest.fixture
async def desk(server, connect, http) -> Desk:
    return await open_desk(server, connect, http)


def card_for(payout_id: str):
    return lambda f: (
        f["message"]["kind"] == "compensation_card"
        and f["message"]["payload"]["payout_id"] == payout_id
    )


# --- pure rules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "paid_today", "at_once"),
    [
        (5000, 0, True),  # exactly the per-payout limit
        (5001, 0, False),  # one cent above it
        (1, 49999, True),  # exactly the daily limit
        (2, 49999, False),  # one cent past it
        (5000, 45000, True),
        (5000, 45001, False),
    ],
)
def test_authority_pays_at_once_only_within_both_limits(amount, paid_today, at_once):
    assert (
        PayoutAuthority(per_payout_cents=5000, daily_cents=50000).pays_at_once(amount, paid_today)
        is at_once
    )


@pytest.mark.parametrize(
    ("order_cents", "coupon_cents"),
    [
        (0, 0),
        (299, 0),
        (300, 300),
        (1000, 300),
        (29999, 300),
        (30000, 300),
        (30099, 300),
        (45000, 450),
        (150000, 1500),
        (299999, 2999),
        (300000, 3000),
        (10_000_000, 3000),
    ],
)
def test_late_shipment_coupon_amounts(order_cents, coupon_cents):
    assert rules.late_shipment_coupon_cents(order_cents) == coupon_cents


@pytest.mark.parametrize(
    ("reason", "elder", "needed"),
    [
        ("damaged", False, True),
        ("damaged", True, False),
        ("goodwill", False, False),
        ("late_shipment", False, False),
    ],
)
def test_evidence_is_needed_for_damaged_unless_elder(reason, elder, needed):
    assert rules.needs_evidence(reason, elder=elder) is needed


def test_daily_totals_restart_at_the_shops_midnight():
    # 16:30 UTC is 00:30 the next day in Shanghai.
    assert rules.shop_day(datetime(2026, 3, 1, 16, 30, tzinfo=UTC), "Asia/Shanghai") == date(
        2026, 3, 2
    )
    assert rules.shop_day(datetime(2026, 3, 1, 15, 59, tzinfo=UTC), "Asia/Shanghai") == date(
        2026, 3, 1
    )
    assert rules.shop_day(datetime(2026, 3, 1, 16, 30, tzinfo=UTC), "No/Such_Zone") == date(
        2026, 3, 1
    )


@pytest.mark.parametrize("amount", [0, -1, -5000])
def test_amounts_must_be_positive(amount):
    with pytest.raises(Exception) as info:
        rules.check_amount(amount)
    assert getattr(info.value, "code", None) == "invalid_amount"


# --- paying at once, and approvals ---------------------------------------------------


async def test_within_limits_is_paid_at_once_with_a_card_in_the_buyers_chat(desk: Desk):
    await desk.order("O-1", 20000)
    r = await desk.pay(3000, order_id="O-1", reason="shipping_fee")
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["status"] == "paid" and p["amount_cents"] == 3000 and p["approved_by"] is None
    assert (p["conversation_id"], p["order_id"], p["buyer_id"]) == (
        desk.conversation_id,
        "O-1",
        desk.buyer_id,
    )
    assert p["agent_id"] == desk.kit.agents["agent1"]
    card = (await desk.buyer_ws.expect("message.new", card_for(p["id"])))["message"]
    assert card["sender"] == "system" and card["conversation_id"] == desk.conversation_id
    assert card["payload"] == {"payout_id": p["id"], "amount_cents": 3000, "reason": "shipping_fee"}
    await desk.agent_ws.expect("message.new", card_for(p["id"]))
    await desk.agent_ws.expect("payout.updated", lambda f: f["payout"]["id"] == p["id"])
    assert await desk.fund() == 1_000_000 - 3000
    assert (await desk.panel())[0]["paid_out_cents"] == 3000


async def test_above_the_per_payout_limit_waits_for_a_supervisor(desk: Desk):
    await desk.order("O-1", 20000)
    r = await desk.pay(8000, order_id="O-1")
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["status"] == "pending_approval"
    assert await desk.fund() == 1_000_000  # nothing taken while pending
    assert [x["id"] for x in await desk.payouts(status="pending_approval")] == [p["id"]]
    assert (await desk.panel())[0]["paid_out_cents"] == 0

    r = await desk.decide(p["id"], "approve", note="老客户")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "paid" and r.json()["approved_by"] == desk.kit.agents["sup"]
    await desk.buyer_ws.expect("message.new", card_for(p["id"]))
    assert await desk.fund() == 1_000_000 - 8000
    assert (await desk.decide(p["id"], "approve")).json()["error"]["code"] == "not_pending"
    assert (await desk.decide(p["id"], "reject", "sup2")).status_code == 409


async def test_above_the_daily_total_waits_for_a_supervisor(desk: Desk):
    await desk.set_limits("agent1", per_payout=5000, daily=9000)
    await desk.order("O-1", 50000)
    statuses = [(await desk.pay(4000, order_id="O-1")).json()["status"] for _ in range(3)]
    assert statuses == ["paid", "paid", "pending_approval"]
    assert (await desk.pay(1000, order_id="O-1")).json()[
        "status"
    ] == "paid"  # 9000: exactly the limit
    assert (await desk.pay(1, order_id="O-1")).json()["status"] == "pending_approval"


async def test_a_rejected_payout_pays_nothing(desk: Desk):
    await desk.order("O-1", 20000)
    p = (await desk.pay(9000, order_id="O-1")).json()
    r = await desk.decide(p["id"], "reject", note="证据不足")
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    assert r.json()["approved_by"] == desk.kit.agents["sup"]
    assert await desk.fund() == 1_000_000
    assert (await desk.decide(p["id"], "approve")).status_code == 409
    lines = await desk.ledger(payout_id=p["id"])
    assert [e["entry"] for e in lines] == ["requested", "pending_approval", "rejected", "refused"]
    assert lines[2]["note"] == "证据不足" and lines[3]["code"] == "not_pending"


async def test_a_supervisor_cannot_approve_above_their_own_limits(desk: Desk):
    await desk.order("O-1", 100000)
    await desk.set_limits("sup", per_payout=6000)
    p = (await desk.pay(8000, order_id="O-1")).json()
    r = await desk.decide(p["id"], "approve")
    assert r.status_code == 409 and r.json()["error"]["code"] == "payout_limit_exceeded"
    await desk.set_limits("sup2", per_payout=10000, daily=7000)
    r = await desk.decide(p["id"], "approve", "sup2")
    assert r.status_code == 409 and r.json()["error"]["code"] == "daily_limit_exceeded"
    assert (await desk.payouts(status="pending_approval"))[0]["id"] == p["id"]  # still waiting
    assert await desk.fund() == 1_000_000
    r = await desk.decide(p["id"], "approve", "admin")
    assert r.status_code == 200 and r.json()["approved_by"] == desk.kit.agents["admin"]
    refusals = await desk.ledger(payout_id=p["id"], entry="refused")
    assert [e["code"] for e in refusals] == ["payout_limit_exceeded", "daily_limit_exceeded"]
    assert [e["actor_id"] for e in refusals] == [desk.kit.agents["sup"], desk.kit.agents["sup2"]]


async def test_an_approval_counts_against_the_approvers_daily_total(desk: Desk):
    await desk.order("O-1", 100000)
    await desk.set_limits("sup", per_payout=10000, daily=15000)
    first = (await desk.pay(8000, order_id="O-1")).json()
    second = (await desk.pay(8000, order_id="O-1")).json()
    assert (await desk.decide(first["id"], "approve")).status_code == 200
    r = await desk.decide(second["id"], "approve")
    assert r.status_code == 409 and r.json()["error"]["code"] == "daily_limit_exceeded"


async def test_agents_cannot_approve_and_nobody_approves_their_own(desk: Desk):
    await desk.order("O-1", 100000)
    p = (await desk.pay(8000, order_id="O-1")).json()
    r = await desk.decide(p["id"], "approve", "agent1")
    assert r.status_code == 403
    # The supervisor's own request above their limit needs someone else.
    await desk.set_limits("sup", per_payout=1000)
    own = (await desk.pay(2000, order_id="O-1", username="sup")).json()
    assert own["status"] == "pending_approval"
    assert (await desk.decide(own["id"], "approve", "sup")).status_code == 403
    assert (await desk.decide(own["id"], "approve", "sup2")).status_code == 200


async def test_approval_rechecks_the_order_cap_and_the_fund(server, connect, http):
    desk = await open_desk(server, connect, http, fund_cents=20000)
    await desk.order("O-1", 10000)
    pending = (await desk.pay(8000, order_id="O-1")).json()
    assert pending["status"] == "pending_approval"
    assert (await desk.pay(3000, order_id="O-1")).json()[
        "status"
    ] == "paid"  # pending counts for nothing
    r = await desk.decide(pending["id"], "approve")
    assert r.status_code == 409 and r.json()["error"]["code"] == "order_cap_exceeded"

    await desk.order("O-2", 100000)
    big = (await desk.pay(9500, order_id="O-2")).json()
    for _ in range(2):
        assert (await desk.pay(4000, order_id="O-2")).json()["status"] == "paid"
    assert await desk.fund() == 20000 - 3000 - 8000
    r = await desk.decide(big["id"], "approve")
    assert r.status_code == 409 and r.json()["error"]["code"] == "insufficient_funds"
    assert (await desk.topup(500)).json() == {"balance_cents": 9500}
    assert (await desk.decide(big["id"], "approve")).json()["status"] == "paid"
    assert await desk.fund() == 0
    await assert_ledger_reconciles(desk)


async def test_an_approval_after_the_chat_closed_still_reaches_the_buyer(desk: Desk):
    await desk.order("O-1", 20000)
    p = (await desk.pay(8000, order_id="O-1")).json()
    await desk.agent_ws.send(
        {"type": "conversation.close", "conversation_id": desk.conversation_id}
    )
    await desk.buyer_ws.expect("conversation.closed")
    assert (await desk.decide(p["id"], "approve")).status_code == 200
    card = (await desk.buyer_ws.expect("message.new", card_for(p["id"])))["message"]
    # A notice in a conversation of its own, born closed: no agent is asked to take it.
    assert card["conversation_id"] != desk.conversation_id and card["seq"] == 1
    async with desk.db.read() as s:
        notice = await s.get(Conversation, card["conversation_id"])
    assert (notice.status, notice.agent_id, notice.close_reason) == ("closed", None, "system")
    r = await desk.http.get(
        f"/api/v1/conversations/{card['conversation_id']}/messages",
        headers={"Authorization": f"Bearer {desk.buyer_token}"},
    )
    assert [m["kind"] for m in r.json()] == ["compensation_card"]


# --- hard rules ----------------------------------------------------------------------


async def test_an_order_is_never_paid_more_than_its_amount(desk: Desk):
    await desk.order("O-1", 5000)
    assert (await desk.pay(3000, order_id="O-1")).status_code == 201
    r = await desk.pay(2001, order_id="O-1")
    assert r.status_code == 409 and r.json()["error"]["code"] == "order_cap_exceeded"
    # Not even as a pending request, nor by the admin.
    assert (await desk.pay(6000, order_id="O-1")).status_code == 409
    assert (await desk.pay(2001, order_id="O-1", username="admin")).status_code == 409
    assert (await desk.pay(2000, order_id="O-1")).status_code == 201
    assert (await desk.panel())[0]["paid_out_cents"] == 5000


async def test_bad_amounts_and_reasons_are_422(desk: Desk):
    await desk.order("O-1", 5000)
    for amount, reason, code in [
        (0, "goodwill", "invalid_amount"),
        (-100, "goodwill", "invalid_amount"),
        (100, "because", "invalid_reason"),
    ]:
        r = await desk.pay(amount, order_id="O-1", reason=reason)
        assert r.status_code == 422 and r.json()["error"]["code"] == code
        assert (await desk.ledger(entry="refused"))[-1]["code"] == code
    assert await desk.payouts() == []


async def test_requests_need_an_idempotency_key_and_a_whole_number_of_cents(desk: Desk):
    await desk.order("O-1", 5000)
    body = {
        "conversation_id": desk.conversation_id,
        "order_id": "O-1",
        "amount_cents": 100,
        "reason": "goodwill",
    }
    r = await desk.http.post("/api/v1/payouts", json=body, headers=desk.auth("agent1"))
    assert r.status_code == 400 and r.json()["error"]["code"] == "idempotency_key_required"
    for amount in (1.5, "100", True):
        r = await desk.http.post(
            "/api/v1/payouts",
            json={**body, "amount_cents": amount},
            headers={**desk.auth("agent1"), "Idempotency-Key": "k"},
        )
        assert r.status_code == 422, amount


async def test_the_same_key_is_the_same_payout_and_another_body_is_refused(desk: Desk):
    await desk.order("O-1", 20000)
    first = await desk.pay(2000, order_id="O-1", key="retry-1")
    again = await desk.pay(2000, order_id="O-1", key="retry-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    r = await desk.pay(2500, order_id="O-1", key="retry-1")
    assert r.status_code == 422 and r.json()["error"]["code"] == "idempotency_mismatch"
    r = await desk.pay(
        2000, order_id="O-1", key="retry-1", username="sup"
    )  # another agent's request
    assert r.status_code == 422
    assert await desk.fund() == 1_000_000 - 2000
    assert [e["entry"] for e in await desk.ledger(payout_id=first.json()["id"])] == [
        "requested",
        "paid",
        "replayed",
    ]


async def test_order_must_exist_be_the_buyers_and_not_be_refunded(desk: Desk):
    await desk.order("O-mine", 5000)
    await desk.order("O-theirs", 5000, buyer_id="someone-else")
    await desk.order("O-refunded", 5000, status="refunded")
    r = await desk.pay(100, order_id="O-nope")
    assert r.status_code == 404
    r = await desk.pay(100, order_id="O-theirs")
    assert r.status_code == 422 and r.json()["error"]["code"] == "order_mismatch"
    r = await desk.pay(100, order_id="O-refunded")
    assert r.status_code == 409 and r.json()["error"]["code"] == "order_refunded"
    r = await desk.pay(100, order_id=None)
    assert r.status_code == 422 and r.json()["error"]["code"] == "order_required"


async def test_damaged_needs_a_photo_from_the_buyer(desk: Desk):
    await desk.order("O-1", 5000)
    r = await desk.pay(1000, order_id="O-1", reason="damaged")
    assert r.status_code == 422 and r.json()["error"]["code"] == "evidence_required"
    await desk.buyer_sends_photo()
    r = await desk.pay(1000, order_id="O-1", reason="damaged")
    assert r.status_code == 201 and r.json()["status"] == "paid"


async def test_an_elder_buyers_damaged_claim_needs_no_photo(server, connect, http):
    desk = await open_desk(server, connect, http, age=72)
    await desk.order("O-1", 5000)
    r = await desk.pay(1000, order_id="O-1", reason="damaged")
    assert r.status_code == 201 and r.json()["status"] == "paid"


async def test_a_buyer_who_turns_on_elder_mode_mid_chat_needs_no_photo(desk: Desk):
    await desk.order("O-1", 5000)
    assert (await desk.pay(1000, order_id="O-1", reason="damaged")).status_code == 422
    await desk.buyer_ws.send({"type": "elder_mode", "on": True})
    await desk.buyer_ws.expect("elder_mode")
    r = await desk.pay(1000, order_id="O-1", reason="damaged")
    assert r.status_code == 201 and r.json()["status"] == "paid"


async def test_the_fund_is_topped_up_by_the_admin_and_never_goes_below_zero(server, connect, http):
    desk = await open_desk(server, connect, http, fund_cents=0)
    await desk.order("O-1", 50000)
    assert await desk.fund() == 0
    r = await desk.pay(100, order_id="O-1")
    assert r.status_code == 409 and r.json()["error"]["code"] == "insufficient_funds"
    r = await desk.pay(8000, order_id="O-1")  # refused now, not left pending
    assert r.status_code == 409 and r.json()["error"]["code"] == "insufficient_funds"
    assert (await desk.topup(5000, "sup")).status_code == 403
    assert (await desk.topup(5000, "agent1")).status_code == 403
    assert (await desk.topup(0)).status_code == 422
    assert (await desk.topup(5000)).json() == {"balance_cents": 5000}
    assert (await desk.pay(3000, order_id="O-1")).status_code == 201
    r = await desk.pay(2001, order_id="O-1")
    assert r.status_code == 409 and r.json()["error"]["code"] == "insufficient_funds"
    assert (await desk.pay(2000, order_id="O-1")).status_code == 201
    assert await desk.fund() == 0
    assert [e["amount_cents"] for e in await desk.ledger(entry="fund_topup")] == [5000]


# --- who may ---------------------------------------------------------------------------


async def test_buyers_and_strangers_are_refused(server, connect, http, desk: Desk):
    await desk.order("O-1", 50000)
    pending = (await desk.pay(8000, order_id="O-1")).json()
    buyer = {"Authorization": f"Bearer {desk.buyer_token}"}
    body = {
        "conversation_id": desk.conversation_id,
        "order_id": "O-1",
        "amount_cents": 100,
        "reason": "goodwill",
    }
    assert (
        await http.post("/api/v1/payouts", json=body, headers={**buyer, "Idempotency-Key": "b"})
    ).status_code == 401
    assert (
        await http.post("/api/v1/payouts", json=body, headers={"Idempotency-Key": "b"})
    ).status_code == 401
    assert (await http.get("/api/v1/payouts", headers=buyer)).status_code == 401
    assert (
        await http.post(f"/api/v1/payouts/{pending['id']}/approve", headers=buyer)
    ).status_code == 401
    assert (await http.get("/api/v1/payouts/fund", headers=buyer)).status_code == 401
    assert (
        await http.post("/api/v1/payouts/fund/topup", json={"amount_cents": 1}, headers=buyer)
    ).status_code == 401

    other = await open_desk(server, connect, http)
    # Another shop's supervisor, on this shop's conversation and payout: 404, as for an id
    # that does not exist (a 403 would confirm it does).
    r = await other.pay(100, order_id="O-1", username="sup", conversation_id=desk.conversation_id)
    assert r.status_code == 404
    assert (await other.decide(pending["id"], "approve", "admin")).status_code == 404
    assert (await other.decide(pending["id"], "reject", "sup")).status_code == 404
    assert (
        await http.get(f"/api/v1/payouts/{pending['id']}", headers=other.auth("admin"))
    ).status_code == 404
    assert pending["id"] not in [p["id"] for p in await other.payouts("admin")]
    # Their own conversation, this shop's order id: no such order in their shop.
    assert (await other.pay(100, order_id="O-1", username="sup")).status_code == 404
    assert (await desk.payouts(status="pending_approval"))[0]["status"] == "pending_approval"


async def test_an_agent_pays_only_in_a_conversation_they_serve(server, connect, desk: Desk):
    await desk.agent_ws.send({"type": "agent.status", "status": "busy"})
    await desk.agent_ws.expect("agent.status", lambda f: f["status"] == "busy")
    waiting = await buyer(server, desk.kit, connect, "buyer-2")  # queued: nobody serves it
    await waiting.send({"type": "message.send", "client_msg_id": "w1", "body": "有人吗"})
    conv = (await waiting.expect("message.ack"))["message"]["conversation_id"]
    await desk.order("O-2", 5000, buyer_id="buyer-2")
    r = await desk.pay(100, order_id="O-2", conversation_id=conv)
    assert r.status_code == 403
    r = await desk.pay(100, order_id="O-2", conversation_id=conv, username="sup")
    assert r.status_code == 201 and r.json()["buyer_id"] == "buyer-2"
    r = await desk.pay(100, order_id="O-2", conversation_id="no-such-conversation")
    assert r.status_code == 404


async def test_agents_list_their_own_payouts_supervisors_the_shops(desk: Desk):
    await desk.order("O-1", 50000)
    mine = (await desk.pay(1000, order_id="O-1")).json()
    theirs = (await desk.pay(1000, order_id="O-1", username="sup")).json()
    assert [p["id"] for p in await desk.payouts("agent1")] == [mine["id"]]
    r = await desk.http.get(
        "/api/v1/payouts", params={"agent_id": desk.kit.agents["sup"]}, headers=desk.auth("agent1")
    )
    assert r.status_code == 403
    assert {p["id"] for p in await desk.payouts("sup")} == {mine["id"], theirs["id"]}
    assert [p["id"] for p in await desk.payouts("sup", agent_id=desk.kit.agents["sup"])] == [
        theirs["id"]
    ]
    assert [
        p["id"]
        for p in await desk.payouts("sup", status="paid", agent_id=desk.kit.agents["agent1"])
    ] == [mine["id"]]
    assert (
        await desk.http.get("/api/v1/payouts", params={"status": "lost"}, headers=desk.auth("sup"))
    ).status_code == 422
    assert (
        await desk.http.get("/api/v1/payouts/ledger", headers=desk.auth("agent1"))
    ).status_code == 403


# --- the ledger ------------------------------------------------------------------------


async def test_the_ledger_records_requests_decisions_and_refusals(desk: Desk):
    await desk.order("O-1", 10000)
    paid = (await desk.pay(1000, order_id="O-1")).json()
    pending = (await desk.pay(6000, order_id="O-1")).json()
    await desk.decide(pending["id"], "approve")
    await desk.pay(5000, order_id="O-1")  # 409: only 3000 left on the order
    lines = await desk.ledger()
    shape = [(e["entry"], e["payout_id"], e["amount_cents"]) for e in lines]
    assert shape == [
        ("fund_topup", None, 1_000_000),
        ("requested", paid["id"], 1000),
        ("paid", paid["id"], 1000),
        ("requested", pending["id"], 6000),
        ("pending_approval", pending["id"], 6000),
        ("approved", pending["id"], 6000),
        ("paid", pending["id"], 6000),
        ("refused", None, 5000),
    ]
    sup = desk.kit.agents["sup"]
    assert (
        lines[5]["approver_id"] == sup
        and lines[6]["approver_id"] == sup
        and lines[6]["actor_id"] == sup
    )
    assert lines[2]["actor_id"] == desk.kit.agents["agent1"] and lines[2]["approver_id"] is None
    assert lines[7]["code"] == "order_cap_exceeded" and lines[7]["order_id"] == "O-1"
    assert await assert_ledger_reconciles(desk) == {desk.kit.agents["agent1"]: 7000}


async def test_the_ledger_cannot_be_changed(server, desk: Desk):
    await desk.order("O-1", 10000)
    await desk.pay(1000, order_id="O-1")

    async def tamper(uow, sql):
        await uow.session.execute(text(sql), {"shop": desk.kit.shop_id})

    for sql in (
        "UPDATE payout_ledger SET amount_cents = 1 WHERE shop_id = :shop",
        "DELETE FROM payout_ledger WHERE shop_id = :shop",
    ):
        with pytest.raises(Exception, match="append-only"):
            await server.ctx.db.run(tamper, sql)
    assert [e["amount_cents"] for e in await desk.ledger(entry="paid")] == [1000]


async def test_paid_cents_by_agent_feeds_the_metrics(server, desk: Desk):
    await desk.order("O-1", 50000)
    await desk.pay(1000, order_id="O-1")
    await desk.pay(2000, order_id="O-1")
    pending = (await desk.pay(7000, order_id="O-1")).json()
    await desk.pay(500, order_id="O-1", username="sup")
    start = datetime(2000, 1, 1, tzinfo=UTC)
    end = datetime(2100, 1, 1, tzinfo=UTC)
    async with server.ctx.db.read() as s:
        before = await payout_service.paid_cents_by_agent(s, desk.kit.shop_id, start, end)
    assert before == {desk.kit.agents["agent1"]: 3000, desk.kit.agents["sup"]: 500}
    await desk.decide(pending["id"], "approve")
    async with server.ctx.db.read() as s:
        after = await payout_service.paid_cents_by_agent(s, desk.kit.shop_id, start, end)
        empty = await payout_service.paid_cents_by_agent(
            s, desk.kit.shop_id, start, datetime(2001, 1, 1, tzinfo=UTC)
        )
    # Counted for the agent who asked, when it was paid.
    assert after == {desk.kit.agents["agent1"]: 10000, desk.kit.agents["sup"]: 500}
    assert empty == {}
    assert paid_total(await desk.payouts("sup", agent_id=desk.kit.agents["agent1"])) == 10000
    assert await assert_ledger_reconciles(desk) == after
