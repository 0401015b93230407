"""CSV export of 1,000,000 messages: the server's RSS rise and the chat's latency meanwhile.

One `homing serve` (jobs off, pinned to the server core) on a fresh PostgreSQL database
(and on a fresh SQLite file; `--export-db` picks). The shop's history is built with
set-based SQL (generate_series on PostgreSQL, a recursive CTE on SQLite): N/20 closed
conversations of 20 messages each, one every 20 s. Then:

1. baseline: a buyer and an agent chat (the buyer sends `--export-chat-rate` messages a
   second; latency = send → the agent's `message.new`), RSS sampled;
2. the admin downloads `GET /api/v1/exports/messages.csv` for the whole period (read to
   the end, rows counted), while the same chat keeps going and RSS is sampled every 50 ms.

Figures: rows, seconds and rows/s of the export; RSS before and its largest rise during
the export (target < 50 MB); chat p50/p99 before and during.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import websockets
from sqlalchemy import select, text

from app.config import Settings
from app.db import Database
from app.migrate import upgrade
from app.shops.models import Agent, Shop
from bench.common import HOST, Figure, percentile, pg_admin, pg_url, rss_kb
from bench.systems import BENCH_PASSWORD, Homing

NAME = "export"
TITLE = "CSV export of 1,000,000 messages: server RSS and chat latency meanwhile"
RSS_TARGET_MB = 50.0
PER_CONVERSATION = 20
T0 = datetime(2026, 1, 5, tzinfo=UTC)


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("export")
    g.add_argument("--export-messages", type=int, help="messages (default 1000000; --quick 40000)")
    g.add_argument("--export-db", default="postgres,sqlite", help="backends, comma-separated")
    g.add_argument("--export-chat-rate", type=float, default=10.0, help="chat messages a second")


_PG_BUILD = [
    """
    INSERT INTO conversations (id, shop_id, buyer_id, queue, status, agent_id, elder, last_seq,
        buyer_read_seq, agent_read_seq, opened_at, queued_at, assigned_at, closed_at, close_reason)
    SELECT 'xc' || lpad(g::text, 9, '0'), :shop, 'xb-' || g, 'general', 'closed', :agent, false,
        :per, 0, 0, CAST(:t0 AS timestamptz) + g * interval '20 seconds', CAST(:t0 AS timestamptz) + g * interval '20 seconds',
        CAST(:t0 AS timestamptz) + g * interval '20 seconds' + interval '5 seconds',
        CAST(:t0 AS timestamptz) + g * interval '20 seconds' + interval '15 minutes', 'agent'
    FROM generate_series(1, :convs) g
    """,
    """
    INSERT INTO messages (id, shop_id, conversation_id, seq, sender, sender_id, kind, body,
        payload, created_at)
    SELECT 'xm' || lpad(g::text, 9, '0') || lpad(s::text, 3, '0'), :shop,
        'xc' || lpad(g::text, 9, '0'), s,
        CASE WHEN s % 2 = 1 THEN 'buyer' ELSE 'agent' END,
        CASE WHEN s % 2 = 1 THEN 'xb-' || g ELSE :agent END, 'text',
        CASE WHEN s % 2 = 1 THEN '请问订单 ' || g || ' 什么时候发货? 我想改一下收货地址, 谢谢'
             ELSE '您好, 已经为您备注, 今天下午就发货 =)' END,
        '{}'::json, CAST(:t0 AS timestamptz) + g * interval '20 seconds' + s * interval '30 seconds'
    FROM generate_series(1, :convs) g, generate_series(1, :per) s
    """,
]

_SQLITE_TIME = "strftime('%Y-%m-%d %H:%M:%S', :t0, '+' || ({}) || ' seconds')"
_SQLITE_BUILD = [
    f"""
    WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < :convs)
    INSERT INTO conversations (id, shop_id, buyer_id, queue, status, agent_id, elder, last_seq,
        buyer_read_seq, agent_read_seq, opened_at, queued_at, assigned_at, closed_at, close_reason)
    SELECT 'xc' || printf('%09d', n), :shop, 'xb-' || n, 'general', 'closed', :agent, 0, :per,
        0, 0, {_SQLITE_TIME.format("n * 20")}, {_SQLITE_TIME.format("n * 20")},
        {_SQLITE_TIME.format("n * 20 + 5")}, {_SQLITE_TIME.format("n * 20 + 900")}, 'agent'
    FROM g
    """,
    f"""
    WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < :convs),
        s(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM s WHERE k < :per)
    INSERT INTO messages (id, shop_id, conversation_id, seq, sender, sender_id, kind, body,
        payload, created_at)
    SELECT 'xm' || printf('%09d', n) || printf('%03d', k), :shop, 'xc' || printf('%09d', n), k,
        CASE WHEN k % 2 = 1 THEN 'buyer' ELSE 'agent' END,
        CASE WHEN k % 2 = 1 THEN 'xb-' || n ELSE :agent END, 'text',
        CASE WHEN k % 2 = 1 THEN '请问订单 ' || n || ' 什么时候发货? 我想改一下收货地址, 谢谢'
             ELSE '您好, 已经为您备注, 今天下午就发货 =)' END,
        '{{}}', {_SQLITE_TIME.format("n * 20 + k * 30")}
    FROM g, s
    """,
]


async def _build(url: str, slug: str, convs: int) -> None:
    db = Database(Settings(DATABASE_URL=url).async_database_url)  # type: ignore[call-arg]
    try:
        async with db.read() as s:
            shop_id = (await s.execute(select(Shop.id).where(Shop.slug == slug))).scalar_one()
            agent_id = (
                await s.execute(
                    select(Agent.id).where(Agent.shop_id == shop_id, Agent.username == "agent000")
                )
            ).scalar_one()
        postgres = url.startswith("postgresql")
        params: dict[str, Any] = {"shop": shop_id, "agent": agent_id, "convs": convs}
        params["per"] = PER_CONVERSATION
        params["t0"] = T0 if postgres else T0.strftime("%Y-%m-%d %H:%M:%S")
        async with db.write_engine.begin() as conn:
            for sql in _PG_BUILD if postgres else _SQLITE_BUILD:
                await conn.execute(text(sql), params)
            if postgres:
                await conn.execute(text("ANALYZE conversations"))
                await conn.execute(text("ANALYZE messages"))
    finally:
        await db.dispose()


class ChatProbe:
    """A buyer writing at a steady rate to an agent; latency = send → agent's message.new."""

    def __init__(self, system: Homing, rate: float) -> None:
        self.system, self.rate = system, rate
        self.sent: dict[str, float] = {}
        self.latencies: list[float] = []
        self._stop = asyncio.Event()

    async def open(self) -> None:
        (agent_url,) = await self.system.agent_urls(1, max_concurrent=50)
        self.agent = await websockets.connect(agent_url, max_size=None)
        await self.agent.send(json.dumps({"type": "agent.status", "status": "online"}))
        self.buyer = await websockets.connect(self.system.buyer_url(0, 1), max_size=None)
        self.reader = asyncio.create_task(self._read())
        self.buyer_reader = asyncio.create_task(self._drain(self.buyer))

    async def _drain(self, ws: Any) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for _ in ws:
                pass

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.agent:
                f = json.loads(raw)
                if f.get("type") == "message.new":
                    cid = f["message"].get("client_msg_id")
                    if cid in self.sent:
                        self.latencies.append(time.perf_counter() - self.sent.pop(cid))

    async def run_for(
        self, seconds: float | None, until: asyncio.Event | None = None
    ) -> list[float]:
        self.latencies = []
        start, n = time.perf_counter(), 0
        while True:
            if seconds is not None and time.perf_counter() - start >= seconds:
                break
            if until is not None and until.is_set():
                break
            cid = f"p-{secrets.token_hex(6)}"
            self.sent[cid] = time.perf_counter()
            await self.buyer.send(
                json.dumps({"type": "message.send", "client_msg_id": cid, "body": f"还在吗 {n}"})
            )
            n += 1
            await asyncio.sleep(1 / self.rate)
        await asyncio.sleep(1.0)  # the last ones arrive
        return list(self.latencies)

    async def close(self) -> None:
        for t in (self.reader, self.buyer_reader):
            t.cancel()
        await self.agent.close()
        await self.buyer.close()


async def _one(ctx: Any, backend: str, n_messages: int) -> list[Figure]:
    label = "Homing (PostgreSQL)" if backend == "postgres" else "Homing (SQLite)"
    convs = max(1, n_messages // PER_CONVERSATION)
    tmp = Path(tempfile.mkdtemp(prefix="homing-bench-export-"))
    database = f"homing_bench_export_{secrets.token_hex(4)}"
    url = pg_url(database) if backend == "postgres" else f"sqlite:///{tmp / 'homing.db'}"
    if backend == "postgres":
        await pg_admin(f'CREATE DATABASE "{database}"')
    system = Homing(ctx.log_dir, jobs=False)
    system.database_url = url
    system.name = label
    try:
        await asyncio.to_thread(upgrade, url)
        await system.start()
        probe = ChatProbe(system, ctx.args.export_chat_rate)
        await probe.open()  # makes the shop and its agent
        ctx.say(f"  {label}: building {convs * PER_CONVERSATION:,} messages (set-based SQL)")
        t = time.perf_counter()
        await _build(url, system.shop_slug, convs)
        build_s = time.perf_counter() - t
        status_token = await _login(system)
        await probe.run_for(2.0)  # warm
        baseline = await probe.run_for(8.0)
        rss_before = rss_kb(system.pid)
        done = asyncio.Event()
        samples: list[int] = []

        async def sample() -> None:
            while not done.is_set():
                samples.append(rss_kb(system.pid))
                await asyncio.sleep(0.05)

        sampler = asyncio.create_task(sample())
        chatting = asyncio.create_task(probe.run_for(None, until=done))
        t = time.perf_counter()
        rows, size, first_byte = await _download(system, status_token)
        export_s = time.perf_counter() - t
        done.set()
        during = await chatting
        await sampler
        await probe.close()
        rise_mb = (max(samples, default=rss_before) - rss_before) / 1024
        expected = convs * PER_CONVERSATION
        ms = 1000.0

        def p(values: list[float], q: float) -> float | None:
            v = percentile(values, q)
            return None if v is None else round(v * ms, 1)

        return [
            Figure(
                NAME, label, "messages exported", rows, "rows", f"= {expected:,}", rows == expected
            ),
            Figure(
                NAME,
                label,
                "export time",
                round(export_s, 1),
                "s",
                note=f"first byte {first_byte * ms:.0f} ms",
            ),
            Figure(NAME, label, "export rate", round(rows / export_s), "rows/s"),
            Figure(NAME, label, "export size", round(size / 1024 / 1024, 1), "MB"),
            Figure(NAME, label, "server RSS before", round(rss_before / 1024, 1), "MB"),
            Figure(
                NAME,
                label,
                "server RSS rise during export",
                round(rise_mb, 1),
                "MB",
                f"< {RSS_TARGET_MB:.0f} MB",
                rise_mb < RSS_TARGET_MB,
            ),
            Figure(NAME, label, "chat p50 before", p(baseline, 50), "ms"),
            Figure(NAME, label, "chat p99 before", p(baseline, 99), "ms"),
            Figure(
                NAME,
                label,
                "chat p50 during export",
                p(during, 50),
                "ms",
                note=f"{len(during)} messages",
            ),
            Figure(NAME, label, "chat p99 during export", p(during, 99), "ms"),
            Figure(NAME, label, "history build", round(build_s, 1), "s"),
        ]
    finally:
        system.stop()
        if backend == "postgres":
            await pg_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        for f in tmp.glob("*"):
            f.unlink(missing_ok=True)
        tmp.rmdir()


async def _login(system: Homing) -> str:
    async with httpx.AsyncClient(base_url=f"http://{HOST}:{system.port}") as c:
        r = await c.post(
            "/api/v1/auth/login",
            json={"shop": system.shop_slug, "username": "admin", "password": BENCH_PASSWORD},
        )
        r.raise_for_status()
        return str(r.json()["token"])


async def _download(system: Homing, token: str) -> tuple[int, int, float]:
    """Read the whole export; (data rows, bytes, seconds to the first byte)."""
    period = {"from": T0.date().isoformat(), "to": (T0 + timedelta(days=60)).date().isoformat()}
    lines = size = 0
    first: float | None = None
    t = time.perf_counter()
    client = httpx.AsyncClient(base_url=f"http://{HOST}:{system.port}", timeout=600)
    async with (
        client as c,
        c.stream(
            "GET",
            "/api/v1/exports/messages.csv",
            params=period,
            headers={"Authorization": f"Bearer {token}"},
        ) as r,
    ):
        r.raise_for_status()
        async for chunk in r.aiter_raw():
            if first is None:
                first = time.perf_counter() - t
            size += len(chunk)
            # Lines end in CRLF; a chunk may split one, so count the LF (no body here has one).
            lines += chunk.count(b"\n")
    return lines - 1, size, first or 0.0


async def run(ctx: Any) -> list[Figure]:
    n = ctx.args.export_messages or (40_000 if ctx.quick else 1_000_000)
    figures: list[Figure] = []
    for backend in [b.strip() for b in ctx.args.export_db.split(",") if b.strip()]:
        figures += await _one(ctx, backend, n)
    return figures
