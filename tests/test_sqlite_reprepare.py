"""SQLite never prepares the message path's statements again for a new sender.

SQLite re-prepares a statement at every execution that binds a parameter its plan looked
at, and the planner looks at a bound `sender` to decide whether the partial index of
agents' messages (`ix_messages_agent_wrote`, migration 0024) may serve the query. Each
statement below runs here three times with new values on a migrated database, through
SQLite's own C API (the same library Python's `sqlite3` uses), and SQLite's own counter
of re-preparations (`sqlite3_stmt_status(..., SQLITE_STMTSTATUS_REPREPARE)`) must stay 0.
The same query with its sender bound is the control: SQLite re-prepares it every time, so
the counter does move when the text is wrong. Marked `wheel`: it runs once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import sqlite
from sqlmodel import col

from app.chat import appender
from app.chat.models import Message, sent_by
from app.migrate import upgrade

pytestmark = pytest.mark.wheel

SQLITE_ROW, SQLITE_DONE, SQLITE_STMTSTATUS_REPREPARE = 100, 101, 5
_TRANSIENT = ctypes.c_void_p(-1)


def _lib() -> ctypes.CDLL:
    name = ctypes.util.find_library("sqlite3")
    assert name, "libsqlite3 (the library Python's sqlite3 module links) is not found"
    lib = ctypes.CDLL(name)
    lib.sqlite3_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.sqlite3_prepare_v2.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_void_p),
        ctypes.c_void_p,
    ]
    lib.sqlite3_bind_text.argtypes = [
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_void_p,
    ]
    lib.sqlite3_bind_parameter_count.argtypes = [ctypes.c_void_p]
    lib.sqlite3_step.argtypes = [ctypes.c_void_p]
    lib.sqlite3_reset.argtypes = [ctypes.c_void_p]
    lib.sqlite3_finalize.argtypes = [ctypes.c_void_p]
    lib.sqlite3_stmt_status.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    lib.sqlite3_errmsg.argtypes = [ctypes.c_void_p]
    lib.sqlite3_errmsg.restype = ctypes.c_char_p
    lib.sqlite3_close.argtypes = [ctypes.c_void_p]
    return lib


@pytest.fixture(scope="module")
def database(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ctypes.CDLL, ctypes.c_void_p]]:
    path = tmp_path_factory.mktemp("reprepare") / "homing.db"
    upgrade(f"sqlite:///{path}")
    lib = _lib()
    handle = ctypes.c_void_p()
    assert lib.sqlite3_open(str(Path(path)).encode(), ctypes.byref(handle)) == 0
    try:
        yield lib, handle
    finally:
        lib.sqlite3_close(handle)


@contextmanager
def _prepared(lib: ctypes.CDLL, db: ctypes.c_void_p, sql: str) -> Iterator[ctypes.c_void_p]:
    stmt = ctypes.c_void_p()
    rc = lib.sqlite3_prepare_v2(db, sql.encode(), -1, ctypes.byref(stmt), None)
    assert rc == 0, lib.sqlite3_errmsg(db)
    try:
        yield stmt
    finally:
        lib.sqlite3_finalize(stmt)


def reprepares(database: tuple[ctypes.CDLL, ctypes.c_void_p], sql: str, senders: bool) -> int:
    """Run `sql` three times, each with new text values for all its parameters (the first
    is "buyer" or "agent" in turn when `senders`), and return SQLite's re-prepare count."""
    lib, db = database
    with _prepared(lib, db, sql) as stmt:
        n = lib.sqlite3_bind_parameter_count(stmt)
        for run, sender in enumerate(("buyer", "agent", "buyer")):
            for i in range(1, n + 1):
                value = sender if senders and i == 1 else f"v{run}-{i}"
                assert lib.sqlite3_bind_text(stmt, i, value.encode(), -1, _TRANSIENT) == 0
            while (rc := lib.sqlite3_step(stmt)) == SQLITE_ROW:
                pass
            assert rc == SQLITE_DONE, lib.sqlite3_errmsg(db)
            lib.sqlite3_reset(stmt)
        return int(lib.sqlite3_stmt_status(stmt, SQLITE_STMTSTATUS_REPREPARE, 0))


def _rendered(statement: object) -> str:
    """As SQLAlchemy hands it to SQLite: `?` for each bound value, literals rendered."""
    return str(
        statement.compile(  # type: ignore[attr-defined]
            dialect=sqlite.dialect(), compile_kwargs={"render_postcompile": True}
        )
    )


@pytest.mark.parametrize(
    "name", ["_TAKE_SEQ_BUYER", "_TAKE_SEQ_AGENT", "_SENT"], ids=["buyer", "agent", "opening"]
)
def test_the_group_commits_statements_are_prepared_once(database, name):
    assert reprepares(database, getattr(appender, name), senders=False) == 0


def test_a_query_by_sender_is_prepared_once(database):
    """`sent_by` (the full path's resend check, and the buyer-only reads of history, the
    bot, payouts and recall): the value is in the text SQLite sees."""
    query = select(col(Message.id)).where(
        col(Message.shop_id) == "s", sent_by("agent"), col(Message.sender_id) == "a"
    )
    assert "'agent'" in _rendered(query)
    assert reprepares(database, _rendered(query), senders=False) == 0


def test_a_bound_sender_is_prepared_again_every_time(database):
    """The control: the same query with the sender bound, as it was written before."""
    bound = (
        "SELECT id FROM messages WHERE sender = ? AND shop_id = ? AND sender_id = ? "
        "AND client_msg_id = ?"
    )
    assert reprepares(database, bound, senders=True) >= 2
