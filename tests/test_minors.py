"""No marketing to minors, through a real server: a buyer whose identity says `age` < 18 is
left out of recall audiences (preview reason `minor`), never gets a coupon card, sees no
fan-group giveaway and cannot claim one, while service chat works as for anyone."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from app.clock import FrozenClock
from app.recall import actions as recall_actions
from app.recall.jobs import run_campaign
from tests.conftest import buyer
from tests.support.factories import login, make_shop
from tests.support.recall import consult, new_campaign, recall_cards, sends_by_buyer, staff
from tests.test_recall import noon_shanghai, preview


@pytest.fixture
async def desk(start_server):
    clock = FrozenClock(noon_shanghai())
    srv = await start_server(clock=clock, run_jobs=False)
    kit = await make_shop(srv.ctx.db, agents=(("sup", "supervisor", ("general",)),))
    token = await login(srv.http, kit, "sup")
    async with httpx.AsyncClient(base_url=srv.http, timeout=30) as http:
        yield srv, clock, kit, token, http


def bearer(kit, sub, **claims):
    return {"Authorization": f"Bearer {kit.buyer_token(sub, **claims)}"}


async def test_a_minor_gets_no_campaign_card_and_no_giveaway_but_chats(desk, connect):
    srv, clock, kit, token, http = desk
    db = srv.ctx.db
    now = clock.now()
    adult = await buyer(srv, kit, connect, "adult", age=30)
    kid = await buyer(srv, kit, connect, "kid", age=15)
    await consult(db, kit.shop_id, ["adult", "kid", "no-age"], now - timedelta(hours=2))

    # Two campaigns at once: the kid is excluded from both audiences as `minor`.
    first = await new_campaign(http, token, now, name="first")
    second = await new_campaign(http, token, now, name="second")
    for c in (first, second):
        assert await preview(http, token, c["id"]) == {
            "eligible": 2,
            "excluded": {"minor": 1, "opted_out": 0, "purchased": 0, "low_intent": 0, "capped": 0},
        }

    # And a giveaway in a fan group both belong to, posted while the campaigns send.
    admin_h = staff(await login(srv.http, kit, "admin"))
    r = await http.post("/api/v1/groups", json={"name": "铁粉群"}, headers=admin_h)
    group = r.json()
    for sub, age, ws in (("adult", 30, adult), ("kid", 15, kid)):
        r = await http.post(f"/api/v1/groups/{group['id']}/join", headers=bearer(kit, sub, age=age))
        assert r.status_code == 200, r.text
        await ws.expect("group.joined")
    r = await http.post(
        f"/api/v1/groups/{group['id']}/giveaways",
        headers=staff(token),
        json={"title": "满100减20", "quantity": 5, "coupon": {"amount_cents": 2000}},
    )
    assert r.status_code == 201, r.text
    giveaway = r.json()
    for c in (first, second):  # both audiences taken before either sends
        assert await db.run(recall_actions.start_campaign, c["id"], now)
    assert await run_campaign(db, clock, first["id"]) == 2
    assert await run_campaign(db, clock, second["id"]) == 2
    await adult.send(
        {"type": "group.send", "group_id": group["id"], "client_msg_id": "g1", "body": "谢谢"}
    )
    await adult.expect("message.ack")

    # The adult saw the giveaway live; the kid only the plain group message after it.
    assert (await adult.expect("group.message"))["message"]["kind"] == "giveaway"
    seen = await kid.expect("group.message")
    assert seen["message"]["body"] == "谢谢"
    kid_frames = await kid.drain()
    assert not [f for f in kid_frames if f.get("type") in ("group.message", "message.new")]

    sends = await sends_by_buyer(db, kit.shop_id)
    assert {b: sorted(s.status for s in v) for b, v in sends.items()} == {
        "adult": ["capped", "sent"],
        "no-age": ["capped", "sent"],
    }
    assert len(await recall_cards(db, kit.shop_id)) == 2

    # No giveaway for the kid by any door: not in history, not readable, not claimable.
    kid_h = bearer(kit, "kid", age=15)
    r = await http.get(
        f"/api/v1/groups/{group['id']}/messages", params={"after_seq": 0}, headers=kid_h
    )
    assert [m["kind"] for m in r.json()] == ["text"]
    r = await http.get(
        f"/api/v1/groups/{group['id']}/messages",
        params={"after_seq": 0},
        headers=bearer(kit, "adult", age=30),
    )
    assert [m["kind"] for m in r.json()] == ["giveaway", "text"]
    assert (await http.get(f"/api/v1/giveaways/{giveaway['id']}", headers=kid_h)).status_code == 404
    r = await http.post(f"/api/v1/giveaways/{giveaway['id']}/claim", headers=kid_h)
    assert r.status_code == 404, r.text
    r = await http.post(
        f"/api/v1/giveaways/{giveaway['id']}/claim", headers=bearer(kit, "adult", age=30)
    )
    assert r.status_code == 200, r.text

    # Service chat as for anyone.
    await kid.send({"type": "message.send", "client_msg_id": "k1", "body": "我的快递到哪了"})
    ack = await kid.expect("message.ack")
    assert ack["message"]["sender"] == "buyer" and ack["message"]["seq"] >= 1


async def test_a_buyer_known_as_a_minor_after_the_snapshot_gets_no_card(desk, connect):
    srv, clock, kit, token, http = desk
    db = srv.ctx.db
    now = clock.now()
    await consult(db, kit.shop_id, ["teen", "grown"], now - timedelta(hours=2))
    c = await new_campaign(http, token, now)
    assert await db.run(recall_actions.start_campaign, c["id"], now)
    # The storefront now signs the buyer's age; their record says so from this connection.
    teen = await buyer(srv, kit, connect, "teen", age=16)
    assert await run_campaign(db, clock, c["id"]) == 2
    sends = await sends_by_buyer(db, kit.shop_id)
    assert {b: [s.status for s in v] for b, v in sends.items()} == {
        "teen": ["minor"],
        "grown": ["sent"],
    }
    assert len(await recall_cards(db, kit.shop_id)) == 1
    assert not [f for f in await teen.drain() if f.get("type") == "message.new"]
