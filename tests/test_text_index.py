"""The text index stays off the message path's critical moments (issue 20, big database).

PostgreSQL: the GIN index's pending list is merged by search's job every second, not by
whichever group commit's insert crosses `gin_pending_list_limit`. SQLite: migration 0022
merges an FTS5 index that a rebuild left in several segments into one, so later writes'
automatic merges no longer drag those segments through a commit.
"""

from __future__ import annotations

import sqlite3

import pytest
from alembic import command
from sqlalchemy import text

from app.jobs import registered_jobs
from app.migrate import alembic_config
from app.scheduler import JobContext
from app.search import jobs as search_jobs
from tests.conftest import buyer
from tests.support.factories import make_shop


async def test_the_job_merges_the_pending_text_entries(server, connect, backend):
    assert search_jobs.TEXT_INDEX_JOB in {job.name for job in registered_jobs()}
    kit = await make_shop(server.ctx.db)
    for n in range(8):  # 40 messages, 5 a buyer (a buyer's sends are rate limited)
        b = await buyer(server, kit, connect)
        for i in range(5):
            body = f"第{n}-{i}件什么时候发货呀"
            await b.send({"type": "message.send", "client_msg_id": f"t{i}", "body": body})
            await b.expect("message.ack")
    ctx = JobContext(db=server.ctx.db, clock=server.clock, settings=server.settings)
    merged = await search_jobs.empty_text_index_pending(ctx)
    if backend == "postgres":
        assert merged >= 1  # the 40 messages' entries were pending, now in the index
        assert await search_jobs.empty_text_index_pending(ctx) == 0  # and the list is empty
        async with server.ctx.db.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT count(*) FROM messages WHERE shop_id = :s AND body ILIKE :p"),
                {"s": kit.shop_id, "p": "%什么时候发货%"},
            )
            assert rows.scalar() == 40  # found through the merged index
    else:
        assert merged == 0  # SQLite: nothing to do, and no transaction taken for it


def _segments(conn: sqlite3.Connection) -> int:
    # One `messages_fts_idx` row per leaf's first term, keyed by its segment.
    return int(conn.execute("SELECT count(DISTINCT segid) FROM messages_fts_idx").fetchone()[0])


@pytest.mark.wheel
def test_migration_0022_merges_the_sqlite_text_index_into_one_segment(tmp_path):
    path = tmp_path / "fts.db"
    cfg = alembic_config(f"sqlite:///{path}")
    command.upgrade(cfg, "0021_message_path")
    conn = sqlite3.connect(path)  # foreign keys off: messages alone are enough here
    try:
        for i in range(10):  # a statement each: FTS5 writes a segment per statement
            conn.execute(
                "INSERT INTO messages (id, shop_id, conversation_id, seq, sender, sender_id, "
                "kind, body, payload, client_msg_id, created_at) VALUES "
                "(?, 's', 'c', ?, 'buyer', 'b', 'text', ?, '{}', ?, '2026-12-03 00:00:00.000000')",
                (f"m{i:02d}", i + 1, f"第{i}件什么时候发货呀", f"k{i}"),
            )
            conn.commit()
        assert _segments(conn) == 10
        command.upgrade(cfg, "heads")
        assert _segments(conn) == 1
        conn.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)")
        found = conn.execute(
            "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH '\"什么时候发货\"'"
        ).fetchone()[0]
        assert found == 10
    finally:
        conn.close()
