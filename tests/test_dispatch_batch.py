"""Batch dispatch (`routing.actions.dispatch`): many dispatch transactions at once, from two
processes' worth of connections (on PostgreSQL two `Database`s, as two nodes have), over
one shop's general and elderly queues with overdue elders that both queues' agents may
take: nobody is assigned twice, no agent passes their limit, every slot is filled, the
counts agree with the record, and the oldest waiters are the ones served."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select, update

from app.chat.append_rules import new_conversation
from app.chat.models import Conversation
from app.db import Database
from app.routing import actions as routing
from app.shops.models import Agent
from tests.conftest import make_settings
from tests.support.factories import make_shop

GENERAL_AGENTS = 4
ELDER_AGENTS = 2
BOTH_AGENTS = 2  # serve both queues: the two queues' dispatchers compete for their slots
LIMIT = 4
N_GENERAL = 60
N_ELDER = 20


async def test_concurrent_batch_dispatches_never_over_assign(server, database_url):
    now = server.clock.now()
    kit = await make_shop(
        server.ctx.db,
        agents=tuple((f"g{i}", "agent", ("general",)) for i in range(GENERAL_AGENTS))
        + tuple((f"e{i}", "agent", ("elderly",)) for i in range(ELDER_AGENTS))
        + tuple((f"b{i}", "agent", ("general", "elderly")) for i in range(BOTH_AGENTS)),
        max_concurrent=LIMIT,
    )

    async def setup(uow):
        await uow.session.execute(
            update(Agent).where(Agent.shop_id == kit.shop_id).values(status="online")
        )
        for i in range(N_GENERAL):
            uow.session.add(
                new_conversation(
                    shop_id=kit.shop_id,
                    buyer_id=f"g-{i}",
                    queue="general",
                    elder=False,
                    now=now - timedelta(seconds=N_GENERAL - i),
                )
            )
        for i in range(N_ELDER):
            # The first half waited past the elderly queue's overflow time (general agents
            # may take them too); the others came just now (only elder-care agents may).
            waited = 3600 + N_ELDER - i if i < N_ELDER // 2 else N_ELDER - i
            uow.session.add(
                new_conversation(
                    shop_id=kit.shop_id,
                    buyer_id=f"e-{i}",
                    queue="elderly",
                    elder=True,
                    now=now - timedelta(seconds=waited),
                )
            )

    await server.ctx.db.run(setup)
    other = Database(make_settings(database_url).async_database_url)  # a second node's pool
    try:
        runs = [
            db.run(routing.dispatch, kit.shop_id, queue, now)
            for _ in range(4)
            for db in (server.ctx.db, other)
            for queue in ("general", "elderly")
        ]
        results = await asyncio.gather(*runs)
    finally:
        await other.dispose()

    capacity = (GENERAL_AGENTS + ELDER_AGENTS + BOTH_AGENTS) * LIMIT
    assert sum(results) == capacity, results
    async with server.ctx.db.read() as s:
        convs = list(
            (await s.execute(select(Conversation).where(Conversation.shop_id == kit.shop_id)))
            .scalars()
            .all()
        )
        agents = {
            a.id: a
            for a in (
                await s.execute(
                    select(Agent).where(Agent.shop_id == kit.shop_id, Agent.role == "agent")
                )
            ).scalars()
        }
        per_agent = dict(
            (
                await s.execute(
                    select(Conversation.agent_id, func.count())
                    .where(Conversation.shop_id == kit.shop_id, Conversation.status == "assigned")
                    .group_by(Conversation.agent_id)
                )
            ).all()
        )
    assigned = [c for c in convs if c.status == "assigned"]
    assert len(assigned) == capacity
    assert all(c.agent_id in agents for c in assigned)
    for agent_id, agent in agents.items():
        assert per_agent.get(agent_id, 0) == agent.active_count == LIMIT, agent.username
    elder_agents = {kit.agents[f"e{i}"] for i in range(ELDER_AGENTS)}
    general_agents = {kit.agents[f"g{i}"] for i in range(GENERAL_AGENTS)}
    assert all(c.queue == "elderly" for c in assigned if c.agent_id in elder_agents)
    overdue = {f"e-{i}" for i in range(N_ELDER // 2)}
    assert all(
        c.queue == "general" or c.buyer_id in overdue
        for c in assigned
        if c.agent_id in general_agents
    ), "a general agent took an elder before their overflow time"
    # Oldest first in each queue: the served ones are the longest waiting.
    for queue in ("general", "elderly"):
        waited = sorted((c for c in convs if c.queue == queue), key=lambda c: c.queued_at)
        statuses = [c.status for c in waited]
        served = statuses.count("assigned")
        assert statuses == ["assigned"] * served + ["queued"] * (len(waited) - served), queue
