"""Routing and the conversation lifecycle over real sockets, with an injected clock."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event, select, update

from app.chat.models import Conversation, Message
from app.routing.actions import touch_agents, waiting_queues
from app.routing.jobs import AUTO_CLOSE_JOB, REQUEUE_ABSENT_JOB
from app.routing.models import AgentQueue, CategoryQueue, Queue
from app.shops.models import Agent
from tests.conftest import buyer, online_agent
from tests.support.factories import make_shop
from tests.test_payouts_late_shipment import own_database  # noqa: F401 - a fixture

TEAM = (
    ("gen1", "agent", ("general",)),
    ("gen2", "agent", ("general",)),
    ("elder1", "agent", ("elderly",)),
    ("jewel1", "agent", ("jewelry",)),
    ("sup", "supervisor", ("general",)),
)


@pytest.fixture
async def srv(start_server):
    # Jobs are run by hand so each test decides exactly when time has passed.
    return await start_server(run_jobs=False)


@pytest.fixture
async def kit(srv):
    kit = await make_shop(srv.ctx.db, agents=TEAM)

    async def skill_queue(uow):
        uow.session.add(Queue(shop_id=kit.shop_id, name="jewelry", overflow_after_s=120))
        uow.session.add(CategoryQueue(shop_id=kit.shop_id, category="珠宝", queue="jewelry"))

    await srv.ctx.db.run(skill_queue)
    return kit


async def say(client, text, cmid=None, **extra):
    await client.send(
        {"type": "message.send", "client_msg_id": cmid or text, "body": text, **extra}
    )
    return (await client.expect("message.ack", lambda f: f["client_msg_id"] == (cmid or text)))[
        "message"
    ]


async def dispatch_now(srv, kit, *queues):
    for q in queues:
        srv.ctx.dispatcher.on_signal("dispatch", (kit.shop_id, q))
    await srv.ctx.dispatcher.run_once()


async def conv_row(srv, conv_id):
    async with srv.ctx.db.read() as s:
        return await s.get(Conversation, conv_id)


async def test_a_product_in_a_mapped_category_goes_to_the_skill_queue(srv, kit, connect):
    jewel = await online_agent(srv, kit, "jewel1", connect)
    gen = await online_agent(srv, kit, "gen1", connect)
    b = await buyer(srv, kit, connect, "ring-buyer", age=35)
    card = {"product_id": "p-1", "title": "18K 金戒指", "category": "珠宝", "price_cents": 199900}
    msg = await say(b, "这个戒指有货吗", kind="product_card", payload=card)
    assigned = await jewel.expect("conversation.assigned")
    assert assigned["conversation"]["queue"] == "jewelry"
    assert assigned["conversation"]["id"] == msg["conversation_id"]
    other = await buyer(srv, kit, connect, "tshirt-buyer")
    await say(
        other,
        "T恤尺码",
        kind="product_card",
        payload={"product_id": "p-2", "title": "T恤", "category": "服装", "price_cents": 5900},
    )
    assert (await gen.expect("conversation.assigned"))["conversation"]["queue"] == "general"
    assert not [
        f
        for f in jewel.frames
        if f.get("type") == "conversation.assigned"
        and f["conversation"]["buyer_id"] == "tshirt-buyer"
    ]


async def test_elder_buyers_go_to_the_elderly_queue(srv, kit, connect):
    elder_agent = await online_agent(srv, kit, "elder1", connect)
    await online_agent(srv, kit, "gen1", connect)
    grandma = await buyer(srv, kit, connect, "grandma", age=72)
    await say(grandma, "我的快递到哪了")
    conv = (await elder_agent.expect("conversation.assigned"))["conversation"]
    assert conv["queue"] == "elderly" and conv["elder"] is True and conv["buyer_id"] == "grandma"
    # A younger buyer who switches the widget to elder mode is routed there next time.
    b = await buyer(srv, kit, connect, "nephew", age=40)
    await b.send({"type": "elder_mode", "on": True})
    assert (await b.expect("elder_mode"))["on"] is True
    await say(b, "字太小了")
    conv2 = (await elder_agent.expect("conversation.assigned"))["conversation"]
    assert conv2["buyer_id"] == "nephew" and conv2["elder"] is True


async def test_elderly_conversation_overflows_to_general_after_the_overflow_time(srv, kit, connect):
    gen = await online_agent(srv, kit, "gen1", connect)
    grandpa = await buyer(srv, kit, connect, "grandpa", age=80)
    await say(grandpa, "有人吗")
    assert (await grandpa.expect("conversation.queued"))["queue"] == "elderly"
    srv.clock.advance(seconds=119)
    await dispatch_now(srv, kit, "general", "elderly")
    assert not gen.of_type("conversation.assigned"), "elder-care team has the first 120 s"
    srv.clock.advance(seconds=1)
    await dispatch_now(srv, kit, "general")
    conv = (await gen.expect("conversation.assigned"))["conversation"]
    assert conv["buyer_id"] == "grandpa" and conv["elder"] is True and conv["queue"] == "elderly"
    assert (await gen.expect("message.new"))["message"]["body"] == "有人吗"


async def test_overflow_is_found_by_the_sweep_without_any_other_event(srv, kit, connect):
    gen = await online_agent(srv, kit, "gen1", connect)
    grandpa = await buyer(srv, kit, connect, "grandpa2", age=66)
    await say(grandpa, "在吗")
    srv.clock.advance(seconds=121)
    pairs = await srv.ctx.db.query(waiting_queues)
    assert (kit.shop_id, "general") in pairs  # the sweep kicks general for overdue elders
    for pair in pairs:
        srv.ctx.dispatcher.on_signal("dispatch", pair)
    await srv.ctx.dispatcher.run_once()
    assert (await gen.expect("conversation.assigned"))["conversation"]["buyer_id"] == "grandpa2"


async def test_a_regular_goes_back_to_their_agent_within_48_hours(srv, kit, connect):
    gen1 = await online_agent(srv, kit, "gen1", connect)
    b = await buyer(srv, kit, connect, "regular")
    await say(b, "第一次来")
    first = (await gen1.expect("conversation.assigned"))["conversation"]
    await gen1.send({"type": "conversation.close", "conversation_id": first["id"]})
    await gen1.expect("conversation.closed")
    # gen1 is now busier than gen2, but the buyer is their regular.
    for i in range(2):
        other = await buyer(srv, kit, connect, f"filler-{i}")
        await say(other, "hi")
        await gen1.expect(
            "conversation.assigned", lambda f, i=i: f["conversation"]["buyer_id"] == f"filler-{i}"
        )
    gen2 = await online_agent(srv, kit, "gen2", connect)
    srv.clock.advance(hours=47)
    await say(b, "又来了")
    again = await gen1.expect(
        "conversation.assigned", lambda f: f["conversation"]["buyer_id"] == "regular"
    )
    again_id = again["conversation"]["id"]
    assert again_id != first["id"]
    await gen1.send({"type": "conversation.close", "conversation_id": again_id})
    await gen1.expect("conversation.closed", lambda f: f["conversation_id"] == again_id)
    srv.clock.advance(hours=49)
    await say(b, "过了两天又来")
    third = await gen2.expect(
        "conversation.assigned", lambda f: f["conversation"]["buyer_id"] == "regular"
    )
    assert third["conversation"]["agent_id"] == kit.agents["gen2"]


async def test_least_loaded_agent_gets_the_next_conversation(srv, kit, connect):
    gen1 = await online_agent(srv, kit, "gen1", connect)
    b1 = await buyer(srv, kit, connect, "one")
    await say(b1, "hi")
    await gen1.expect("conversation.assigned")
    gen2 = await online_agent(srv, kit, "gen2", connect)
    b2 = await buyer(srv, kit, connect, "two")
    await say(b2, "hi")
    assert (await gen2.expect("conversation.assigned"))["conversation"]["buyer_id"] == "two"


async def test_busy_agents_keep_their_conversations_and_get_no_new_ones(srv, kit, connect):
    gen1 = await online_agent(srv, kit, "gen1", connect)
    b1 = await buyer(srv, kit, connect, "kept")
    await say(b1, "hi")
    conv = (await gen1.expect("conversation.assigned"))["conversation"]
    await gen1.send({"type": "agent.status", "status": "busy"})
    assert (await gen1.expect("agent.status"))["status"] == "busy"
    b2 = await buyer(srv, kit, connect, "waits")
    await say(b2, "hi")
    assert (await b2.expect("conversation.queued"))["position"] == 1
    await dispatch_now(srv, kit, "general")
    assert [f["conversation"]["id"] for f in gen1.of_type("conversation.assigned")] == [conv["id"]]
    await gen1.send(
        {
            "type": "message.send",
            "conversation_id": conv["id"],
            "client_msg_id": "still",
            "body": "在",
        }
    )
    assert (await gen1.expect("message.ack"))["message"]["seq"] == 2
    await gen1.send({"type": "agent.status", "status": "online"})
    assert (await gen1.expect("conversation.assigned"))["conversation"]["buyer_id"] == "waits"


async def test_going_offline_hands_conversations_back_at_the_front(srv, kit, connect):
    gen1 = await online_agent(srv, kit, "gen1", connect)
    b1 = await buyer(srv, kit, connect, "first-come")
    await say(b1, "hi")
    conv = (await gen1.expect("conversation.assigned"))["conversation"]
    srv.clock.advance(seconds=5)
    later = await buyer(srv, kit, connect, "later")
    await say(later, "hi")
    await gen1.expect("conversation.assigned", lambda f: f["conversation"]["buyer_id"] == "later")
    await gen1.send({"type": "agent.status", "status": "offline"})
    assert (await gen1.expect("conversation.requeued"))["conversation_id"] == conv["id"]
    assert (await b1.expect("conversation.queued"))["position"] == 1  # front: it opened first
    assert await later.expect("conversation.queued", lambda f: f["position"] == 2)
    gen2 = await online_agent(srv, kit, "gen2", connect)
    got = await gen2.expect("conversation.assigned")
    assert got["conversation"]["id"] == conv["id"]


async def test_a_dropped_agent_is_requeued_after_the_grace_period_and_nothing_is_lost(
    srv, kit, connect
):
    gen1 = await online_agent(srv, kit, "gen1", connect)
    b = await buyer(srv, kit, connect, "patient")
    await say(b, "我要退货")
    assigned = await gen1.expect("conversation.assigned")
    gen2 = await online_agent(srv, kit, "gen2", connect)
    conv_id = assigned["conversation"]["id"]
    await gen1.send(
        {
            "type": "message.send",
            "conversation_id": conv_id,
            "client_msg_id": "r1",
            "body": "好的,稍等",
        }
    )
    await gen1.expect("message.ack")
    await gen1.close()  # the agent's network drops
    await say(b, "人呢?")  # while nobody is there
    # Within the 30 s grace, with room for a slow machine (the clock also runs in real time).
    srv.clock.advance(seconds=20)
    await srv.ctx.presence.beat()
    # (The job covers every shop in the database; look at this test's conversation.)
    assert conv_id not in await srv.ctx.jobs.run_once(REQUEUE_ABSENT_JOB)
    srv.clock.advance(seconds=11)
    await srv.ctx.presence.beat()  # gen2 is still connected: stamped now
    assert conv_id in await srv.ctx.jobs.run_once(REQUEUE_ABSENT_JOB)
    await srv.ctx.dispatcher.run_once()
    got = await gen2.expect("conversation.assigned")
    assert got["conversation"]["id"] == conv_id
    history = [(await gen2.expect("message.new"))["message"]["body"] for _ in range(3)]
    assert history == ["我要退货", "好的,稍等", "人呢?"]
    assert await b.expect(
        "conversation.assigned", lambda f: f["conversation"]["agent_id"] == kit.agents["gen2"]
    )
    row = await conv_row(srv, conv_id)
    assert row.status == "assigned" and row.agent_id == kit.agents["gen2"]


async def test_an_agent_connected_elsewhere_is_not_requeued(srv, kit, connect):
    gen1 = await online_agent(srv, kit, "gen1", connect)
    second_tab = await online_agent(srv, kit, "gen1", connect)
    b = await buyer(srv, kit, connect, "steady")
    await say(b, "hi")
    await gen1.expect("conversation.assigned")
    await gen1.close()
    srv.clock.advance(seconds=60)
    await srv.ctx.presence.beat()
    conv_id = (await b.expect("conversation.assigned"))["conversation"]["id"]
    assert conv_id not in await srv.ctx.jobs.run_once(REQUEUE_ABSENT_JOB)
    assert (await conv_row(srv, conv_id)).status == "assigned"
    del second_tab


async def test_transfer_to_a_colleague_with_a_note(srv, kit, connect):
    gen1 = await online_agent(srv, kit, "gen1", connect)
    b = await buyer(srv, kit, connect, "needs-expert")
    await say(b, "钻石证书怎么查")
    conv = (await gen1.expect("conversation.assigned"))["conversation"]
    jewel = await online_agent(srv, kit, "jewel1", connect)
    await gen1.send(
        {
            "type": "conversation.transfer",
            "conversation_id": conv["id"],
            "to_agent_id": kit.agents["jewel1"],
            "note": "珠宝问题,请专员处理",
        }
    )
    for client in (gen1, jewel, b):
        t = await client.expect("conversation.transferred")
        assert t["note"] == "珠宝问题,请专员处理" and t["to_agent_id"] == kit.agents["jewel1"]
    got = await jewel.expect("conversation.assigned")
    assert got["conversation"]["id"] == conv["id"]
    bodies = [(await jewel.expect("message.new"))["message"]["body"] for _ in range(2)]
    assert bodies[0] == "钻石证书怎么查" and "珠宝问题,请专员处理" in bodies[1]
    note_msg = await b.expect("message.new", lambda f: f["message"]["sender"] == "system")
    assert "珠宝问题" in note_msg["message"]["body"]
    # Readers render the notice from its code and parameters in their own language.
    assert note_msg["message"]["payload"]["notice"] == "transferred_to_agent"
    assert note_msg["message"]["payload"]["params"]["note"] == "珠宝问题,请专员处理"
    assert await b.expect(
        "conversation.assigned", lambda f: f["conversation"]["agent_id"] == kit.agents["jewel1"]
    )
    # The old agent can no longer write; the new one can.
    await gen1.send(
        {"type": "message.send", "conversation_id": conv["id"], "client_msg_id": "x", "body": "?"}
    )
    assert (await gen1.expect("error"))["code"] == "forbidden"
    await jewel.send(
        {
            "type": "message.send",
            "conversation_id": conv["id"],
            "client_msg_id": "y",
            "body": "您好",
        }
    )
    await jewel.expect("message.ack")


async def test_transfer_to_a_queue_and_refusals(srv, kit, connect):
    gen1 = await online_agent(srv, kit, "gen1", connect)
    b = await buyer(srv, kit, connect, "moving")
    await say(b, "hi")
    conv = (await gen1.expect("conversation.assigned"))["conversation"]
    await gen1.send(
        {
            "type": "conversation.transfer",
            "conversation_id": conv["id"],
            "to_agent_id": kit.agents["gen2"],
            "note": "",
        }
    )
    assert (await gen1.expect("error"))["code"] == "agent_unavailable"  # gen2 is offline
    await gen1.send(
        {"type": "conversation.transfer", "conversation_id": conv["id"], "to_queue": "nope"}
    )
    assert (await gen1.expect("error"))["code"] == "not_found"
    await gen1.send({"type": "conversation.transfer", "conversation_id": conv["id"]})
    assert (await gen1.expect("error"))["code"] == "bad_frame"
    await gen1.send(
        {
            "type": "conversation.transfer",
            "conversation_id": conv["id"],
            "to_queue": "jewelry",
            "note": "转珠宝组",
        }
    )
    await gen1.expect("conversation.transferred")
    queued = await b.expect("conversation.queued", lambda f: f["queue"] == "jewelry")
    assert queued["position"] == 1
    jewel = await online_agent(srv, kit, "jewel1", connect)
    assert (await jewel.expect("conversation.assigned"))["conversation"]["id"] == conv["id"]


async def test_inactive_conversations_auto_close_and_the_buyer_rates_once(srv, kit, connect):
    gen1 = await online_agent(srv, kit, "gen1", connect)
    b = await buyer(srv, kit, connect, "quiet")
    await say(b, "我看看")
    conv = (await gen1.expect("conversation.assigned"))["conversation"]
    await b.send({"type": "csat.submit", "conversation_id": conv["id"], "score": 5})
    assert (await b.expect("error"))["code"] == "not_closed"
    srv.clock.advance(minutes=29)
    assert conv["id"] not in await srv.ctx.jobs.run_once(AUTO_CLOSE_JOB)
    srv.clock.advance(minutes=1)
    assert conv["id"] in await srv.ctx.jobs.run_once(AUTO_CLOSE_JOB)
    closed = await b.expect("conversation.closed")
    assert closed["reason"] == "inactive" and closed["csat_invited"] is True
    invite = await b.expect("message.new", lambda f: f["message"]["payload"].get("csat_invite"))
    assert invite["message"]["sender"] == "system"
    assert invite["message"]["payload"]["notice"] == "csat_invite"
    await gen1.expect("conversation.closed")
    await b.send({"type": "csat.submit", "conversation_id": conv["id"], "score": 6})
    assert (await b.expect("error"))["code"] == "bad_frame"
    await b.send(
        {"type": "csat.submit", "conversation_id": conv["id"], "score": 5, "comment": "很耐心"}
    )
    assert (await b.expect("csat.received"))["score"] == 5
    assert (await gen1.expect("csat.received"))["score"] == 5
    await b.send({"type": "csat.submit", "conversation_id": conv["id"], "score": 1})
    assert (await b.expect("error"))["code"] == "already_rated"
    # The freed slot is free: the agent gets the next buyer.
    nxt = await buyer(srv, kit, connect, "next")
    await say(nxt, "hi")
    assert (await gen1.expect("conversation.assigned"))["conversation"]["buyer_id"] == "next"


async def test_a_buyer_who_keeps_talking_is_not_auto_closed(srv, kit, connect):
    gen1 = await online_agent(srv, kit, "gen1", connect)
    b = await buyer(srv, kit, connect, "chatty")
    await say(b, "一")
    await gen1.expect("conversation.assigned")
    srv.clock.advance(minutes=20)
    await say(b, "二")
    srv.clock.advance(minutes=20)
    conv_id = (await b.expect("conversation.assigned"))["conversation"]["id"]
    assert conv_id not in await srv.ctx.jobs.run_once(AUTO_CLOSE_JOB)


async def test_queue_membership_decides_who_serves(srv, kit, connect):
    # An agent added to a queue starts getting its conversations.
    gen1 = await online_agent(srv, kit, "gen1", connect)
    b = await buyer(srv, kit, connect, "gem", age=30)
    await say(
        b,
        "钻戒",
        kind="product_card",
        payload={"product_id": "d", "title": "钻戒", "category": "珠宝", "price_cents": 1},
    )
    assert (await b.expect("conversation.queued"))["queue"] == "jewelry"

    async def join(uow):
        uow.session.add(AgentQueue(agent_id=kit.agents["gen1"], queue="jewelry"))

    await srv.ctx.db.run(join)
    await dispatch_now(srv, kit, "jewelry")
    assert (await gen1.expect("conversation.assigned"))["conversation"]["queue"] == "jewelry"
    async with srv.ctx.db.read() as s:
        n = len(
            (
                await s.execute(
                    select(Message).where(
                        Message.conversation_id
                        == (await b.expect("conversation.assigned"))["conversation"]["id"]
                    )
                )
            ).all()
        )
    assert n == 1


async def test_a_connected_agent_is_never_requeued_even_if_its_heartbeat_is_late(srv, kit, connect):
    # On an overloaded SQLite node the heartbeat write can wait behind others past the grace
    # period; the job must still see the agent's live socket on this node.
    gen1 = await online_agent(srv, kit, "gen1", connect)
    b = await buyer(srv, kit, connect, "loyal-customer")
    await say(b, "hi")
    conv_id = (await gen1.expect("conversation.assigned"))["conversation"]["id"]
    srv.clock.advance(seconds=120)  # no beat: the stamp is two minutes old
    assert conv_id not in await srv.ctx.jobs.run_once(REQUEUE_ABSENT_JOB)
    assert (await conv_row(srv, conv_id)).agent_id == kit.agents["gen1"]
    await gen1.close()
    for _ in range(100):  # the server notices the socket is gone
        if kit.agents["gen1"] not in srv.ctx.hub.local_agent_ids():
            break
        await asyncio.sleep(0.05)
    assert conv_id in await srv.ctx.jobs.run_once(REQUEUE_ABSENT_JOB)


async def test_the_heartbeat_never_waits_in_a_deadlock(srv, kit):
    """A transaction holding one agent row and then asking for another (as an assignment
    does) while the heartbeat stamps several: on PostgreSQL the heartbeat used to take the
    first row, wait for the second, and deadlock; now it skips what is held."""
    db = srv.ctx.db
    first, second = sorted([kit.agents["gen1"], kit.agents["gen2"]])
    holding = asyncio.Event()

    async def second_then_first(uow):
        await uow.session.execute(
            update(Agent).where(Agent.id == second).values(display_name="held")
        )
        holding.set()
        await asyncio.sleep(0.5)  # the heartbeat takes `first` meanwhile, and asks for `second`
        await uow.session.execute(
            update(Agent).where(Agent.id == first).values(display_name="held")
        )

    # attempts=1: `run` retries a deadlock victim, which hid it until five in a row failed.
    other = asyncio.create_task(db.run(second_then_first, attempts=1))
    await holding.wait()
    now = srv.clock.now()
    await db.run(touch_agents, [first, second], now, attempts=1)
    await other  # neither side was chosen as a deadlock victim
    async with db.read() as s:
        seen = dict(
            (await s.execute(select(Agent.id, Agent.last_seen_at).where(Agent.id == first))).all()
        )
        names = set(
            (
                await s.execute(select(Agent.display_name).where(Agent.id.in_([first, second])))
            ).scalars()
        )
    assert seen[first] == now and names == {"held"}


async def test_a_requeue_run_with_nobody_absent_takes_no_writers_turn(
    start_server,
    own_database,  # noqa: F811 - the fixture imported above
    connect,
):
    """The job runs every 5 s on every jobs process and almost always finds nobody absent:
    it then only reads (nothing committed: no writer's turn on SQLite). Someone absent is
    still requeued. A database of its own: other tests' agents would be absent here."""
    srv = await start_server(
        run_jobs=False, database_url=own_database, HOMING_PRESENCE_INTERVAL_S="3600"
    )
    kit = await make_shop(srv.ctx.db, agents=TEAM)
    gen1 = await online_agent(srv, kit, "gen1", connect)
    await srv.ctx.presence.beat()
    commits: list[object] = []

    def count(conn):
        commits.append(conn)

    engines = {srv.ctx.db.engine.sync_engine, srv.ctx.db.write_engine.sync_engine}
    for engine in engines:
        event.listen(engine, "commit", count)
    try:
        # The agent going online set the dispatcher going (its transactions commit, on
        # PostgreSQL even when they assign nobody); wait until nothing else writes.
        for _ in range(50):
            commits.clear()
            await asyncio.sleep(0.2)
            if not commits:
                break
        assert await srv.ctx.jobs.run_once(REQUEUE_ABSENT_JOB) == []
        assert commits == []
        await gen1.close()
        for _ in range(100):  # the server notices the socket is gone
            if kit.agents["gen1"] not in srv.ctx.hub.local_agent_ids():
                break
            await asyncio.sleep(0.05)
        srv.clock.advance(seconds=120)
        await srv.ctx.jobs.run_once(REQUEUE_ABSENT_JOB)
        assert commits  # the absent agent was written off
    finally:
        for engine in engines:
            event.remove(engine, "commit", count)
    async with srv.ctx.db.read() as s:
        assert (await s.get(Agent, kit.agents["gen1"])).status == "offline"
