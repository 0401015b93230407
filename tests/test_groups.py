"""Fan groups over real sockets and HTTP: membership, messages, check-ins, giveaways, moderation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx

from app.clock import FrozenClock
from tests.conftest import buyer
from tests.support.factories import login, make_shop


async def staff_headers(server, kit, username="admin"):
    return {"Authorization": f"Bearer {await login(server.http, kit, username)}"}


def bh(kit, sub):
    return {"Authorization": f"Bearer {kit.buyer_token(sub)}"}


async def new_group(c, admin_h, **body):
    r = await c.post("/api/v1/groups", json={"name": "铁粉群", **body}, headers=admin_h)
    assert r.status_code == 201, r.text
    return r.json()


async def test_members_talk_over_sockets_and_late_joiners_read_history(server, connect):
    kit = await make_shop(server.ctx.db)
    async with httpx.AsyncClient(base_url=server.http) as c:
        admin_h = await staff_headers(server, kit)
        g = await new_group(c, admin_h)
        assert g["max_members"] == 500 and g["member_count"] == 0
        a = await buyer(server, kit, connect, "alice")
        b = await buyer(server, kit, connect, "bob")
        for sub, ws in (("alice", a), ("bob", b)):
            r = await c.post(f"/api/v1/groups/{g['id']}/join", headers=bh(kit, sub))
            assert r.status_code == 200, r.text
            # the open socket now listens to the group
            assert (await ws.expect("group.joined"))["group"]["id"] == g["id"]
        await a.send(
            {"type": "group.send", "group_id": g["id"], "client_msg_id": "m1", "body": "大家好"}
        )
        ack = await a.expect("message.ack")
        assert ack["message"]["group_id"] == g["id"] and ack["message"]["seq"] == 1
        got = await b.expect("group.message")
        assert got["message"]["body"] == "大家好" and got["message"]["sender"] == "buyer"
        # idempotent resend: same message, no new seq
        await a.send(
            {"type": "group.send", "group_id": g["id"], "client_msg_id": "m1", "body": "大家好"}
        )
        assert (await a.expect("message.ack"))["message"]["seq"] == 1
        # a late joiner reads the history, and a reconnecting socket syncs it
        r = await c.post(f"/api/v1/groups/{g['id']}/join", headers=bh(kit, "carol"))
        assert r.json()["member_count"] == 3
        r = await c.get(
            f"/api/v1/groups/{g['id']}/messages", params={"after_seq": 0}, headers=bh(kit, "carol")
        )
        assert [m["body"] for m in r.json()] == ["大家好"]
        carol = await buyer(server, kit, connect, "carol")
        hello = carol.frames[0]
        assert [x["id"] for x in hello["groups"]] == [g["id"]] and hello["groups"][0][
            "last_seq"
        ] == 1
        await carol.send({"type": "group.sync", "group_id": g["id"], "after_seq": 0})
        assert (await carol.expect("group.message"))["message"]["seq"] == 1
        # staff read and post; buyers list their groups
        r = await c.get(f"/api/v1/groups/{g['id']}/messages", headers=admin_h)
        assert len(r.json()) == 1
        r = await c.post(
            f"/api/v1/groups/{g['id']}/messages",
            json={"client_msg_id": "s1", "body": "欢迎"},
            headers=admin_h,
        )
        assert r.status_code == 201 and r.json()["sender"] == "agent"
        for ws in (a, b, carol):
            assert (await ws.expect("group.message", lambda f: f["message"]["seq"] == 2))[
                "message"
            ]["body"] == "欢迎"
        assert [
            x["id"] for x in (await c.get("/api/v1/groups", headers=bh(kit, "alice"))).json()
        ] == [g["id"]]
        assert (await c.get("/api/v1/groups", headers=bh(kit, "nobody"))).json() == []
        assert len((await c.get("/api/v1/groups?all=true", headers=bh(kit, "nobody"))).json()) == 1
        # leaving stops delivery and reading
        r = await c.delete(f"/api/v1/groups/{g['id']}/members/me", headers=bh(kit, "bob"))
        assert r.status_code == 204
        assert (await b.expect("group.left"))["reason"] == "left"
        await a.send(
            {"type": "group.send", "group_id": g["id"], "client_msg_id": "m2", "body": "还在吗"}
        )
        await carol.expect("group.message", lambda f: f["message"]["seq"] == 3)
        await b.drain(0.3)
        assert not [
            f for f in b.frames if f.get("type") == "group.message" and f["message"]["seq"] == 3
        ]
        r = await c.get(f"/api/v1/groups/{g['id']}/messages", headers=bh(kit, "bob"))
        assert r.status_code == 403 and r.json()["error"]["code"] == "not_member"


async def test_another_shop_and_non_members_are_refused(server, connect):
    kit, other = await make_shop(server.ctx.db), await make_shop(server.ctx.db)
    async with httpx.AsyncClient(base_url=server.http) as c:
        g = await new_group(c, await staff_headers(server, kit))
        # another shop's buyer and admin: the group does not exist for them
        r = await c.post(f"/api/v1/groups/{g['id']}/join", headers=bh(other, "x"))
        assert r.status_code == 404
        r = await c.get(
            f"/api/v1/groups/{g['id']}/messages", headers=await staff_headers(server, other)
        )
        assert r.status_code == 404
        # a non-member of the same shop cannot read or post
        r = await c.get(f"/api/v1/groups/{g['id']}/messages", headers=bh(kit, "stranger"))
        assert r.status_code == 403
        s = await buyer(server, kit, connect, "stranger")
        await s.send(
            {"type": "group.send", "group_id": g["id"], "client_msg_id": "x", "body": "hi"}
        )
        assert (await s.expect("error"))["code"] == "not_member"
        # roles: agents cannot create groups or giveaways
        agent_h = await staff_headers(server, kit, "agent1")
        assert (
            await c.post("/api/v1/groups", json={"name": "x"}, headers=agent_h)
        ).status_code == 403
        r = await c.post(
            f"/api/v1/groups/{g['id']}/giveaways",
            json={"title": "t", "quantity": 1},
            headers=agent_h,
        )
        assert r.status_code == 403
        # no credentials
        assert (await c.get("/api/v1/groups")).status_code == 401


async def test_joining_past_the_limit_is_refused_even_at_once(server):
    kit = await make_shop(server.ctx.db)
    # Twenty writes at once on one SQLite writer: on a starved machine they can take longer
    # than httpx's default 5 s, which this test does not mean to assert.
    async with httpx.AsyncClient(base_url=server.http, timeout=60) as c:
        g = await new_group(c, await staff_headers(server, kit), max_members=5)
        rs = await asyncio.gather(
            *[
                c.post(f"/api/v1/groups/{g['id']}/join", headers=bh(kit, f"fan-{i}"))
                for i in range(20)
            ]
        )
        codes = sorted(r.status_code for r in rs)
        assert codes.count(200) == 5 and codes.count(409) == 15
        assert {r.json()["error"]["code"] for r in rs if r.status_code == 409} == {"group_full"}
        listed = (await c.get("/api/v1/groups", headers=await staff_headers(server, kit))).json()
        assert listed[0]["member_count"] == 5
        # joining again is idempotent; a seat freed by leaving can be taken
        joined = next(i for i, r in enumerate(rs) if r.status_code == 200)
        r = await c.post(f"/api/v1/groups/{g['id']}/join", headers=bh(kit, f"fan-{joined}"))
        assert r.status_code == 200 and r.json()["member_count"] == 5
        await c.delete(f"/api/v1/groups/{g['id']}/members/me", headers=bh(kit, f"fan-{joined}"))
        late = next(i for i, r in enumerate(rs) if r.status_code == 409)
        assert (
            await c.post(f"/api/v1/groups/{g['id']}/join", headers=bh(kit, f"fan-{late}"))
        ).status_code == 200


async def test_checkin_streaks_follow_the_shops_calendar(server, start_server):
    # 2026-03-01 23:30 in Shanghai is 15:30 UTC
    clock = FrozenClock(datetime(2026, 3, 1, 15, 30, tzinfo=UTC))
    srv = await start_server(clock=clock, run_jobs=False)
    kit = await make_shop(srv.ctx.db)
    async with httpx.AsyncClient(base_url=srv.http) as c:
        g = await new_group(c, await staff_headers(srv, kit))
        h = bh(kit, "daily")
        url = f"/api/v1/groups/{g['id']}/checkin"
        assert (await c.post(url, headers=h)).status_code == 403  # members only
        await c.post(f"/api/v1/groups/{g['id']}/join", headers=h)

        async def check():
            r = await c.post(url, headers=h)
            assert r.status_code == 200, r.text
            assert r.json()["checked_in_today"] is True
            return r.json()["streak"]

        assert await check() == 1
        assert await check() == 1  # same day: same answer
        clock.advance(minutes=45)  # 00:15 the next day in Shanghai (still 3-01 in UTC)
        assert await check() == 2
        rs = await asyncio.gather(*[c.post(url, headers=h) for _ in range(5)])
        assert {r.json()["streak"] for r in rs} == {2}
        clock.advance(days=1)
        assert await check() == 3
        clock.advance(days=2)  # a missed day resets
        assert await check() == 1
        clock.advance(days=1)
        assert await check() == 2


async def test_giveaway_claims_double_claims_and_sold_out(server, connect):
    kit = await make_shop(server.ctx.db, agents=(("sup", "supervisor", ("general",)),))
    async with httpx.AsyncClient(base_url=server.http) as c:
        g = await new_group(c, await staff_headers(server, kit))
        for i in range(4):
            await c.post(f"/api/v1/groups/{g['id']}/join", headers=bh(kit, f"m{i}"))
        watcher = await buyer(server, kit, connect, "m0")
        r = await c.post(
            f"/api/v1/groups/{g['id']}/giveaways",
            headers=await staff_headers(server, kit, "sup"),
            json={
                "title": "满100减20",
                "quantity": 2,
                "coupon": {"title": "满100减20", "amount_cents": 2000, "min_spend_cents": 10000},
            },
        )
        assert r.status_code == 201, r.text
        gw = r.json()
        post = (
            await watcher.expect("group.message", lambda f: f["message"]["kind"] == "giveaway")
        )["message"]
        assert post["payload"]["giveaway"]["id"] == gw["id"]
        claim = f"/api/v1/giveaways/{gw['id']}/claim"
        r = await c.post(claim, headers=bh(kit, "m0"))
        assert r.status_code == 200 and r.json()["coupon"]["amount_cents"] == 2000
        r = await c.post(claim, headers=bh(kit, "m0"))
        assert r.status_code == 409 and r.json()["error"]["code"] == "already_claimed"
        assert (await c.post(claim, headers=bh(kit, "outsider"))).status_code == 403
        assert (await c.post(claim, headers=bh(kit, "m1"))).status_code == 200
        r = await c.post(claim, headers=bh(kit, "m2"))
        assert r.status_code == 409 and r.json()["error"]["code"] == "sold_out"
        gone = (
            await watcher.expect("group.message", lambda f: f["message"]["payload"].get("sold_out"))
        )["message"]
        assert gone["payload"]["giveaway_id"] == gw["id"]
        assert gone["payload"]["notice"] == "giveaway_sold_out"
        assert gone["payload"]["params"] == {"title": gw["title"]}
        r = await c.get(f"/api/v1/giveaways/{gw['id']}", headers=bh(kit, "m3"))
        assert r.json()["remaining"] == 0


async def test_mute_removal_and_sensitive_words(server, connect):
    kit = await make_shop(server.ctx.db)
    async with httpx.AsyncClient(base_url=server.http) as c:
        admin_h = await staff_headers(server, kit)
        g = await new_group(c, admin_h)
        gid = g["id"]
        for sub in ("loud", "calm"):
            await c.post(f"/api/v1/groups/{gid}/join", headers=bh(kit, sub))
        loud, calm = (
            await buyer(server, kit, connect, "loud"),
            await buyer(server, kit, connect, "calm"),
        )

        async def say(ws, cid, body="hello"):
            await ws.send(
                {"type": "group.send", "group_id": gid, "client_msg_id": cid, "body": body}
            )

        def post(sub, cid, body="hello"):
            return c.post(
                f"/api/v1/groups/{gid}/messages",
                json={"client_msg_id": cid, "body": body},
                headers=bh(kit, sub),
            )

        # one member muted
        r = await c.post(
            f"/api/v1/groups/{gid}/mute", json={"buyer_id": "loud", "minutes": 10}, headers=admin_h
        )
        assert r.status_code == 200 and r.json()["until"]
        await loud.expect("group.muted")
        await say(loud, "l1")
        err = await loud.expect("error")
        assert err["code"] == "muted" and err["ref"] == "l1"
        r = await post("loud", "l2")
        assert r.status_code == 403 and r.json()["error"]["code"] == "muted"
        await say(calm, "c1")
        await calm.expect("message.ack")
        # lifted
        await c.post(
            f"/api/v1/groups/{gid}/mute", json={"buyer_id": "loud", "minutes": 0}, headers=admin_h
        )
        assert (await post("loud", "l3")).status_code == 201
        # the whole group muted: every member refused, staff still speak
        await c.post(f"/api/v1/groups/{gid}/mute", json={"minutes": 5}, headers=admin_h)
        await calm.expect("group.muted", lambda f: f["buyer_id"] is None)
        await say(calm, "c2")
        assert (await calm.expect("error"))["code"] == "muted"
        assert (await post("loud", "l4")).status_code == 403
        r = await c.post(
            f"/api/v1/groups/{gid}/messages",
            json={"client_msg_id": "a1", "body": "安静"},
            headers=admin_h,
        )
        assert r.status_code == 201
        await c.post(f"/api/v1/groups/{gid}/mute", json={"minutes": 0}, headers=admin_h)
        # sensitive words
        r = await c.put(
            "/api/v1/groups/sensitive-words",
            json={"words": ["加微信", " VX ", "加微信"]},
            headers=admin_h,
        )
        assert r.status_code == 200 and sorted(r.json()["words"]) == ["VX", "加微信"]
        await say(calm, "c3", "快来加微信领红包")
        err = await calm.expect("error")
        assert err["code"] == "sensitive_word" and "加微信" in err["message"]
        r = await post("loud", "l5", "my vx is 123")
        assert r.status_code == 422 and r.json()["error"]["code"] == "sensitive_word"
        # removal: no more posting, reading, delivery, or rejoining
        r = await c.delete(f"/api/v1/groups/{gid}/members/loud", headers=admin_h)
        assert r.status_code == 204
        assert (await loud.expect("group.left"))["reason"] == "removed"
        await say(loud, "l6")
        assert (await loud.expect("error"))["code"] == "not_member"
        assert (await post("loud", "l7")).status_code == 403
        assert (
            await c.get(f"/api/v1/groups/{gid}/messages", headers=bh(kit, "loud"))
        ).status_code == 403
        assert (
            await c.post(f"/api/v1/groups/{gid}/join", headers=bh(kit, "loud"))
        ).status_code == 403
        await say(calm, "c4", "还有人吗")
        await calm.expect("message.ack", lambda f: f["client_msg_id"] == "c4")
        await loud.drain(0.3)
        assert not [
            f
            for f in loud.frames
            if f.get("type") == "group.message" and f["message"]["body"] == "还有人吗"
        ]
        await loud.send({"type": "group.sync", "group_id": gid, "after_seq": 0})
        assert (await loud.expect("error"))["code"] == "not_member"


async def test_a_member_syncing_a_group_hears_it_live_though_the_join_news_was_lost(
    server, start_server, connect
):
    """The join went through another node whose news never reached this one (two servers,
    each with its own in-process bus): the buyer's socket here was not told to listen, and
    its `group.sync` makes it listen before reading, so what is posted next arrives live."""
    other = await start_server(run_jobs=False)
    kit = await make_shop(server.ctx.db)
    async with (
        httpx.AsyncClient(base_url=server.http) as c,
        httpx.AsyncClient(base_url=other.http) as there,
    ):
        admin_h = await staff_headers(server, kit)
        g = await new_group(c, admin_h)
        dave = await buyer(server, kit, connect, "dave")
        r = await there.post(f"/api/v1/groups/{g['id']}/join", headers=bh(kit, "dave"))
        assert r.status_code == 200, r.text
        await dave.send({"type": "group.sync", "group_id": g["id"], "after_seq": 0})
        await dave.drain(0.3)
        r = await c.post(
            f"/api/v1/groups/{g['id']}/messages",
            json={"client_msg_id": "s1", "body": "欢迎"},
            headers=admin_h,
        )
        assert r.status_code == 201, r.text
        got = await dave.expect("group.message", timeout=5)
        assert got["message"]["body"] == "欢迎"
        # A buyer who is not a member is refused, and listens to nothing more.
        eve = await buyer(server, kit, connect, "eve")
        await eve.send({"type": "group.sync", "group_id": g["id"], "after_seq": 0})
        assert (await eve.expect("error"))["code"] == "not_member"
