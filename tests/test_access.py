"""Who may see what: buyers only their own conversations, agents only their own shop's."""

from __future__ import annotations

import httpx

from tests.conftest import buyer, online_agent
from tests.support.factories import PASSWORD, login, make_shop


async def chat_with(server, kit, connect, sub):
    agent = await online_agent(server, kit, "agent1", connect)
    b = await buyer(server, kit, connect, sub)
    await b.send({"type": "message.send", "client_msg_id": "m", "body": f"{sub} 的私事"})
    ack = await b.expect("message.ack")
    await agent.expect("conversation.assigned")
    return agent, b, ack["message"]["conversation_id"]


async def test_a_buyer_cannot_read_another_buyers_conversation(server, shop, connect):
    _, _, conv_id = await chat_with(server, shop, connect, "alice-buyer")
    nosy = await buyer(server, shop, connect, "mallory")
    await nosy.send({"type": "sync", "conversation_id": conv_id, "after_seq": 0})
    assert (await nosy.expect("error"))["code"] == "not_found"
    await nosy.send({"type": "read", "conversation_id": conv_id, "seq": 1})
    assert (await nosy.expect("error"))["code"] == "not_found"
    await nosy.send({"type": "typing", "conversation_id": conv_id})
    assert (await nosy.expect("error"))["code"] == "not_found"
    assert not nosy.of_type("message.new")
    async with httpx.AsyncClient(base_url=server.http) as c:
        url = f"/api/v1/conversations/{conv_id}/messages"
        assert (await c.get(url)).status_code == 401
        r = await c.get(url, headers={"Authorization": f"Bearer {shop.buyer_token('mallory')}"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        own = await c.get(
            url, headers={"Authorization": f"Bearer {shop.buyer_token('alice-buyer')}"}
        )
        assert own.status_code == 200 and [m["body"] for m in own.json()] == ["alice-buyer 的私事"]


async def test_an_agent_cannot_see_another_shops_conversations(server, shop, connect):
    _, _, conv_id = await chat_with(server, shop, connect, "loyal")
    rival = await make_shop(
        server.ctx.db,
        agents=(("agent1", "agent", ("general",)), ("boss", "supervisor", ("general",))),
    )
    for username in ("agent1", "boss", "admin"):
        token = await login(server.http, rival, username)
        async with httpx.AsyncClient(
            base_url=server.http, headers={"Authorization": f"Bearer {token}"}
        ) as c:
            r = await c.get(f"/api/v1/conversations/{conv_id}/messages")
            assert r.status_code == 404, username
            listed = await c.get("/api/v1/conversations", params={"status": "assigned"})
            assert conv_id not in {x["id"] for x in listed.json()}
        a = await connect(f"{server.ws}/ws/agent?token={token}")
        await a.expect("hello")
        for frame in (
            {"type": "sync", "conversation_id": conv_id, "after_seq": 0},
            {
                "type": "message.send",
                "conversation_id": conv_id,
                "client_msg_id": "x",
                "body": "偷看",
            },
            {"type": "conversation.close", "conversation_id": conv_id},
        ):
            await a.send(frame)
            assert (await a.expect("error"))["code"] == "not_found"


async def test_an_agent_cannot_reply_in_a_colleagues_conversation(server, connect):
    kit = await make_shop(
        server.ctx.db,
        agents=(
            ("agent1", "agent", ("general",)),
            ("agent2", "agent", ("elderly",)),
            ("sup", "supervisor", ()),
        ),
    )
    _, _, conv_id = await chat_with(server, kit, connect, "someone")
    colleague = await online_agent(server, kit, "agent2", connect)
    await colleague.send(
        {"type": "message.send", "conversation_id": conv_id, "client_msg_id": "x", "body": "插话"}
    )
    assert (await colleague.expect("error"))["code"] == "forbidden"
    # A supervisor may read the shop's conversations.
    token = await login(server.http, kit, "sup")
    async with httpx.AsyncClient(
        base_url=server.http, headers={"Authorization": f"Bearer {token}"}
    ) as c:
        assert (await c.get(f"/api/v1/conversations/{conv_id}/messages")).status_code == 200
        assert conv_id in {x["id"] for x in (await c.get("/api/v1/conversations")).json()}
    agent1 = await login(server.http, kit, "agent1")
    async with httpx.AsyncClient(
        base_url=server.http, headers={"Authorization": f"Bearer {agent1}"}
    ) as c:
        mine = (await c.get("/api/v1/conversations")).json()
        assert [x["id"] for x in mine] == [conv_id] and mine[0]["agent_name"] == "agent1 客服"
        bad = await c.get("/api/v1/conversations", params={"status": "weird"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_request"


async def test_login_is_throttled_per_account_and_address(server, shop):
    async with httpx.AsyncClient(base_url=server.http) as c:
        body = {"shop": shop.slug, "username": "agent1", "password": "wrong"}
        for _ in range(5):
            r = await c.post("/api/v1/auth/login", json=body)
            assert r.status_code == 401 and r.json()["error"]["code"] == "bad_credentials"
        r = await c.post("/api/v1/auth/login", json={**body, "password": PASSWORD})
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
        # Another account from the same address is not locked out.
        r = await c.post(
            "/api/v1/auth/login", json={**body, "username": "admin", "password": PASSWORD}
        )
        assert r.status_code == 200
        # Five minutes later the account may try again.
        server.clock.advance(seconds=301)
        r = await c.post("/api/v1/auth/login", json={**body, "password": PASSWORD})
        assert r.status_code == 200 and r.json()["agent"]["username"] == "agent1"


async def test_login_session_cookie_and_logout(server, shop):
    async with httpx.AsyncClient(base_url=server.http) as c:
        r = await c.post(
            "/api/v1/auth/login",
            json={"shop": shop.slug, "username": "agent1", "password": PASSWORD},
        )
        assert r.status_code == 200 and "homing_session" in r.cookies
        assert set(r.json()["agent"]) == {"id", "username", "display_name", "role"}
        assert (await c.get("/api/v1/me")).json()["username"] == "agent1"  # by cookie
        # A state change by cookie needs the session's CSRF token (tests/test_security.py).
        logout = await c.post(
            "/api/v1/auth/logout", headers={"X-CSRF-Token": r.json()["csrf_token"]}
        )
        assert logout.status_code == 200
        c.cookies.clear()
        r2 = await c.get("/api/v1/me", headers={"Authorization": f"Bearer {r.json()['token']}"})
        assert r2.status_code == 401


async def test_bad_request_bodies_get_clear_errors(server):
    async with httpx.AsyncClient(base_url=server.http) as c:
        r = await c.post("/api/v1/auth/login", json={"shop": "x"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid"
        assert "username" in r.json()["error"]["message"]
        r = await c.get("/api/v1/nowhere")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_healthz(server):
    async with httpx.AsyncClient(base_url=server.http) as c:
        body = (await c.get("/healthz")).json()
    assert body["ok"] is True and body["bus"] == "memory" and body["db"] in ("sqlite", "postgresql")
