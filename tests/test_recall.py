"""High-intent recall through the API with an injected clock: intent, audience, the 7-day cap,
the consultation window, purchases, opt-out, the sending window, results."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import literal, select

from app.clock import FrozenClock
from app.recall import actions as recall_actions
from app.recall import service as recall_service
from app.recall.jobs import run_campaign
from tests.conftest import buyer
from tests.support.factories import login, make_shop
from tests.support.recall import (
    consult,
    new_campaign,
    place_orders,
    recall_cards,
    sends_by_buyer,
    staff,
)
from tests.test_recall_rules import QUESTION_CASES


def noon_shanghai(days_from_now: int = 0) -> datetime:
    today = datetime.now(UTC).replace(hour=4, minute=0, second=0, microsecond=0)
    return today + timedelta(days=days_from_now)


@pytest.fixture
async def desk(start_server):
    clock = FrozenClock(noon_shanghai())
    srv = await start_server(clock=clock, run_jobs=False)
    kit = await make_shop(srv.ctx.db, agents=(("sup", "supervisor", ("general",)),))
    token = await login(srv.http, kit, "sup")
    async with httpx.AsyncClient(base_url=srv.http, timeout=30) as http:
        yield srv, clock, kit, token, http


async def preview(http, token, campaign_id):
    r = await http.get(f"/api/v1/recall/campaigns/{campaign_id}/preview", headers=staff(token))
    assert r.status_code == 200, r.text
    return r.json()


async def campaign(http, token, campaign_id):
    r = await http.get(f"/api/v1/recall/campaigns/{campaign_id}", headers=staff(token))
    assert r.status_code == 200, r.text
    return r.json()


async def test_intent_from_chat_and_storefront_signals(desk, connect):
    srv, clock, kit, token, http = desk
    b = await buyer(srv, kit, connect, "shopper")
    await b.send(
        {
            "type": "message.send",
            "client_msg_id": "m1",
            "body": "",
            "kind": "product_card",
            "payload": {
                "product_id": "p9",
                "title": "羊毛围巾",
                "category": "服饰",
                "price_cents": 9900,
            },
        }
    )
    await b.expect("message.ack")
    await b.send({"type": "message.send", "client_msg_id": "m2", "body": "这个多少钱?还有货吗"})
    await b.expect("message.ack")
    for kind in ("cart_add", "product_view", "product_view"):
        r = await http.post(
            "/api/v1/events",
            headers={"Authorization": f"Bearer {kit.api_key}"},
            json={
                "buyer_id": "shopper",
                "type": kind,
                "product_id": "p9",
                "category": "服饰",
                "at": clock.now().isoformat(),
            },
        )
        assert r.status_code == 201, r.text
    r = await http.post(
        "/api/v1/events",
        headers={"Authorization": f"Bearer {kit.api_key}"},
        json={"buyer_id": "shopper", "type": "refund"},
    )
    assert r.status_code == 422
    r = await http.get("/api/v1/buyers/shopper/intent", headers=staff(token))
    assert r.status_code == 200, r.text
    intent = r.json()
    points = {s["type"]: (s["count"], s["points"]) for s in intent["signals"]}
    assert points == {
        "cart_add": (1, 20),
        "product_card": (1, 15),
        "price_question": (1, 15),
        "stock_question": (1, 15),
        "product_view": (2, 6),
    }
    assert intent["score"] == 71
    assert intent["last_consulted_at"] is not None
    r = await http.get("/api/v1/buyers/nobody/intent", headers=staff(token))
    assert r.json() == {"score": 0, "signals": [], "last_consulted_at": None}
    agent_token = await login(srv.http, kit, "admin")
    assert (
        await http.get("/api/v1/buyers/shopper/intent", headers=staff(agent_token))
    ).status_code == 200
    assert (await http.get("/api/v1/buyers/shopper/intent")).status_code == 401


async def test_the_database_scores_as_the_rules_do(desk):
    """Preview and start score a whole audience in SQL; a buyer's intent is scored from the
    same counts by `rules.score_intent`. Both find the topics `rules.question_topics` does."""
    srv, clock, kit, _, _ = desk
    db = srv.ctx.db
    now = clock.now()
    for i, (text, _) in enumerate(QUESTION_CASES):
        await consult(db, kit.shop_id, [f"q{i}"], now - timedelta(hours=1), signals=(text,))
    await consult(
        db,
        kit.shop_id,
        ["keen"],
        now - timedelta(hours=3),
        signals=("product_card", "product_card", "order_card", "How much?"),
    )
    await consult(db, kit.shop_id, ["keen"], now - timedelta(hours=2), signals=("尺码",))
    await consult(db, kit.shop_id, ["keen", "returning"], now - timedelta(hours=1), signals=())
    await consult(db, kit.shop_id, ["returning"], now - timedelta(days=31))  # out of the window
    for kind, n in (("cart_add", 1), ("product_view", 6)):
        for _ in range(n):
            event = recall_actions.StorefrontEvent("keen", kind, "p1", "服饰", now)
            await db.run(recall_actions.record_event, kit.shop_id, event, now)
    async with db.read() as s:
        rows = await s.execute(
            recall_service.audience_sql(kit.shop_id, 0, now, recall_service.dialect_of(s))
        )
        by_sql = {b: score for b, score, _ in rows}
        for i, (text, topics) in enumerate(QUESTION_CASES):
            intent, _ = await recall_service.buyer_intent(s, kit.shop_id, f"q{i}", now)
            assert {sig.type for sig in intent.signals} == topics, text
            assert by_sql[f"q{i}"] == intent.score
        keen, _ = await recall_service.buyer_intent(s, kit.shop_id, "keen", now)
        returning, _ = await recall_service.buyer_intent(s, kit.shop_id, "returning", now)
    assert {sig.type: sig.count for sig in keen.signals} == {
        "cart_add": 1,
        "product_card": 2,
        "order_card": 1,
        "price_question": 1,
        "size_question": 1,
        "product_view": 6,
        "repeat_consultation": 2,
    }
    assert keen.score == by_sql["keen"] == 100  # 20 + 30 + 10 + 15 + 15 + 15 + 20, at most 100
    assert returning.score == by_sql["returning"] == 0


async def test_send_checks_again_what_changed_since_the_audience_was_taken(desk, connect):
    """The audience is snapshotted when the campaign starts. A buyer who opts out, orders,
    or is recalled by another campaign before their batch goes out is left out then; an
    order older than the buyer's latest consultation is not a reason; a buyer chatting
    by then gets the card in that conversation, numbered after its messages."""
    srv, clock, kit, token, http = desk
    db = srv.ctx.db
    now = clock.now()
    buyers = ["opted", "bought", "capped", "came-back", "chatting", "stays"]
    await consult(db, kit.shop_id, buyers, now - timedelta(hours=5))
    c = await new_campaign(http, token, now)
    assert await db.run(recall_actions.start_campaign, c["id"], now)
    progress = (await campaign(http, token, c["id"]))["progress"]
    assert progress == {"total": 6, "sent": 0, "skipped": 0}

    r = await http.post(
        "/api/v1/recall/opt-out", headers={"Authorization": f"Bearer {kit.buyer_token('opted')}"}
    )
    assert r.status_code == 200
    await place_orders(
        http,
        kit.api_key,
        [
            ("o1", "bought", now - timedelta(hours=1)),
            ("o2", "came-back", now - timedelta(hours=4)),
        ],
    )
    await consult(db, kit.shop_id, ["came-back"], now - timedelta(hours=3))
    taken = await db.run(
        recall_actions.claim_recall_slots,
        kit.shop_id,
        "another-campaign",
        select(literal("capped").label("buyer_id")),
        now,
    )
    assert taken == {"capped"}
    chatting = await buyer(srv, kit, connect, "chatting")
    await chatting.send({"type": "message.send", "client_msg_id": "m1", "body": "在吗"})
    asked = (await chatting.expect("message.ack"))["message"]

    assert await run_campaign(db, clock, c["id"]) == 6
    sends = await sends_by_buyer(db, kit.shop_id)
    assert {b: [x.status for x in v] for b, v in sends.items()} == {
        "opted": ["opted_out"],
        "bought": ["purchased"],
        "capped": ["capped"],
        "came-back": ["sent"],
        "chatting": ["sent"],
        "stays": ["sent"],
    }
    assert (await campaign(http, token, c["id"]))["progress"] == {
        "total": 6,
        "sent": 3,
        "skipped": 3,
    }
    cards = {m.payload["coupon"]["id"]: m for m in await recall_cards(db, kit.shop_id)}
    assert sorted(cards) == sorted(v[0].id for v in sends.values() if v[0].status == "sent")
    live = sends["chatting"][0]
    assert (live.conversation_id, live.seq) == (asked["conversation_id"], asked["seq"] + 1)
    frame = await chatting.expect("message.new", lambda f: f["message"]["kind"] == "coupon_card")
    assert frame["message"]["id"] == live.message_id
    for quiet in ("came-back", "stays"):
        send = sends[quiet][0]
        card = cards[send.id]
        assert (card.id, card.conversation_id, card.seq, send.seq) == (
            send.message_id,
            send.conversation_id,
            1,
            1,
        )


async def test_seven_day_cap_across_campaigns(desk):
    srv, clock, kit, token, http = desk
    db = srv.ctx.db
    t0 = clock.now()
    await consult(db, kit.shop_id, ["b1", "b2"], t0 - timedelta(hours=2))
    day0 = await new_campaign(http, token, t0)
    assert await preview(http, token, day0["id"]) == {
        "eligible": 2,
        "excluded": {"minor": 0, "opted_out": 0, "purchased": 0, "low_intent": 0, "capped": 0},
    }
    assert await run_campaign(db, clock, day0["id"]) == 2
    c = await campaign(http, token, day0["id"])
    assert c["status"] == "completed"
    assert c["progress"] == {"total": 2, "sent": 2, "skipped": 0}

    clock.set(t0 + timedelta(days=6))
    token = await login(srv.http, kit, "sup")  # sessions end; the clock moved days
    await consult(db, kit.shop_id, ["b3"], clock.now() - timedelta(hours=1))
    day6 = await new_campaign(http, token, clock.now(), name="day 6")
    assert await preview(http, token, day6["id"]) == {
        "eligible": 1,
        "excluded": {"minor": 0, "opted_out": 0, "purchased": 0, "low_intent": 0, "capped": 2},
    }
    await run_campaign(db, clock, day6["id"])
    assert (await campaign(http, token, day6["id"]))["progress"] == {
        "total": 1,
        "sent": 1,
        "skipped": 0,
    }

    clock.set(t0 + timedelta(days=7))
    token = await login(srv.http, kit, "sup")
    day7 = await new_campaign(http, token, clock.now(), name="day 7")
    assert await preview(http, token, day7["id"]) == {
        "eligible": 2,
        "excluded": {"minor": 0, "opted_out": 0, "purchased": 0, "low_intent": 0, "capped": 1},
    }
    await run_campaign(db, clock, day7["id"])
    sends = await sends_by_buyer(db, kit.shop_id)
    sent = {b: sorted(s.sent_at for s in v if s.status == "sent") for b, v in sends.items()}
    assert sent == {
        "b1": [t0, t0 + timedelta(days=7)],
        "b2": [t0, t0 + timedelta(days=7)],
        "b3": [t0 + timedelta(days=6)],
    }
    assert len(await recall_cards(db, kit.shop_id)) == 5


async def test_audience_window_purchases_opt_out_and_low_intent(desk):
    srv, clock, kit, token, http = desk
    db = srv.ctx.db
    now = clock.now()
    await consult(db, kit.shop_id, ["old"], now - timedelta(days=31))
    await consult(
        db, kit.shop_id, ["recent", "bought", "bought-before", "opted"], now - timedelta(days=29)
    )
    await consult(db, kit.shop_id, ["browser"], now - timedelta(days=1), signals=("你好",))
    await place_orders(
        http,
        kit.api_key,
        [
            ("o1", "bought", now - timedelta(days=2)),
            ("o2", "bought-before", now - timedelta(days=40)),
        ],
    )
    opted = kit.buyer_token("opted")
    r = await http.post("/api/v1/recall/opt-out", headers={"Authorization": f"Bearer {opted}"})
    assert r.status_code == 200 and r.json() == {"opted_out": True}
    c = await new_campaign(http, token, now, min_intent=40)
    assert await preview(http, token, c["id"]) == {
        "eligible": 2,
        "excluded": {"minor": 0, "opted_out": 1, "purchased": 1, "low_intent": 1, "capped": 0},
    }
    await run_campaign(db, clock, c["id"])
    assert set(await sends_by_buyer(db, kit.shop_id)) == {"recent", "bought-before"}
    # Staff only; a buyer may not opt another out, nor call staff endpoints.
    assert (await http.post("/api/v1/recall/opt-out", headers=staff(token))).status_code == 403
    assert (
        await http.get(
            f"/api/v1/recall/campaigns/{c['id']}", headers={"Authorization": f"Bearer {opted}"}
        )
    ).status_code == 401


async def test_sending_window_and_past_send_time(desk):
    srv, clock, kit, token, http = desk
    db = srv.ctx.db
    evening = noon_shanghai() + timedelta(hours=10)  # 22:00 in Shanghai
    clock.set(evening)
    await consult(db, kit.shop_id, ["night-owl"], evening - timedelta(hours=3))
    c = await new_campaign(http, token, evening - timedelta(hours=1))  # due, in the past
    assert await run_campaign(db, clock, c["id"]) == 0
    assert (await campaign(http, token, c["id"]))["status"] == "scheduled"  # waits for 09:00
    clock.set(evening + timedelta(hours=10, minutes=59))  # 08:59
    assert await run_campaign(db, clock, c["id"]) == 0
    clock.set(evening + timedelta(hours=11))  # 09:00
    assert await run_campaign(db, clock, c["id"]) == 1
    token = await login(srv.http, kit, "sup")
    assert (await campaign(http, token, c["id"]))["stats"]["sent"] == 1

    # The shop may widen its window (the demo shop sends all day).
    admin = await login(srv.http, kit, "admin")
    r = await http.put(
        "/api/v1/recall/settings",
        headers=staff(admin),
        json={"window_start_min": 0, "window_end_min": 1440},
    )
    assert r.status_code == 200
    r = await http.put(
        "/api/v1/recall/settings",
        headers=staff(admin),
        json={"window_start_min": 600, "window_end_min": 600},
    )
    assert r.status_code == 422
    clock.set(evening + timedelta(days=8))
    token = await login(srv.http, kit, "sup")
    later = await new_campaign(http, token, clock.now() - timedelta(minutes=5), name="late")
    await consult(db, kit.shop_id, ["night-owl"], clock.now() - timedelta(hours=1))
    assert await run_campaign(db, clock, later["id"]) == 1


async def test_results_live_card_read_claim_convert(desk, connect):
    srv, clock, kit, token, http = desk
    db = srv.ctx.db
    now = clock.now()
    await consult(db, kit.shop_id, ["quiet", "reader", "claimer"], now - timedelta(days=3))
    live = await buyer(srv, kit, connect, "claimer")
    c = await new_campaign(http, token, now + timedelta(hours=1), days=2)
    assert await run_campaign(db, clock, c["id"]) == 0  # not yet due
    clock.advance(hours=1)
    assert await run_campaign(db, clock, c["id"]) == 3
    frame = await live.expect("message.new", lambda f: f["message"]["kind"] == "coupon_card")
    card = frame["message"]
    assert card["payload"]["campaign_id"] == c["id"] and card["payload"]["opt_out"] is True
    assert card["payload"]["coupon"]["amount_cents"] == 3000
    assert card["body"] == "您看过的商品正在大促,送您一张券"

    # An offline buyer gets it on next connect, and reads it.
    reader = await buyer(srv, kit, connect, "reader")
    send = (await sends_by_buyer(db, kit.shop_id))["reader"][0]
    await reader.send({"type": "sync", "conversation_id": send.conversation_id, "after_seq": 0})
    got = await reader.expect("message.new", lambda f: f["message"]["kind"] == "coupon_card")
    assert got["message"]["id"] == send.message_id and got["message"]["seq"] == send.seq
    await reader.send({"type": "read", "conversation_id": send.conversation_id, "seq": send.seq})

    claim_token = kit.buyer_token("claimer")
    coupon_id = card["payload"]["coupon"]["id"]
    r = await http.post(
        f"/api/v1/recall/coupons/{coupon_id}/claim",
        headers={"Authorization": f"Bearer {claim_token}"},
    )
    assert r.status_code == 200, r.text
    again = await http.post(
        f"/api/v1/recall/coupons/{coupon_id}/claim",
        headers={"Authorization": f"Bearer {claim_token}"},
    )
    assert again.status_code == 200 and again.json()["claimed_at"] == r.json()["claimed_at"]
    other = await http.post(
        f"/api/v1/recall/coupons/{coupon_id}/claim",
        headers={"Authorization": f"Bearer {kit.buyer_token('quiet')}"},
    )
    assert other.status_code == 404
    await place_orders(
        http,
        kit.api_key,
        [
            ("c1", "claimer", clock.now() + timedelta(hours=5)),
            ("c2", "quiet", clock.now() + timedelta(days=3)),  # after the promotion
        ],
        amount_cents=25000,
    )
    for _ in range(50):
        stats = (await campaign(http, token, c["id"]))["stats"]
        if stats["read"] == 1:
            break
        await asyncio.sleep(0.05)
    assert stats == {"sent": 3, "read": 1, "claimed": 1, "converted": 1, "conversion_rate": 0.3333}


async def test_a_buyer_reads_back_claims_and_opt_out(desk):
    srv, clock, kit, token, http = desk
    now = clock.now()
    await consult(srv.ctx.db, kit.shop_id, ["keeper", "other"], now - timedelta(days=3))
    c = await new_campaign(http, token, now + timedelta(hours=1), days=2)
    clock.advance(hours=1)
    assert await run_campaign(srv.ctx.db, clock, c["id"]) == 2
    sends = await sends_by_buyer(srv.ctx.db, kit.shop_id)

    def me(who):
        return http.get(
            "/api/v1/recall/me", headers={"Authorization": f"Bearer {kit.buyer_token(who)}"}
        )

    assert (await me("keeper")).json() == {"opted_out": False, "claimed": []}
    coupon_id = sends["keeper"][0].id
    r = await http.post(
        f"/api/v1/recall/coupons/{coupon_id}/claim",
        headers={"Authorization": f"Bearer {kit.buyer_token('keeper')}"},
    )
    assert r.status_code == 200, r.text
    r = await http.post(
        "/api/v1/recall/opt-out", headers={"Authorization": f"Bearer {kit.buyer_token('keeper')}"}
    )
    assert r.status_code == 200, r.text
    assert (await me("keeper")).json() == {"opted_out": True, "claimed": [coupon_id]}
    # Only their own: another buyer of the shop, and staff, are told nothing of it.
    assert (await me("other")).json() == {"opted_out": False, "claimed": []}
    staff_asks = await http.get("/api/v1/recall/me", headers=staff(token))
    assert staff_asks.status_code == 403
    assert (await http.get("/api/v1/recall/me")).status_code == 401


async def test_campaign_lifecycle_errors(desk):
    srv, clock, _kit, token, http = desk
    c = await new_campaign(http, token, clock.now() + timedelta(days=1), schedule=False)
    r = await http.post(f"/api/v1/recall/campaigns/{c['id']}/cancel", headers=staff(token))
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = await http.post(f"/api/v1/recall/campaigns/{c['id']}/schedule", headers=staff(token))
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_draft"
    r = await http.post(
        "/api/v1/recall/campaigns",
        headers=staff(token),
        json={
            "name": "x",
            "send_at": clock.now().isoformat(),
            "ends_at": clock.now().isoformat(),
            "min_intent": 10,
            "coupon": {"title": "t", "amount_cents": 100},
        },
    )
    assert r.status_code == 422
    other = await make_shop(srv.ctx.db, agents=(("sup", "supervisor", ("general",)),))
    other_token = await login(srv.http, other, "sup")
    assert (
        await http.get(f"/api/v1/recall/campaigns/{c['id']}", headers=staff(other_token))
    ).status_code == 404
    listed = (await http.get("/api/v1/recall/campaigns", headers=staff(token))).json()
    assert [x["id"] for x in listed] == [c["id"]]
