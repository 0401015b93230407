"""Chat core over real sockets: durable acks, gap-free sequences, idempotent sends, resume."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import func, select

from app.chat import actions as chat_actions
from app.chat import appender as appender_module
from app.chat.models import Conversation, Message
from tests.conftest import buyer, online_agent
from tests.support.factories import login, make_shop


async def open_chat(server, kit, connect, sub="b-1"):
    """An online agent and a buyer whose conversation is assigned to them."""
    agent = await online_agent(server, kit, "agent1", connect)
    b = await buyer(server, kit, connect, sub)
    await b.send({"type": "message.send", "client_msg_id": f"{sub}-open", "body": "你好"})
    await b.expect("message.ack")
    conv = (await agent.expect("conversation.assigned"))["conversation"]
    await agent.expect("message.new")
    await b.expect("conversation.assigned")
    return agent, b, conv["id"]


async def stored(db, conv_id):
    async with db.read() as s:
        rows = await s.execute(
            select(Message).where(Message.conversation_id == conv_id).order_by(Message.seq)
        )
        return list(rows.scalars())


async def test_ack_comes_after_the_message_is_stored(server, shop, connect):
    _agent, b, conv_id = await open_chat(server, shop, connect)
    await b.send(
        {"type": "message.send", "client_msg_id": "durable-1", "body": "订单什么时候发货?"}
    )
    ack = await b.expect("message.ack")
    # Read through a separate database session the moment the ack arrives.
    msgs = await stored(server.ctx.db, conv_id)
    assert ack["message"]["id"] in {m.id for m in msgs}
    assert ack["message"]["seq"] == 2 and ack["client_msg_id"] == "durable-1"


def fail_group_commit_after_store(monkeypatch):
    """Make every group-committed batch take its seqs and then fail (so it rolls back)."""
    real_plan = appender_module._plan

    def plan_then_fail(*args, **kwargs):  # SQLite: the appender runs the statements
        yield from real_plan(*args, **kwargs)
        raise RuntimeError("disk full")

    monkeypatch.setattr(appender_module, "_plan", plan_then_fail)
    # PostgreSQL: the function stores the batch, then the same statement fails on its rows.
    monkeypatch.setattr(
        appender_module,
        "_PG_APPEND",
        (
            "WITH stored AS (" + appender_module._PG_APPEND + ") "
            "SELECT out_index / (out_index - out_index), out_seq, out_agent_id, out_buyer_id FROM stored"
        ),
    )


async def test_no_ack_when_the_store_fails(server, shop, connect, monkeypatch):
    agent, b, conv_id = await open_chat(server, shop, connect)
    real_append = chat_actions.append_message

    async def append_then_fail(uow, conv, **kw):
        await real_append(uow, conv, **kw)
        raise RuntimeError("disk full")  # the transaction must roll back

    # Both ways a message is stored fail: the group commit and the full path after it.
    with monkeypatch.context() as patch:
        patch.setattr(chat_actions, "append_message", append_then_fail)
        fail_group_commit_after_store(patch)
        await b.send({"type": "message.send", "client_msg_id": "lost-1", "body": "这条存不进去"})
        err = await b.expect("error")
    assert err["code"] == "internal" and err["ref"] == "lost-1"
    assert [m.client_msg_id for m in await stored(server.ctx.db, conv_id)] == ["b-1-open"]
    assert not [
        f for f in b.frames if f.get("type") == "message.ack" and f["client_msg_id"] == "lost-1"
    ]
    # Nothing was published for the failed message, and the next one takes seq 2.
    await b.send({"type": "message.send", "client_msg_id": "ok-2", "body": "再试一次"})
    assert (await b.expect("message.ack"))["message"]["seq"] == 2
    assert (await agent.expect("message.new"))["message"]["client_msg_id"] == "ok-2"
    assert [m["client_msg_id"] for m in agent.new_messages(conv_id)] == ["b-1-open", "ok-2"]


async def test_a_failed_group_commit_falls_back_to_the_full_path(
    server, shop, connect, monkeypatch
):
    agent, b, conv_id = await open_chat(server, shop, connect)
    before = server.ctx.appender.messages
    with monkeypatch.context() as patch:
        fail_group_commit_after_store(patch)
        await b.send({"type": "message.send", "client_msg_id": "fallback-1", "body": "还在吗"})
        ack = await b.expect("message.ack")
    assert ack["message"]["seq"] == 2
    assert (await agent.expect("message.new"))["message"]["client_msg_id"] == "fallback-1"
    assert [m.client_msg_id for m in await stored(server.ctx.db, conv_id)] == [
        "b-1-open",
        "fallback-1",
    ]
    assert server.ctx.appender.messages == before  # the batch rolled back; the full path stored it
    # And the group commit takes the next one.
    await agent.send(
        {"type": "message.send", "conversation_id": conv_id, "client_msg_id": "a-2", "body": "在的"}
    )
    assert (await agent.expect("message.ack"))["message"]["seq"] == 3
    assert (await b.expect("message.new"))["message"]["client_msg_id"] == "a-2"
    assert server.ctx.appender.messages == before + 1


async def test_sequence_numbers_have_no_gaps_under_concurrent_senders(start_server, connect):
    # These private servers (for their frame rate) run no jobs, as the shared server runs
    # none: the jobs sweep the whole shared database, and the test after one of them twice
    # waited 30 s for SQLite's write lock in a full run ("database is locked").
    srv = await start_server(run_jobs=False, HOMING_FRAMES_PER_SECOND="1000")
    kit = await make_shop(srv.ctx.db)
    agent, tab1, conv_id = await open_chat(srv, kit, connect, sub="busy-buyer")
    tab2 = await buyer(srv, kit, connect, "busy-buyer")  # a second tab of the same buyer
    n = 40

    async def burst(client, who, extra):
        for i in range(n):
            await client.send(
                {
                    "type": "message.send",
                    "client_msg_id": f"{who}-{i}",
                    "body": f"{who} {i}",
                    **extra,
                }
            )

    await asyncio.gather(
        burst(tab1, "tab1", {}),
        burst(tab2, "tab2", {}),
        burst(agent, "agent", {"conversation_id": conv_id}),
    )
    for client in (tab1, tab2, agent):
        for _ in range(n):
            await client.expect("message.ack")
    seqs = [m.seq for m in await stored(srv.ctx.db, conv_id)]
    assert seqs == list(range(1, 3 * n + 2))
    # All went through the group commit, the first (which opened the conversation) too.
    assert srv.ctx.appender.messages == 3 * n + 1
    # Every live copy reached the agent once, in any interleaving, none twice.
    await agent.drain()
    got = [m["seq"] for m in agent.new_messages(conv_id)]
    acked = [f["message"]["seq"] for f in agent.of_type("message.ack")]
    assert sorted(got + acked) == list(range(1, 3 * n + 2))


async def test_resend_with_same_client_msg_id_returns_the_original(server, shop, connect):
    _agent, b, conv_id = await open_chat(server, shop, connect)
    frame = {"type": "message.send", "client_msg_id": "retry-me", "body": "第一次"}
    await b.send(frame)
    first = await b.expect("message.ack")
    await b.send({**frame, "body": "ack 丢了,重发"})
    again = await b.expect("message.ack")
    assert again["message"] == first["message"]
    # A second tab of the same buyer resending is the same message too.
    other_tab = await buyer(server, shop, connect, "b-1")
    await other_tab.send(frame)
    assert (await other_tab.expect("message.ack"))["message"]["id"] == first["message"]["id"]
    async with server.ctx.db.read() as s:
        count = (
            await s.execute(
                select(func.count())
                .select_from(Message)
                .where(Message.conversation_id == conv_id, Message.client_msg_id == "retry-me")
            )
        ).scalar()
    assert count == 1
    assert [m.seq for m in await stored(server.ctx.db, conv_id)] == [1, 2]


async def test_concurrent_resends_store_one_message(start_server, connect):
    srv = await start_server(run_jobs=False, HOMING_FRAMES_PER_SECOND="1000")
    kit = await make_shop(srv.ctx.db)
    _agent, b, conv_id = await open_chat(srv, kit, connect, sub="flaky")
    tabs = [b] + [await buyer(srv, kit, connect, "flaky") for _ in range(4)]
    frame = {"type": "message.send", "client_msg_id": "same-id", "body": "弱网重发"}
    await asyncio.gather(*(t.send(frame) for t in tabs))
    acks = [await t.expect("message.ack") for t in tabs]
    assert len({a["message"]["id"] for a in acks}) == 1
    assert [m.seq for m in await stored(srv.ctx.db, conv_id)] == [1, 2]


async def test_reconnect_and_sync_delivers_exactly_the_missed_messages(server, shop, connect):
    agent, b, conv_id = await open_chat(server, shop, connect, sub="commuter")
    await b.send({"type": "message.send", "client_msg_id": "c-2", "body": "我进地铁了"})
    last_seen = (await b.expect("message.ack"))["message"]["seq"]
    await b.close()
    for i in range(5):
        await agent.send(
            {
                "type": "message.send",
                "conversation_id": conv_id,
                "client_msg_id": f"while-away-{i}",
                "body": f"您离开时的第 {i} 条",
            }
        )
        await agent.expect("message.ack")
    back = await connect(f"{server.ws}/ws/buyer?token={shop.buyer_token('commuter')}")
    hello = await back.expect("hello")
    assert (
        hello["conversation"]["id"] == conv_id
        and hello["conversation"]["last_seq"] == last_seen + 5
    )
    await back.send({"type": "sync", "conversation_id": conv_id, "after_seq": last_seen})
    missed = [(await back.expect("message.new"))["message"] for _ in range(5)]
    assert [m["seq"] for m in missed] == list(range(last_seen + 1, last_seen + 6))
    assert [m["client_msg_id"] for m in missed] == [f"while-away-{i}" for i in range(5)]
    # Live delivery resumes above what was synced, once.
    await agent.send(
        {
            "type": "message.send",
            "conversation_id": conv_id,
            "client_msg_id": "welcome-back",
            "body": "欢迎回来",
        }
    )
    live = await back.expect("message.new")
    assert live["message"]["seq"] == last_seen + 6
    await back.drain()
    seqs = [m["seq"] for m in back.new_messages(conv_id)]
    assert seqs == list(range(last_seen + 1, last_seen + 7))


async def test_sync_racing_live_messages_sends_each_once(start_server, connect):
    srv = await start_server(run_jobs=False, HOMING_FRAMES_PER_SECOND="1000")
    kit = await make_shop(srv.ctx.db)
    agent, b, conv_id = await open_chat(srv, kit, connect, sub="racer")
    await b.close()
    back = await connect(f"{srv.ws}/ws/buyer?token={kit.buyer_token('racer')}")
    await back.expect("hello")

    async def agent_burst():
        for i in range(20):
            await agent.send(
                {
                    "type": "message.send",
                    "conversation_id": conv_id,
                    "client_msg_id": f"r{i}",
                    "body": str(i),
                }
            )

    await asyncio.gather(
        agent_burst(), back.send({"type": "sync", "conversation_id": conv_id, "after_seq": 0})
    )
    for _ in range(20):
        await agent.expect("message.ack")
    await asyncio.sleep(0.5)
    await back.drain()
    seqs = sorted(m["seq"] for m in back.new_messages(conv_id))
    assert seqs == list(range(1, 22))


async def test_agent_gets_history_right_after_assignment(server, connect):
    kit = await make_shop(server.ctx.db)
    b = await buyer(server, kit, connect, "early-bird")
    for i in range(3):
        await b.send({"type": "message.send", "client_msg_id": f"e{i}", "body": f"有人吗 {i}"})
        await b.expect("message.ack")
    queued = await b.expect("conversation.queued")
    assert queued["position"] == 1
    agent = await online_agent(server, kit, "agent1", connect)
    assigned = await agent.expect("conversation.assigned")
    history = [(await agent.expect("message.new"))["message"]["body"] for _ in range(3)]
    assert history == ["有人吗 0", "有人吗 1", "有人吗 2"]
    assert (await b.expect("conversation.assigned"))["conversation"]["id"] == assigned[
        "conversation"
    ]["id"]


async def test_typing_and_read_receipts_reach_the_other_side(server, shop, connect):
    agent, b, conv_id = await open_chat(server, shop, connect)
    await b.send({"type": "typing", "conversation_id": conv_id})
    assert (await agent.expect("typing"))["by"] == "buyer"
    await agent.send({"type": "typing", "conversation_id": conv_id})
    assert (await b.expect("typing"))["by"] == "agent"
    await agent.send({"type": "read", "conversation_id": conv_id, "seq": 1})
    read = await b.expect("read")
    assert read == {"type": "read", "conversation_id": conv_id, "seq": 1, "by": "agent"}


async def test_close_frees_the_slot_and_tells_both(server, connect):
    kit = await make_shop(server.ctx.db, max_concurrent=1)
    agent, b1, conv1 = await open_chat(server, kit, connect, sub="first")
    b2 = await buyer(server, kit, connect, "second")
    await b2.send({"type": "message.send", "client_msg_id": "s1", "body": "排队中"})
    assert (await b2.expect("conversation.queued"))["position"] == 1
    await agent.send({"type": "conversation.close", "conversation_id": conv1})
    assert (await b1.expect("conversation.closed"))["conversation_id"] == conv1
    await agent.expect("conversation.closed")
    # The freed slot goes to the waiting buyer.
    assert (await agent.expect("conversation.assigned"))["conversation"]["buyer_id"] == "second"
    await b2.expect("conversation.assigned")
    # Writing into the closed conversation is refused; the buyer's next words open a new one.
    await agent.send(
        {"type": "message.send", "conversation_id": conv1, "client_msg_id": "late", "body": "?"}
    )
    assert (await agent.expect("error"))["code"] == "conversation_closed"
    await b1.send({"type": "message.send", "client_msg_id": "again", "body": "还有个问题"})
    ack = await b1.expect("message.ack")
    assert ack["message"]["conversation_id"] != conv1 and ack["message"]["seq"] == 1


async def test_waiting_buyers_are_served_in_order_with_positions(server, connect):
    kit = await make_shop(server.ctx.db, max_concurrent=1)
    buyers = []
    for i in range(3):
        b = await buyer(server, kit, connect, f"w{i}")
        await b.send({"type": "message.send", "client_msg_id": "x", "body": "hi"})
        assert (await b.expect("conversation.queued"))["position"] == i + 1
        buyers.append(b)
    agent = await online_agent(server, kit, "agent1", connect)
    first = (await agent.expect("conversation.assigned"))["conversation"]
    assert first["buyer_id"] == "w0"
    # The others move up one place.
    assert await buyers[1].expect("conversation.queued", lambda f: f["position"] == 1)
    assert await buyers[2].expect("conversation.queued", lambda f: f["position"] == 2)
    await agent.send({"type": "conversation.close", "conversation_id": first["id"]})
    assert (await agent.expect("conversation.assigned"))["conversation"]["buyer_id"] == "w1"


async def test_agent_status_is_kept_across_connections(server, shop, connect):
    token = await login(server.http, shop, "agent1")
    a = await connect(f"{server.ws}/ws/agent?token={token}")
    assert (await a.expect("hello"))["status"] == "offline"
    await a.send({"type": "agent.status", "status": "busy"})
    assert (await a.expect("agent.status"))["status"] == "busy"
    again = await connect(f"{server.ws}/ws/agent?token={token}")
    assert (await again.expect("hello"))["status"] == "busy"


async def test_image_messages_need_a_real_image_upload(server, shop, connect):
    _agent, b, _conv_id = await open_chat(server, shop, connect)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    token = shop.buyer_token("b-1")
    async with httpx.AsyncClient(
        base_url=server.http, headers={"Authorization": f"Bearer {token}"}
    ) as c:
        fake = await c.post(
            "/api/v1/uploads", files={"file": ("cat.png", b"<svg onload=alert(1)>", "image/png")}
        )
        assert fake.status_code == 422 and fake.json()["error"]["code"] == "bad_image"
        big = await c.post(
            "/api/v1/uploads",
            files={"file": ("big.jpg", b"\xff\xd8\xff" + b"0" * (5 * 1024 * 1024))},
        )
        assert big.status_code == 413
        ok = await c.post(
            "/api/v1/uploads", files={"file": ("photo.bin", png, "application/octet-stream")}
        )
        assert ok.status_code == 201
        upload_id = ok.json()["upload_id"]
    await b.send(
        {
            "type": "message.send",
            "client_msg_id": "img",
            "kind": "image",
            "body": "",
            "payload": {"upload_id": upload_id},
        }
    )
    msg = (await b.expect("message.ack"))["message"]
    assert msg["kind"] == "image" and msg["payload"]["content_type"] == "image/png"
    agent_token = await login(server.http, shop, "agent1")
    async with httpx.AsyncClient(base_url=server.http) as c:
        got = await c.get(msg["payload"]["url"], headers={"Authorization": f"Bearer {agent_token}"})
        assert (
            got.status_code == 200
            and got.content == png
            and got.headers["content-type"] == "image/png"
        )
        other = await make_shop(server.ctx.db)
        stranger = await c.get(msg["payload"]["url"], params={"token": other.buyer_token("x")})
        assert stranger.status_code == 404
    await b.send(
        {
            "type": "message.send",
            "client_msg_id": "img2",
            "kind": "image",
            "body": "",
            "payload": {"upload_id": "nope"},
        }
    )
    assert (await b.expect("error"))["code"] == "not_found"


@pytest.mark.parametrize(
    "body", ["<img src=x onerror=alert(1)>", "emoji 👍 中文\ttab\r\nline &amp; ' \" \\"]
)
async def test_text_is_stored_exactly_as_written(server, shop, connect, body):
    agent, b, _conv_id = await open_chat(server, shop, connect)
    await b.send({"type": "message.send", "client_msg_id": "raw", "body": body})
    assert (await b.expect("message.ack"))["message"]["body"] == body
    assert (await agent.expect("message.new"))["message"]["body"] == body


async def test_nul_characters_are_refused_clearly(server, shop, connect):
    _agent, b, _conv_id = await open_chat(server, shop, connect)
    await b.send({"type": "message.send", "client_msg_id": "nul", "body": "a\u0000b"})
    err = await b.expect("error")
    assert err["code"] == "bad_frame" and "NUL" in err["message"] and err["ref"] == "nul"


async def test_recipients_come_from_the_row_as_locked_not_as_read(server, connect):
    """A message written with a conversation read before its assignment still reaches the agent."""
    from sqlalchemy import update

    from app.chat.models import Conversation
    from app.routing import actions as routing
    from app.routing.rules import BuyerFacts
    from app.shops.models import Agent

    kit = await make_shop(server.ctx.db)
    db, now = server.ctx.db, server.clock.now()
    opened = await db.run(
        routing.open_conversation,
        shop_id=kit.shop_id,
        buyer_id="racer",
        buyer=BuyerFacts(),
        now=now,
    )
    stale = opened.conversation
    assert stale.status == "queued" and stale.agent_id is None

    async def agent_online(uow):
        await uow.session.execute(
            update(Agent).where(Agent.id == kit.agents["agent1"]).values(status="online")
        )

    await db.run(agent_online)
    assert await db.run(routing.dispatch, kit.shop_id, "general", now) == 1  # committed elsewhere

    async def write_with_stale_copy(uow):
        await chat_actions.append_message(
            uow,
            stale,
            sender="buyer",
            sender_id="racer",
            kind="text",
            body="抢在分配时发出",
            payload=None,
            now=now,
            client_msg_id="race-1",
        )
        return list(uow.events)

    events = await db.run(write_with_stale_copy)
    topics = {topic for topic, frame in events if frame["type"] == "message.new"}
    assert f"a:{kit.agents['agent1']}" in topics
    async with db.read() as s:
        assert (await s.get(Conversation, stale.id)).last_seq == 1


async def test_hello_tells_a_waiting_buyer_their_place_and_conv_names_the_buyer(server, connect):
    kit = await make_shop(server.ctx.db)
    for i in range(2):
        b = await buyer(server, kit, connect, f"queue-{i}", name=f"买家{i}", vip=3)
        await b.send({"type": "message.send", "client_msg_id": "q", "body": "排队"})
        await b.expect("message.ack")
        await b.close()
    back = await connect(
        f"{server.ws}/ws/buyer?token={kit.buyer_token('queue-1', name='买家1', vip=3)}"
    )
    hello = await back.expect("hello")
    assert hello["position"] == 2 and hello["conversation"]["status"] == "queued"
    assert (
        hello["conversation"]["buyer_name"] == "买家1" and hello["conversation"]["buyer_vip"] == 3
    )
    agent = await online_agent(server, kit, "agent1", connect)
    conv = (await agent.expect("conversation.assigned"))["conversation"]
    assert (
        conv["buyer_id"] == "queue-0" and conv["buyer_name"] == "买家0" and conv["buyer_vip"] == 3
    )
    assert (await back.expect("conversation.assigned"))["conversation"]["buyer_name"] == "买家1"


async def test_the_api_answers_other_origins_for_the_widget(server):
    async with httpx.AsyncClient(base_url=server.http) as c:
        pre = await c.options(
            "/api/v1/uploads",
            headers={
                "Origin": "https://shop.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "*"
        assert "authorization" in pre.headers["access-control-allow-headers"].lower()


async def test_one_group_commit_batch_stores_the_plain_and_hands_back_the_rest(
    server, shop, connect
):
    agent, b, conv_id = await open_chat(server, shop, connect, sub="batch-b")
    now = server.ctx.clock.now()
    app = appender_module.MessageAppender(server.ctx.db)
    async with server.ctx.db.read() as s:
        agent_id = (await s.get(Conversation, conv_id)).agent_id

    def item(sender, sender_id, cmid, conversation_id=conv_id):
        return appender_module.Append(
            shop_id=shop.shop_id,
            conversation_id=conversation_id,
            sender=sender,
            sender_id=sender_id,
            kind="text",
            body=cmid,
            payload={},
            client_msg_id=cmid,
            now=now,
        )

    try:
        # Submitted together, so they share one transaction.
        results = await asyncio.gather(
            app.append(item("buyer", "batch-b", "x1")),
            app.append(item("buyer", "batch-b", "x1")),  # the same message again: a resend
            app.append(item("agent", agent_id, "y1")),
            app.append(item("agent", "someone-else", "z1")),  # not the serving agent
            app.append(item("buyer", "not-the-buyer", "w1")),  # not their conversation
            app.append(item("buyer", "batch-b", "x2")),
        )
    finally:
        await app.close()
    assert app.batches == 1
    assert [r and (r["client_msg_id"], r["seq"]) for r in results] == [
        ("x1", 2),
        None,
        ("y1", 3),
        None,
        None,
        ("x2", 4),
    ]
    assert [(m.seq, m.client_msg_id) for m in await stored(server.ctx.db, conv_id)] == [
        (1, "batch-b-open"),
        (2, "x1"),
        (3, "y1"),
        (4, "x2"),
    ]
    async with server.ctx.db.read() as s:
        conv = await s.get(Conversation, conv_id)
    # The conversation moved on by what was stored, and knows when the buyer last wrote.
    assert conv.last_seq == 4 and conv.last_buyer_message_at == now
    # Published after the commit, to both sides (none came through these sockets).
    for side in (agent, b):
        got = [(await side.expect("message.new"))["message"]["client_msg_id"] for _ in range(3)]
        assert got == ["x1", "y1", "x2"]


@pytest.mark.wheel
async def test_the_sqlite_group_commit_keeps_the_pages_it_writes_cached(tmp_path):
    """The appender's connection keeps a page cache the size of what a busy batch walks
    (`APPENDER_CACHE_KIB`), not SQLite's 2 MiB default: with the default, a 5,000,000-message
    database read six pages back from the OS per message stored (the constant's comment)."""
    from app.db import Database

    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'cache.db'}")
    app = appender_module.MessageAppender(db)
    try:
        conn = await asyncio.to_thread(app._connection)
        (kib,) = conn.execute("PRAGMA cache_size").fetchone()
        assert kib == -appender_module.APPENDER_CACHE_KIB and kib <= -65_536
    finally:
        await app.close()
        await db.dispose()
