"""Internal notes (内部备注) over real sockets: stored in the conversation's seq space,
seen by staff, never by the buyer (socket, sync, HTTP), @mentions, metrics, two nodes."""

from __future__ import annotations

import asyncio
import json
import secrets

import httpx
import pytest

from tests.conftest import buyer, online_agent
from tests.support.client import WSClient
from tests.support.factories import login, make_shop

STAFF = (
    ("agent1", "agent", ("general",)),
    ("agent2", "agent", ()),
    ("sup", "supervisor", ()),
)
SECRET = "内部备注:这位买家上次投诉过"


async def staff_shop(server):
    return await make_shop(server.ctx.db, agents=STAFF)


async def chat(server, kit, connect, sub):
    """agent1 online serving `sub`'s new conversation; both sockets past the opening."""
    agent = await online_agent(server, kit, "agent1", connect)
    b = await buyer(server, kit, connect, sub)
    await b.send({"type": "message.send", "client_msg_id": "q1", "body": "你好,发货了吗"})
    conv_id = (await b.expect("message.ack"))["message"]["conversation_id"]
    await agent.expect("conversation.assigned")
    await agent.expect("message.new")
    await b.expect("conversation.assigned")
    return agent, b, conv_id


async def staff_socket(server, kit, username, connect) -> WSClient:
    token = await login(server.http, kit, username)
    ws = await connect(f"{server.ws}/ws/agent?token={token}")
    await ws.expect("hello")
    return ws


async def note(agent: WSClient, conv_id: str, body: str, cid: str | None = None) -> dict:
    cid = cid or f"n-{secrets.token_hex(3)}"
    await agent.send(
        {
            "type": "message.send",
            "conversation_id": conv_id,
            "client_msg_id": cid,
            "kind": "note",
            "body": body,
        }
    )
    ack = await agent.expect("message.ack", lambda f: f["client_msg_id"] == cid)
    return ack["message"]


async def reply(agent: WSClient, conv_id: str, body: str) -> dict:
    cid = f"r-{secrets.token_hex(3)}"
    await agent.send(
        {"type": "message.send", "conversation_id": conv_id, "client_msg_id": cid, "body": body}
    )
    return (await agent.expect("message.ack", lambda f: f["client_msg_id"] == cid))["message"]


def raw(client: WSClient) -> str:
    return json.dumps(client.frames, ensure_ascii=False)


def buyer_connection(server, kit, sub):
    [conn] = [
        c
        for c in server.ctx.hub.connections
        if c.kind == "buyer" and c.identity.shop_id == kit.shop_id and c.identity.buyer_id == sub
    ]
    return conn


async def test_a_note_is_sequenced_with_the_chat_and_never_reaches_the_buyers_socket(
    server, connect
):
    kit = await staff_shop(server)
    agent, b, conv_id = await chat(server, kit, connect, "b-live")
    n = await note(agent, conv_id, SECRET)
    assert (n["seq"], n["kind"], n["sender"], n["body"]) == (2, "note", "agent", SECRET)
    r = await reply(agent, conv_id, "已经发货了")
    assert r["seq"] == 3
    got = await b.expect("message.new")
    assert got["message"]["seq"] == 3
    # Past the server's gap-fill delay: the buyer's socket counted seq 2 as passed
    # (nothing written for it), so its track has no gap and nothing more is sent.
    await asyncio.sleep(server.ctx.settings.gap_fill_s + 0.4)
    await b.drain(0.3)
    track = buyer_connection(server, kit, "b-live").tracks[conv_id]
    assert track.upto == 3 and not track.has_gap
    assert [m["seq"] for m in b.new_messages(conv_id)] == [3]
    assert SECRET not in raw(b) and '"note"' not in raw(b)
    # The buyer's next message follows on, and the agent had the note live... once.
    await b.send({"type": "message.send", "client_msg_id": "q2", "body": "好的谢谢"})
    assert (await b.expect("message.ack"))["message"]["seq"] == 4
    assert (await agent.expect("message.new"))["message"]["seq"] == 4


async def test_the_buyers_sync_and_http_history_leave_notes_out_and_sync_says_how_far(
    server, connect
):
    kit = await staff_shop(server)
    agent, b, conv_id = await chat(server, kit, connect, "b-sync")
    await note(agent, conv_id, SECRET)  # 2
    await reply(agent, conv_id, "亲,在的")  # 3
    await note(agent, conv_id, SECRET + "(二)")  # 4, the last: sync must still reach it
    # Sync from the start on the buyer's socket.
    await b.send({"type": "sync", "conversation_id": conv_id, "after_seq": 0})
    done = await b.expect("sync.done")
    assert done == {"type": "sync.done", "conversation_id": conv_id, "upto": 4}
    # (seq 1, the buyer's own, came as its ack on this socket: a sync does not resend it.)
    assert sorted({m["seq"] for m in b.new_messages(conv_id)}) == [3]
    assert SECRET not in raw(b)
    # Over HTTP: the buyer's history has no note; the agent's has both.
    async with httpx.AsyncClient(base_url=server.http) as c:
        url = f"/api/v1/conversations/{conv_id}/messages"
        mine = await c.get(url, headers={"Authorization": f"Bearer {kit.buyer_token('b-sync')}"})
        assert mine.status_code == 200
        assert [(m["seq"], m["kind"]) for m in mine.json()] == [(1, "text"), (3, "text")]
        assert SECRET not in mine.text
        paged = await c.get(
            url,
            params={"after_seq": 1, "limit": 1},
            headers={"Authorization": f"Bearer {kit.buyer_token('b-sync')}"},
        )
        assert [m["seq"] for m in paged.json()] == [3]
        staff = await c.get(
            url, headers={"Authorization": f"Bearer {await login(server.http, kit, 'agent1')}"}
        )
        assert [(m["seq"], m["kind"]) for m in staff.json()] == [
            (1, "text"),
            (2, "note"),
            (3, "text"),
            (4, "note"),
        ]


async def test_a_reconnecting_buyer_resumes_across_notes(server, connect):
    kit = await staff_shop(server)
    agent, b, conv_id = await chat(server, kit, connect, "b-back")
    await reply(agent, conv_id, "第一句")  # 2
    await b.expect("message.new")
    await b.close()
    # While the buyer is away: a note between two replies.
    await note(agent, conv_id, SECRET)  # 3
    await reply(agent, conv_id, "第二句")  # 4
    await note(agent, conv_id, SECRET)  # 5
    back = await buyer(server, kit, connect, "b-back")
    assert back.frames[0]["conversation"]["last_seq"] == 5
    await back.send({"type": "sync", "conversation_id": conv_id, "after_seq": 2})
    done = await back.expect("sync.done")
    assert done["upto"] == 5
    assert [m["seq"] for m in back.new_messages(conv_id)] == [4]
    # Live again: the next reply arrives at once and leaves no gap on the server side.
    await reply(agent, conv_id, "第三句")  # 6
    assert await back.expect("message.new", lambda f: f["message"]["seq"] == 6)
    track = buyer_connection(server, kit, "b-back").tracks[conv_id]
    assert track.upto == 6 and not track.has_gap
    # A sync from where the buyer now is sends nothing more.
    await back.send({"type": "sync", "conversation_id": conv_id, "after_seq": 6})
    assert (await back.expect("sync.done"))["upto"] == 6
    assert [m["seq"] for m in back.new_messages(conv_id)] == [4, 6]
    assert SECRET not in raw(back)


async def test_a_resent_note_is_the_same_note_and_still_not_the_buyers(server, connect):
    kit = await staff_shop(server)
    agent, b, conv_id = await chat(server, kit, connect, "b-resend")
    first = await note(agent, conv_id, SECRET, cid="same")
    again = await note(agent, conv_id, SECRET, cid="same")
    assert again["id"] == first["id"] and again["seq"] == 2
    await reply(agent, conv_id, "好的")
    await b.expect("message.new")
    await b.drain(0.3)
    assert SECRET not in raw(b)


async def test_a_mention_notifies_that_colleague_only(server, connect):
    kit = await staff_shop(server)
    agent, b, conv_id = await chat(server, kit, connect, "b-at")
    colleague = await staff_socket(server, kit, "agent2", connect)
    sup = await staff_socket(server, kit, "sup", connect)
    n = await note(agent, conv_id, "@agent2 客服 帮忙看下这个退款, @agent1 自己不算")
    assert n["payload"] == {"mentions": [kit.agents["agent2"]]}
    got = await colleague.expect("note.mention")
    assert got["conversation_id"] == conv_id and got["message"]["id"] == n["id"]
    assert got["by"]["username"] == "agent1" and got["buyer_name"] == "测试买家"
    # By display name, without a space after a Chinese name.
    n2 = await note(agent, conv_id, "请@sup 客服看看")
    assert n2["payload"] == {"mentions": [kit.agents["sup"]]}
    assert (await sup.expect("note.mention"))["message"]["id"] == n2["id"]
    await colleague.drain(0.3)
    assert len(colleague.of_type("note.mention")) == 1
    assert not agent.of_type("note.mention")
    await b.drain(0.2)
    assert "note" not in {f["type"] for f in b.frames} and "帮忙" not in raw(b)


async def test_who_may_write_a_note(server, connect):
    kit = await staff_shop(server)
    agent, b, conv_id = await chat(server, kit, connect, "b-who")
    other = await staff_socket(server, kit, "agent2", connect)
    frame = {
        "type": "message.send",
        "conversation_id": conv_id,
        "client_msg_id": "x1",
        "kind": "note",
        "body": "看看",
    }
    await other.send(frame)
    assert (await other.expect("error"))["code"] == "forbidden"
    sup = await staff_socket(server, kit, "sup", connect)
    by_sup = await note(sup, conv_id, "主管备注")
    assert by_sup["kind"] == "note"
    # The serving agent hears the supervisor's note live; the buyer does not.
    assert (await agent.expect("message.new"))["message"]["id"] == by_sup["id"]
    # A buyer cannot send a note, and an empty note is refused.
    await b.send({"type": "message.send", "client_msg_id": "bn", "kind": "note", "body": "hi"})
    assert (await b.expect("error"))["code"] == "bad_frame"
    await agent.send({**frame, "client_msg_id": "empty", "body": "  "})
    assert (await agent.expect("error"))["code"] == "bad_frame"
    await agent.send({"type": "conversation.close", "conversation_id": conv_id})
    await agent.expect("conversation.closed")
    await agent.send({**frame, "client_msg_id": "late"})
    assert (await agent.expect("error"))["code"] == "conversation_closed"


async def test_notes_are_not_replies_for_the_metrics(server, connect):
    kit = await staff_shop(server)
    agent, _b, conv_id = await chat(server, kit, connect, "b-metrics")
    await note(agent, conv_id, "先查一下物流")
    async with httpx.AsyncClient(base_url=server.http) as c:
        c.headers["Authorization"] = f"Bearer {await login(server.http, kit, 'sup')}"
        rows = (await c.get("/api/v1/metrics/agents")).json()
        [row] = [r for r in rows if r["agent_id"] == kit.agents["agent1"]]
        # The buyer's question is still unanswered: a note is no reply.
        assert row["reply_3min_rate"] == 0.0 and row["avg_first_response_s"] is None
        await reply(agent, conv_id, "已发货")
        rows = (await c.get("/api/v1/metrics/agents")).json()
        [row] = [r for r in rows if r["agent_id"] == kit.agents["agent1"]]
        assert row["reply_3min_rate"] == 1.0 and row["avg_first_response_s"] is not None


async def test_notes_and_mentions_on_two_nodes(start_server, redis_url, connect):
    env = {"REDIS_URL": redis_url, "HOMING_BUS_CHANNEL": f"homing:test:{secrets.token_hex(4)}"}
    node1 = await start_server(run_jobs=False, **env)
    node2 = await start_server(run_jobs=False, **env)
    kit = await make_shop(node1.ctx.db, agents=STAFF)
    agent = await online_agent(node1, kit, "agent1", connect)
    colleague = await staff_socket(node2, kit, "agent2", connect)
    b = await buyer(node2, kit, connect, "b-nodes")
    await b.send({"type": "message.send", "client_msg_id": "q1", "body": "在吗"})
    conv_id = (await b.expect("message.ack"))["message"]["conversation_id"]
    await agent.expect("conversation.assigned")
    n = await note(agent, conv_id, "@agent2 这单你跟进一下")
    mention = await colleague.expect("note.mention")
    assert mention["message"]["id"] == n["id"]
    r = await reply(agent, conv_id, "在的")
    assert (await b.expect("message.new"))["message"]["seq"] == r["seq"] == 3
    await b.send({"type": "sync", "conversation_id": conv_id, "after_seq": 0})
    assert (await b.expect("sync.done"))["upto"] == 3
    await b.drain(0.3)
    assert "跟进" not in raw(b)
    assert sorted({m["seq"] for m in b.new_messages(conv_id)}) == [3]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@bob 看下", ["b"]),
        ("@bobby 看下", []),
        ("@Bob,看下", ["b"]),
        ("请@小王看下", ["w"]),
        ("@me 自己", []),
        ("没有提到谁", []),
        ("@bob @小王", ["b", "w"]),
        ("email bob@bob.com", []),
    ],
)
def test_mention_rules(text, expected):
    from app.notes.rules import Colleague, mentioned

    team = [
        Colleague("me", "me", "我"),
        Colleague("b", "bob", "Bobby B"),
        Colleague("w", "wang", "小王"),
    ]
    assert mentioned(text, team, "me") == expected
