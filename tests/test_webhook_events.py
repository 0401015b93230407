"""Each domain records its webhook events in the transaction of the change, on every path
that makes it: coupons (late shipment, recall, giveaway), a recall coupon claimed, an
opt-out, a conversation closed by its agent or by the inactivity job."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from app.chat import actions as chat_actions
from app.chat.models import Conversation
from app.clock import Clock
from app.payouts import coupons
from app.recall import actions as recall_actions
from app.recall import jobs as recall_jobs
from app.webhooks import rules
from tests.support.factories import login, make_shop
from tests.support.recall import consult, new_campaign
from tests.support.webhooks import add_endpoint, cancel_pending, shop_events
from tests.test_payouts_support import post_order

ALL = list(rules.EVENT_TYPES)


@pytest.fixture
async def http(server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.http, timeout=30) as c:
        yield c


@pytest.fixture
async def kit(server):
    kit = await make_shop(server.ctx.db, agents=(("sup", "supervisor", ("general",)),))
    # Nobody listens there: these tests read the outbox itself.
    await add_endpoint(server.ctx.db, kit.shop_id, "https://93.184.216.34/hooks", ALL)
    yield kit
    await cancel_pending(server.ctx.db, kit.shop_id)


def types(events) -> list[str]:
    return [e.type for e in events]


async def test_a_late_shipment_coupon_is_reported_once(server, kit, http):
    db = server.ctx.db
    past = datetime.now(UTC) - timedelta(days=1)
    r = await post_order(http, kit, "late-1", "b-late", 45000, ship_by=past)
    assert r.status_code == 201, r.text
    now = Clock().now()
    first = await db.run(
        coupons.issue_late_shipment_coupon, shop_id=kit.shop_id, order_id="late-1", now=now
    )
    again = await db.run(
        coupons.issue_late_shipment_coupon, shop_id=kit.shop_id, order_id="late-1", now=now
    )
    assert first is not None and again is None
    (event,) = await shop_events(db, kit.shop_id)
    assert event.type == "coupon.issued"
    assert event.data["source"] == "late_shipment" and event.data["coupon_id"] == first.id
    assert event.data["order_id"] == "late-1" and event.data["buyer_id"] == "b-late"
    assert event.data["amount_cents"] == 450 and event.order_key == f"coupon:{first.id}"


async def test_recall_coupons_claims_and_opt_outs_are_reported(server, kit, http):
    db = server.ctx.db
    buyers = ["r1", "r2", "r3"]
    now = datetime.now(UTC)
    await db.run(recall_actions.set_window, kit.shop_id, 0, 24 * 60, now)
    await consult(db, kit.shop_id, buyers, now - timedelta(days=1))
    token = await login(server.http, kit, "sup")
    campaign = await new_campaign(http, token, now - timedelta(minutes=1))
    # The job's own path: start the campaign and send its batches.
    assert await recall_jobs.run_campaign(db, server.ctx.clock, campaign["id"]) == 3
    issued = [e for e in await shop_events(db, kit.shop_id) if e.type == "coupon.issued"]
    assert sorted(e.data["buyer_id"] for e in issued) == buyers
    assert {e.data["source"] for e in issued} == {"recall"}
    assert {e.data["campaign_id"] for e in issued} == {campaign["id"]}
    assert all(
        e.data["amount_cents"] == 3000 and e.data["min_spend_cents"] == 20000 for e in issued
    )

    r1 = {"Authorization": f"Bearer {kit.buyer_token('r1')}"}
    coupon_id = next(e.data["coupon_id"] for e in issued if e.data["buyer_id"] == "r1")
    for _ in range(2):  # claiming again changes nothing, and reports nothing
        r = await http.post(f"/api/v1/recall/coupons/{coupon_id}/claim", headers=r1)
        assert r.status_code == 200, r.text
    for _ in range(2):
        assert (await http.post("/api/v1/recall/opt-out", headers=r1)).status_code == 200
    events = await shop_events(db, kit.shop_id)
    assert types(events).count("coupon.claimed") == 1
    assert types(events).count("recall.opted_out") == 1
    claimed = next(e for e in events if e.type == "coupon.claimed")
    assert claimed.data["coupon_id"] == coupon_id and claimed.data["buyer_id"] == "r1"
    assert claimed.order_key == f"coupon:{coupon_id}"  # after its coupon.issued, in order
    opted = next(e for e in events if e.type == "recall.opted_out")
    assert opted.data["buyer_id"] == "r1"


async def test_a_giveaway_coupon_is_reported_to_its_claimer_only(server, kit, http):
    db = server.ctx.db
    admin = {"Authorization": f"Bearer {await login(server.http, kit, 'admin')}"}
    g = (await http.post("/api/v1/groups", json={"name": "铁粉群"}, headers=admin)).json()
    for sub in ("g1", "g2"):
        bh = {"Authorization": f"Bearer {kit.buyer_token(sub)}"}
        assert (await http.post(f"/api/v1/groups/{g['id']}/join", headers=bh)).status_code == 200
    r = await http.post(
        f"/api/v1/groups/{g['id']}/giveaways",
        headers=admin,
        json={
            "title": "满100减20",
            "quantity": 1,
            "coupon": {"title": "满100减20", "amount_cents": 2000, "min_spend_cents": 10000},
        },
    )
    gw = r.json()
    claims = [
        await http.post(
            f"/api/v1/giveaways/{gw['id']}/claim",
            headers={"Authorization": f"Bearer {kit.buyer_token(sub)}"},
        )
        for sub in ("g1", "g2", "g1")
    ]
    assert [c.status_code for c in claims] == [200, 409, 409]
    (event,) = await shop_events(db, kit.shop_id)  # the sold-out and repeat claims: nothing
    assert event.type == "coupon.issued" and event.data["source"] == "giveaway"
    assert event.data["buyer_id"] == "g1" and event.data["giveaway_id"] == gw["id"]
    assert event.data["amount_cents"] == 2000 and event.data["group_id"] == g["id"]


async def test_the_inactivity_close_is_reported_like_the_agents(server, kit):
    db = server.ctx.db
    now = Clock().now()

    async def open_conversation(uow):
        conv = Conversation(
            shop_id=kit.shop_id, buyer_id="quiet", status="queued", queue="general", opened_at=now
        )
        uow.session.add(conv)
        await uow.session.flush()
        return conv.id

    conv_id = await db.run(open_conversation)

    async def close(uow):
        conv = (
            await uow.session.execute(select(Conversation).where(Conversation.id == conv_id))
        ).scalar_one()
        # The function the auto-close job calls for each silent conversation.
        return await chat_actions.close_conversation(uow, conv, reason="inactive", now=now)

    assert await db.run(close) is True
    assert await db.run(close) is False  # closed once, reported once
    (event,) = await shop_events(db, kit.shop_id)
    assert event.type == "conversation.closed"
    assert event.data["reason"] == "inactive" and event.data["rating"] is None
    assert event.data["conversation_id"] == conv_id and event.data["buyer_id"] == "quiet"


async def test_a_shop_without_endpoints_stores_no_events(server, http):
    db = server.ctx.db
    kit = await make_shop(db)
    past = datetime.now(UTC) - timedelta(days=1)
    assert (await post_order(http, kit, "late-2", "b", 45000, ship_by=past)).status_code == 201
    await db.run(
        coupons.issue_late_shipment_coupon,
        shop_id=kit.shop_id,
        order_id="late-2",
        now=Clock().now(),
    )
    assert await shop_events(db, kit.shop_id) == []
