"""SQLite's write-ahead log is copied into the file by the Database's own thread, never by a
commit (app/db.py `WalCheckpointer`): the group commit's acks don't wait on a checkpoint."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time

from app.db import Database, WalCheckpointer, sqlite_pragmas


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


def _wal_bytes(path) -> int:
    try:
        return os.path.getsize(f"{path}-wal")
    except FileNotFoundError:
        return 0


async def test_under_steady_writes_the_log_starts_over_while_the_write_lock_is_held(tmp_path):
    """A PASSIVE checkpoint alone never starts the log over while writes keep coming: the
    log file grew by every page written (1.3 GB in 30 s on the bench). Past
    `restart_pages` the log is synced, then started over by a RESTART checkpoint run while
    this process's writers wait on its write lock."""
    path = tmp_path / "steady.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    checkpointer = db.checkpointer
    assert checkpointer is not None
    checkpointer.restart_pages = 256  # 1 MB
    checkpointer.every_s = 0.05  # from its second tick
    held: list[bool] = []
    restart = checkpointer.restart

    writing = False  # the test's writer is inside its transaction

    def watched_restart() -> None:
        held.append(db.write_lock().locked() and not writing)  # type: ignore[attr-defined]
        restart()

    checkpointer.restart = watched_restart  # type: ignore[method-assign]
    stop = asyncio.Event()

    async def reader() -> None:  # readers come and go, as the sockets' reads do
        while not stop.is_set():
            async with db.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT count(*) FROM t")
            await asyncio.sleep(0.01)

    try:
        async with db.write_engine.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE t (x BLOB)")
        readers = [asyncio.create_task(reader()) for _ in range(2)]
        largest, written, since, first = 0, 0, 0, 0
        while since < 40_000_000:  # 40 MB after its first restart, five pages a commit
            async with db.write_lock(), db.write_engine.begin() as conn:
                writing = True
                await conn.exec_driver_sql("INSERT INTO t VALUES (randomblob(20000))")
                writing = False
            written += 20_000
            if checkpointer.restarts:
                first = first or _wal_bytes(path)  # the file keeps its largest size
                since += 20_000
                largest = max(largest, _wal_bytes(path))
            assert written < 400_000_000, f"the log never started over: {checkpointer.last}"

        stop.set()
        await asyncio.gather(*readers)
    finally:
        await db.dispose()
    assert held and all(held), held  # RESTART only while this process's writers wait on the lock
    assert largest - first < 4_000_000, f"the log grew {first:,} -> {largest:,} bytes over 40 MB"
    # The pages were synced through descriptors SQLite holds, found by /proc.
    assert set(checkpointer._descriptors) == {str(path), f"{path}-wal"}


def test_without_an_event_loop_the_checkpointer_starts_the_log_over_itself(tmp_path):
    path = tmp_path / "alone.db"
    conn = sqlite3.connect(path, isolation_level=None)
    sqlite_pragmas(conn, None)
    conn.execute("CREATE TABLE t (x BLOB)")
    checkpointer = WalCheckpointer(str(path), every_s=0.05, restart_pages=128)
    checkpointer.start()
    try:
        largest = 0
        for _ in range(2_000):  # 40 MB, one writer with the short gaps a real one has
            conn.execute("INSERT INTO t VALUES (randomblob(20000))")
            largest = max(largest, _wal_bytes(path))
            time.sleep(0.0005)
    finally:
        checkpointer.stop()
        checkpointer.close()
        conn.close()
    assert checkpointer.restarts >= 1, checkpointer.last
    assert largest < 12_000_000, f"the log grew to {largest:,} bytes"
