"""Quality inspection (质检) through real servers with an injected clock: the daily sample
drawn once per agent and day by two workers at once, must-review conversations, scoring on
the shop's card, an agent reading only their own scorecards, the CSV export, the metrics."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import insert, select

from app.aftersales.models import AfterSale
from app.chat.models import Conversation, Rating
from app.clock import FrozenClock
from app.compliance.models import ComplianceFlag
from app.db import new_id
from app.orders.models import Order
from app.quality import actions as quality_actions
from app.quality.jobs import draw_samples
from app.quality.models import QaDraw, QaReview
from app.scheduler import JobContext
from tests.support.factories import login, make_shop

# 12:00 in Shanghai on the day of the test; yesterday (shop time) is the day drawn.
NOW = datetime.now(UTC).replace(hour=4, minute=0, second=0, microsecond=0)
YESTERDAY_NOON = NOW - timedelta(days=1)


def auth(token):
    return {"Authorization": f"Bearer {token}"}


async def closed_conversations(db, kit, agent, n, *, at=YESTERDAY_NOON):
    rows = [
        Conversation(
            id=new_id(),
            shop_id=kit.shop_id,
            buyer_id=f"b-{agent}-{i}",
            status="closed",
            agent_id=kit.agents[agent],
            opened_at=at - timedelta(minutes=30),
            assigned_at=at - timedelta(minutes=29),
            closed_at=at + timedelta(minutes=i),
            close_reason="agent",
        ).model_dump()
        for i in range(n)
    ]

    async def write(uow):
        await uow.session.execute(insert(Conversation), rows)

    await db.run(write)
    return [r["id"] for r in rows]


async def reviews_of(db, shop_id):
    async with db.read() as s:
        rows = await s.execute(select(QaReview).where(QaReview.shop_id == shop_id))
        return list(rows.scalars())


async def test_the_daily_sample_is_drawn_once_per_agent_and_day_by_two_workers(start_server):
    clock = FrozenClock(NOW)
    one = await start_server(clock=clock, run_jobs=False)
    two = await start_server(clock=clock, run_jobs=False)
    db = one.ctx.db
    kit = await make_shop(db, agents=(("a1", "agent", ("general",)), ("a2", "agent", ("general",))))
    a1_convs = await closed_conversations(db, kit, "a1", 6)
    a2_convs = await closed_conversations(db, kit, "a2", 2)
    await closed_conversations(db, kit, "a1", 4, at=NOW - timedelta(days=3))  # not that day

    # Two workers (two processes' databases) at once, then again: one draw each.
    contexts = [
        JobContext(db=srv.ctx.db, clock=clock, settings=srv.ctx.settings) for srv in (one, two)
    ]
    await asyncio.gather(*(draw_samples(c) for c in contexts))
    await asyncio.gather(*(draw_samples(c) for c in contexts))
    await db.run(quality_actions.draw_for_shop, kit.shop_id, NOW)

    found = await reviews_of(db, kit.shop_id)
    by_agent = {}
    for r in found:
        by_agent.setdefault(r.agent_id, []).append(r)
    assert len(by_agent[kit.agents["a1"]]) == 3  # the shop's default: 3 a day
    assert {r.conversation_id for r in by_agent[kit.agents["a1"]]} <= set(a1_convs)
    assert {r.conversation_id for r in by_agent[kit.agents["a2"]]} == set(a2_convs)  # fewer than 3
    assert {r.reason for r in found} == {"sample"}
    assert {r.day for r in found} == {(NOW + timedelta(hours=8)).date() - timedelta(days=1)}
    async with db.read() as s:
        draws = list(
            (await s.execute(select(QaDraw).where(QaDraw.shop_id == kit.shop_id))).scalars()
        )
    assert sorted(d.drawn for d in draws) == [2, 3]


async def test_scorecards_must_reviews_own_scores_only_csv_and_metrics(start_server):
    clock = FrozenClock(NOW)
    srv = await start_server(clock=clock, run_jobs=False)
    db = srv.ctx.db
    kit = await make_shop(
        db,
        agents=(
            ("a1", "agent", ("general",)),
            ("a2", "agent", ("general",)),
            ("sup", "supervisor", ("general",)),
        ),
    )
    async with httpx.AsyncClient(base_url=srv.http, timeout=30) as c:
        admin_h = auth(await login(srv.http, kit, "admin"))
        sup_h = auth(await login(srv.http, kit, "sup"))
        a1_h = auth(await login(srv.http, kit, "a1"))
        a2_h = auth(await login(srv.http, kit, "a2"))
        card = {
            "daily_sample": 0,
            "scorecard": [
                {"key": "greeting", "points": 10},
                {"key": "accuracy", "points": 40},
                {"key": "patience", "label": "耐心", "points": 50},
            ],
        }
        assert (
            await c.put("/api/v1/quality/settings", json=card, headers=sup_h)
        ).status_code == 403
        r = await c.put("/api/v1/quality/settings", json=card, headers=admin_h)
        assert r.status_code == 200, r.text

        # No sample (0 a day), but every conversation that must be reviewed is.
        low, flagged, fine, refunded = await closed_conversations(db, kit, "a1", 4)
        (other,) = await closed_conversations(db, kit, "a2", 1)

        async def marks(uow):
            uow.session.add(
                Rating(
                    conversation_id=low,
                    shop_id=kit.shop_id,
                    buyer_id="b",
                    agent_id=kit.agents["a1"],
                    score=2,
                    created_at=NOW,
                )
            )
            uow.session.add(
                Rating(
                    conversation_id=fine,
                    shop_id=kit.shop_id,
                    buyer_id="b",
                    agent_id=kit.agents["a1"],
                    score=5,
                    created_at=NOW,
                )
            )
            uow.session.add(
                Rating(
                    conversation_id=other,
                    shop_id=kit.shop_id,
                    buyer_id="b",
                    agent_id=kit.agents["a2"],
                    score=1,
                    created_at=NOW,
                )
            )
            uow.session.add(
                ComplianceFlag(
                    shop_id=kit.shop_id, conversation_id=flagged, message_id=new_id(), sender="agent",
                    sender_id=kit.agents["a1"], code="outside_link", category="contact",
                    matched="www.x.com", created_at=NOW,
                )
            )  # fmt: skip
            uow.session.add(
                Order(
                    shop_id=kit.shop_id, order_id="o-1", buyer_id="b", amount_cents=9900,
                    status="delivered", created_at=NOW, received_at=NOW, updated_at=NOW,
                )
            )  # fmt: skip
            await uow.session.flush()
            uow.session.add(
                AfterSale(
                    shop_id=kit.shop_id, conversation_id=refunded, order_id="o-1", buyer_id="b",
                    type="refund_only", amount_cents=500, reason="坏了", status="declined",
                    decided_by=kit.agents["a1"], created_at=NOW, decided_at=NOW,
                )
            )  # fmt: skip

        await db.run(marks)
        await db.run(quality_actions.draw_for_shop, kit.shop_id, NOW)
        r = await c.get("/api/v1/quality/reviews", params={"status": "pending"}, headers=sup_h)
        pending = {x["conversation_id"]: x for x in r.json()}
        assert {cid: x["reason"] for cid, x in pending.items()} == {
            low: "low_rating",
            flagged: "flag",
            refunded: "after_sales",
            other: "low_rating",
        }
        mine = pending[low]
        assert [i["key"] for i in mine["scorecard"]] == ["greeting", "accuracy", "patience"]

        # Scoring: supervisors only, every item within its points.
        path = f"/api/v1/quality/reviews/{mine['id']}/score"
        scores = {"greeting": 10, "accuracy": 30, "patience": 35}
        assert (await c.post(path, json={"scores": scores}, headers=a1_h)).status_code == 403
        bad = await c.post(path, json={"scores": {**scores, "patience": 51}}, headers=sup_h)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_scores"
        r = await c.post(
            path, json={"scores": scores, "comment": "回复准确,语气可再亲切"}, headers=sup_h
        )
        assert r.status_code == 200, r.text
        assert (r.json()["total"], r.json()["max_total"], r.json()["score_rate"]) == (75, 100, 0.75)
        r = await c.post(
            f"/api/v1/quality/reviews/{pending[other]['id']}/score",
            json={"scores": {"greeting": 0, "accuracy": 10, "patience": 10}},
            headers=sup_h,
        )
        assert r.status_code == 200

        # An agent reads their own scorecards, never another's.
        r = await c.get("/api/v1/quality/reviews", headers=a1_h)
        assert [(x["id"], x["comment"]) for x in r.json()] == [
            (mine["id"], "回复准确,语气可再亲切")
        ]
        assert (
            await c.get(f"/api/v1/quality/reviews/{mine['id']}", headers=a1_h)
        ).status_code == 200
        assert (
            await c.get(f"/api/v1/quality/reviews/{mine['id']}", headers=a2_h)
        ).status_code == 404
        r = await c.get(
            "/api/v1/quality/reviews", params={"agent_id": kit.agents["a1"]}, headers=a2_h
        )
        assert [x["agent_id"] for x in r.json()] == [kit.agents["a2"]]
        # Not yet scored: not the agent's to see either.
        r = await c.get(f"/api/v1/quality/reviews/{pending[flagged]['id']}", headers=a1_h)
        assert r.status_code == 404
        assert (await c.get("/api/v1/quality/reviews.csv", headers=a1_h)).status_code == 403

        r = await c.get("/api/v1/quality/reviews.csv", headers=sup_h)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert r.content.startswith(b"\xef\xbb\xbf")
        lines = r.content.decode("utf-8-sig").splitlines()
        assert lines[0].startswith("review_id,day,agent,")
        assert any("回复准确" in line and ",a1," in line for line in lines[1:])

        day = (NOW + timedelta(hours=8)).date() - timedelta(days=1)
        r = await c.get("/api/v1/metrics/agents", params={"from": day.isoformat()}, headers=sup_h)
        qa = {x["username"]: (x["qa_score"], x["qa_reviews"]) for x in r.json()}
        assert qa["a1"] == (0.75, 1) and qa["a2"] == (0.2, 1) and qa["sup"] == (None, 0)


async def test_a_sampled_conversation_rated_low_later_is_reviewed_for_its_rating(start_server):
    """Drawn yesterday as a mere sample, rated 1 by its buyer since: while it waits, the
    reviewer sees it is up for its rating (a reviewed one keeps what it was scored for)."""
    clock = FrozenClock(NOW)
    srv = await start_server(clock=clock, run_jobs=False)
    db = srv.ctx.db
    kit = await make_shop(db, agents=(("a1", "agent", ("general",)),))
    sampled, scored = await closed_conversations(db, kit, "a1", 2)
    await db.run(quality_actions.draw_for_shop, kit.shop_id, NOW)
    assert {r.reason for r in await reviews_of(db, kit.shop_id)} == {"sample"}

    async def rate_both_and_score_one(uow):
        for conv_id in (sampled, scored):
            uow.session.add(
                Rating(
                    conversation_id=conv_id, shop_id=kit.shop_id, buyer_id="b",
                    agent_id=kit.agents["a1"], score=1, created_at=NOW,
                )
            )  # fmt: skip
        review = (
            await uow.session.execute(select(QaReview).where(QaReview.conversation_id == scored))
        ).scalar_one()
        review.status = "scored"

    await db.run(rate_both_and_score_one)
    await db.run(quality_actions.draw_for_shop, kit.shop_id, NOW + timedelta(minutes=1))
    reasons = {r.conversation_id: r.reason for r in await reviews_of(db, kit.shop_id)}
    assert reasons == {sampled: "low_rating", scored: "sample"}
