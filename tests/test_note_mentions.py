"""Mentions that wait: each @mention in an internal note is stored (one per note and
colleague) until read, so a colleague offline when named finds it later; only the named
colleague of the same shop reads or marks it. Real server, real sockets, both databases."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from app.notes.models import NoteMention
from tests.support.factories import login, make_shop
from tests.support.passwords import cheap_password_hashing  # noqa: F401  (fixture)
from tests.test_notes import STAFF, chat, note, staff_socket

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")


def api(server, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.http, headers={"Authorization": f"Bearer {token}"})


async def stored(server, message_id: str) -> int:
    async with server.ctx.db.read() as s:
        found = await s.execute(
            select(func.count())
            .select_from(NoteMention)
            .where(NoteMention.message_id == message_id)  # type: ignore[arg-type]
        )
        return int(found.scalar() or 0)


async def test_a_colleague_offline_when_mentioned_finds_it_after_logging_in(server, connect):
    kit = await make_shop(server.ctx.db, agents=STAFF)
    agent, _b, conv_id = await chat(server, kit, connect, "b-wait")
    sup = await staff_socket(server, kit, "sup", connect)  # connected; agent2 is not
    body = "@agent2 @sup 这位买家第二次退款了 <b>看下</b>"
    n = await note(agent, conv_id, body, cid="n-wait")
    live = await sup.expect("note.mention")
    assert set(n["payload"]["mentions"]) == {kit.agents["agent2"], kit.agents["sup"]}
    # A resend of the same note is the same note: it stores no second mention.
    again = await note(agent, conv_id, body, cid="n-wait")
    assert again["id"] == n["id"] and await stored(server, n["id"]) == 2

    # agent2 logs in later: the mention waits for them.
    async with api(server, await login(server.http, kit, "agent2")) as c:
        [m] = (await c.get("/api/v1/mentions")).json()
        assert m["conversation_id"] == conv_id and m["buyer_id"] == "b-wait"
        assert m["buyer_name"] == "测试买家" and m["read_at"] is None
        assert (m["by"]["id"], m["by"]["username"]) == (kit.agents["agent1"], "agent1")
        assert (m["message"]["id"], m["message"]["kind"], m["message"]["body"]) == (
            n["id"],
            "note",
            body,
        )
        assert m["mention_id"] != live["mention_id"]  # each colleague has their own
        read = await c.post(f"/api/v1/mentions/{m['mention_id']}/read")
        assert read.status_code == 204
        assert (await c.get("/api/v1/mentions")).json() == []
        [seen] = (await c.get("/api/v1/mentions", params={"unread": "false"})).json()
        assert seen["mention_id"] == m["mention_id"] and seen["read_at"] is not None
        assert (await c.post(f"/api/v1/mentions/{m['mention_id']}/read")).status_code == 204

    # The one connected then got it live, with the id of their stored mention.
    async with api(server, await login(server.http, kit, "sup")) as c:
        [mine] = (await c.get("/api/v1/mentions")).json()
        assert mine["mention_id"] == live["mention_id"]
        assert mine["message"] == live["message"]


async def test_nobody_else_reads_or_marks_a_mention(server, connect):
    kit = await make_shop(server.ctx.db, agents=STAFF)
    other = await make_shop(server.ctx.db, agents=STAFF)  # same usernames, another shop
    agent, _b, conv_id = await chat(server, kit, connect, "b-private")
    await note(agent, conv_id, "@agent2 内部:别告诉买家")
    async with api(server, await login(server.http, kit, "agent2")) as c:
        [m] = (await c.get("/api/v1/mentions")).json()
    mention_url = f"/api/v1/mentions/{m['mention_id']}/read"
    async with api(server, await login(server.http, other, "agent2")) as c:
        assert (await c.get("/api/v1/mentions", params={"unread": "false"})).json() == []
        refused = await c.post(mention_url)
        assert refused.status_code == 404
    # A colleague of the same shop who was not named: not theirs either.
    async with api(server, await login(server.http, kit, "sup")) as c:
        assert (await c.get("/api/v1/mentions")).json() == []
        assert (await c.post(mention_url)).status_code == 404
    # Still unread for agent2; a buyer token is no agent.
    async with api(server, await login(server.http, kit, "agent2")) as c:
        assert [x["mention_id"] for x in (await c.get("/api/v1/mentions")).json()] == [
            m["mention_id"]
        ]
    async with api(server, kit.buyer_token("b-private")) as c:
        assert (await c.get("/api/v1/mentions")).status_code == 401
