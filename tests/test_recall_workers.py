"""The recall job in real worker processes: two campaigns on two workers at once, and a worker
SIGKILLed mid-campaign. Each test has a database of its own, so only its campaigns are due."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from app.db import Database
from app.migrate import upgrade
from app.recall import actions as recall_actions
from app.recall.models import RecallCampaign
from tests.conftest import PG_ADMIN, _pg_exec
from tests.support.factories import login, make_shop
from tests.support.recall import consult, new_campaign, recall_cards, sends_by_buyer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
async def own_database(backend, tmp_path) -> AsyncIterator[str]:
    name = f"homing_recall_{secrets.token_hex(4)}"
    if backend == "postgres":
        await _pg_exec(f'CREATE DATABASE "{name}"')
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    else:
        url = f"sqlite:///{tmp_path / name}.db"
    await asyncio.to_thread(upgrade, url)
    yield url
    if backend == "postgres":
        await _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Worker:
    """`python -m app worker`: the scheduled jobs alone, as deployed at scale."""

    def __init__(self, database_url: str, tag: str, *, batch: int | None = None) -> None:
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            **({"HOMING_RECALL_BATCH": str(batch)} if batch else {}),
            "HOMING_BUS_CHANNEL": f"homing:test:{secrets.token_hex(4)}",
        }
        self.log = (
            Path(os.environ.get("HOMING_TEST_LOGS", "/tmp"))
            / f"homing-recall-{tag}-{secrets.token_hex(3)}.log"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app", "worker", "--log-level", "warning"],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def audience_shop(start_server, database_url: str, buyers: list[str]):
    front = await start_server(run_jobs=False, database_url=database_url)  # HTTP only
    db: Database = front.ctx.db
    kit = await make_shop(db, agents=(("sup", "supervisor", ("general",)),))
    now = datetime.now(UTC)
    await db.run(recall_actions.set_window, kit.shop_id, 0, 24 * 60, now)  # any hour of the test
    await consult(db, kit.shop_id, buyers, now - timedelta(days=1))
    return front, kit, await login(front.http, kit, "sup")


async def statuses(db: Database, ids: list[str]) -> dict[str, RecallCampaign]:
    async with db.read() as s:
        rows = await s.execute(select(RecallCampaign).where(RecallCampaign.id.in_(ids)))
        return {c.id: c for c in rows.scalars()}


async def wait_completed(db: Database, ids: list[str], timeout: float) -> dict[str, RecallCampaign]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await statuses(db, ids)
        if all(c.status == "completed" for c in found.values()):
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(
        f"campaigns not completed: {[(c.status, c.sent, c.total) for c in found.values()]}"
    )


async def assert_each_recalled_once(db: Database, shop_id: str, buyers: list[str]) -> None:
    sends = await sends_by_buyer(db, shop_id)
    sent = Counter(s.buyer_id for v in sends.values() for s in v if s.status == "sent")
    assert set(sent) == set(buyers) and set(sent.values()) == {1}
    cards = Counter(m.payload["coupon"]["id"] for m in await recall_cards(db, shop_id))
    assert len(cards) == len(buyers) and set(cards.values()) == {1}
    assert all(s.status != "pending" for v in sends.values() for s in v)


async def test_two_campaigns_on_two_workers_recall_each_buyer_once(own_database, start_server):
    buyers = [f"buyer-{i:04d}" for i in range(1000)]
    front, kit, token = await audience_shop(start_server, own_database, buyers)
    async with httpx.AsyncClient(base_url=front.http, timeout=30) as http:
        now = datetime.now(UTC)
        ids = [(await new_campaign(http, token, now, name=n))["id"] for n in ("A", "B")]
    workers = [Worker(own_database, "a"), Worker(own_database, "b")]
    try:
        for w in workers:
            w.start()
        done = await wait_completed(front.ctx.db, ids, 60)
    finally:
        for w in workers:
            w.stop()
    assert sum(c.sent for c in done.values()) == 1000
    # A campaign that starts after the other has sent some leaves those buyers out (capped)
    # of its audience; one that starts before sees them skipped at send time.
    assert all(c.sent + c.skipped == c.total <= 1000 for c in done.values())
    await assert_each_recalled_once(front.ctx.db, kit.shop_id, buyers)


async def test_worker_killed_mid_campaign_resumes_without_double_cards(own_database, start_server):
    buyers = [f"buyer-{i:04d}" for i in range(3000)]
    front, kit, token = await audience_shop(start_server, own_database, buyers)
    async with httpx.AsyncClient(base_url=front.http, timeout=30) as http:
        cid = (await new_campaign(http, token, datetime.now(UTC)))["id"]
    # Small batches: the kill lands mid-campaign however fast the worker runs (with the
    # default 1,000, it could send all three batches between two polls).
    first = Worker(own_database, "first", batch=50).start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            c = (await statuses(front.ctx.db, [cid]))[cid]
            if c.status == "running" and c.sent >= 200:
                break
            await asyncio.sleep(0.01)
        first.kill()
    finally:
        first.stop()
    killed_at = (await statuses(front.ctx.db, [cid]))[cid]
    assert killed_at.status == "running" and 0 < killed_at.sent < 3000, (
        killed_at.status,
        killed_at.sent,
    )
    second = Worker(own_database, "second").start()
    try:
        done = (await wait_completed(front.ctx.db, [cid], 60))[cid]
    finally:
        second.stop()
    assert (done.total, done.sent, done.skipped) == (3000, 3000, 0)
    await assert_each_recalled_once(front.ctx.db, kit.shop_id, buyers)
