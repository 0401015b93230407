"""Database engine, sessions and the unit of work that publishes events after commit."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import (
    CursorResult,
    DateTime,
    Index,
    MetaData,
    Result,
    Row,
    Table,
    Update,
    event,
    inspect,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

log = logging.getLogger(__name__)

T = TypeVar("T")

# One naming convention, so Alembic names constraints the same on SQLite and PostgreSQL.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata: MetaData = SQLModel.metadata


def new_id() -> str:
    """Opaque, unguessable string ids (PROTOCOL: IDs are strings), in creation order.

    12 hex digits of milliseconds since the epoch, then 20 random ones (80 bits). Rows
    created one after another go to the end of their primary-key index instead of a
    random page of it: a message insert on SQLite costs 33 us of CPU instead of 42 us
    with random ids (200,000 messages stored; bench/ message path).
    """
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


def rowcount(result: Result[*tuple[Any, ...]]) -> int:
    """How many rows an UPDATE, DELETE or INSERT matched.

    `AsyncSession.execute` is declared to return a `Result`; for these statements it is a
    `CursorResult`, the one that carries the count.
    """
    return cast("CursorResult[*tuple[Any, ...]]", result).rowcount


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a table model, for statements that bypass the ORM (bulk inserts,
    ON CONFLICT). SQLModel sets `Model.__table__` but does not declare it."""
    table = inspect(model).local_table
    assert isinstance(table, Table)
    return table


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on SQLite (which stores naive text) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def unique_where(name: str, *columns: str, where: str) -> Index:
    """A unique index over only the rows where `where` (SQL) holds, on SQLite as on PostgreSQL."""
    return Index(
        name,
        *columns,
        unique=True,
        sqlite_where=text(where),
        postgresql_where=text(where),
    )


# At most this many pieces of grouped work share one transaction (run_grouped).
MAX_GROUP = 64

# PostgreSQL errors after which the whole transaction may simply be run again.
_RETRYABLE_SQLSTATES = {"40001", "40P01"}


def _is_retryable(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None) or getattr(
        getattr(orig, "__cause__", None), "sqlstate", None
    )
    return code in _RETRYABLE_SQLSTATES


class UnitOfWork:
    """One transaction plus the events to publish once it has committed.

    Actions receive a UnitOfWork, change state through `session`, and call `emit` for
    what clients should hear about. Nothing is published unless the commit succeeds.
    """

    def __init__(self, session: AsyncSession, dialect: str) -> None:
        self.session = session
        self.dialect = dialect
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.signals: list[tuple[str, Any]] = []

    def emit(self, topic: str, frame: dict[str, Any]) -> None:
        self.events.append((topic, frame))

    def emit_many(self, topics: list[str], frame: dict[str, Any]) -> None:
        for topic in topics:
            self.events.append((topic, frame))

    def signal(self, name: str, arg: Any) -> None:
        """Ask for follow-up work after commit (e.g. "dispatch" a queue); see Database.on_signal."""
        self.signals.append((name, arg))

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    async def add_if_new(self, row: Any) -> bool:
        """Insert the row in a savepoint; False if a unique key refuses it (another request
        stored it first), and the transaction goes on without it."""
        try:
            async with self.session.begin_nested():
                self.session.add(row)
                await self.session.flush()
        except IntegrityError:
            return False
        return True

    def race_guard(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """A savepoint to catch a unique-key race in, where one can happen.

        For an insert whose key the transaction has already looked for: on PostgreSQL
        another transaction may insert it in between, so the insert runs in a savepoint
        the caller can recover from. On SQLite every write transaction holds the
        database's write lock from BEGIN IMMEDIATE, so the earlier look still holds and
        no savepoint is needed (two statements fewer on the hottest paths).
        """
        if self.dialect == "sqlite":
            return contextlib.nullcontext()
        return self.session.begin_nested()


def dialect_insert(dialect: str, model: type[SQLModel]) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that knows `ON CONFLICT` (PostgreSQL and SQLite spell it alike)."""
    table = table_of(model)
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


def insert_ignore(
    dialect: str, model: type[SQLModel], keys: list[str], values: dict[str, Any]
) -> postgresql.Insert | sqlite.Insert:
    """INSERT ... ON CONFLICT (keys) DO NOTHING: a row that claims its key once.

    The statement's rowcount says who won: 1 for the inserter, 0 when the key was taken
    (a concurrent inserter's row is waited for, then counts as taken).
    """
    return (
        dialect_insert(dialect, model).values(**values).on_conflict_do_nothing(index_elements=keys)
    )


@dataclass
class Numbered(Generic[T]):
    """A row stored as its parent's next number, or the one already stored for its key."""

    item: T
    counter: Row[Any] | None  # what the counter UPDATE returned; None for a duplicate
    duplicate: bool


async def append_numbered(
    uow: UnitOfWork,
    counter: Update,
    build: Callable[[Row[Any]], T],
    *,
    find_duplicate: Callable[[], Awaitable[T | None]] | None,
    missing: Exception,
    prechecked: bool = False,
) -> Numbered[T]:
    """Insert `build(counter_row)` as the next number of a parent (gap-free, idempotent).

    `counter` is a conditional `UPDATE parent SET last_seq = last_seq + 1 ... RETURNING
    last_seq, ...`: it row-locks the parent, so concurrent writers get consecutive numbers;
    no row back means the parent refuses (`missing` is raised). The savepoint undoes the
    increment if the insert loses a unique-key race (an idempotent resend), so no number
    is ever skipped; `find_duplicate` then returns the row that won.
    """
    s = uow.session
    # With `prechecked` the caller has looked for the duplicate in this transaction.
    guard = uow.race_guard() if prechecked else s.begin_nested()
    try:
        async with guard:
            row = (await s.execute(counter.execution_options(synchronize_session=False))).first()
            if row is None:
                raise missing
            item = build(row)
            s.add(item)
            await s.flush()
    except IntegrityError:
        existing = await find_duplicate() if find_duplicate is not None else None
        if existing is None:
            raise
        return Numbered(existing, None, True)
    return Numbered(item, row, False)


class Database:
    """Owns the engine. Created in the app's lifespan, never at import time."""

    def __init__(self, async_url: str, *, echo: bool = False) -> None:
        self.url = async_url
        self.is_sqlite = async_url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(async_url, **kwargs)
        # Writers on SQLite take the write lock at BEGIN (IMMEDIATE), so writers in other
        # processes wait (busy_timeout) instead of failing mid-transaction; readers don't.
        self.write_engine: AsyncEngine = self.engine
        if self.is_sqlite:
            self.write_engine = create_async_engine(async_url, **kwargs)
            for eng, begin in (
                (self.engine, _sqlite_begin),
                (self.write_engine, _sqlite_begin_immediate),
            ):
                event.listen(eng.sync_engine, "connect", sqlite_pragmas)
                event.listen(eng.sync_engine, "begin", begin)
        # SQLite: the write-ahead log is copied into the file by a thread of its own, not
        # by whichever commit crosses 1,000 pages (`WalCheckpointer`).
        self.checkpointer: WalCheckpointer | None = None
        self._log_restart: asyncio.Task[None] | None = None
        database = self.engine.url.database
        if self.is_sqlite and database and database != ":memory:":
            self.checkpointer = WalCheckpointer(database)
            with contextlib.suppress(RuntimeError):  # no loop (a script): the thread restarts
                loop = asyncio.get_running_loop()
                self.checkpointer.on_long_log = lambda: loop.call_soon_threadsafe(self._restart_log)
            self.checkpointer.start()
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self.write_sessionmaker = async_sessionmaker(self.write_engine, expire_on_commit=False)
        self.dialect = self.engine.dialect.name
        # SQLite has one writer at a time; serialising writers in-process avoids
        # "database is locked" storms and keeps the ack latency predictable.
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._grouped: list[Any] = []  # (fn, args, kwargs, future) waiting for run_grouped
        self._grouper: asyncio.Task[None] | None = None
        self.groups_committed = 0  # transactions that carried more than one piece of grouped work
        self.publisher: Any = None  # set by the app: async callable(events)
        self.on_signal: Any = None  # set by the app: callable(name, arg)

    def write_lock(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """Held by every writer in this process (SQLite: one writer at a time)."""
        return self._write_lock or contextlib.nullcontext()

    def sqlite_path(self) -> str:
        """The SQLite file, for code that opens its own connection to it."""
        database = self.engine.url.database
        if not self.is_sqlite or not database:
            raise ValueError("not a SQLite file database")
        return database

    def _restart_log(self) -> None:
        """SQLite: start the write-ahead log over (`WalCheckpointer`), holding this
        process's write lock, so that the writers queued behind it wait on the lock and
        go the moment it is free, not in SQLite's busy handler, whose sleeps (1, 2, 5, 10,
        15 ms ...) turned a 20 ms hold into 40-55 ms of waiting acks."""
        checkpointer = self.checkpointer
        if checkpointer is None or (self._log_restart and not self._log_restart.done()):
            return

        async def restart() -> None:
            async with self.write_lock():
                await asyncio.to_thread(checkpointer.restart)

        self._log_restart = asyncio.create_task(
            restart(), name="sqlite-log-restart", context=contextvars.Context()
        )

    async def dispose(self) -> None:
        if self.checkpointer is not None:
            await asyncio.to_thread(self.checkpointer.stop)
            if self._log_restart is not None:
                await asyncio.gather(self._log_restart, return_exceptions=True)
            self.checkpointer.close()
        await self.engine.dispose()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            yield session

    async def query(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run `fn(uow, *args)` on a read session: checks and reads that change nothing."""
        async with self.read() as session:
            return await fn(UnitOfWork(session, self.dialect), *args, **kwargs)

    async def announce(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run `fn(uow, *args)` on a read session and publish what it emits.

        For news made only of committed state (e.g. queue positions): nothing is written,
        so it need not wait for the writer's turn behind a surge of writes.
        """
        async with self.read() as session:
            uow = UnitOfWork(session, self.dialect)
            result = await fn(uow, *args, **kwargs)
        await self._committed([uow])
        return result

    @contextlib.asynccontextmanager
    async def _transaction_once(self) -> AsyncIterator[UnitOfWork]:
        async with self.write_lock(), self.write_sessionmaker() as session:
            uow = UnitOfWork(session, self.dialect)
            async with session.begin():
                yield uow
        await self._committed([uow])

    async def _committed(self, uows: list[UnitOfWork]) -> None:
        """Committed: now, and only now, tell the world (in the order the work was done)."""
        events = [e for uow in uows for e in uow.events]
        if events and self.publisher is not None:
            await self.publisher(events)
        if self.on_signal is not None:
            for uow in uows:
                for name, arg in uow.signals:
                    self.on_signal(name, arg)

    async def run_grouped(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """`run`, sharing one transaction with whatever other grouped work is waiting.

        For the many small writes of chat sockets. On SQLite, where writers take turns
        anyway, the work waiting while a transaction runs is done next in a single one
        (one BEGIN IMMEDIATE, one COMMIT, one turn at the lock), each in the order it
        came, as if one after another; each caller gets its own result once the whole
        has committed. If any of them raises, the group is rolled back and each is run
        again on its own, so an error reaches only its caller and nothing half-done is
        kept. On PostgreSQL, where writers run side by side, this is `run`.
        """
        if not self.is_sqlite:
            return await self.run(fn, *args, **kwargs)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._grouped.append((fn, args, kwargs, future))
        if self._grouper is None or self._grouper.done():
            # Its own context: a group serves many callers, so its log lines name none.
            self._grouper = asyncio.create_task(
                self._run_groups(), name="grouped-writes", context=contextvars.Context()
            )
        return await future

    async def _run_groups(self) -> None:
        while self._grouped:
            group, self._grouped = self._grouped[:MAX_GROUP], self._grouped[MAX_GROUP:]
            if len(group) > 1:
                try:
                    results = await self._group_once(group)
                except Exception:
                    log.debug(
                        "a grouped write failed; running each of %d alone",
                        len(group),
                        exc_info=True,
                    )
                else:
                    for (_fn, _a, _kw, future), result in zip(group, results, strict=True):
                        if not future.done():
                            future.set_result(result)
                    continue
            for fn, args, kwargs, future in group:
                try:
                    result = await self.run(fn, *args, **kwargs)
                except Exception as exc:  # noqa: BLE001 - handed to its caller
                    if not future.done():
                        future.set_exception(exc)
                else:
                    if not future.done():
                        future.set_result(result)

    async def _group_once(self, group: list[Any]) -> list[Any]:
        uows: list[UnitOfWork] = []
        results: list[Any] = []
        async with (
            self.write_lock(),
            self.write_sessionmaker() as session,
            session.begin(),
        ):
            for fn, args, kwargs, _future in group:
                uow = UnitOfWork(session, self.dialect)
                results.append(await fn(uow, *args, **kwargs))
                await session.flush()
                uows.append(uow)
        self.groups_committed += 1
        await self._committed(uows)
        return results

    async def run(self, fn: Any, *args: Any, attempts: int = 5, **kwargs: Any) -> Any:
        """Run `fn(uow, *args)` in a transaction, retrying deadlocks and serialization failures."""
        for attempt in range(attempts):
            try:
                async with self._transaction_once() as uow:
                    return await fn(uow, *args, **kwargs)
            except DBAPIError as exc:
                if attempt + 1 < attempts and _is_retryable(exc):
                    log.info("retrying transaction after %s", exc.orig)
                    await asyncio.sleep(0.01 * (attempt + 1))
                    continue
                raise
        raise AssertionError("unreachable")


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, issue BEGIN, so SAVEPOINTs work (SQLAlchemy's
    # documented recipe for pysqlite/aiosqlite).
    dbapi_connection.isolation_level = None
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    # No commit checkpoints: the `WalCheckpointer` of the process's Database does, off the
    # writer's path (the last connection to close checkpoints too, as SQLite always does).
    cur.execute("PRAGMA wal_autocheckpoint=0")
    # A log that grew while readers kept it from starting over is cut back to this when
    # it next does (`WalCheckpointer`), instead of keeping its largest size for good.
    cur.execute(f"PRAGMA journal_size_limit={WalCheckpointer.RESTART_PAGES * 4096 * 4}")
    cur.close()


class WalCheckpointer:
    """Copies SQLite's write-ahead log into the database file, from a thread of its own.

    By default SQLite checkpoints inside the commit that takes the log past 1,000 pages:
    that commit (the group commit of a whole batch of messages, whose acks wait on it)
    copies the pages and waits for two fsyncs. On a large file the pages are far apart and
    that took 50-100 ms every few seconds, so one message in a hundred waited that long at
    any rate (`bench --only bigdb`). Here a PASSIVE checkpoint runs every `every_s` on this
    thread's own connection: it copies what no reader still needs and never blocks a
    writer or a reader; its fsyncs wait here, with the GIL released.

    A PASSIVE checkpoint alone never starts the log over. SQLite does that when a writer
    begins with every frame of the log copied, and under steady writes new frames arrive
    while each checkpoint runs: the log grew without end (1.3 GB in 30 s at 1,000 round
    trips a second), every commit extending the file, and the file system's allocation
    and its journal commits (ext4: every 5 s) held group commits for 60-100 ms and cost
    a third of the server's CPU per message. Nor does such a checkpoint sync the database
    file (SQLite syncs it only after copying the whole log), so its copied pages pile up
    in the page cache. So once the log is past `restart_pages`:
    - this thread syncs the file's piled-up pages (85-105 ms on a 4 GB file), copies the
      frames written meanwhile and syncs both files, holding no lock;
    - then `restart` runs a RESTART checkpoint, which holds SQLite's writer lock while it
      copies and syncs the little written since (4-6 ms) and, if no reader is still
      inside the log, has the next writer start it over at its beginning, on blocks the
      file already has. Its busy timeout is 0: another process's writer or a reader in
      the log makes it a PASSIVE one, and the next tick tries again.
    The Database runs `restart` holding its own write lock (`on_long_log`), so that its
    writers wait on that lock, not in SQLite's busy handler, whose sleeps (1, 2, 5, 10,
    15 ms ...) made a 20 ms hold 40-55 ms of waiting acks. With no `on_long_log` (no
    event loop, or a closed one) this thread runs it.
    """

    RESTART_PAGES = 16_384  # 64 MB of 4 KB pages: at 1,000 round trips a second, every ~1.5 s

    def __init__(self, path: str, every_s: float = 0.5, restart_pages: int = RESTART_PAGES) -> None:
        self.path = path
        self.every_s = every_s
        self.restart_pages = restart_pages
        self.last: tuple[int, int, int] | None = None  # (busy, log pages, checkpointed)
        self.restarts = 0  # RESTART checkpoints that left the log to be started over
        self.on_long_log: Callable[[], object] | None = None  # called from this thread
        self._restart_conn: sqlite3.Connection | None = None
        self._descriptors: dict[str, int] = {}  # file -> a descriptor SQLite holds open
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _connect(self) -> sqlite3.Connection:
        # mode=rw: a file not made yet is left for its migrations to make.
        conn = sqlite3.connect(
            f"file:{self.path}?mode=rw", uri=True, timeout=5, check_same_thread=False
        )
        sqlite_pragmas(conn, None)
        conn.execute("PRAGMA busy_timeout=0")  # never wait: the next tick tries again
        return conn

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while not self._stop.wait(self.every_s):
                try:
                    conn = conn or self._connect()
                    row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.last = (int(row[0]), int(row[1]), int(row[2]))
                    if self.last[1] >= self.restart_pages:
                        self._sync(self.path)
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                        self._sync(self.path)
                        self._sync(self.path + "-wal")
                        self._ask_restart()
                except sqlite3.Error:  # a file not made yet, or locked: the next tick tries
                    log.debug("WAL checkpoint of %s skipped", self.path, exc_info=True)
        finally:
            if conn is not None:
                conn.close()

    def _ask_restart(self) -> None:
        if self.on_long_log is not None:
            try:
                self.on_long_log()
                return
            except RuntimeError:  # its loop is closed: the Database is going
                pass
        self.restart()

    def restart(self) -> None:
        """A RESTART checkpoint (see the class): one caller at a time, on its own connection."""
        try:
            self._restart_conn = self._restart_conn or self._connect()
            busy = self._restart_conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()[0]
            self.restarts += int(busy) == 0
        except sqlite3.Error:
            log.debug("WAL restart of %s skipped", self.path, exc_info=True)

    def _sync(self, path: str) -> None:
        """fdatasync `path` through a descriptor SQLite already holds on it (this thread's
        connection keeps both files open). Opening one of our own would be simpler, but
        closing it would drop every POSIX lock this process holds on the file, SQLite's
        included. Where there is no /proc, nothing is synced here and RESTART does it all."""
        fd = self._descriptors.get(path)
        try:
            want = os.stat(path)
            if fd is not None:
                have = os.fstat(fd)
                if (have.st_dev, have.st_ino) != (want.st_dev, want.st_ino):
                    fd = None  # closed and its number reused: look again
            if fd is None:
                fd = _descriptor_of(want)
                if fd is None:
                    return
                self._descriptors[path] = fd
            os.fdatasync(fd)
        except OSError:
            self._descriptors.pop(path, None)  # gone since: the next tick looks again

    def close(self) -> None:
        """After `stop` and the last `restart`."""
        if self._restart_conn is not None:
            self._restart_conn.close()
            self._restart_conn = None


def _descriptor_of(st: os.stat_result) -> int | None:
    """A descriptor of this process open on the file `st` describes (Linux's /proc), lowest
    first: SQLite's own connections opened theirs before the sockets came."""
    try:
        names = sorted(os.listdir("/proc/self/fd"), key=int)
    except OSError:
        return None
    for name in names:
        try:
            have = os.stat(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if (have.st_dev, have.st_ino) == (st.st_dev, st.st_ino):
            return int(name)
    return None


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN")


def _sqlite_begin_immediate(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")
