"""PostgreSQL's group commit finds a batch's conversations by their primary key, whatever
the table's statistics say (migration 0023).

A database analysed while few conversations were open (a quiet hour) made the planner
read the partial index of open conversations for the batch's lock: every batch walked
every open conversation, more of them the busier the desk. The plans of the function's
statements are read with auto_explain (superuser: the test server's trust login is one).
The test makes its own database: the statistics are the point, so no other test may move
them. Marked `wheel`: it runs once, under either backend's pass.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime

import asyncpg
import pytest

from app.chat.appender import _PG_APPEND
from app.config import Settings
from app.db import Database, new_id
from app.migrate import upgrade
from tests.conftest import PG_ADMIN, _pg_exec
from tests.support.factories import make_shop

CLOSED, OPEN = 3000, 300


@pytest.mark.wheel
async def test_a_batch_locks_its_conversations_by_key_whatever_the_statistics():
    name = f"homing_t_plan_{secrets.token_hex(4)}"
    await _pg_exec(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    try:
        await asyncio.to_thread(upgrade, url)
        db = Database(Settings(DATABASE_URL=url).async_database_url)
        try:
            kit = await make_shop(db)
        finally:
            await db.dispose()
        conn = await asyncpg.connect(url.replace("postgresql://", "postgres://"))
        try:
            plans = await _plans_of_one_append(conn, kit.shop_id, kit.agents["agent1"])
        finally:
            await conn.close()
    finally:
        await _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    # The function's first statement (messages into open conversations), whose `locked`
    # step takes the batch's conversations.
    lock = next(p for p in plans if "locked AS (" in p)
    assert "pk_conversations" in lock, lock
    assert "uq_conversations_open_buyer" not in lock, lock


async def _plans_of_one_append(conn: asyncpg.Connection, shop_id: str, agent_id: str) -> list[str]:
    insert = (
        "INSERT INTO conversations (id, shop_id, buyer_id, queue, status, agent_id, elder, "
        "last_seq, buyer_read_seq, agent_read_seq, opened_at, queued_at, assigned_at, closed_at) "
        "SELECT $1::text || lpad(n::text, 8, '0'), $2, 'b' || n, 'general', $3::text, $4, false, "
        "0, 0, 0, now(), now(), now(), CASE WHEN $3::text = 'closed' THEN now() END "
        "FROM generate_series(1, $5) AS n"
    )
    # What the statistics see: thousands of conversations, none open.
    await conn.execute(insert, "closed", shop_id, "closed", agent_id, CLOSED)
    await conn.execute("ANALYZE conversations")
    # Then the rush: hundreds open, not analysed yet.
    await conn.execute(insert, "open", shop_id, "assigned", agent_id, OPEN)

    notices: list[str] = []
    conn.add_log_listener(lambda _c, msg: notices.append(str(msg.message)))
    for sql in (
        "LOAD 'auto_explain'",
        "SET auto_explain.log_min_duration = 0",
        "SET auto_explain.log_nested_statements = on",
        "SET auto_explain.log_level = 'notice'",
        "SET client_min_messages = 'notice'",
    ):
        await conn.execute(sql)
    rows = await conn.fetch(
        _PG_APPEND,
        [new_id()],
        [shop_id],
        ["open00000007"],
        ["buyer"],
        ["b7"],
        ["text"],
        ["在吗"],
        ["{}"],
        [f"plan-{secrets.token_hex(4)}"],
        [datetime.now(UTC)],
        [None],
        [False],
    )
    assert [tuple(r) for r in rows] == [(1, 1, agent_id, "b7", None)]  # stored as seq 1
    await asyncio.sleep(0.1)  # notices are delivered by the connection's reader
    return [n for n in notices if "Query Text" in n]
