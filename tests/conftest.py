"""Test fixtures: the database backend under test, real servers on real ports, factories.

`--db sqlite` (default) or `--db postgres` picks the backend; the README's test command
runs the suite once with each. PostgreSQL runs get a database of their own (created
on the machine's server and dropped afterwards), so concurrent runs never collide.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

# Cheap password hashing for tests (set before the app is imported; also inherited by
# the `homing serve` processes the multi-node tests start).
os.environ.setdefault("HOMING_ARGON2_TIME_COST", "1")
os.environ.setdefault("HOMING_ARGON2_MEMORY_KIB", "1024")

import asyncpg
import pytest
import redis.asyncio as aioredis

from app.clock import OffsetClock
from app.config import Settings
from app.migrate import upgrade
from tests.support.client import WSClient
from tests.support.factories import ShopKit, login, make_shop
from tests.support.servers import InProcessServer, NodeProcess, RedisCluster

PG_ADMIN = os.environ.get("HOMING_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("HOMING_TEST_REDIS", "redis://127.0.0.1:6379/0")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        default=os.environ.get("HOMING_TEST_DB", "sqlite"),
        choices=("sqlite", "postgres"),
        help="database backend under test",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `wheel` are the same on every backend: only the SQLite pass runs them.

    Deselected (not skipped) under `--db postgres`, so the README's test command runs them once.
    """
    if config.getoption("--db") != "postgres":
        return
    wheel = [item for item in items if item.get_closest_marker("wheel") is not None]
    if wheel:
        config.hook.pytest_deselected(items=wheel)
        items[:] = [item for item in items if item.get_closest_marker("wheel") is None]


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--db"))


async def _pg_exec(sql: str) -> None:
    try:
        conn = await asyncpg.connect(PG_ADMIN.replace("postgresql://", "postgres://"), timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN} ({exc}); start it (see README).")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test run (sync: runs outside the loop)."""
    name = f"homing_t_{secrets.token_hex(4)}"
    asyncio.run(_pg_exec(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    upgrade(url)
    yield url
    asyncio.run(_pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def database_url(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> str:
    if backend == "postgres":
        return str(request.getfixturevalue("pg_url"))
    path: Path = tmp_path_factory.mktemp("db") / "homing.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
async def redis_url() -> str:
    client = aioredis.Redis.from_url(REDIS, socket_connect_timeout=2)
    try:
        await client.ping()
    except (aioredis.RedisError, OSError) as exc:
        pytest.fail(f"Redis is not reachable at {REDIS} ({exc}); start it (see README).")
    finally:
        await client.aclose()
    return REDIS


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A Redis Cluster of 3 masters and 3 replicas on free loopback ports, for the session
    (HOMING_TEST_REDIS_CLUSTER names one already running instead). Tests that kill a
    node start a cluster of their own."""
    if os.environ.get("HOMING_TEST_REDIS_CLUSTER"):
        cluster = RedisCluster(tmp_path_factory.mktemp("unused"))
        cluster.ports = [
            int(p.rpartition(":")[2])
            for p in os.environ["HOMING_TEST_REDIS_CLUSTER"].partition("://")[2].split(",")
        ]
        yield cluster
        return
    cluster = RedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture(params=["redis", "cluster"])
def bus_url(request: pytest.FixtureRequest, redis_url: str, redis_cluster: RedisCluster) -> str:
    """The REDIS_URL of a cross-node test run on one Redis, then on a Redis Cluster."""
    return redis_cluster.url if request.param == "cluster" else redis_url


def make_settings(database_url: str, **overrides: Any) -> Settings:
    env = {"DATABASE_URL": database_url, "HOMING_DISPATCH_SWEEP_S": "0.5", **overrides}
    return Settings(**env)  # type: ignore[arg-type]


ServerFactory = Callable[..., Awaitable[InProcessServer]]


@pytest.fixture
async def start_server(database_url: str) -> AsyncIterator[ServerFactory]:
    """Start extra in-process servers with their own settings and clock; stopped afterwards."""
    started: list[InProcessServer] = []

    async def start(
        *, clock: Any = None, run_jobs: bool = True, **overrides: Any
    ) -> InProcessServer:
        settings = make_settings(overrides.pop("database_url", database_url), **overrides)
        srv = InProcessServer(settings, clock or OffsetClock(), run_jobs=run_jobs)
        started.append(srv)
        return await srv.start()

    yield start
    for srv in started:
        await srv.stop()


@pytest.fixture
async def nodes() -> AsyncIterator[Callable[..., Awaitable[NodeProcess]]]:
    """Start real `homing serve` processes (`await nodes(env, jobs=False)`); stopped afterwards."""
    started: list[NodeProcess] = []

    async def start(env: dict[str, str], *, jobs: bool = False) -> NodeProcess:
        node = NodeProcess(env, jobs=jobs)
        started.append(node)
        return await node.start()

    yield start
    for node in started:
        node.stop()


@pytest.fixture(scope="session")
async def server(database_url: str) -> AsyncIterator[InProcessServer]:
    """The shared server: embedded bus, the backend under test. Tests make their own shops.

    No periodic jobs: they sweep the whole database, and would act on other tests' shops
    (e.g. the multi-node tests' conversations) outside the bus those tests listen to.
    Tests that need a job run it by hand on a private server (`start_server`).
    """
    srv = InProcessServer(make_settings(database_url), OffsetClock(), run_jobs=False)
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture(autouse=True)
def shared_clock_restored(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test may move the shared server's clock ahead (`server.clock.advance`): the next
    test starts from the time it found, so offsets do not pile up over the run (the webhook
    tests sign with real time, and a delivery stamped half an hour ahead is not due)."""
    if "server" not in request.fixturenames:
        yield
        return
    clock = request.getfixturevalue("server").clock
    before = clock.offset
    yield
    clock.offset = before


@pytest.fixture
async def shop(server: InProcessServer) -> ShopKit:
    return await make_shop(server.ctx.db)


@pytest.fixture
async def connect() -> AsyncIterator[Callable[[str], Awaitable[WSClient]]]:
    clients: list[WSClient] = []

    async def open_(url: str) -> WSClient:
        c = await WSClient.connect(url)
        clients.append(c)
        return c

    yield open_
    for c in clients:
        await c.close()


async def online_agent(server: Any, kit: ShopKit, username: str, connect: Any) -> WSClient:
    """An agent logged in, connected and online (hello and status frames consumed)."""
    token = await login(server.http, kit, username)
    a = await connect(f"{server.ws}/ws/agent?token={token}")
    await a.expect("hello")
    await a.send({"type": "agent.status", "status": "online"})
    await a.expect("agent.status")
    return a


async def buyer(
    server: Any, kit: ShopKit, connect: Any, sub: str | None = None, **claims: Any
) -> WSClient:
    b = await connect(f"{server.ws}/ws/buyer?token={kit.buyer_token(sub, **claims)}")
    await b.expect("hello")
    return b
