"""Sockets of a reconnect storm share their reads (app/chat/opening.py, app/chat/delivery.py):
the sync's conversation check, the missed messages and the queue positions of a hello are
each read once for everyone asking at once, and each asker gets exactly the answer a lone
read gives it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import col

from app.chat import service
from app.chat.models import Conversation, Message
from tests.conftest import buyer
from tests.support.factories import make_shop


async def opened(server, kit, connect, sub: str) -> str:
    """A conversation opened by buyer `sub` (no agent online: it waits in the queue)."""
    b = await buyer(server, kit, connect, sub)
    await b.send({"type": "message.send", "client_msg_id": f"{sub}-1", "body": "你好"})
    conv_id = (await b.expect("message.ack"))["message"]["conversation_id"]
    await b.close()
    return conv_id


async def add_messages(server, kit, conv_id: str, n: int) -> None:
    """`n` more agent messages in the conversation, written straight to the record."""
    now = server.clock.now()
    async with server.ctx.db.read() as s:
        last = (await s.get(Conversation, conv_id)).last_seq

    async def write(uow):
        uow.session.add_all(
            Message(
                shop_id=kit.shop_id,
                conversation_id=conv_id,
                seq=last + i,
                sender="agent",
                body=f"第{last + i}条",
                created_at=now,
            )
            for i in range(1, n + 1)
        )
        await uow.session.execute(
            update(Conversation).where(col(Conversation.id) == conv_id).values(last_seq=last + n)
        )

    await server.ctx.db.run(write)


async def test_many_marks_read_at_once_each_get_the_page_a_lone_read_gives(server, connect):
    kit = await make_shop(server.ctx.db)
    long_, short, quiet = [await opened(server, kit, connect, s) for s in ("l", "s", "q")]
    await add_messages(server, kit, long_, 1200)
    await add_messages(server, kit, short, 3)
    asks = [
        (long_, 0),
        (short, 0),
        (long_, 700),  # the same conversation at another mark: its own page
        (quiet, 1),  # nothing after
        (short, 0),  # asked twice alike
        (long_, 1150),
        ("no-such-conversation", 0),
    ]
    async with server.ctx.db.read() as s:
        alone = [[m.id for m in await service.messages_after(s, cid, after)] for cid, after in asks]
        together = [[m.id for m in page] for page in await service.messages_after_each(s, asks)]
    assert together == alone
    assert [len(p) for p in together] == [500, 4, 500, 0, 4, 51, 0]

    loader = server.ctx.loader
    batches = loader._after.batches
    pages = await asyncio.gather(*(loader.messages_after(cid, after) for cid, after in asks))
    assert loader._after.batches == batches + 1  # one read answered them all
    assert [[m["id"] for m in p] for p in pages] == alone
    assert [m["seq"] for m in pages[2]] == list(range(701, 1201))


async def test_a_storm_of_syncs_each_get_their_own_missed_messages(server, connect):
    kit = await make_shop(server.ctx.db)
    subs = [f"r{i}" for i in range(12)]
    convs = {s: await opened(server, kit, connect, s) for s in subs}
    for i, s in enumerate(subs):
        await add_messages(server, kit, convs[s], i + 1)
    socks = {s: await buyer(server, kit, connect, s) for s in subs}
    checks = server.ctx.openings.conversations.batches
    for s in subs:  # all asked before any is answered
        await socks[s].send({"type": "sync", "conversation_id": convs[s], "after_seq": 1})
    # Another buyer's conversation, asked in the same storm: refused to this one alone.
    await socks["r0"].send({"type": "sync", "conversation_id": convs["r1"], "after_seq": 0})
    for i, s in enumerate(subs):
        got = [(await socks[s].expect("message.new"))["message"] for _ in range(i + 1)]
        assert [m["seq"] for m in got] == list(range(2, i + 3))
        assert {m["conversation_id"] for m in got} == {convs[s]}
        assert (await socks[s].expect("sync.done"))["upto"] == i + 2
    assert (await socks["r0"].expect("error"))["code"] == "not_found"
    assert server.ctx.openings.conversations.batches - checks < len(subs) + 1


async def test_queue_positions_read_once_per_queue_are_the_lone_counts(server):
    kit = await make_shop(server.ctx.db)
    t0 = server.clock.now()
    rows = []
    # Two queues; ties on the time are ordered by id; one conversation no longer waits.
    for i, (queue, dt, status) in enumerate(
        [
            ("general", 0, "queued"),
            ("general", 5, "queued"),
            ("elder", 1, "queued"),
            ("general", 5, "queued"),
            ("general", 3, "assigned"),
            ("general", 9, "queued"),
            ("elder", 0, "queued"),
        ]
    ):
        rows.append(
            Conversation(
                id=f"qp{i}{kit.shop_id}"[:32],
                shop_id=kit.shop_id,
                buyer_id=f"qb{i}",
                queue=queue,
                status=status,
                queued_at=t0 + timedelta(seconds=dt),
                opened_at=t0,
            )
        )

    async def write(uow):
        uow.session.add_all(rows)

    await server.ctx.db.run(write)
    async with server.ctx.db.read() as s:
        convs = [await s.get(Conversation, c.id) for c in rows]
        alone = {c.id: await service.queue_position(s, c) for c in convs}
        together = await service.queue_positions(s, convs)
    assert together == alone
    assert [alone[c.id] for c in rows if c.status == "queued"][:2] == [1, 2]
