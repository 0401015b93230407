"""Recall at scale: an audience of N consulting buyers (100,000), time to preview and to send.

Runs in this process against the app's own code (no HTTP): a fresh SQLite file and a fresh
PostgreSQL database, migrated; consultations (a product card and a stock/shipping question
each) written in bulk; then `audience()` (what GET /preview runs) and `run_campaign()`
(what the worker job runs: the audience snapshot, then cap claims, send records and coupon
cards in batches of `actions.SEND_BATCH`).

On PostgreSQL the tables are ANALYZEd after the bulk load, as autovacuum does within a
minute of such a load in a running database; `--recall-no-analyze` measures the cold
statistics instead (the planner then takes 300,000 fresh rows for a handful).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text

from app.chat.models import Conversation, Message
from app.clock import Clock
from app.config import Settings
from app.db import Database, new_id
from app.migrate import upgrade
from app.realtime.bus import make_bus
from app.realtime.hub import Hub
from app.recall import actions, service
from app.recall.jobs import run_campaign
from app.recall.models import RecallSend
from app.shops import actions as shop_actions
from bench.common import Figure, pg_admin, pg_url

NAME = "recall"
TITLE = "recall campaign over a large audience"
PREVIEW_TARGET_S = 5.0
SEND_TARGET_S = 60.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("recall")
    g.add_argument(
        "--recall-buyers", type=int, help="consulting buyers (default 100000; --quick 2000)"
    )
    g.add_argument("--recall-db", default="sqlite,postgres", help="backends, comma-separated")
    g.add_argument(
        "--recall-no-analyze",
        action="store_true",
        help="PostgreSQL: no ANALYZE after the bulk load (statistics as autovacuum has not yet)",
    )


async def _build(db: Database, n: int, now: datetime) -> str:
    async def shop(uow: Any) -> str:
        new = await shop_actions.create_shop(
            uow,
            slug=f"bench-{secrets.token_hex(4)}",
            admin_username="admin",
            admin_password="bench-password-1",
            now=now,
        )
        await actions.set_window(uow, new.shop.id, 0, 24 * 60, now)
        return str(new.shop.id)

    shop_id: str = await db.run(shop)
    chunk = 5000
    for start in range(0, n, chunk):
        convs, msgs = [], []
        for i in range(start, min(n, start + chunk)):
            b, cid, at = f"buyer-{i:06d}", new_id(), now - timedelta(hours=1 + i % 600)
            convs.append(
                Conversation(
                    id=cid,
                    shop_id=shop_id,
                    buyer_id=b,
                    status="closed",
                    last_seq=2,
                    opened_at=at,
                    closed_at=at + timedelta(minutes=5),
                    close_reason="agent",
                ).model_dump()
            )
            msgs.append(
                Message(
                    id=new_id(),
                    shop_id=shop_id,
                    conversation_id=cid,
                    seq=1,
                    sender="buyer",
                    sender_id=b,
                    kind="product_card",
                    payload={"product_id": "p1", "title": "围巾", "price_cents": 9900},
                    created_at=at,
                ).model_dump()
            )
            msgs.append(
                Message(
                    id=new_id(),
                    shop_id=shop_id,
                    conversation_id=cid,
                    seq=2,
                    sender="buyer",
                    sender_id=b,
                    kind="text",
                    body="这款还有货吗?什么时候发货?",
                    payload={},
                    created_at=at,
                ).model_dump()
            )

        async def write(
            uow: Any, convs: list[dict[str, Any]] = convs, msgs: list[dict[str, Any]] = msgs
        ) -> None:
            await uow.session.execute(insert(Conversation), convs)
            await uow.session.execute(insert(Message), msgs)

        await db.run(write)
    return shop_id


async def _one(ctx: Any, backend: str, n: int) -> list[Figure]:
    name = f"homing_bench_recall_{secrets.token_hex(4)}"
    tmp: Path | None = None
    if backend == "postgres":
        await pg_admin(f'CREATE DATABASE "{name}"')
        url = pg_url(name)
    else:
        tmp = Path(tempfile.mkdtemp(prefix="homing-recall-"))
        url = f"sqlite:///{tmp / name}.db"
    await asyncio.to_thread(upgrade, url)
    settings = Settings(DATABASE_URL=url)  # type: ignore[call-arg]
    db = Database(settings.async_database_url)
    bus = make_bus(None, "homing:bench:recall")
    hub = Hub(bus)
    db.publisher = hub.publish  # cards are published as in a worker (nobody listening)
    await bus.start()
    try:
        clock = Clock()
        now = clock.now()
        t = time.monotonic()
        shop_id = await _build(db, n, now)
        analyzed = backend == "postgres" and not ctx.args.recall_no_analyze
        if analyzed:
            async with db.engine.connect() as conn:
                await conn.execute(text("ANALYZE"))
        ctx.say(
            f"  {backend}: built {n} consulting buyers in {time.monotonic() - t:.1f}s"
            + (" (and analyzed)" if analyzed else "")
        )
        t = time.monotonic()
        async with db.read() as s:
            found = await service.audience(s, shop_id, 40, clock.now())
        preview_s = time.monotonic() - t
        ctx.say(
            f"  {backend}: preview {preview_s:.2f}s: eligible {found.eligible}, excluded {found.excluded}"
        )

        async def campaign(uow: Any) -> str:
            draft = actions.CampaignDraft(
                "bench",
                clock.now(),
                clock.now() + timedelta(days=3),
                40,
                {"title": "满200减30", "amount_cents": 3000, "min_spend_cents": 20000},
                "大促召回",
            )
            c = await actions.create_campaign(uow, shop_id, "bench", draft, clock.now())
            await actions.schedule_campaign(uow, shop_id, c.id, clock.now())
            return str(c.id)

        cid = await db.run(campaign)
        t = time.monotonic()
        handled = await run_campaign(db, clock, cid)
        send_s = time.monotonic() - t
        async with db.read() as s:
            sent = (
                await s.execute(
                    select(func.count()).where(
                        RecallSend.campaign_id == cid, RecallSend.status == "sent"
                    )
                )
            ).scalar_one()
        ctx.say(f"  {backend}: send {send_s:.1f}s: handled {handled}, sent {sent}")
        ok_all = sent == found.eligible == n
        return [
            Figure(
                NAME,
                f"homing/{backend}",
                "preview",
                round(preview_s, 2),
                "s",
                target=f"< {PREVIEW_TARGET_S:g} s",
                met=preview_s < PREVIEW_TARGET_S,
                note=f"{n} buyers" + (", statistics analyzed" if analyzed else ""),
                extra={"excluded": found.excluded},
            ),
            Figure(
                NAME,
                f"homing/{backend}",
                "send",
                round(send_s, 1),
                "s",
                target=f"< {SEND_TARGET_S:g} s",
                met=send_s < SEND_TARGET_S and ok_all,
                note=f"{sent} cards" + ("" if ok_all else " (not everyone!)"),
            ),
        ]
    finally:
        await bus.stop()
        await db.dispose()
        if backend == "postgres":
            await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        elif tmp is not None:
            for f in tmp.iterdir():
                f.unlink()
            tmp.rmdir()


async def run(ctx: Any) -> list[Figure]:
    n = ctx.args.recall_buyers or (2000 if ctx.quick else 100_000)
    figures: list[Figure] = []
    for backend in [b.strip() for b in ctx.args.recall_db.split(",") if b.strip()]:
        figures += await _one(ctx, backend, n)
    return figures
