"""Metrics filtered by tag, through a real server (both databases): the metrics API, the
console's 体验分 tab and its trend charts count only the conversations carrying the tag;
a tag the shop does not have is `422 unknown_tag` (and said so on the console)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.chat.models import Conversation, Message, Rating
from app.orders.models import Order
from app.payouts.models import Payout
from app.tags.models import ConversationTag, Tag
from tests.support.factories import PASSWORD, login, make_shop
from tests.support.passwords import cheap_password_hashing  # noqa: F401  (fixture)
from tests.support.words import zh

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
STAFF = (("a1", "agent", ("general",)), ("sup", "supervisor", ("general",)))
PERIOD = {"from": "2026-03-02", "to": "2026-03-03"}


async def seed(db, kit) -> list[str]:
    """Three conversations of a1 on 03-02 and 03-03: the tagged one (退款) answered in 35 s,
    rated 5, with a ¥12 payout; two untagged, answered after 5 minutes, one rated 1."""
    a1 = kit.agents["a1"]
    ids: list[str] = []

    async def build(uow):
        s = uow.session
        refund = Tag(shop_id=kit.shop_id, name="退款", created_at=T0)
        s.add_all([refund, Tag(shop_id=kit.shop_id, name="晚发", created_at=T0)])
        for n, (reply_s, score) in enumerate([(35, 5), (300, 1), (300, None)]):
            opened = T0 + timedelta(days=n % 2, minutes=n)
            c = Conversation(
                shop_id=kit.shop_id,
                buyer_id=f"b-{n}",
                agent_id=a1,
                status="closed",
                opened_at=opened,
                queued_at=opened,
                assigned_at=opened,
                closed_at=opened + timedelta(minutes=10),
                close_reason="agent",
                last_seq=2,
            )
            s.add(c)
            ids.append(c.id)
            for seq, (sender, sid, dt) in enumerate(
                [("buyer", c.buyer_id, 0), ("agent", a1, reply_s)], start=1
            ):
                s.add(
                    Message(
                        shop_id=kit.shop_id,
                        conversation_id=c.id,
                        seq=seq,
                        sender=sender,
                        sender_id=sid,
                        body="在吗" if sender == "buyer" else "在的",
                        created_at=opened + timedelta(seconds=dt),
                    )
                )
            if score is not None:
                s.add(
                    Rating(
                        conversation_id=c.id,
                        shop_id=kit.shop_id,
                        buyer_id=c.buyer_id,
                        agent_id=a1,
                        score=score,
                        created_at=opened + timedelta(minutes=11),
                    )
                )
        await s.flush()
        s.add(
            ConversationTag(
                shop_id=kit.shop_id, conversation_id=ids[0], tag_id=refund.id, created_at=T0
            )
        )
        for n, cid in enumerate(ids[:2]):
            s.add(
                Order(
                    shop_id=kit.shop_id,
                    order_id=f"o-{n}",
                    buyer_id=f"b-{n}",
                    amount_cents=9900,
                    status="paid",
                    created_at=T0,
                    received_at=T0,
                    updated_at=T0,
                )
            )
            await s.flush()
            s.add(
                Payout(
                    shop_id=kit.shop_id,
                    conversation_id=cid,
                    order_id=f"o-{n}",
                    buyer_id=f"b-{n}",
                    agent_id=a1,
                    request_hash="0" * 64,
                    amount_cents=1200 if n == 0 else 3400,
                    reason="goodwill",
                    status="paid",
                    idempotency_key=f"k-{n}",
                    created_at=T0,
                    paid_at=T0 + timedelta(minutes=20),
                )
            )

    await db.run(build)
    return ids


@asynccontextmanager
async def console_client(server, kit, username: str = "sup") -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client signed in to the pages (session cookie)."""
    async with httpx.AsyncClient(base_url=server.http) as c:
        r = await c.post(
            "/login",
            data={"shop": kit.slug, "username": username, "password": PASSWORD},
            headers={"HX-Request": "true"},
        )
        assert "homing_session" in c.cookies, r.text
        yield c


async def test_the_metrics_api_counts_only_conversations_with_the_tag(server):
    kit = await make_shop(server.ctx.db, agents=STAFF)
    await seed(server.ctx.db, kit)
    token = await login(server.http, kit, "sup")
    async with httpx.AsyncClient(
        base_url=server.http, headers={"Authorization": f"Bearer {token}"}
    ) as c:
        everything = (await c.get("/api/v1/metrics/shop", params=PERIOD)).json()
        tagged = (await c.get("/api/v1/metrics/shop", params={**PERIOD, "tag": "退款"})).json()
        rows = (await c.get("/api/v1/metrics/agents", params={**PERIOD, "tag": "退款"})).json()
        none = (await c.get("/api/v1/metrics/shop", params={**PERIOD, "tag": "晚发"})).json()
        unknown = await c.get("/api/v1/metrics/agents", params={**PERIOD, "tag": "没有"})
    assert (everything["handled"], everything["reply_3min_rate"]) == (3, 0.3333)
    assert (everything["satisfaction_rate"], everything["payouts_cents"]) == (0.5, 4600)
    assert (tagged["handled"], tagged["reply_3min_rate"]) == (1, 1.0)
    assert (tagged["satisfaction_rate"], tagged["dissatisfaction_rate"]) == (1.0, 0.0)
    assert tagged["avg_first_response_s"] == 35.0 and tagged["payouts_cents"] == 1200
    [a1] = [r for r in rows if r["username"] == "a1"]
    assert (a1["handled"], a1["reply_3min_rate"], a1["payouts_cents"]) == (1, 1.0, 1200)
    assert none["handled"] == 0 and none["reply_3min_rate"] is None
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_tag"


async def test_the_console_tab_and_its_trends_take_the_tag(server):
    kit = await make_shop(server.ctx.db, agents=STAFF)
    await seed(server.ctx.db, kit)
    async with console_client(server, kit) as c:
        page = await c.get("/console", params={"tab": "metrics", **PERIOD, "tag": "退款"})
        assert page.status_code == 200
        assert '<option value="退款" selected>' in page.text
        assert '<option value="晚发">' in page.text
        assert zh("Only conversations tagged %(tag)s") % {"tag": "退款"} in page.text
        # The stat row: 1 conversation, 100% within 3 min (not 3 and 33.3%).
        stats = page.text.split('id="shop-metrics"')[1].split("</div>\n  <div")[0]
        assert "<strong>1</strong>" in stats and "100.0%" in stats and "33.3%" not in stats
        assert "tag=%E9%80%80%E6%AC%BE" in page.text  # the trends load with the tag

        both = await c.get("/console/trends", params=PERIOD)
        only = await c.get("/console/trends", params={**PERIOD, "tag": "退款"})
        unknown = await c.get("/console/trends", params={**PERIOD, "tag": "没有"})
        bad_page = await c.get("/console", params={"tab": "metrics", **PERIOD, "tag": "没有"})
    # Each day's point says its value: 03-02 had the tagged (answered) and an untagged
    # (late) conversation, 03-03 one untagged.
    assert "03-02: 50.0%" in both.text and "03-03: 0.0%" in both.text
    assert "03-02: 100.0%" in only.text and "03-03: 0.0%" not in only.text
    heat_both = both.text.count('data-count="1"') + 2 * both.text.count('data-count="2"')
    heat_only = only.text.count('data-count="1"') + 2 * only.text.count('data-count="2"')
    assert (heat_both, heat_only) == (3, 1)
    assert zh("The shop has no such tag") in unknown.text and "heat-map" not in unknown.text
    assert zh("The shop has no such tag") in bad_page.text
