"""Each process's bot state: the shops' settings and built indexes, kept at the version in
the database.

A change of a shop's knowledge base or settings raises its `version` (one row,
`bot_settings`) and announces it on the bus (topic `BOT_TOPIC`); every node drops what it
had of that shop and rebuilds the index in a worker thread at once. The answering path
also reads the version from the database, so a node that missed the announcement
rebuilds at its next question anyway. Settings are also re-read after `SETTINGS_TTL_S`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

from app.bot import matcher, service
from app.bot.matcher import Index
from app.bot.rules import BotSettingsFacts
from app.db import Database

log = logging.getLogger(__name__)

# The bus topic of "a shop's bot changed": no socket listens to it, the engine does.
BOT_TOPIC = "x:bot"
SETTINGS_TTL_S = 5.0


class BotEngine:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._settings: dict[str, tuple[BotSettingsFacts, float]] = {}
        self._indexes: dict[str, Index] = {}
        # Each index's entries' answers (faq id -> (answer, product card)), same version.
        self._answers: dict[str, dict[str, service.FaqAnswer]] = {}
        self._building: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.rebuilds = 0  # indexes built by this process (tests and /metrics read it)
        self._warming = False
        self._settings_loading: dict[str, asyncio.Task[BotSettingsFacts]] = {}
        self._settings_news: dict[str, int] = {}  # changes heard per shop

    # ---- settings ------------------------------------------------------------------

    def cached(self, shop_id: str) -> BotSettingsFacts | None:
        """The shop's settings as this process last read them (None: not read yet, or stale)."""
        entry = self._settings.get(shop_id)
        if entry is None or time.monotonic() - entry[1] > SETTINGS_TTL_S:
            return None
        return entry[0]

    def last_known(self, shop_id: str) -> BotSettingsFacts | None:
        """The shop's settings as last read, however long ago (None: never read here)."""
        entry = self._settings.get(shop_id)
        return None if entry is None else entry[0]

    async def settings(self, shop_id: str, *, fresh: bool = False) -> BotSettingsFacts:
        """The shop's settings: cached, or read now (`fresh`: always read now).

        One read per shop at a time: a surge of first messages to a shop whose settings
        are not cached here (a node just started, or the TTL ran out) waits for that read
        instead of each taking a connection of its own (2,000 at once ran SQLite's pool
        dry: 836 messages failed after waiting 30 s for a connection).
        """
        if fresh:
            return await self._read_settings(shop_id)
        facts = self.cached(shop_id)
        if facts is not None:
            return facts
        task = self._settings_loading.get(shop_id)
        if task is None:
            task = asyncio.create_task(self._read_settings(shop_id), name="bot-settings")
            self._settings_loading[shop_id] = task
            task.add_done_callback(lambda t: self._settings_read(shop_id, t))
        return await asyncio.shield(task)

    def _settings_read(self, shop_id: str, task: asyncio.Task[BotSettingsFacts]) -> None:
        if self._settings_loading.get(shop_id) is task:
            del self._settings_loading[shop_id]
        if not task.cancelled():
            task.exception()  # retrieved: each waiter got it raised

    async def _read_settings(self, shop_id: str) -> BotSettingsFacts:
        news = self._settings_news.get(shop_id, 0)
        async with self.db.read() as s:
            facts = await service.settings_facts(s, shop_id)
        if self._settings_news.get(shop_id, 0) == news:  # else read before a change: not kept
            self._settings[shop_id] = (facts, time.monotonic())
        if facts.ever_on:
            self.warm_up()
        return facts

    def warm_up(self) -> None:
        """Load the matcher's libraries in a worker thread, once: a shop has its bot on, so
        a question will come (about 1.5 s of imports and jieba's dictionary, off the loop)."""
        if not self._warming:
            self._warming = True
            self.spawn(asyncio.to_thread(matcher.warm_up))

    # ---- indexes -------------------------------------------------------------------

    async def index(self, shop_id: str, version: int) -> Index:
        """The shop's index at `version` (built now if this process has an older one)."""
        index = self._indexes.get(shop_id)
        if index is not None and index.version >= version:
            return index
        lock = self._building.setdefault(shop_id, asyncio.Lock())
        async with lock:
            index = self._indexes.get(shop_id)
            if index is not None and index.version >= version:
                return index
            async with self.db.read() as s:
                current = await service.settings_facts(s, shop_id)
                entries = await service.match_entries(s, shop_id)
                answers = await service.faq_answers(s, shop_id)
            # Segmenting thousands of phrasings is CPU work: off the event loop.
            index = await asyncio.to_thread(Index, entries, current.version)
            self._indexes[shop_id] = index
            self._answers[shop_id] = answers
            self._settings[shop_id] = (current, time.monotonic())
            self.rebuilds += 1
            return index

    def answers(self, shop_id: str, index: Index) -> dict[str, service.FaqAnswer]:
        """The answers of the entries `index` (this process's current one) knows."""
        if self._indexes.get(shop_id) is not index:
            return {}  # replaced in between: the caller takes the full path
        return self._answers.get(shop_id, {})

    def known_version(self, shop_id: str) -> int | None:
        index = self._indexes.get(shop_id)
        return index.version if index is not None else None

    def on_changed(self, frame: dict[str, Any]) -> None:
        """The bus says a shop's bot changed: forget its settings, rebuild its index now."""
        shop_id = frame.get("shop_id")
        version = frame.get("version")
        if not isinstance(shop_id, str) or not isinstance(version, int):
            return
        self._settings.pop(shop_id, None)
        self._settings_news[shop_id] = self._settings_news.get(shop_id, 0) + 1
        self._settings_loading.pop(shop_id, None)  # a read in flight may predate the change
        known = self.known_version(shop_id)
        if known is not None and known < version:
            self.spawn(self._rebuild(shop_id, version))

    async def _rebuild(self, shop_id: str, version: int) -> None:
        try:
            await self.index(shop_id, version)
        except Exception:
            log.exception("rebuilding the bot index of shop %s failed", shop_id)

    # ---- follow-up work --------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run `coro` in the background, keeping a reference until it ends."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
