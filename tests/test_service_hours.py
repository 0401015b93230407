"""Service hours and 留言 through a real server: the API, the buyer told at once (reason,
opens_at, the auto-reply), and waiting 留言 assigned oldest first when an agent comes online."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from app.chat import actions as chat_actions
from tests.conftest import buyer, online_agent
from tests.support.factories import PASSWORD, login, make_shop
from tests.support.passwords import cheap_password_hashing  # noqa: F401  (fixture)
from tests.support.words import zh

SH = ZoneInfo("Asia/Shanghai")
pytestmark = pytest.mark.usefixtures("cheap_password_hashing")


def closed_today(now: datetime) -> dict:
    """Hours closed all of today (Shanghai), open 09:00-18:00 tomorrow."""
    today = now.astimezone(SH).date()
    return {
        "weekly": {"mon": [["09:00", "21:00"]]},
        "exceptions": [
            {"date": today.isoformat(), "hours": []},
            {"date": (today + timedelta(days=1)).isoformat(), "hours": [["09:00", "18:00"]]},
        ],
        "auto_reply": "您好, 现在是非工作时间, 请留言",
    }


async def client_of(server, kit, username) -> httpx.AsyncClient:
    token = await login(server.http, kit, username)
    return httpx.AsyncClient(base_url=server.http, headers={"Authorization": f"Bearer {token}"})


async def test_service_hours_api_is_the_admins(server):
    kit = await make_shop(
        server.ctx.db, agents=(("a1", "agent", ("general",)), ("sup", "supervisor", ("general",)))
    )
    async with await client_of(server, kit, "admin") as admin:
        r = await admin.get("/api/v1/service-hours")
        assert r.status_code == 200
        assert r.json()["open_now"] is True and r.json()["weekly"]["mon"] == []
        body = closed_today(server.ctx.clock.now())
        r = await admin.put("/api/v1/service-hours", json=body)
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["open_now"] is False and got["time_zone"] == "Asia/Shanghai"
        tomorrow = server.ctx.clock.now().astimezone(SH).date() + timedelta(days=1)
        assert got["opens_at"] == f"{tomorrow.isoformat()}T09:00:00+08:00"
        assert got["auto_reply"] == body["auto_reply"]
        assert (await admin.get("/api/v1/service-hours")).json() == got
        bad = await admin.put("/api/v1/service-hours", json={"weekly": {"mon": [["9", "21:00"]]}})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_hours"
    for username in ("a1", "sup"):
        async with await client_of(server, kit, username) as other:
            assert (await other.get("/api/v1/service-hours")).status_code == 403
            assert (await other.put("/api/v1/service-hours", json=body)).status_code == 403
    async with httpx.AsyncClient(base_url=server.http) as anon:
        assert (await anon.get("/api/v1/service-hours")).status_code == 401


async def test_outside_hours_the_buyer_is_told_at_once_with_the_auto_reply(server, connect):
    kit = await make_shop(server.ctx.db)
    async with await client_of(server, kit, "admin") as admin:
        r = await admin.put("/api/v1/service-hours", json=closed_today(server.ctx.clock.now()))
        opens_at = r.json()["opens_at"]
    b = await buyer(server, kit, connect)
    await b.send({"type": "message.send", "client_msg_id": "m1", "body": "在吗? 想问发货"})
    conv_id = (await b.expect("message.ack"))["message"]["conversation_id"]
    told = await b.expect("conversation.queued", lambda f: "reason" in f)
    assert told["conversation_id"] == conv_id
    assert told["reason"] == "outside_hours"
    assert told["opens_at"] == opens_at and told["time_zone"] == "Asia/Shanghai"
    reply = await b.expect("message.new", lambda f: f["message"]["sender"] == "system")
    assert reply["message"]["body"] == "您好, 现在是非工作时间, 请留言"
    assert reply["message"]["payload"]["notice"] == "auto_reply"
    # The buyer keeps writing: kept as 留言, and told only once.
    await b.send({"type": "message.send", "client_msg_id": "m2", "body": "订单号 123"})
    await b.expect("message.ack")
    await b.drain(0.5)
    assert sum("reason" in f for f in b.of_type("conversation.queued")) == 1
    # A reconnecting widget sees it on its conversation.
    again = await connect(f"{server.ws}/ws/buyer?token={kit.buyer_token(b_sub(b))}")
    hello = await again.expect("hello")
    assert hello["conversation"]["left_message"]["reason"] == "outside_hours"


def b_sub(client) -> str:
    hello = client.of_type("hello")[0]
    return hello["buyer_id"]


async def test_no_agent_online_then_leave_messages_are_served_oldest_first(server, connect):
    kit = await make_shop(server.ctx.db, max_concurrent=2)
    buyers = []
    for n in range(3):
        b = await buyer(server, kit, connect)
        await b.send({"type": "message.send", "client_msg_id": "m", "body": f"留言 {n}"})
        conv_id = (await b.expect("message.ack"))["message"]["conversation_id"]
        told = await b.expect("conversation.queued", lambda f: "reason" in f)
        assert told["reason"] == "no_agent_online" and told["opens_at"] is None
        # No auto-reply is set: no notice.
        buyers.append((b, conv_id))
    agent = await online_agent(server, kit, "agent1", connect)
    first = await agent.expect("conversation.assigned")
    second = await agent.expect("conversation.assigned")
    assert [first["conversation"]["id"], second["conversation"]["id"]] == [
        buyers[0][1],
        buyers[1][1],
    ]
    for frame in (first, second):
        left = frame["conversation"]["left_message"]
        assert left["reason"] == "no_agent_online"
        assert left["since"] <= frame["conversation"]["assigned_at"]
    await buyers[0][0].expect("conversation.assigned")
    # The third waits for a free slot; no new "nobody online" notice now that someone is.
    await agent.send({"type": "conversation.close", "conversation_id": buyers[0][1]})
    third = await agent.expect("conversation.assigned")
    assert third["conversation"]["id"] == buyers[2][1]
    assert third["conversation"]["left_message"]["reason"] == "no_agent_online"
    # The agent's list over HTTP marks them too.
    async with await client_of(server, kit, "agent1") as a:
        listed = {c["id"]: c for c in (await a.get("/api/v1/conversations")).json()}
    assert listed[buyers[1][1]]["left_message"]["reason"] == "no_agent_online"


async def test_with_an_agent_online_in_hours_nobody_is_told(server, connect):
    kit = await make_shop(server.ctx.db)
    agent = await online_agent(server, kit, "agent1", connect)
    b = await buyer(server, kit, connect)
    await b.send({"type": "message.send", "client_msg_id": "m", "body": "你好"})
    await b.expect("conversation.assigned")
    assert (await agent.expect("conversation.assigned"))["conversation"]["left_message"] is None
    assert not [f for f in b.of_type("conversation.queued") if "reason" in f]


async def test_the_console_edits_the_hours(server):
    kit = await make_shop(server.ctx.db, agents=(("sup", "supervisor", ("general",)),))
    form = {
        "day_mon": "09:00-12:00， 13:00-21:00",
        "day_sat": "20:00-02:00",
        "exceptions": "2026-10-01 closed\n2026-11-11 08:00-24:00\n",
        "auto_reply": "双十一 8 点开始服务",
    }
    for username, allowed in (("sup", False), ("admin", True)):
        async with httpx.AsyncClient(base_url=server.http) as c:
            r = await c.post(
                "/api/v1/auth/login",
                json={"shop": kit.slug, "username": username, "password": PASSWORD},
            )
            headers = {"X-CSRF-Token": r.json()["csrf_token"], "HX-Request": "true"}
            page = await c.get("/console", params={"tab": "hours"})
            assert page.status_code == 200 and 'data-section="hours"' in page.text
            r = await c.post("/console/hours", data=form, headers=headers)
            assert r.status_code == (200 if allowed else 403)
            if allowed:
                assert zh("Service hours saved") in r.text
                bad = await c.post(
                    "/console/hours", data={**form, "day_tue": "9-21"}, headers=headers
                )
                assert "bad_hours" in bad.text or "HH:MM" in bad.text
    async with await client_of(server, kit, "admin") as admin:
        got = (await admin.get("/api/v1/service-hours")).json()
    assert got["weekly"]["mon"] == [["09:00", "12:00"], ["13:00", "21:00"]]
    assert got["weekly"]["sat"] == [["20:00", "02:00"]] and got["weekly"]["tue"] == []
    assert got["exceptions"] == [
        {"date": "2026-10-01", "hours": []},
        {"date": "2026-11-11", "hours": [["08:00", "24:00"]]},
    ]
    assert got["auto_reply"] == "双十一 8 点开始服务"


async def test_a_leave_message_is_not_auto_closed_while_it_waits(server, connect):
    kit = await make_shop(server.ctx.db)
    b = await buyer(server, kit, connect)
    await b.send({"type": "message.send", "client_msg_id": "m", "body": "晚上留言"})
    conv_id = (await b.expect("message.ack"))["message"]["conversation_id"]
    await b.expect("conversation.queued", lambda f: "reason" in f)
    later = server.ctx.clock.now() + timedelta(hours=10)
    closed = await server.ctx.db.run(chat_actions.close_inactive, later, 1800)
    assert conv_id not in closed
    agent = await online_agent(server, kit, "agent1", connect)
    assert (await agent.expect("conversation.assigned"))["conversation"]["id"] == conv_id
