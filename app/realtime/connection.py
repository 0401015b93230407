"""One client socket's outgoing side: an ordered queue, a writer, and per-conversation tracking.

Delivery rule: a connection writes each (conversation, seq) at most once, and fills
any gap from the database, so frames lost or reordered on the bus still reach the
client exactly once. Everything written goes through one queue, so hello comes first
and history loaded after an assignment never overtakes what it should precede.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any, Protocol

import orjson
from starlette.websockets import WebSocketDisconnect

from app.realtime.sessions import CLOSE_UNAUTHORIZED
from app.realtime.topics import HISTORY_KEY

log = logging.getLogger(__name__)

MAX_BACKLOG = 5000
# Frames that `push` may write at once when nothing is queued (besides `message.new`,
# which is checked against its track first): they need no read and change no state.
IMMEDIATE = frozenset({"message.ack", "error", "typing", "read"})
# How long an ended socket may take to receive what was queued before it ended.
END_FLUSH_S = 0.5
# A socket whose reader or writer failed unexpectedly is closed with this code and
# reason (RFC 6455 1011: the server met a condition it could not handle).
CLOSE_SERVER_ERROR = 1011
SERVER_ERROR_REASON = "server error; reconnect and sync"


class Count(Protocol):
    """Where written frames are counted (`n += 1`; /metrics reads it)."""

    n: int


class _Uncounted:
    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0


class Loader(Protocol):
    """What delivery needs from the record (implemented by the chat layer)."""

    async def messages_after(
        self, conversation_id: str, after_seq: int
    ) -> list[dict[str, Any]]: ...

    async def current_conversations(self, conn: Connection) -> list[dict[str, Any]]: ...

    async def session_ended(self, conn: Connection) -> str | None:
        """Why the session an agent socket was opened with no longer stands, or None if it does."""


class SeqTrack:
    """Which sequence numbers of one conversation this connection has written.

    `floor`: at connect the client is told the conversation's `last_seq`; anything up
    to it the client fetches itself (sync or HTTP), so live frames at or below it are
    not pushed. `upto`: everything in (floor, upto] has been written. `sent`: what has
    been written above `upto` (out of order, waiting for a gap to fill); it empties as
    the gap fills, so the track stays small however long the conversation gets.
    """

    __slots__ = ("floor", "sent", "upto")

    def __init__(self, floor: int = 0) -> None:
        self.floor = floor
        self.upto = floor
        self.sent: set[int] = set()

    def written(self, seq: int) -> bool:
        return self.floor < seq <= self.upto or seq in self.sent

    def is_live_new(self, seq: int) -> bool:
        return seq > self.upto and seq not in self.sent

    def mark(self, seq: int) -> None:
        if seq <= self.upto:
            return
        self.sent.add(seq)
        while self.upto + 1 in self.sent:
            self.upto += 1
            self.sent.discard(self.upto)

    @property
    def has_gap(self) -> bool:
        return bool(self.sent)

    def lower_floor(self, after_seq: int) -> None:
        """The client has had everything in (after_seq, upto] (a sync just sent it)."""
        self.floor = min(self.floor, after_seq)


class Connection:
    def __init__(
        self,
        *,
        kind: str,
        identity: Any,
        topics: list[str],
        send_text: Callable[[str], Awaitable[None]],
        close: Callable[[int, str], Coroutine[Any, Any, None]],
        loader: Loader,
        gap_fill_s: float,
        session_key: str | None = None,
        expires_at: datetime | None = None,
        frames_sent: Count | None = None,
        send_now: Callable[[bytes], bool] | None = None,
    ) -> None:
        self.kind = kind  # "buyer" or "agent"
        self._frames_sent = frames_sent or _Uncounted()
        # The opening socket's context (its connection_id for the logs): the tasks below
        # are often started by another socket's fan-out, whose context they must not take.
        self._context = contextvars.copy_context()
        self.identity = identity
        self.topics = topics
        self._send_text = send_text
        # Writes a frame at once when the socket can take it (False: await `send_text`).
        self._send_now = send_now
        self._close = close
        self._loader = loader
        self._gap_fill_s = gap_fill_s
        # What is waiting to be written; a writer task exists only while there is some
        # (an idle socket holds no task, no event and no queue: memory per socket).
        self._items: deque[tuple[str, Any]] | None = None
        self._started = False
        self._writer: asyncio.Task[None] | None = None
        self.closed = False
        self.tracks: dict[str, SeqTrack] = {}
        self.known: dict[str, tuple[str, str | None]] = {}  # conv id -> (status, agent id)
        # Sends in flight on this socket (their own echo must not overtake their ack), and
        # conversations with a gap fill scheduled: sets made only while there is some (an
        # idle socket holds none: two empty sets were ~430 bytes a socket).
        self._own_pending: set[str] | None = None
        self._backfill_due: set[str] | None = None
        # An agent socket belongs to a login: the session's token hash, and when it expires.
        self.session_key = session_key
        self.expires_at = expires_at
        self.ended = (
            False  # `end` was called: closing; nothing more is queued, no frame is acted on
        )
        self._ending: asyncio.Task[None] | None = None

    # ---- producers (never block) -------------------------------------------------
    def start(self, hello: dict[str, Any]) -> None:
        """Put hello ahead of anything queued since registration, then start writing."""
        if self._items is None:
            self._items = deque()
        self._items.appendleft(("frame", hello))
        self._started = True
        self._ensure_writer()

    def follow(
        self, conversation_id: str, last_seq: int, status: str, agent_id: str | None
    ) -> None:
        """Track a conversation the client was told about at `last_seq` (first word wins)."""
        self.tracks.setdefault(conversation_id, SeqTrack(floor=last_seq))
        self.known.setdefault(conversation_id, (status, agent_id))

    def push(self, frame: dict[str, Any], raw: bytes | None = None) -> None:
        # Nothing queued ahead of it: written here, with no writer task, if it can be.
        if (
            self._items is None
            and self._writer is None
            and self._started
            and not (self.closed or self.ended)
            and self._deliver_now(frame, raw)
        ):
            return
        self._put(("frame", (frame, raw)) if raw is not None else ("frame", frame))

    def push_sync(self, conversation_id: str, after_seq: int) -> None:
        self._put(("sync", (conversation_id, after_seq)))

    def push_backfill(self, conversation_id: str) -> None:
        self._put(("backfill", conversation_id))

    def push_resync(self) -> None:
        self._put(("resync", None))

    def own_send_started(self, client_msg_id: str) -> None:
        """A send of this socket's is being stored: its echo is not written (its ack is)."""
        if self._own_pending is None:
            self._own_pending = set()
        self._own_pending.add(client_msg_id)

    def own_send_ended(self, client_msg_id: str) -> None:
        pending = self._own_pending
        if pending is not None:
            pending.discard(client_msg_id)
            if not pending:
                self._own_pending = None

    def mark_sent(self, message: dict[str, Any]) -> None:
        """The handler acked this message itself; don't echo it back as message.new."""
        track = self.tracks.setdefault(message["conversation_id"], SeqTrack())
        track.mark(message["seq"])

    def _put(self, item: tuple[str, Any]) -> None:
        if self.closed or self.ended:
            return
        if self._items is None:
            self._items = deque()
        if len(self._items) >= MAX_BACKLOG:
            # A client this far behind reconnects and syncs; don't hold memory for it.
            log.warning(
                "closing a %s connection with %d frames unsent", self.kind, len(self._items)
            )
            self.closed = True
            asyncio.create_task(
                self._close(1013, "too far behind; reconnect and sync"), context=self._context
            )
            return
        self._items.append(item)
        self._ensure_writer()

    def _ensure_writer(self) -> None:
        if self._started and self._writer is None and not self.closed:
            self._writer = asyncio.create_task(
                self._write_queued(), name=f"ws-writer-{self.kind}", context=self._context
            )

    def end(self, code: int, reason: str) -> None:
        """Close the socket with `code` and `reason`: nothing more is queued from now on.

        Called by the hub (a revocation on the bus, an expired session) or by the writer
        (a check against the record). What was queued before goes out first if the
        client takes it within `END_FLUSH_S`; then the socket is closed.
        """
        if self.ended:
            return
        self.ended = True
        self._ending = asyncio.create_task(
            self._end(code, reason), name=f"ws-end-{self.kind}", context=self._context
        )

    async def _end(self, code: int, reason: str) -> None:
        writer = self._writer
        if writer is not None:
            try:
                await asyncio.wait_for(asyncio.shield(writer), END_FLUSH_S)
            except TimeoutError:
                writer.cancel()  # a frame is handed to the server whole, so none is cut
                await asyncio.gather(writer, return_exceptions=True)
        self.closed = True
        self._items = None
        try:
            await self._close(code, reason)
        except (RuntimeError, OSError, WebSocketDisconnect) as exc:  # the client went first
            log.debug("closing an ended %s socket: %s", self.kind, exc)

    async def fail(self) -> None:
        """Something unexpected broke this socket: close it with a reason rather than
        leave it open and silent (frames still arriving, nothing written back); the
        client reconnects and syncs."""
        self.closed = True
        try:
            await self._close(CLOSE_SERVER_ERROR, SERVER_ERROR_REASON)
        except Exception:
            log.debug("%s connection was gone before it could be closed", self.kind, exc_info=True)

    async def stop(self) -> None:
        self.closed = True
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
        if self._ending is not None:
            await asyncio.gather(self._ending, return_exceptions=True)

    # ---- the writer ---------------------------------------------------------------
    async def _write_queued(self) -> None:
        """Write until nothing is queued, then end (the next push starts a new writer)."""
        items = self._items
        try:
            while items and not self.closed:
                kind, value = items.popleft()
                if kind == "frame":
                    frame, raw = value if isinstance(value, tuple) else (value, None)
                    await self._deliver(frame, raw)
                elif kind == "sync":
                    await self._sync(*value)
                elif kind == "backfill":
                    await self._fill_gap(value)
                elif kind == "resync":
                    await self._resync()
            # Nothing left: no await between this check and the end, so a push after it
            # sees no writer and starts one.
            self._writer = None
            if not self._items:
                self._items = None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self._gone(exc):
                log.warning("%s connection writer stopped", self.kind, exc_info=True)
                await self.fail()

    def _gone(self, exc: Exception) -> bool:
        """Whether a write raised `exc` because the client went away (a normal end of a
        socket: now closed; the client reconnects and syncs), not because it broke."""
        if not _is_disconnect(exc):
            return False
        log.debug("%s connection closed while writing", self.kind)
        self.closed = True
        return True

    async def _write(self, frame: dict[str, Any], raw: bytes | None = None) -> None:
        data = raw or orjson.dumps(frame)
        send_now = self._send_now
        if send_now is None or not send_now(data):
            await self._send_text(data.decode())
        self._frames_sent.n += 1

    def _deliver_now(self, frame: dict[str, Any], raw: bytes | None) -> bool:
        """`_deliver` without awaiting, for a frame that needs no read: True if it is done
        (written, or not to be written), False if nothing was done and the writer must."""
        ftype = frame.get("type")
        if ftype == "message.new":
            track = self._live_track(frame["message"])
            if track is None:
                return True
            if not self._write_now(frame, raw):
                return False
            self._written(frame["message"], track)
            return True
        if ftype in IMMEDIATE:
            return self._write_now(frame, raw)
        return False

    def _write_now(self, frame: dict[str, Any], raw: bytes | None) -> bool:
        """`_write` at once if the socket takes it now (else False: nothing was done)."""
        send_now = self._send_now
        if send_now is None:
            return False
        try:
            if not send_now(raw or orjson.dumps(frame)):
                return False
        except Exception as exc:
            if not self._gone(exc):  # broken: closed, from a task (nothing awaits here)
                log.warning("%s connection write failed", self.kind, exc_info=True)
                self.closed = True
                asyncio.create_task(self.fail(), context=self._context)
            return True
        self._frames_sent.n += 1
        return True

    def _live_track(self, msg: dict[str, Any]) -> SeqTrack | None:
        """The track of a `message.new`'s conversation if the message is to be written
        here; None if not (written before, or our own send, whose ack carries it)."""
        seq = msg["seq"]
        track = self.tracks.setdefault(msg["conversation_id"], SeqTrack())
        if not track.is_live_new(seq):
            return None
        pending = self._own_pending
        if pending and msg.get("sender") == self.kind and msg.get("client_msg_id") in pending:
            # Our own send, committed: its ack (queued once the handler resumes) carries
            # it, so it counts as written and later messages see no gap.
            track.mark(seq)
            return None
        return track

    def _written(self, msg: dict[str, Any], track: SeqTrack) -> None:
        """A live `message.new` was written: mark it, and fill a gap below it if one stays."""
        track.mark(msg["seq"])
        if track.has_gap:
            conv_id = msg["conversation_id"]
            due = self._backfill_due
            if due is None:
                due = self._backfill_due = set()
            if conv_id not in due:
                due.add(conv_id)
                loop = asyncio.get_running_loop()
                loop.call_later(self._gap_fill_s, self.push_backfill, conv_id)

    async def _deliver(self, frame: dict[str, Any], raw: bytes | None) -> None:
        ftype = frame.get("type")
        if ftype == "message.new":
            track = self._live_track(frame["message"])
            if track is not None:
                await self._write(frame, raw)
                self._written(frame["message"], track)
            return
        history = frame.get(HISTORY_KEY)
        if history is not None:
            # Messages that came with an assignment, for this connection only: not on the wire.
            frame, raw = {k: v for k, v in frame.items() if k != HISTORY_KEY}, None
        if ftype and ftype.startswith("conversation."):
            self._note_state(frame)
        await self._write(frame, raw)
        if ftype == "conversation.assigned" and self.kind == "agent":
            conv = frame["conversation"]
            track = self.tracks.setdefault(conv["id"], SeqTrack())
            for msg in history or ():
                if track.is_live_new(msg["seq"]):
                    await self._write({"type": "message.new", "message": msg})
                    track.mark(msg["seq"])
            if history is None or track.upto < conv.get("last_seq", 0) or track.has_gap:
                await self._backfill(conv["id"])

    def _note_state(self, frame: dict[str, Any]) -> None:
        conv = frame.get("conversation")
        if conv:
            self.known[conv["id"]] = (conv["status"], conv.get("agent_id"))
        elif frame.get("type") == "conversation.closed":
            cid = frame["conversation_id"]
            self.known[cid] = ("closed", self.known.get(cid, ("", None))[1])

    async def _fill_gap(self, conversation_id: str) -> None:
        due = self._backfill_due
        if due is not None:
            due.discard(conversation_id)
            if not due:
                self._backfill_due = None
        track = self.tracks.get(conversation_id)
        if track is not None and track.has_gap:  # else it filled live meanwhile
            await self._backfill(conversation_id)

    async def _backfill(self, conversation_id: str) -> None:
        track = self.tracks.setdefault(conversation_id, SeqTrack())
        for msg in await self._loader.messages_after(conversation_id, track.upto):
            if track.is_live_new(msg["seq"]):
                await self._write_loaded(msg)
                track.mark(msg["seq"])

    async def _sync(self, conversation_id: str, after_seq: int) -> None:
        """The client asked for everything after `after_seq`; send what it has not had here."""
        track = self.tracks.setdefault(conversation_id, SeqTrack())
        asked_after = after_seq
        while True:
            batch = await self._loader.messages_after(conversation_id, after_seq)
            for msg in batch:
                if not track.written(msg["seq"]):
                    await self._write_loaded(msg)
                    track.mark(msg["seq"])
            if batch:
                after_seq = batch[-1]["seq"]
            if len(batch) < 500:
                break
        # The client now has everything up to here; live frames resume above it.
        track.lower_floor(asked_after)
        # ... and says so: a client whose own count stalls below a seq it may not see (a
        # staff note, for a buyer) moves on from here (docs/protocol-notes.md).
        await self._write(
            {"type": "sync.done", "conversation_id": conversation_id, "upto": after_seq}
        )

    async def _write_loaded(self, msg: dict[str, Any]) -> None:
        """A message read from the record, unless it is a stub holding the place of one
        this client may not see (`hidden`): that is counted by the caller, never written."""
        if not msg.get("hidden"):
            await self._write({"type": "message.new", "message": msg})

    async def _resync(self) -> None:
        """After a bus outage: state changes and messages we may have missed, from the record.

        A revocation may have been missed too: an agent socket whose session no longer
        stands is ended instead.
        """
        if self.session_key is not None:
            reason = await self._loader.session_ended(self)
            if reason is not None:
                self.end(CLOSE_UNAUTHORIZED, reason)
                return
        for conv in await self._loader.current_conversations(self):
            before = self.known.get(conv["id"])
            now = (conv["status"], conv.get("agent_id"))
            if before != now:
                if conv["status"] == "assigned":
                    await self._deliver(
                        {"type": "conversation.assigned", "conversation": conv}, None
                    )
                elif conv["status"] == "closed":
                    await self._deliver(
                        {
                            "type": "conversation.closed",
                            "conversation_id": conv["id"],
                            "reason": "closed",
                        },
                        None,
                    )
            if conv["id"] in self.tracks:
                await self._backfill(conv["id"])


def _is_disconnect(exc: BaseException) -> bool:
    """The client went away (a normal end of a socket, not an error of ours)."""
    return isinstance(exc, WebSocketDisconnect | ConnectionError)
