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

    async def matcher(self, shop_id: str) -> rules.Matcher:
        entry = self._entries.get(shop_id)
        now = time.monotonic()
        if entry is not None and now - entry.checked < self.recheck_s:
            return entry.matcher
        async with self.db.read() as s:
            if entry is not None and await service.version(s, shop_id) == entry.version:
                entry.checked = now
                return entry.matcher
            v, own = await service.versioned_rules(s, shop_id)
        # Compiling 1,000 words takes tens of milliseconds: not on the event loop.
        matcher = await asyncio.to_thread(rules.Matcher, own)
        self._entries[shop_id] = _Entry(v, matcher, now)
        return matcher

    async def check(self, shop_id: str, text: str) -> rules.Verdict:
        if not text:
            return rules.CLEAN
        return (await self.matcher(shop_id)).check(text)

    def on_news(self, frame: dict[str, Any]) -> None:
        """The bus says a shop's rules are now at `version`: drop an older matcher."""
        shop_id, v = frame.get("shop_id"), frame.get("version")
        entry = self._entries.get(shop_id) if isinstance(shop_id, str) else None
        if entry is not None and (not isinstance(v, int) or entry.version < v):
            del self._entries[str(shop_id)]

    def clear(self) -> None:
        self._entries.clear()
