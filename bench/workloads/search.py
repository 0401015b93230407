"""Message search over 1,000,000 stored messages: p99 of 20 mixed queries on each database.

Runs in this process against the app's own search code (`app.search.service`, what
`GET /api/v1/search/messages` runs, plus the tags of the hits), on a fresh SQLite file
and a fresh PostgreSQL database, migrated. The messages are written by set-based SQL (a
recursive CTE on SQLite, generate_series on PostgreSQL), not through the API: 50,000
closed conversations of 20 messages, 10,000 buyers, 20 agents, over ~58 days, the text
drawn from customer-service phrases plus an order number. On SQLite the FTS5 triggers
index every row as it is inserted; on PostgreSQL the pg_trgm index is dropped for the
load and built again after it (as one would for a bulk load), then VACUUM ANALYZE (as
autovacuum does soon after such a load).

The 20 queries: 1-, 2- and 3+-character, common and absent words, with and without
filters (buyer, agent, queue, tag, period), as a supervisor and as an agent (who sees
only conversations they served). Each round runs all 20; the figure is the p99 over
every timing (`--search-rounds`, default 5).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from app.clock import Clock
from app.config import Settings
from app.db import Database
from app.migrate import upgrade
from app.search import service
from app.search.rules import highlight
from app.shops import actions as shop_actions
from app.shops.models import Agent
from app.tags import actions as tag_actions
from app.tags import service as tags_service
from bench.common import Figure, percentile, pg_admin, pg_url

NAME = "search"
TITLE = "message search over 1,000,000 messages"
P99_TARGET_MS = 300.0
PER_CONV = 20
AGENTS = 20
BUYERS = 10_000

PHRASES = [
    "在吗",
    "请问什么时候发货?",
    "这款还有货吗",
    "我想申请退款",
    "快递到哪里了",
    "可以包邮吗",
    "地址写错了能改吗",
    "优惠券怎么用不了",
    "七天无理由退货可以吗",
    "尺码偏大还是偏小",
    "颜色和图片不一样",
    "已经签收了谢谢",
    "质量有问题要换货",
    "物流一直没更新",
    "能开发票吗",
    "亲,已为您登记",
    "好的,马上为您处理",
    "您好,请问有什么可以帮您?",
    "已经帮您催促仓库了",
    "退款会在三个工作日内到账",
    "这个是现货,今天下午发出",
    "麻烦提供一下订单号",
    "实在抱歉给您带来不便",
]

# (label, query, filters, as_agent)
QUERIES: list[tuple[str, str, dict[str, Any], bool]] = [
    ("1ch 发", "发", {}, False),
    ("1ch 吗 agent", "吗", {}, True),
    ("1ch 票 buyer", "票", {"buyer": True}, False),
    ("1ch 鹦 absent", "鹦", {}, False),
    ("2ch 发货", "发货", {}, False),
    ("2ch 退款 tag", "退款", {"tag": "物流"}, False),
    ("2ch 地址 buyer", "地址", {"buyer": True}, False),
    ("2ch 发票 agent", "发票", {}, True),
    ("2ch 鹦鹉 absent", "鹦鹉", {}, False),
    ("2ch 包邮 queue+period", "包邮", {"queue": "presale", "days": 7}, False),
    ("3+ 什么时候", "什么时候", {}, False),
    ("3+ 七天无理由", "七天无理由", {}, False),
    ("3+ order no.", "订单号 12345", {}, False),
    ("3+ 不存在的句子 absent", "不存在的句子", {}, False),
    ("3+ 包邮吗 queue", "包邮吗", {"queue": "presale"}, False),
    ("3+ 换货 period", "要换货", {"days": 3}, False),
    ("3+ 什么时候发货 agent", "什么时候发货", {}, True),
    ("3+ 退款会 tag", "退款会", {"tag": "退款"}, False),
    ("3+ 地址写错 agent+buyer", "地址写错", {"buyer": True}, True),
    ("3+ 物流一直 agent filter", "物流一直", {"agent": True}, False),
]


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("search")
    g.add_argument("--search-messages", type=int, help="messages (default 1000000; --quick 20000)")
    g.add_argument("--search-db", default="sqlite,postgres", help="backends, comma-separated")
    g.add_argument("--search-rounds", type=int, default=5, help="rounds of the 20 queries")


def _phrase_sql(dialect: str) -> str:
    """SQL for message i's body: one phrase, then (one in 7) an order number."""
    quoted = ", ".join("'" + p + "'" for p in PHRASES)
    n = len(PHRASES)
    if dialect == "postgresql":
        pick = f"(ARRAY[{quoted}])[1 + ((i::bigint * 7919) % {n})]"
        order = "CASE WHEN i % 7 = 0 THEN ' 订单号 ' || (i % 100000)::text ELSE '' END"
        return f"{pick} || {order}"
    cases = " ".join(f"WHEN {k} THEN '{p}'" for k, p in enumerate(PHRASES))
    pick = f"(CASE (i * 7919) % {n} {cases} END)"
    order = "CASE WHEN i % 7 = 0 THEN ' 订单号 ' || (i % 100000) ELSE '' END"
    return f"{pick} || {order}"


async def _build(db: Database, n: int, clock: Clock) -> dict[str, Any]:
    now = clock.now()
    convs = n // PER_CONV

    async def shop(uow: Any) -> dict[str, Any]:
        new = await shop_actions.create_shop(
            uow,
            slug=f"bench-{secrets.token_hex(4)}",
            admin_username="admin",
            admin_password="bench-password-1",
            now=now,
        )
        agents = []
        for k in range(AGENTS):
            a = await shop_actions.create_agent(
                uow,
                new.shop,
                username=f"agent{k}",
                password="bench-password-1",
                role="agent",
                display_name=f"客服{k}",
                queues=("general", "presale"),
                now=now,
            )
            agents.append(a)
        for name in ("物流", "退款"):
            await tag_actions.create_tag(uow, new.shop.id, name, now)
        admin = await uow.session.get(Agent, new.admin_id)
        return {"shop": new.shop, "admin": admin, "agents": agents}

    made: dict[str, Any] = await db.run(shop)
    shop_id = made["shop"].id
    agent_ids = [a.id for a in made["agents"]]
    base = now - timedelta(seconds=5 * n)
    pg = db.dialect == "postgresql"
    agents_sql = ", ".join(f"'{a}'" for a in agent_ids)
    body = _phrase_sql(db.dialect)
    async with db.engine.begin() as conn:
        if pg:
            await conn.execute(text("DROP INDEX ix_messages_body_trgm"))
            series = "generate_series(1, :n) AS g(i)"
            at = "(CAST(:base AS timestamptz) + make_interval(secs => i * 5))"
            cid = "'c' || lpad(to_hex(i), 31, '0')"
            mid = "'m' || lpad(to_hex(i), 31, '0')"
            agent = f"(ARRAY[{agents_sql}])[1 + (c % {AGENTS})]"
            conv_of = f"((i - 1) / {PER_CONV})"
            conv_sql = (
                "INSERT INTO conversations (id, shop_id, buyer_id, queue, status, agent_id, elder,"
                " last_seq, buyer_read_seq, agent_read_seq, opened_at, assigned_at, closed_at,"
                " close_reason) "
                f"SELECT {cid.replace('i', 'c')}, :shop, 'bb-' || (c % {BUYERS}),"
                " CASE WHEN c % 3 = 0 THEN 'presale' ELSE 'general' END, 'closed',"
                f" {agent}, false, {PER_CONV}, {PER_CONV}, {PER_CONV},"
                f" {at.replace('i * 5', f'(c * {PER_CONV} + 1) * 5')},"
                f" {at.replace('i * 5', f'(c * {PER_CONV} + 1) * 5')},"
                f" {at.replace('i * 5', f'(c * {PER_CONV} + {PER_CONV}) * 5')}, 'agent'"
                " FROM generate_series(0, :convs - 1) AS g(c)"
            )
            msg_sql = (
                "INSERT INTO messages (id, shop_id, conversation_id, seq, sender, sender_id, kind,"
                " body, payload, client_msg_id, created_at) "
                f"SELECT {mid}, :shop, {cid.replace('to_hex(i)', f'to_hex({conv_of})')},"
                f" ((i - 1) % {PER_CONV}) + 1,"
                f" CASE WHEN i % 2 = 1 THEN 'buyer' ELSE 'agent' END,"
                f" CASE WHEN i % 2 = 1 THEN 'bb-' || ({conv_of} % {BUYERS})"
                f" ELSE (ARRAY[{agents_sql}])[1 + ({conv_of} % {AGENTS})] END,"
                f" 'text', {body}, '{{}}', NULL, {at} FROM {series}"
            )
            await conn.execute(text(conv_sql), {"shop": shop_id, "convs": convs, "base": base})
            await conn.execute(text(msg_sql), {"shop": shop_id, "n": n, "base": base})
        else:
            fmt = "'%Y-%m-%d %H:%M:%S'"
            b = base.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S")
            at = f"strftime({fmt}, '{b}', '+' || (i * 5) || ' seconds') || '.000000'"
            agent = (
                f"(CASE c % {AGENTS} "
                + " ".join(f"WHEN {k} THEN '{a}'" for k, a in enumerate(agent_ids))
                + " END)"
            )
            conv_sql = (
                "WITH RECURSIVE g(c) AS (SELECT 0 UNION ALL SELECT c + 1 FROM g WHERE c < :convs - 1) "
                "INSERT INTO conversations (id, shop_id, buyer_id, queue, status, agent_id, elder,"
                " last_seq, buyer_read_seq, agent_read_seq, opened_at, assigned_at, closed_at,"
                " close_reason) "
                f"SELECT printf('c%031x', c), :shop, 'bb-' || (c % {BUYERS}),"
                " CASE WHEN c % 3 = 0 THEN 'presale' ELSE 'general' END, 'closed',"
                f" {agent}, 0, {PER_CONV}, {PER_CONV}, {PER_CONV},"
                f" {at.replace('(i * 5)', f'((c * {PER_CONV} + 1) * 5)')},"
                f" {at.replace('(i * 5)', f'((c * {PER_CONV} + 1) * 5)')},"
                f" {at.replace('(i * 5)', f'((c * {PER_CONV} + {PER_CONV}) * 5)')}, 'agent' FROM g"
            )
            await conn.execute(text(conv_sql), {"shop": shop_id, "convs": convs})
            conv_of = f"((i - 1) / {PER_CONV})"
            agent_of = agent.replace("c %", f"{conv_of} %")
            chunk = 100_000
            for start in range(0, n, chunk):
                msg_sql = (
                    "WITH RECURSIVE g(i) AS (SELECT :lo UNION ALL SELECT i + 1 FROM g WHERE i < :hi) "
                    "INSERT INTO messages (id, shop_id, conversation_id, seq, sender, sender_id, kind,"
                    " body, payload, client_msg_id, created_at) "
                    f"SELECT printf('m%031x', i), :shop, printf('c%031x', {conv_of}),"
                    f" ((i - 1) % {PER_CONV}) + 1,"
                    " CASE WHEN i % 2 = 1 THEN 'buyer' ELSE 'agent' END,"
                    f" CASE WHEN i % 2 = 1 THEN 'bb-' || ({conv_of} % {BUYERS}) ELSE {agent_of} END,"
                    f" 'text', {body}, '{{}}', NULL, {at} FROM g"
                )
                await conn.execute(
                    text(msg_sql), {"shop": shop_id, "lo": start + 1, "hi": min(n, start + chunk)}
                )
        # Tags: 物流 on every 7th conversation, 退款 on every 11th.
        for name, every in (("物流", 7), ("退款", 11)):
            cid_sql = "'c' || lpad(to_hex(c), 31, '0')" if pg else "printf('c%031x', c)"
            gen = (
                "generate_series(0, :convs - 1) AS g(c)"
                if pg
                else "(WITH RECURSIVE g(c) AS (SELECT 0 UNION ALL SELECT c + 1 FROM g WHERE c < :convs - 1) SELECT c FROM g)"
            )
            await conn.execute(
                text(
                    "INSERT INTO conversation_tags (shop_id, conversation_id, tag_id, created_at) "
                    f"SELECT CAST(:shop AS VARCHAR), {cid_sql},"
                    " (SELECT id FROM tags WHERE shop_id = CAST(:shop AS VARCHAR) AND name = :name),"
                    f" :now FROM {gen} WHERE c % {every} = 0"
                ),
                {
                    "shop": shop_id,
                    "convs": convs,
                    "name": name,
                    "now": now if pg else now.replace(tzinfo=None).isoformat(sep=" "),
                },
            )
        if pg:
            await conn.execute(
                text("CREATE INDEX ix_messages_body_trgm ON messages USING gin (body gin_trgm_ops)")
            )
    if pg:
        async with db.engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            # As autovacuum would soon after such a load: statistics and the visibility map
            # (index-only walks of the (shop, time) index).
            await auto.execute(text("VACUUM ANALYZE messages"))
            await auto.execute(text("ANALYZE"))
    else:
        async with db.engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
    return {
        "shop_id": shop_id,
        "admin": made["admin"],
        "agents": made["agents"],
        "now": now,
    }


async def _run_one(
    db: Database, built: dict[str, Any], query: tuple[str, str, dict[str, Any], bool]
) -> tuple[float, int, bool]:
    _, q, f, as_agent = query
    agents = built["agents"]
    who = agents[3] if as_agent else built["admin"]
    sq = service.SearchQuery(
        q=q,
        buyer_id="bb-63" if f.get("buyer") else None,
        agent_id=agents[5].id if f.get("agent") else None,
        queue=f.get("queue"),
        tag=f.get("tag"),
        since=built["now"] - timedelta(days=f["days"]) if "days" in f else None,
    )
    t = time.perf_counter()
    async with db.read() as s:
        page = await service.search_messages(s, db.dialect, who, sq)
        await tags_service.tags_of(s, {c.id for _, c in page.hits})
        for m, _ in page.hits:
            highlight(m.body, q)
    return (time.perf_counter() - t) * 1000.0, len(page.hits), page.partial


async def _explain(db: Database, shop_id: str, q: str) -> str:
    """The plan PostgreSQL chooses for a 3+ character Chinese query (shop-wide)."""
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "EXPLAIN ANALYZE SELECT id FROM messages WHERE shop_id = :s AND body ILIKE :p "
                "ORDER BY created_at DESC, id DESC LIMIT 21"
            ),
            {"s": shop_id, "p": f"%{q}%"},
        )
        return "\n".join(r[0] for r in rows)


async def _one(ctx: Any, backend: str, n: int) -> list[Figure]:
    name = f"homing_bench_search_{secrets.token_hex(4)}"
    tmp: Path | None = None
    if backend == "postgres":
        await pg_admin(f'CREATE DATABASE "{name}"')
        url = pg_url(name)
    else:
        tmp = Path(tempfile.mkdtemp(prefix="homing-search-"))
        url = f"sqlite:///{tmp / name}.db"
    await asyncio.to_thread(upgrade, url)
    settings = Settings(DATABASE_URL=url)  # type: ignore[call-arg]
    db = Database(settings.async_database_url)
    try:
        t = time.monotonic()
        built = await _build(db, n, Clock())
        ctx.say(f"  {backend}: built {n} messages in {time.monotonic() - t:.1f}s")
        timings: list[float] = []
        per_query: dict[str, list[float]] = {}
        counts: dict[str, tuple[int, bool]] = {}
        for _ in range(ctx.args.search_rounds):
            for query in QUERIES:
                ms, hits, partial = await _run_one(db, built, query)
                timings.append(ms)
                per_query.setdefault(query[0], []).append(ms)
                counts[query[0]] = (hits, partial)
        for label, ms_list in per_query.items():
            hits, partial = counts[label]
            ctx.say(
                f"    {label:28s} median {sorted(ms_list)[len(ms_list) // 2]:7.1f} ms"
                f"  max {max(ms_list):7.1f} ms  hits {hits}{' (partial)' if partial else ''}"
            )
        p99 = percentile(timings, 99) or 0.0
        p50 = percentile(timings, 50) or 0.0
        extra: dict[str, Any] = {
            "per_query_median_ms": {
                k: round(sorted(v)[len(v) // 2], 1) for k, v in per_query.items()
            },
        }
        if backend == "postgres":
            # A common word: the planner walks the time index; a rare one: the trigram index.
            for label, q in (("common", "什么时候"), ("rare", "订单号 12345")):
                plan = await _explain(db, built["shop_id"], q)
                extra[f"explain_{label}"] = plan
                flat = " | ".join(line.strip() for line in plan.splitlines())
                ctx.say(f"    EXPLAIN ({q}): {flat}")
        return [
            Figure(
                NAME,
                f"homing/{backend}",
                "p99 of 20 mixed queries",
                round(p99, 1),
                "ms",
                target=f"< {P99_TARGET_MS:g} ms",
                met=p99 < P99_TARGET_MS,
                note=f"{n} messages, {len(timings)} timings, median {p50:.1f} ms",
                extra=extra,
            )
        ]
    finally:
        await db.dispose()
        if backend == "postgres":
            await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        elif tmp is not None:
            for f in tmp.iterdir():
                f.unlink()
            tmp.rmdir()


async def run(ctx: Any) -> list[Figure]:
    n = ctx.args.search_messages or (20_000 if ctx.quick else 1_000_000)
    figures: list[Figure] = []
    for backend in [b.strip() for b in ctx.args.search_db.split(",") if b.strip()]:
        figures += await _one(ctx, backend, n)
    return figures
