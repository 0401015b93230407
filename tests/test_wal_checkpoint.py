"""SQLite's write-ahead log is copied into the file by the Database's own thread, never by a
commit (app/db.py `WalCheckpointer`): the group commit's acks don't wait on a checkpoint."""

from __future__ import annotations

import asyncio
import sqlite3

from app.db import Database, sqlite_pragmas


async def test_commits_leave_the_checkpoint_to_the_checkpointer(tmp_path):
    path = tmp_path / "wal.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        assert db.checkpointer is not None
        async with db.write_engine.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE t (x BLOB)")
        for _ in range(30):  # ~1,500 pages: past SQLite's own 1,000-page checkpoint
            async with db.write_engine.begin() as conn:
                await conn.exec_driver_sql("INSERT INTO t VALUES (randomblob(200000))")
        for eng in (db.engine, db.write_engine):
            async with eng.connect() as conn:
                assert (await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar() == 0
        # The appender's own connection takes the same settings.
        raw = sqlite3.connect(path)
        try:
            sqlite_pragmas(raw, None)
            assert raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        finally:
            raw.close()
        # Every page written is copied into the file within a few of the thread's ticks.
        for _ in range(100):
            last = db.checkpointer.last
            if last is not None and last[1] >= 1500 and last[1] == last[2]:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"the log was not checkpointed: {db.checkpointer.last}")
    finally:
        await db.dispose()
    assert db.checkpointer._thread is not None and not db.checkpointer._thread.is_alive()
