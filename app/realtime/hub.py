"""The per-process registry of connections, and the bridge between them and the bus."""

from __future__ import annotations

import logging
import secrets
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import orjson

from app.realtime.bus import ID_SEP, RESYNC, Bus
from app.realtime.connection import Connection
from app.realtime.sessions import CLOSE_UNAUTHORIZED, EXPIRED, REVOKE, revokes

log = logging.getLogger(__name__)

SEP = "\x1f"  # between topics in an envelope header; never in a topic (ids are printable)
SEP_B = SEP.encode()
# Envelopes of several topics a node remembers having delivered (sharded bus: it may hear
# one on each of its topics); a copy later than this many others is dropped by the
# connections' own (conversation, seq) check, or delivered twice if it carries no seq.
SEEN_MAX = 8192


def encode(topics: list[str], body: bytes, envelope_id: bytes = b"") -> bytes:
    """An envelope: its topics (and id) on the first line, then the frame's JSON `body`."""
    head = SEP.join(topics).encode()
    if envelope_id:
        head += ID_SEP + envelope_id
    return head + b"\n" + body


class Hub:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.subs: dict[str, set[Connection]] = {}
        self.connections: set[Connection] = set()
        # Agents' sockets, a few among thousands of buyers': presence and the requeue job
        # ask for them every few seconds, and walking every socket for them cost O(sockets).
        self.agents: set[Connection] = set()
        self.expiring: set[Connection] = set()  # sockets of a session that expires (agents)
        # In-process listeners of a topic no socket hears (a cache told to reload, a shop's
        # bot changed).
        self.watchers: dict[str, list[Callable[[dict[str, Any]], None]]] = defaultdict(list)
        bus.on_message = self.on_bus_message
        bus.on_reconnect = self.resync_all
        # Sharded bus: envelope ids of this node (its own copies, back from Redis, start with
        # the prefix), and the connections that already took each recent envelope of
        # several topics.
        self._id_prefix = secrets.token_hex(4).encode() + b":"
        self._next_id = 0
        self._seen: OrderedDict[bytes, set[Connection]] = OrderedDict()

    def register(self, conn: Connection) -> None:
        """Add a connection; before reading the state it starts from, `await ready(conn)`."""
        self.connections.add(conn)
        if conn.kind == "agent":
            self.agents.add(conn)
        if conn.expires_at is not None:
            self.expiring.add(conn)
        for t in conn.topics:
            self._listen(t, conn)

    async def ready(self, conn: Connection) -> None:
        """Return once news on the connection's topics reaches this node (a sharded bus
        subscribes on demand); state read after this misses nothing committed after it."""
        await self.bus.ready(conn.topics)

    def watch(self, topic: str, fn: Callable[[dict[str, Any]], None]) -> None:
        """Call `fn(frame)` for every frame on `topic`, from this node or another."""
        if topic not in self.watchers and topic not in self.subs:
            self.bus.want(topic)
        self.watchers[topic].append(fn)

    def unregister(self, conn: Connection) -> None:
        self.connections.discard(conn)
        self.agents.discard(conn)
        self.expiring.discard(conn)
        for t in conn.topics:
            self._unlisten(t, conn)

    def subscribe(self, conn: Connection, topic: str) -> None:
        """Let a registered connection hear one more topic (e.g. a group it just joined)."""
        if conn not in self.connections or topic in conn.topics:
            return
        conn.topics.append(topic)
        self._listen(topic, conn)

    def unsubscribe(self, conn: Connection, topic: str) -> None:
        if topic in conn.topics:
            conn.topics.remove(topic)
        self._unlisten(topic, conn)

    def _listen(self, topic: str, conn: Connection) -> None:
        subs = self.subs.get(topic)
        if subs is None:
            subs = self.subs[topic] = set()
            if topic not in self.watchers:
                self.bus.want(topic)  # a sharded bus subscribes (batched, confirmed by ready)
        subs.add(conn)

    def _unlisten(self, topic: str, conn: Connection) -> None:
        subs = self.subs.get(topic)
        if subs is not None:
            subs.discard(conn)
            if not subs:
                del self.subs[topic]
                if topic not in self.watchers:
                    self.bus.unwant(topic)

    def local_agent_ids(self) -> list[str]:
        return sorted({c.identity.id for c in self.agents})

    def local(self, topic: str) -> set[Connection]:
        return self.subs.get(topic, set())

    async def publish(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        """Send committed events; one envelope per frame, naming all its topics."""
        grouped: dict[int, tuple[dict[str, Any], list[str]]] = {}
        for topic, frame in events:
            entry = grouped.setdefault(id(frame), (frame, []))
            if topic not in entry[1]:
                entry[1].append(topic)
        if self.bus.local:
            # One process: no envelope to write and parse again, same delivery.
            for frame, topics in grouped.values():
                self._fan_out(topics, frame, orjson.dumps(frame))
        elif self.bus.sharded:
            # Redis carries each envelope to the other nodes, and this node's sockets and
            # watchers have it at once; the copy Redis sends back here (this node listens to
            # the topics it holds) is dropped unread by its id (`_on_shard_message`).
            bodies = [(frame, topics, orjson.dumps(frame)) for frame, topics in grouped.values()]
            if bodies:
                await self.bus.publish_many(
                    [encode(topics, body, self._envelope_id()) for _, topics, body in bodies]
                )
            for frame, topics, body in bodies:
                self._fan_out(topics, frame, body)
        elif grouped:
            await self.bus.publish_many(
                [encode(topics, orjson.dumps(frame)) for frame, topics in grouped.values()]
            )

    def _envelope_id(self) -> bytes:
        """A sharded bus's envelope id: its prefix tells this node its own envelopes; a node
        that hears an envelope on several of its topics delivers it once by the whole id."""
        self._next_id += 1
        return self._id_prefix + str(self._next_id).encode()

    def _own(self, header: bytes) -> bool:
        """Whether this hub published the envelope of `header` (sharded bus; else no id)."""
        _, sep, envelope_id = header.partition(ID_SEP)
        return bool(sep) and envelope_id.startswith(self._id_prefix)

    def on_bus_message(self, data: bytes, via: str | None = None) -> None:
        """An envelope from the bus; `via`: the one topic whose channel it came on (sharded)."""
        header, _, body = data.partition(b"\n")
        if header == RESYNC:
            self._resync_local()
            return
        if via is not None:
            self._on_shard_message(header, body, via)
            return
        if self.bus.sharded and self._own(header):
            # A sharded bus with Redis out hands back what it could not send: this node's
            # sockets had these when they were published.
            return
        topics = header.partition(ID_SEP)[0].decode().split(SEP)
        if any(t in self.subs or t in self.watchers for t in topics):  # else don't parse it
            self._fan_out(topics, orjson.loads(body), body)

    def _on_shard_message(self, header: bytes, body: bytes, via: str) -> None:
        """A copy of an envelope that came on `via`'s channel: for `via`'s watchers and for
        its connections that have not taken the envelope from another of its topics."""
        topics, _, envelope_id = header.partition(ID_SEP)
        if envelope_id.startswith(self._id_prefix):
            self.bus.echoes += 1  # this node's own: delivered here when it was published
            return
        subs = self.subs.get(via)
        if not subs and via not in self.watchers:
            return  # unsubscribed since it was sent
        targets: Iterable[Connection] = subs or ()
        if subs and envelope_id and SEP_B in topics:
            seen = self._seen.get(envelope_id)
            if seen is None:
                seen = self._seen[envelope_id] = set()
                if len(self._seen) > SEEN_MAX:
                    self._seen.popitem(last=False)
            targets = subs - seen
            seen |= targets
        self._fan_out([via], orjson.loads(body), body, targets)

    def _fan_out(
        self,
        topics: list[str],
        frame: dict[str, Any],
        body: bytes,
        targets: Iterable[Connection] | None = None,
    ) -> None:
        for topic in topics:
            for fn in self.watchers.get(topic, ()):
                try:
                    fn(frame)
                except Exception:
                    log.exception("watcher of %s failed", topic)
        if targets is None:
            found: set[Connection] = set()
            for topic in topics:
                subs = self.subs.get(topic)
                if subs:
                    found |= subs
            targets = found
        else:
            targets = list(targets)
        if not targets:
            return
        if frame.get("type") == REVOKE:
            for conn in targets:
                if conn.kind == "agent" and revokes(frame, conn.session_key):
                    self.end(conn, str(frame.get("reason") or ""))
            return
        for conn in targets:
            conn.push(frame, body)
        # A frame may carry a change of what its recipients listen to (joining a group).
        for key, change in (("subscribe", self.subscribe), ("unsubscribe", self.unsubscribe)):
            named = frame.get(key)
            for topic in [named] if isinstance(named, str) else named or ():
                if isinstance(topic, str):
                    for conn in targets:
                        change(conn, topic)

    def end(self, conn: Connection, reason: str) -> None:
        """Close a socket whose session has ended; from now on it hears nothing."""
        self.unregister(conn)
        conn.end(CLOSE_UNAUTHORIZED, reason)

    def end_expired(self, now: datetime) -> int:
        """End the sockets here whose session has expired by `now`; how many."""
        due = [c for c in self.expiring if c.expires_at is not None and c.expires_at <= now]
        for conn in due:
            self.end(conn, EXPIRED)
        return len(due)

    async def resync_all(self) -> None:
        self._resync_local()

    def _resync_local(self) -> None:
        log.info("resyncing %d connections from the database", len(self.connections))
        for conn in list(self.connections):
            conn.push_resync()
