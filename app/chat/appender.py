"""Group commit for the common message: many sends, one transaction, each acked after it.

The socket handlers hand every plain `message.send` into an existing conversation, and a
buyer's first plain text (`Opening`: it opens the conversation, as
`routing.open_conversation` would, in the queue `routing.rules.choose_queue` picked), to
`MessageAppender.append`. One drain task takes whatever is waiting, writes it all in
one transaction with three small statements per message (is it a resend? take the next
`seq`; insert) and one per batch that indexes the text (SQLite), commits, and only then
answers each caller and publishes the messages. While a batch is being written the next
one gathers, so a busy node writes fewer, larger transactions and an idle one still
writes each message at once.

The rules are those of `app.chat.append_rules` (R1-R10), the same as the full path's
(`actions`): the conversation row is updated first (`last_seq + 1 ... RETURNING`, which
locks it), only an open conversation the sender belongs to takes a message, and who
hears of it is decided by the row as locked. Anything out of the ordinary is not
handled here but handed back (`None`): a resend, a closed or foreign conversation, an
image that needs its upload checked, a buyer who already has an open conversation the
socket did not know of. If a batch fails as a whole (a unique-key race with another
node, a lost connection), it is rolled back and every message in it is handed back
too; the caller then takes the full path in `actions`, which knows every case. So this
is purely a faster way to do the same thing (`tests/test_append_paths.py` proves it).

On SQLite the batch runs on a connection of its own in one worker thread (one thread
hop per batch, not per statement). On PostgreSQL the same rules run server-side, in the
function `homing_append_messages` (migration 0007, made set-based by 0008): one statement,
one round trip and one transaction per batch, on the appender's own asyncpg connection.
The function relies on `_candidates`: no message twice in a batch (R2).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sqlite3
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg
import orjson

from app.chat.append_rules import first_sends, new_conversation, send_key, stamps_buyer_time
from app.chat.models import Conversation
from app.chat.schemas import conversation_public, message_wire, queued_frame
from app.db import Database, new_id, sqlite_pragmas
from app.realtime.topics import buyer_topic, conversation_sides

log = logging.getLogger(__name__)

MAX_BATCH = 256
# SQLite: wait this long for more messages before a batch (each batch costs a thread hop
# and a commit, worth sharing). PostgreSQL: none; a batch is one round trip, and the next
# gathers while it is in flight.
GATHER_S = 0.002
# SQLite: the appender connection's page cache, in KiB (SQLite's default is 2 MiB). A batch
# walks the leaves where its messages land in five indexes, one or two per conversation and
# sender; with 1,000 conversations busy at once those leaves are some 20 MB, and a 2 MiB
# cache read most of them back from the OS on every batch (6.2 reads of 4 KB per message
# on the 5,000,000-message database, 10% of the server core at 1,500 round trips a second;
# 0.6 reads with this cache; `bench.steady --big --perf`). The cache fills only as pages
# are read, so a small shop's server never holds this much.
APPENDER_CACHE_KIB = 65_536


@dataclass(frozen=True)
class Opening:
    """A buyer's first message opens the conversation `Append.conversation_id` with it.

    `queue` is the one `routing.rules.choose_queue` picked. Only when the buyer has no
    open conversation (else the full path appends to the one they have).
    """

    queue: str
    elder: bool
    shown_as: tuple[str, str, int | None]  # shop slug, buyer name, VIP level


@dataclass
class Append:
    """One message to store as the next `seq` of `conversation_id`.

    `sender` is "buyer" or "agent"; a buyer's message needs the conversation to be
    theirs and open, an agent's needs it open and served by that agent. With `opens`,
    the conversation is new and the message is its first.
    """

    shop_id: str
    conversation_id: str
    sender: str
    sender_id: str
    kind: str
    body: str
    payload: dict[str, Any]
    client_msg_id: str
    now: datetime
    opens: Opening | None = None
    future: asyncio.Future[dict[str, Any] | None] = field(init=False, repr=False)


@dataclass
class Stored:
    message: dict[str, Any]  # the wire shape (PROTOCOL MSG)
    events: list[tuple[str, dict[str, Any]]]  # (topic, frame), published after commit
    signals: list[tuple[str, tuple[str, str]]] = field(default_factory=list)  # then these


@dataclass
class Done:
    """What a `Job` wrote: its result for the caller, and the frames to publish after commit."""

    value: Any
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


# SQLite: other writes that share a batch's transaction (`MessageAppender.join`). Runs in
# the appender's thread on its connection, inside the open transaction, after the batch's
# messages; returns what it wrote, or None when it wrote nothing and hands the work back
# (the caller then takes its own, full path). It must not commit or roll back.
JobWrite = Callable[[sqlite3.Connection], Done | None]


@dataclass
class Job:
    write: JobWrite
    future: asyncio.Future[Done | None] = field(init=False, repr=False)


# Take the conversation's next seq (R1), if it is open (R5), the sender belongs to it (R6)
# and this is not a resend (R2); a buyer's stamps their last word (R7). A resend, or any
# refusal, is handed back to the full path.
# The sender is written into each statement, not bound (`models.sent_by` says why).
def _not_sent(sender: str) -> str:
    return (
        f"NOT EXISTS (SELECT 1 FROM messages m WHERE m.shop_id = ? AND m.sender = '{sender}' "
        "AND m.sender_id = ? AND m.client_msg_id = ?)"
    )


_TAKE_SEQ_BUYER = (
    "UPDATE conversations SET last_seq = last_seq + 1, last_buyer_message_at = ? "
    "WHERE id = ? AND shop_id = ? AND buyer_id = ? AND status <> 'closed' AND "
    + _not_sent("buyer")
    + " RETURNING last_seq, agent_id, buyer_id"
)
_TAKE_SEQ_AGENT = (
    "UPDATE conversations SET last_seq = last_seq + 1 "
    "WHERE id = ? AND shop_id = ? AND agent_id = ? AND status <> 'closed' AND "
    + _not_sent("agent")
    + " RETURNING last_seq, agent_id, buyer_id"
)
# A first message (R3): not a resend (R2), and the buyer has no open conversation (R4: the
# partial unique index ignores the row otherwise); then where it waits in its queue. The
# row is `append_rules.new_conversation` with its first message numbered (R1, R7).
_SENT = (
    "SELECT 1 FROM messages WHERE shop_id = ? AND sender = 'buyer' AND sender_id = ? "
    "AND client_msg_id = ?"
)
_OPEN_COLUMNS = (
    "id",
    "shop_id",
    "buyer_id",
    "queue",
    "status",
    "agent_id",
    "elder",
    "last_seq",
    "buyer_read_seq",
    "agent_read_seq",
    "opened_at",
    "queued_at",
    "assigned_at",
    "closed_at",
    "close_reason",
    "last_buyer_message_at",
)
_OPEN = (
    f"INSERT OR IGNORE INTO conversations ({', '.join(_OPEN_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_OPEN_COLUMNS))}) RETURNING id"
)
_AHEAD = (
    "SELECT count(*) FROM conversations WHERE shop_id = ? AND queue = ? AND status = 'queued' "
    "AND (queued_at < ? OR (queued_at = ? AND id < ?))"
)
_INSERT = (
    "INSERT INTO messages (id, shop_id, conversation_id, seq, sender, sender_id, kind, body, payload, "
    "client_msg_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

Statement = tuple[str, tuple[Any, ...]]

# A message by no socket (the bot's), into a conversation still in the status its writer
# decided on (R1, R5: `append_message`'s counter with a status condition).
_TAKE_SEQ_IF = (
    "UPDATE conversations SET last_seq = last_seq + 1 "
    "WHERE id = ? AND shop_id = ? AND status = ? RETURNING last_seq, agent_id, buyer_id"
)


def append_sqlite(
    conn: sqlite3.Connection,
    *,
    shop_id: str,
    conversation_id: str,
    status: str,
    sender: str,
    kind: str,
    body: str,
    payload: dict[str, Any],
    now: datetime,
) -> Stored | None:
    """For a `Job`: store a message with no sender id and no client id (the bot's) as the
    conversation's next `seq`, if the conversation is still in `status`; None otherwise.
    Both sides hear of it after commit, as of the full path's `append_message`."""
    taken = conn.execute(_TAKE_SEQ_IF, (conversation_id, shop_id, status)).fetchone()
    if taken is None:
        return None
    seq, agent_id, buyer_id = taken
    item = Append(shop_id, conversation_id, sender, "", kind, body, payload, "", now)
    message_id = new_id()
    row = _row(item, message_id, seq, _sqlite_time(now))
    conn.execute(_INSERT, (*row[:5], None, *row[6:9], None, row[10]))
    message = message_wire(
        id=message_id,
        conversation_id=conversation_id,
        seq=seq,
        sender=sender,
        sender_id=None,
        kind=kind,
        body=body,
        payload=payload,
        created_at=now,
        client_msg_id=None,
    )
    frame = {"type": "message.new", "message": message}
    return Stored(message, [(t, frame) for t in conversation_sides(shop_id, buyer_id, agent_id)])


# SQLite's text index (migration 0021): the row trigger stands aside while the hold row
# exists, and the batch is indexed with one statement (FTS5 writes a segment per
# statement, so one per message was the path's largest cost). The hold row is deleted
# before the commit: other writers (one at a time) never see it.
_HOLD_FTS = "INSERT INTO messages_fts_hold (id) VALUES (1)"
_LAST_ROWID = "SELECT coalesce(max(rowid), 0) FROM messages"
_INDEX_FTS = (
    "INSERT INTO messages_fts (rowid, body) SELECT rowid, body FROM messages WHERE rowid > ?"
)
_RELEASE_FTS = "DELETE FROM messages_fts_hold"


def _insert_indexed(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """SQLite, inside the batch's transaction: insert `rows` into messages and index them."""
    conn.execute(_HOLD_FTS)
    (last,) = conn.execute(_LAST_ROWID).fetchone()
    conn.executemany(_INSERT, rows)
    conn.execute(_INDEX_FTS, (last,))
    conn.execute(_RELEASE_FTS)


def _candidates(batch: list[Append], order: list[int]) -> list[int]:
    """The batch's indices in `order`, each message once (R2, `first_sends`): the second
    copy of a message in one batch is a resend for the full path."""
    return first_sends([_key(item) for item in batch], order)


def _key(item: Append) -> tuple[str, str, str, str]:
    return send_key(item.shop_id, item.sender, item.sender_id, item.client_msg_id)


def _stored(item: Append, message_id: str, seq: int, agent_id: str | None, buyer_id: str) -> Stored:
    message = _wire(item, message_id, seq)
    frame = {"type": "message.new", "message": message}
    return Stored(
        message, [(topic, frame) for topic in conversation_sides(item.shop_id, buyer_id, agent_id)]
    )


def _new_conversation(item: Append, opens: Opening) -> Conversation:
    return new_conversation(
        conversation_id=item.conversation_id,
        shop_id=item.shop_id,
        buyer_id=item.sender_id,
        queue=opens.queue,
        elder=opens.elder,
        now=item.now,
    )


def _open_params(conv: Conversation) -> tuple[Any, ...]:
    """SQLite: `_OPEN`'s values, the new conversation with its first message (R1, R7)."""
    first: dict[str, Any] = {"last_seq": 1, "last_buyer_message_at": conv.opened_at}
    values = (first[c] if c in first else getattr(conv, c) for c in _OPEN_COLUMNS)
    return tuple(_sqlite_time(v) if isinstance(v, datetime) else v for v in values)


def _opened(
    item: Append, opens: Opening, message_id: str, position: int, conv: Conversation | None = None
) -> Stored:
    """What the full path (`send_from_buyer`) tells of a new conversation, in its order:
    opened (shown before its first message), the message, its place in the queue."""
    conv = conv or _new_conversation(item, opens)
    slug, name, vip = opens.shown_as
    mine = buyer_topic(item.shop_id, item.sender_id)
    stored = _stored(item, message_id, 1, None, item.sender_id)
    stored.events[:0] = [
        (
            mine,
            {
                "type": "conversation.opened",
                "conversation": conversation_public(
                    conv, shop_slug=slug, agent_name=None, buyer=(name, vip)
                ),
            },
        )
    ]
    stored.events.append((mine, queued_frame(conv.id, opens.queue, position)))
    stored.signals.append(("dispatch", (item.shop_id, opens.queue)))
    return stored


def _plan(
    batch: list[Append],
) -> Generator[Statement, Any, tuple[list[Stored | None], list[tuple[Any, ...]]]]:
    """SQLite: the batch's statements, one conversation UPDATE per message.

    A generator that yields (sql, params) and is sent back the row the statement
    returned. It returns each message's result and the rows to insert (all at once, at
    the end). PostgreSQL runs the same steps server-side (`homing_append_messages`).
    """
    out: list[Stored | None] = [None] * len(batch)
    rows: list[tuple[Any, ...]] = []
    for i in _candidates(batch, list(range(len(batch)))):
        item = batch[i]
        # Who sent it is in the statement (`_not_sent`): the rest of its key is bound.
        shop_id, sender, sender_id, client_msg_id = _key(item)
        key = (shop_id, sender_id, client_msg_id)
        now = _sqlite_time(item.now)
        if item.opens is not None:
            assert sender == "buyer", "only a buyer's message opens a conversation"
            if (yield _SENT, key) is not None:
                continue  # a resend: the full path returns the original
            conv = _new_conversation(item, item.opens)
            if (yield _OPEN, _open_params(conv)) is None:
                continue  # they have an open conversation already: the full path appends to it
            ahead = yield _AHEAD, (item.shop_id, item.opens.queue, now, now, item.conversation_id)
            message_id = new_id()
            rows.append(_row(item, message_id, 1, now))
            out[i] = _opened(item, item.opens, message_id, int(ahead[0]) + 1, conv)
            continue
        if stamps_buyer_time(sender):  # R7; R6: the buyer's own conversation
            taken = yield (
                _TAKE_SEQ_BUYER,
                (now, item.conversation_id, item.shop_id, item.sender_id, *key),
            )
        else:
            assert sender == "agent", "the group commit takes buyers' and agents' messages"
            taken = yield (
                _TAKE_SEQ_AGENT,
                (item.conversation_id, item.shop_id, item.sender_id, *key),
            )
        if taken is None:
            continue  # a resend; closed, moved or not theirs: the full path says which
        seq, agent_id, buyer_id = taken[0], taken[1], taken[2]
        message_id = new_id()
        rows.append(_row(item, message_id, seq, now))
        out[i] = _stored(item, message_id, seq, agent_id, buyer_id)
    return out, rows


def _row(item: Append, message_id: str, seq: int, now: str) -> tuple[Any, ...]:
    return (
        message_id,
        item.shop_id,
        item.conversation_id,
        seq,
        item.sender,
        item.sender_id,
        item.kind,
        item.body,
        orjson.dumps(item.payload).decode(),
        item.client_msg_id,
        now,
    )


def _sqlite_time(dt: datetime) -> str:
    """UTCDateTime's storage on SQLite: naive UTC text, as SQLAlchemy writes it."""
    return dt.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


sqlite_time = _sqlite_time  # for `Job`s that write times


def _wire(item: Append, message_id: str, seq: int) -> dict[str, Any]:
    return message_wire(
        id=message_id,
        conversation_id=item.conversation_id,
        seq=seq,
        sender=item.sender,
        sender_id=item.sender_id,
        kind=item.kind,
        body=item.body,
        payload=item.payload,
        created_at=item.now,
        client_msg_id=item.client_msg_id,
    )


class Observer(Protocol):
    """Where batch sizes are reported (a Prometheus histogram)."""

    def observe(self, amount: float) -> None: ...


class MessageAppender:
    def __init__(self, db: Database, batch_sizes: Observer | None = None) -> None:
        self.db = db
        self._batch_sizes = batch_sizes  # /metrics: a histogram of messages per batch
        self._waiting: list[Append] = []
        self._jobs: list[Job] = []
        self._drainer: asyncio.Task[None] | None = None
        self._sqlite: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._pg: asyncpg.Connection | None = None
        self.batches = 0
        self.messages = 0
        self.jobs = 0  # `join`ed writes done in a batch's transaction

    async def append(self, item: Append) -> dict[str, Any] | None:
        """Store the message and return its wire shape, or None: use the full path."""
        item.future = asyncio.get_running_loop().create_future()
        self._waiting.append(item)
        self._start()
        return await item.future

    async def join(self, write: JobWrite) -> Done | None:
        """Run `write` in the next batch's transaction (SQLite): many small writes of other
        domains (the bot's answers) share the chat's group commit, one BEGIN and COMMIT and
        one thread hop for all. Its frames are published with the batch's, after commit.
        None: it wrote nothing (it handed the work back, or the batch failed and was
        rolled back); on PostgreSQL always None (the caller takes its own path)."""
        if not self.db.is_sqlite:
            return None
        job = Job(write)
        job.future = asyncio.get_running_loop().create_future()
        self._jobs.append(job)
        self._start()
        return await job.future

    def _start(self) -> None:
        if self._drainer is None or self._drainer.done():
            # Its own context: the batches serve every socket, so their log lines name none.
            self._drainer = asyncio.create_task(
                self._drain(), name="message-appender", context=contextvars.Context()
            )

    async def close(self) -> None:
        if self._drainer is not None:
            await asyncio.gather(self._drainer, return_exceptions=True)
        if self._thread is not None:
            self._thread.shutdown(wait=True)
        if self._sqlite is not None:
            self._sqlite.close()
        if self._pg is not None:
            await self._pg.close()

    # ---- the drain loop -------------------------------------------------------------
    async def _drain(self) -> None:
        while self._waiting or self._jobs:
            if len(self._waiting) < MAX_BATCH and GATHER_S and self.db.is_sqlite:
                await asyncio.sleep(GATHER_S)  # let the messages arriving right now join in
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            jobs, self._jobs = self._jobs[:MAX_BATCH], self._jobs[MAX_BATCH:]
            try:
                stored, done = await self._write(batch, jobs)
            except Exception:
                log.warning(
                    "group commit of %d messages and %d jobs failed; each takes the full path",
                    len(batch),
                    len(jobs),
                    exc_info=True,
                )
                stored, done = [None] * len(batch), [None] * len(jobs)
            if batch:
                self.batches += 1
                if self._batch_sizes is not None:
                    self._batch_sizes.observe(len(batch))
            events: list[tuple[str, dict[str, Any]]] = []
            signals: list[tuple[str, tuple[str, str]]] = []
            for result in stored:
                if result is not None:
                    self.messages += 1
                    events.extend(result.events)
                    signals.extend(result.signals)
            for finished in done:
                if finished is not None:
                    self.jobs += 1
                    events.extend(finished.events)
            # Committed: publish, signal (routing), then answer (the handler acks after this).
            if events and self.db.publisher is not None:
                try:
                    await self.db.publisher(events)
                except Exception:
                    log.exception("publishing %d stored messages failed", len(events))
            if self.db.on_signal is not None:
                for name, arg in signals:
                    self.db.on_signal(name, arg)
            for item, result in zip(batch, stored, strict=True):
                if not item.future.done():
                    item.future.set_result(result.message if result is not None else None)
            for job, finished in zip(jobs, done, strict=True):
                if not job.future.done():
                    job.future.set_result(finished)

    async def _write(
        self, batch: list[Append], jobs: list[Job]
    ) -> tuple[list[Stored | None], list[Done | None]]:
        if self.db.is_sqlite:
            lock = self.db.write_lock()
            async with lock:
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(self._executor(), self._write_sqlite, batch, jobs)
        return await self._write_postgres(batch), []

    # ---- SQLite: one thread, one connection, one hop per batch ----------------------
    def _executor(self) -> ThreadPoolExecutor:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="appender")
        return self._thread

    def _connection(self) -> sqlite3.Connection:
        if self._sqlite is None:
            conn = sqlite3.connect(self.db.sqlite_path(), check_same_thread=False)
            sqlite_pragmas(conn, None)  # the same settings as every other connection
            conn.execute(f"PRAGMA cache_size=-{APPENDER_CACHE_KIB}")
            self._sqlite = conn
        return self._sqlite

    def _write_sqlite(
        self, batch: list[Append], jobs: list[Job]
    ) -> tuple[list[Stored | None], list[Done | None]]:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            out: list[Stored | None] = []
            if batch:
                plan = _plan(batch)
                try:
                    sql, params = next(plan)
                    while True:
                        sql, params = plan.send(conn.execute(sql, params).fetchone())
                except StopIteration as done:
                    out, rows = done.value
                if rows:
                    _insert_indexed(conn, rows)
            # The bot's jobs after the batch's index: their rows are indexed by the trigger.
            finished = [job.write(conn) for job in jobs]
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return out, finished

    # ---- PostgreSQL: the whole batch in one statement, one round trip --------------
    async def _postgres(self) -> asyncpg.Connection:
        """The appender's own connection (one batch is in flight at a time)."""
        if self._pg is None or self._pg.is_closed():
            dsn = self.db.engine.url.set(drivername="postgresql").render_as_string(
                hide_password=False
            )
            self._pg = await asyncpg.connect(dsn)
        return self._pg

    async def _write_postgres(self, batch: list[Append]) -> list[Stored | None]:
        todo = _candidates(batch, sorted(range(len(batch)), key=lambda i: _pg_lock_order(batch[i])))
        items = [batch[i] for i in todo]
        ids = [new_id() for _ in items]
        conn = await self._postgres()
        # One statement is one transaction: all of the batch is stored, or none of it (a
        # concurrent resend of one of these on another node fails the unique index; then
        # every message takes the full path).
        rows = await conn.fetch(
            _PG_APPEND,
            ids,
            [x.shop_id for x in items],
            [x.conversation_id for x in items],
            [x.sender for x in items],
            [x.sender_id for x in items],
            [x.kind for x in items],
            [x.body for x in items],
            [orjson.dumps(x.payload).decode() for x in items],
            [x.client_msg_id for x in items],
            [x.now for x in items],
            [x.opens.queue if x.opens else None for x in items],
            [bool(x.opens and x.opens.elder) for x in items],
        )
        out: list[Stored | None] = [None] * len(batch)
        for index, seq, agent_id, buyer_id, ahead in rows:
            k = index - 1  # PostgreSQL arrays count from 1
            item = items[k]
            out[todo[k]] = (
                _opened(item, item.opens, ids[k], ahead + 1)
                if item.opens is not None
                else _stored(item, ids[k], seq, agent_id, buyer_id)
            )
        return out


def _pg_lock_order(item: Append) -> tuple[int, str, str]:
    """One global order for what a batch locks, so two nodes' batches never wait on each
    other in a cycle: existing conversations by id (a conversation's own messages keep
    theirs), then new ones by the buyer whose open-conversation key they take."""
    if item.opens is None:
        return (0, item.conversation_id, "")
    return (1, item.shop_id, item.sender_id)


_PG_APPEND = (
    "SELECT out_index, out_seq, out_agent_id, out_buyer_id, out_ahead FROM homing_append_messages("
    "$1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], "
    "$9::text[], $10::timestamptz[], $11::text[], $12::boolean[])"
)
