"""The admin's configuration API: agents, queues and the category map — who may, and what is refused."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import buyer, online_agent
from tests.support.factories import PASSWORD, login, make_shop
from tests.support.passwords import cheap_password_hashing  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")

STAFF = (("agent1", "agent", ("general",)), ("sup", "supervisor", ("general", "elderly")))
AGENT_FIELDS = {
    "id",
    "username",
    "display_name",
    "role",
    "status",
    "queues",
    "max_concurrent",
    "active_count",
    "payout_limit_cents",
    "payout_daily_cents",
    "active",
}


def client(server, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(base_url=server.http, headers=headers)


async def as_(server, kit, username: str) -> httpx.AsyncClient:
    return client(server, await login(server.http, kit, username))


def error_code(r: httpx.Response) -> str:
    return str(r.json()["error"]["code"])


@pytest.fixture
async def kit(server):
    return await make_shop(server.ctx.db, agents=STAFF)


def new_agent(username: str = "carol", **over):
    return {
        "username": username,
        "password": "s3cret-pw",
        "display_name": "Carol 小卡",
        "role": "agent",
        "queues": ["general"],
        "max_concurrent": 8,
        "payout_limit_cents": 3000,
        "payout_daily_cents": 30000,
        **over,
    }


async def test_every_route_needs_credentials(server, kit):
    async with client(server) as c:
        for method, url, body in (
            ("GET", "/api/v1/agents", None),
            ("POST", "/api/v1/agents", new_agent()),
            ("PATCH", f"/api/v1/agents/{kit.agents['agent1']}", {"display_name": "x"}),
            ("GET", "/api/v1/queues", None),
            ("POST", "/api/v1/queues", {"name": "jewelry"}),
            ("PATCH", "/api/v1/queues/general", {"overflow_after_s": 10}),
            ("GET", "/api/v1/routing/categories", None),
            ("PUT", "/api/v1/routing/categories", {"珠宝": "general"}),
        ):
            r = await c.request(method, url, json=body)
            assert r.status_code == 401, (method, url, r.text)
            r = await c.request(method, url, json=body, headers={"Authorization": "Bearer forged"})
            assert r.status_code == 401, (method, url, r.text)


async def test_agents_are_read_by_staff_and_written_by_the_admin_only(server, kit):
    carol_id = kit.agents["agent1"]
    async with await as_(server, kit, "agent1") as agent:
        assert (await agent.get("/api/v1/agents")).status_code == 403
        assert (await agent.post("/api/v1/agents", json=new_agent())).status_code == 403
        r = await agent.patch(f"/api/v1/agents/{carol_id}", json={"max_concurrent": 50})
        assert r.status_code == 403 and error_code(r) == "forbidden"
    async with await as_(server, kit, "sup") as sup:
        listed = await sup.get("/api/v1/agents")
        assert listed.status_code == 200
        rows = {a["username"]: a for a in listed.json()}
        assert set(rows) == {"admin", "agent1", "sup"}
        assert all(set(a) == AGENT_FIELDS for a in rows.values())
        assert (
            rows["sup"]["queues"] == ["elderly", "general"] and rows["sup"]["role"] == "supervisor"
        )
        assert rows["agent1"] | {"id": None} == {
            "id": None,
            "username": "agent1",
            "display_name": "agent1 客服",
            "role": "agent",
            "status": "offline",
            "queues": ["general"],
            "max_concurrent": 5,
            "active_count": 0,
            "payout_limit_cents": 5000,
            "payout_daily_cents": 50000,
            "active": True,
        }
        assert (await sup.post("/api/v1/agents", json=new_agent())).status_code == 403
        assert (
            await sup.patch(f"/api/v1/agents/{carol_id}", json={"role": "admin"})
        ).status_code == 403
    async with await as_(server, kit, "admin") as admin:
        assert {a["username"] for a in (await admin.get("/api/v1/agents")).json()} == {
            "admin",
            "agent1",
            "sup",
        }


async def test_the_admin_adds_an_agent_who_can_log_in(server, kit):
    async with await as_(server, kit, "admin") as admin:
        r = await admin.post("/api/v1/agents", json=new_agent(queues=["general", "elderly"]))
        assert r.status_code == 201, r.text
        carol = r.json()
        assert set(carol) == AGENT_FIELDS and "password" not in r.text and "argon2" not in r.text
        assert carol | {"id": None} == {
            "id": None,
            "username": "carol",
            "display_name": "Carol 小卡",
            "role": "agent",
            "status": "offline",
            "queues": ["elderly", "general"],
            "max_concurrent": 8,
            "active_count": 0,
            "payout_limit_cents": 3000,
            "payout_daily_cents": 30000,
            "active": True,
        }
        assert carol["id"] in {a["id"] for a in (await admin.get("/api/v1/agents")).json()}
        # Left out: display name = username, role agent, 5 at once, the role's payout limits.
        r = await admin.post(
            "/api/v1/agents", json={"username": "dave", "password": "pw", "role": "supervisor"}
        )
        assert r.status_code == 201, r.text
        dave = r.json()
        assert (dave["display_name"], dave["queues"], dave["max_concurrent"]) == ("dave", [], 5)
        assert (dave["payout_limit_cents"], dave["payout_daily_cents"]) == (200000, 2000000)
        taken = await admin.post("/api/v1/agents", json=new_agent(display_name="another Carol"))
        assert taken.status_code == 409 and error_code(taken) == "agent_exists"
    async with httpx.AsyncClient(base_url=server.http) as c:
        r = await c.post(
            "/api/v1/auth/login",
            json={"shop": kit.slug, "username": "carol", "password": "s3cret-pw"},
        )
        assert r.status_code == 200 and r.json()["agent"]["id"] == carol["id"]
    # The same username in another shop is another agent.
    other = await make_shop(server.ctx.db, agents=())
    async with await as_(server, other, "admin") as admin:
        assert (await admin.post("/api/v1/agents", json=new_agent())).status_code == 201


BAD_FIELDS = [
    ({"role": "owner"}, "bad_role"),
    ({"max_concurrent": 0}, "bad_limit"),
    ({"max_concurrent": 51}, "bad_limit"),
    ({"payout_limit_cents": -1}, "bad_payout_limit"),
    ({"payout_daily_cents": -100}, "bad_payout_limit"),
    ({"payout_daily_cents": 2**40}, "bad_payout_limit"),
    ({"queues": ["general", "no-such-queue"]}, "unknown_queue"),
    ({"username": ""}, "bad_username"),
    ({"username": "has space"}, "bad_username"),
    ({"username": "x" * 65}, "bad_username"),
    ({"display_name": ""}, "bad_display_name"),
    ({"password": ""}, "bad_password"),
    ({"max_concurrent": "5"}, "invalid"),
    ({"max_concurrent": 2.5}, "invalid"),
    ({"queues": "general"}, "invalid"),
    ({"role": None}, "invalid"),
]


async def test_bad_agent_fields_are_refused(server, kit):
    async with await as_(server, kit, "admin") as admin:
        for change, code in BAD_FIELDS:
            r = await admin.post("/api/v1/agents", json=new_agent() | {"username": "eve"} | change)
            assert r.status_code == 422 and error_code(r) == code, (change, r.text)
            r = await admin.patch(f"/api/v1/agents/{kit.agents['agent1']}", json=change)
            assert r.status_code == 422 and error_code(r) == code, (change, r.text)
        missing = await admin.post("/api/v1/agents", json={"username": "eve"})
        assert missing.status_code == 422
        agents = {a["username"]: a for a in (await admin.get("/api/v1/agents")).json()}
        assert "eve" not in agents
        assert agents["agent1"]["max_concurrent"] == 5 and agents["agent1"]["queues"] == ["general"]


async def test_the_admin_changes_an_agent_field_by_field(server, kit, connect):
    agent_id = kit.agents["agent1"]
    ws = await online_agent(server, kit, "agent1", connect)  # status is routing's: left alone
    old_token = await login(server.http, kit, "agent1")
    async with await as_(server, kit, "admin") as admin:
        url = f"/api/v1/agents/{agent_id}"
        r = await admin.patch(url, json={"display_name": "小一", "max_concurrent": 12})
        assert r.status_code == 200, r.text
        assert (r.json()["display_name"], r.json()["max_concurrent"], r.json()["queues"]) == (
            "小一",
            12,
            ["general"],
        )
        assert r.json()["status"] == "online"
        r = await admin.patch(
            url, json={"queues": ["elderly"], "payout_limit_cents": 0, "role": "supervisor"}
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["queues"], body["payout_limit_cents"], body["role"]) == (
            ["elderly"],
            0,
            "supervisor",
        )
        assert body["payout_daily_cents"] == 50000 and body["display_name"] == "小一"
        r = await admin.patch(url, json={"username": "sup"})
        assert r.status_code == 409 and error_code(r) == "agent_exists"
        r = await admin.patch(url, json={"username": "agent-one", "password": "new-password"})
        assert r.status_code == 200 and r.json()["username"] == "agent-one"
        assert (await admin.patch(url, json={})).json() == r.json()
        # A new password ends the agent's sessions.
        async with client(server, old_token) as stale:
            assert (await stale.get("/api/v1/me")).status_code == 401
        async with httpx.AsyncClient(base_url=server.http) as c:
            login_as = {"shop": kit.slug, "username": "agent-one"}
            assert (
                await c.post("/api/v1/auth/login", json=login_as | {"password": PASSWORD})
            ).status_code == 401
            assert (
                await c.post("/api/v1/auth/login", json=login_as | {"password": "new-password"})
            ).status_code == 200
        # ...but an admin changing their own password stays logged in on this session.
        r = await admin.patch(
            f"/api/v1/agents/{await admin_id(admin)}", json={"password": "admin-new-pw"}
        )
        assert r.status_code == 200 and (await admin.get("/api/v1/me")).status_code == 200
    await ws.close()


async def admin_id(c: httpx.AsyncClient) -> str:
    return str((await c.get("/api/v1/me")).json()["id"])


async def test_agents_of_other_shops_are_not_found(server, kit):
    rival = await make_shop(server.ctx.db, agents=(("agent1", "agent", ("general",)),))
    async with await as_(server, rival, "admin") as admin:
        for agent_id in (kit.agents["agent1"], "no-such-agent"):
            r = await admin.patch(f"/api/v1/agents/{agent_id}", json={"max_concurrent": 50})
            assert r.status_code == 404 and error_code(r) == "not_found"
        assert {a["id"] for a in (await admin.get("/api/v1/agents")).json()}.isdisjoint(
            kit.agents.values()
        )
    async with await as_(server, kit, "admin") as admin:
        r = await admin.get("/api/v1/agents")
        assert next(a for a in r.json() if a["username"] == "agent1")["max_concurrent"] == 5


async def test_the_shop_keeps_its_last_admin(server, kit):
    async with await as_(server, kit, "admin") as admin:
        me = await admin_id(admin)
        r = await admin.patch(f"/api/v1/agents/{me}", json={"role": "supervisor"})
        assert r.status_code == 409 and error_code(r) == "last_admin"
        # With a second admin, the first may step down.
        r = await admin.patch(f"/api/v1/agents/{kit.agents['sup']}", json={"role": "admin"})
        assert r.status_code == 200
        assert (
            await admin.patch(f"/api/v1/agents/{me}", json={"role": "supervisor"})
        ).status_code == 200
        # Now a supervisor: no more agent management.
        assert (await admin.post("/api/v1/agents", json=new_agent())).status_code == 403


async def test_concurrent_adds_of_one_username_make_one_agent(server, kit):
    async with await as_(server, kit, "admin") as admin:
        results = await asyncio.gather(
            *(admin.post("/api/v1/agents", json=new_agent("twin")) for _ in range(4))
        )
        assert sorted(r.status_code for r in results) == [201, 409, 409, 409]
        assert [a["username"] for a in (await admin.get("/api/v1/agents")).json()].count(
            "twin"
        ) == 1


async def test_queues_are_listed_to_any_agent_and_added_by_the_admin(server, kit, connect):
    await online_agent(server, kit, "agent1", connect)
    async with await as_(server, kit, "admin") as admin:
        r = await admin.post("/api/v1/queues", json={"name": "jewelry"})
        assert r.status_code == 201 and r.json() == {
            "name": "jewelry",
            "overflow_after_s": 120,
            "waiting": 0,
            "agents_online": 0,
            "longest_wait_s": 0,
        }
        r = await admin.post("/api/v1/queues", json={"name": "家电", "overflow_after_s": 0})
        assert r.status_code == 201 and r.json()["overflow_after_s"] == 0
        dup = await admin.post("/api/v1/queues", json={"name": "jewelry", "overflow_after_s": 30})
        assert dup.status_code == 409 and error_code(dup) == "queue_exists"
        for bad, code in (
            ({"name": ""}, "bad_queue"),
            ({"name": "x" * 65}, "bad_queue"),
            ({"name": " padded"}, "bad_queue"),
            ({"name": "ok", "overflow_after_s": -1}, "bad_overflow"),
            ({"name": "ok", "overflow_after_s": 3601}, "bad_overflow"),
            ({"name": "ok", "overflow_after_s": "60"}, "invalid"),
            ({}, "invalid"),
        ):
            r = await admin.post("/api/v1/queues", json=bad)
            assert r.status_code == 422 and error_code(r) == code, (bad, r.text)
        r = await admin.patch("/api/v1/queues/elderly", json={"overflow_after_s": 60})
        assert r.status_code == 200 and r.json()["overflow_after_s"] == 60
        assert (
            await admin.patch("/api/v1/queues/elderly", json={"overflow_after_s": 9999})
        ).status_code == 422
        assert (
            await admin.patch("/api/v1/queues/nowhere", json={"overflow_after_s": 9})
        ).status_code == 404
    # Two buyers wait in `elderly` with nobody serving it; agent1 serves `general` and is online.
    for sub in ("elder-1", "elder-2"):
        b = await buyer(server, kit, connect, sub, age=70)
        await b.send({"type": "message.send", "client_msg_id": "m", "body": "在吗"})
        await b.expect("conversation.queued")
    server.clock.advance(seconds=95)
    for username in ("agent1", "sup"):
        async with await as_(server, kit, username) as c:
            r = await c.get("/api/v1/queues")
            assert r.status_code == 200
            waited = {q["name"]: q.pop("longest_wait_s") for q in r.json() if "longest_wait_s" in q}
            assert 95 <= waited.pop("elderly") <= 100 and set(waited.values()) == {0}
            assert {
                q["name"]: {k: v for k, v in q.items() if k != "longest_wait_s"} for q in r.json()
            } == {
                "elderly": {
                    "name": "elderly",
                    "overflow_after_s": 60,
                    "waiting": 2,
                    "agents_online": 0,
                },
                "general": {
                    "name": "general",
                    "overflow_after_s": 120,
                    "waiting": 0,
                    "agents_online": 1,
                },
                "jewelry": {
                    "name": "jewelry",
                    "overflow_after_s": 120,
                    "waiting": 0,
                    "agents_online": 0,
                },
                "家电": {"name": "家电", "overflow_after_s": 0, "waiting": 0, "agents_online": 0},
            }
            assert (await c.post("/api/v1/queues", json={"name": "fresh"})).status_code == 403
            assert (
                await c.patch("/api/v1/queues/general", json={"overflow_after_s": 1})
            ).status_code == 403
    rival = await make_shop(server.ctx.db, agents=())
    async with await as_(server, rival, "admin") as c:
        assert [q["name"] for q in (await c.get("/api/v1/queues")).json()] == ["elderly", "general"]
        assert (
            await c.patch("/api/v1/queues/jewelry", json={"overflow_after_s": 1})
        ).status_code == 404


async def test_concurrent_adds_of_one_queue_make_one_queue(server, kit):
    async with await as_(server, kit, "admin") as admin:
        results = await asyncio.gather(
            *(admin.post("/api/v1/queues", json={"name": "fresh"}) for _ in range(4))
        )
        assert sorted(r.status_code for r in results) == [201, 409, 409, 409]


async def test_the_category_map_is_replaced_whole_and_routes_buyers(server, kit, connect):
    async with await as_(server, kit, "admin") as admin:
        assert (await admin.get("/api/v1/routing/categories")).json() == {}
        await admin.post("/api/v1/queues", json={"name": "jewelry"})
        await admin.post("/api/v1/queues", json={"name": "appliances"})
        r = await admin.put(
            "/api/v1/routing/categories", json={"珠宝": "jewelry", "家电": "appliances"}
        )
        assert r.status_code == 200 and r.json() == {"家电": "appliances", "珠宝": "jewelry"}
        bad = await admin.put(
            "/api/v1/routing/categories", json={"珠宝": "jewelry", "生鲜": "fresh"}
        )
        assert bad.status_code == 422 and error_code(bad) == "unknown_queue"
        for body, code in (
            ({"": "jewelry"}, "bad_category"),
            ({"珠宝": 3}, "unknown_queue"),
            (["珠宝"], "invalid"),
            ({str(i): "general" for i in range(501)}, "too_many"),
        ):
            r = await admin.put("/api/v1/routing/categories", json=body)
            assert r.status_code == 422 and error_code(r) == code, r.text
        assert (await admin.get("/api/v1/routing/categories")).json() == {
            "家电": "appliances",
            "珠宝": "jewelry",
        }
        r = await admin.put("/api/v1/routing/categories", json={"珠宝": "jewelry"})
        assert r.json() == {"珠宝": "jewelry"}
        # An agent added through the API to the skill queue gets the jewelry buyer.
        added = await admin.post("/api/v1/agents", json=new_agent("gem", queues=["jewelry"]))
        gem_id = added.json()["id"]
    async with await as_(server, kit, "agent1") as agent:
        assert (await agent.get("/api/v1/routing/categories")).json() == {"珠宝": "jewelry"}
        r = await agent.put("/api/v1/routing/categories", json={})
        assert r.status_code == 403
    async with await as_(server, kit, "sup") as sup:
        assert (await sup.put("/api/v1/routing/categories", json={})).status_code == 403
    rival = await make_shop(server.ctx.db, agents=())
    async with await as_(server, rival, "admin") as c:
        assert (await c.get("/api/v1/routing/categories")).json() == {}
        r = await c.put(
            "/api/v1/routing/categories", json={"珠宝": "jewelry"}
        )  # not a queue of theirs
        assert r.status_code == 422 and error_code(r) == "unknown_queue"

    token = await login_with(server, kit, "gem", "s3cret-pw")
    gem = await connect(f"{server.ws}/ws/agent?token={token}")
    await gem.expect("hello")
    await gem.send({"type": "agent.status", "status": "online"})
    await gem.expect("agent.status")
    b = await buyer(server, kit, connect, "ring-buyer")
    card = {"product_id": "p-1", "title": "18K 金戒指", "category": "珠宝", "price_cents": 199900}
    await b.send(
        {
            "type": "message.send",
            "client_msg_id": "m",
            "body": "有货吗",
            "kind": "product_card",
            "payload": card,
        }
    )
    conv = (await gem.expect("conversation.assigned"))["conversation"]
    assert (conv["queue"], conv["agent_id"]) == ("jewelry", gem_id)


async def login_with(server, kit, username: str, password: str) -> str:
    async with httpx.AsyncClient(base_url=server.http) as c:
        r = await c.post(
            "/api/v1/auth/login",
            json={"shop": kit.slug, "username": username, "password": password},
        )
        r.raise_for_status()
        return str(r.json()["token"])


async def test_more_room_or_a_new_queue_serves_waiting_buyers(server, connect):
    kit = await make_shop(
        server.ctx.db, agents=(("solo", "agent", ("general",)),), max_concurrent=1
    )
    solo = await online_agent(server, kit, "solo", connect)
    first = await buyer(server, kit, connect, "first")
    await first.send({"type": "message.send", "client_msg_id": "m", "body": "一"})
    await solo.expect("conversation.assigned")
    second = await buyer(server, kit, connect, "second")
    await second.send({"type": "message.send", "client_msg_id": "m", "body": "二"})
    await second.expect("conversation.queued")
    elder = await buyer(server, kit, connect, "elder", age=80)
    await elder.send({"type": "message.send", "client_msg_id": "m", "body": "三"})
    await elder.expect("conversation.queued")
    async with await as_(server, kit, "admin") as admin:
        r = await admin.patch(f"/api/v1/agents/{kit.agents['solo']}", json={"max_concurrent": 3})
        assert r.status_code == 200
        assert (await solo.expect("conversation.assigned"))["conversation"]["buyer_id"] == "second"
        r = await admin.patch(
            f"/api/v1/agents/{kit.agents['solo']}", json={"queues": ["general", "elderly"]}
        )
        assert r.status_code == 200
        assert (await solo.expect("conversation.assigned"))["conversation"]["buyer_id"] == "elder"
