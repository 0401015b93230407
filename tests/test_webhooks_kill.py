"""A real `homing serve` SIGKILLed with webhook events committed but not yet sent, and again
in the middle of sending one: after a restart each event is delivered, under its one id."""

from __future__ import annotations

import asyncio
import secrets
import signal
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from app.config import Settings
from app.db import Database
from app.migrate import upgrade
from app.webhooks.models import WebhookDelivery
from tests.conftest import PG_ADMIN, _pg_exec
from tests.support.factories import login, make_shop
from tests.support.servers import NodeProcess
from tests.support.webhooks import SECRET, Receiver, attempts_of


@pytest.fixture
async def own_database(backend, tmp_path) -> AsyncIterator[str]:
    """A database of its own: the node's dispatcher sees only this test's deliveries."""
    name = f"homing_wh_{secrets.token_hex(4)}"
    if backend == "postgres":
        await _pg_exec(f'CREATE DATABASE "{name}"')
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    else:
        url = f"sqlite:///{tmp_path / name}.db"
    await asyncio.to_thread(upgrade, url)
    yield url
    if backend == "postgres":
        await _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def node_env(database_url: str, **more: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "HOMING_BUS_CHANNEL": f"homing:test:{secrets.token_hex(4)}",
        "HOMING_WEBHOOK_ALLOW_PRIVATE": "true",
        "HOMING_WEBHOOK_RETRY_BASE_S": "0.2",
        "HOMING_WEBHOOK_POLL_S": "0.1",
        **more,
    }


def kill(node: NodeProcess) -> None:
    assert node.proc is not None
    node.proc.send_signal(signal.SIGKILL)
    node.proc.wait()


async def wait_for(check, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def deliveries(db: Database) -> list[WebhookDelivery]:
    async with db.read() as s:
        return list(
            (await s.execute(select(WebhookDelivery).order_by(WebhookDelivery.id))).scalars()
        )


async def test_events_survive_sigkill_before_and_during_sending(own_database):
    db = Database(Settings(DATABASE_URL=own_database).async_database_url)  # type: ignore[call-arg]
    receiver = await Receiver().start()
    nodes: list[NodeProcess] = []

    async def start(**env: str) -> NodeProcess:
        node = NodeProcess(node_env(own_database, **env), jobs=True)
        nodes.append(node)
        return await node.start()

    try:
        kit = await make_shop(db)
        # 1. The dispatcher looks once at start, then not for an hour: events committed
        #    now are in the database only when the node dies.
        first = await start(HOMING_WEBHOOK_POLL_S="3600")
        async with httpx.AsyncClient(base_url=first.http, timeout=10) as c:
            admin = {"Authorization": f"Bearer {await login(first.http, kit, 'admin')}"}
            r = await c.post(
                "/api/v1/webhooks",
                json={"url": receiver.url, "secret": SECRET, "events": ["recall.opted_out"]},
                headers=admin,
            )
            assert r.status_code == 201, r.text
            for sub in ("k1", "k2", "k3"):
                bh = {"Authorization": f"Bearer {kit.buyer_token(sub)}"}
                assert (await c.post("/api/v1/recall/opt-out", headers=bh)).status_code == 200
        await asyncio.sleep(0.5)
        assert receiver.arrived == []
        kill(first)

        second = await start(HOMING_WEBHOOK_TIMEOUT_S="1")
        await wait_for(lambda: len(receiver.delivered()) == 3)
        await asyncio.sleep(1.0)  # nothing more comes
        assert sorted(r.event["data"]["buyer_id"] for r in receiver.delivered()) == [
            "k1",
            "k2",
            "k3",
        ]
        assert len(receiver.ids()) == 3 and set(receiver.ids().values()) == {1}
        assert len(receiver.arrived) == 3 and all(r.verified for r in receiver.received)

        # 2. Killed while the receiver holds the request: the lease (timeout + margin)
        #    runs out and the restarted node sends the same event again.
        receiver.hold = asyncio.Event()
        async with httpx.AsyncClient(base_url=second.http, timeout=10) as c:
            bh = {"Authorization": f"Bearer {kit.buyer_token('k4')}"}
            assert (await c.post("/api/v1/recall/opt-out", headers=bh)).status_code == 200
        await wait_for(lambda: len(receiver.arrived) == 4)
        kill(second)
        receiver.hold.set()  # the cut request is answered into the void
        receiver.hold = None
        await start(HOMING_WEBHOOK_TIMEOUT_S="1")
        await wait_for(lambda: len(receiver.arrived) == 5)
        await asyncio.sleep(1.0)
        assert receiver.arrived[3] == receiver.arrived[4]  # the same event, the same id
        assert len(receiver.arrived) == 5
        last = (await deliveries(db))[-1]
        assert last.status == "delivered"
        # The killed attempt left no record; the one that got through did.
        assert [a.status_code for a in await attempts_of(db, last.id)] == [200]
    finally:
        for node in nodes:
            node.stop()
        await receiver.stop()
        await db.dispose()
