"""Each process's compiled compliance rules, per shop, kept fresh by version.

A shop's `Matcher` is built once and reused for every message until the shop's rules
change. A change bumps the version in the database and announces it on the bus
(`compliance_topic`): every node drops that shop's matcher at once. Should the news be
lost (the bus was down), a cached matcher is still checked against the stored version
every `recheck_s` seconds, so a node is never stale for longer than that.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from app.compliance import rules, service
from app.db import Database

RECHECK_S = 30.0


@dataclass
class _Entry:
    version: int
    matcher: rules.Matcher
    checked: float  # time.monotonic() when the version was last read


class RulesCache:
    def __init__(self, db: Database, *, recheck_s: float = RECHECK_S) -> None:
        self.db = db
        self.recheck_s = recheck_s
        self._entries: dict[str, _Entry] = {}
        # One read (and compile) per shop at a time: a surge of first messages to a shop
        # this node has not cached yet waits for that one instead of each reading the rules
        # and compiling its own matcher (1,000 at once took a core for seconds).
        self._loading: dict[str, asyncio.Task[rules.Matcher]] = {}
        self._news: dict[str, int] = {}  # shop -> news heard; a load older than news is not kept

    async def matcher(self, shop_id: str) -> rules.Matcher:
        entry = self._entries.get(shop_id)
        if entry is not None and time.monotonic() - entry.checked < self.recheck_s:
            return entry.matcher
        task = self._loading.get(shop_id)
        if task is None:
            task = asyncio.create_task(self._load(shop_id, entry), name="compliance-rules")
            self._loading[shop_id] = task
            task.add_done_callback(lambda t: self._forget(shop_id, t))
        return await asyncio.shield(task)

    def _forget(self, shop_id: str, task: asyncio.Task[rules.Matcher]) -> None:
        if self._loading.get(shop_id) is task:
            del self._loading[shop_id]
        if not task.cancelled():
            task.exception()  # retrieved: each waiter got it raised

    async def _load(self, shop_id: str, entry: _Entry | None) -> rules.Matcher:
        news = self._news.get(shop_id, 0)
        now = time.monotonic()
        async with self.db.read() as s:
            if entry is not None and await service.version(s, shop_id) == entry.version:
                entry.checked = now
                return entry.matcher
            v, own = await service.versioned_rules(s, shop_id)
        # Compiling 1,000 words takes tens of milliseconds: not on the event loop.
        matcher = await asyncio.to_thread(rules.Matcher, own)
        if self._news.get(shop_id, 0) == news:  # else read before the news: ask again next time
            self._entries[shop_id] = _Entry(v, matcher, now)
        return matcher

    async def check(self, shop_id: str, text: str) -> rules.Verdict:
        if not text:
            return rules.CLEAN
        return (await self.matcher(shop_id)).check(text)

    def on_news(self, frame: dict[str, Any]) -> None:
        """The bus says a shop's rules are now at `version`: drop an older matcher."""
        shop_id, v = frame.get("shop_id"), frame.get("version")
        if not isinstance(shop_id, str):
            return
        entry = self._entries.get(shop_id)
        if entry is not None and (not isinstance(v, int) or entry.version < v):
            del self._entries[shop_id]
        if entry is None or shop_id not in self._entries:
            # A load in flight may have read the rules before this change: the next caller
            # starts a new one, and the old one's result is not kept.
            self._news[shop_id] = self._news.get(shop_id, 0) + 1
            self._loading.pop(shop_id, None)

    def clear(self) -> None:
        self._entries.clear()
        self._loading.clear()
