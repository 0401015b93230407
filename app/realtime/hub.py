"""The per-process registry of connections, and the bridge between them and the bus."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from app.realtime.bus import RESYNC, Bus
from app.realtime.connection import Connection
from app.realtime.sessions import CLOSE_UNAUTHORIZED, EXPIRED, REVOKE, revokes

log = logging.getLogger(__name__)

SEP = "\x1f"  # between topics in an envelope header; never in a topic (ids are printable)


def encode(topics: list[str], frame: dict[str, Any]) -> bytes:
    return SEP.join(topics).encode() + b"\n" + orjson.dumps(frame)


class Hub:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.subs: dict[str, set[Connection]] = defaultdict(set)
        self.connections: set[Connection] = set()
        self.expiring: set[Connection] = set()  # sockets of a session that expires (agents)
        # In-process listeners of a topic no socket hears (a cache told to reload, a shop's
        # bot changed).
        self.watchers: dict[str, list[Callable[[dict[str, Any]], None]]] = defaultdict(list)
        bus.on_message = self.on_bus_message
        bus.on_reconnect = self.resync_all

    def register(self, conn: Connection) -> None:
        self.connections.add(conn)
        if conn.expires_at is not None:
            self.expiring.add(conn)
        for t in conn.topics:
            self.subs[t].add(conn)

    def watch(self, topic: str, fn: Callable[[dict[str, Any]], None]) -> None:
        """Call `fn(frame)` for every frame on `topic`, from this node or another."""
        self.watchers[topic].append(fn)

    def unregister(self, conn: Connection) -> None:
        self.connections.discard(conn)
        self.expiring.discard(conn)
        for t in conn.topics:
            subs = self.subs.get(t)
            if subs is not None:
                subs.discard(conn)
                if not subs:
                    del self.subs[t]

    def subscribe(self, conn: Connection, topic: str) -> None:
        """Let a registered connection hear one more topic (e.g. a group it just joined)."""
        if conn not in self.connections or topic in conn.topics:
            return
        conn.topics.append(topic)
        self.subs[topic].add(conn)

    def unsubscribe(self, conn: Connection, topic: str) -> None:
        if topic in conn.topics:
            conn.topics.remove(topic)
        subs = self.subs.get(topic)
        if subs is not None:
            subs.discard(conn)
            if not subs:
                del self.subs[topic]

    def local_agent_ids(self) -> list[str]:
        return sorted({c.identity.id for c in self.connections if c.kind == "agent"})

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
        elif grouped:
            await self.bus.publish_many(
                [encode(topics, frame) for frame, topics in grouped.values()]
            )

    def on_bus_message(self, data: bytes) -> None:
        header, _, body = data.partition(b"\n")
        if header == RESYNC:
            self._resync_local()
            return
        topics = header.decode().split(SEP)
        if any(t in self.subs or t in self.watchers for t in topics):  # else don't parse it
            self._fan_out(topics, orjson.loads(body), body)

    def _fan_out(self, topics: list[str], frame: dict[str, Any], body: bytes) -> None:
        for topic in topics:
            for fn in self.watchers.get(topic, ()):
                try:
                    fn(frame)
                except Exception:
                    log.exception("watcher of %s failed", topic)
        targets: set[Connection] = set()
        for topic in topics:
            subs = self.subs.get(topic)
            if subs:
                targets |= subs
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
