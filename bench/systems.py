"""The systems under test: Homing (a real `homing serve` process) and the peers.

A system starts its server process(es) pinned to the server core, gives the load
generator URLs for agents and buyers, and stops everything it started. `HomingCluster`
is two Homing nodes on one PostgreSQL database and a private Redis.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import jwt

from bench.clients import Client, Proto, SocketIOProto
from bench.common import (
    HOST,
    Proc,
    Redis,
    free_port,
    http_json,
    pg_admin,
    pg_url,
    python,
    wait_http,
    wait_port,
)

BENCH_PASSWORD = "bench-" + "p" * 10
DEMO_BUYER_SECRET = "demo-buyer-secret-0123456789abcdef"


class System:
    name = "system"
    proto: Proto = Proto()
    # Homing routes buyers to agents itself; the relays pair buyer i with agent i % A.
    routes = False

    def __init__(self, log_dir: Path, *, frames_per_second: int = 10000) -> None:
        self.log_dir = log_dir
        self.frames_per_second = frames_per_second
        self.procs: list[Proc] = []
        self.port = 0

    @property
    def server(self) -> Proc:
        return self.procs[-1]

    @property
    def pid(self) -> int:
        return self.server.pid

    @property
    def pids(self) -> list[int]:
        """The server processes whose CPU counts as the system's (not Redis or PostgreSQL)."""
        return [self.pid]

    async def start(self) -> System:
        raise NotImplementedError

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.stop()

    async def agent_urls(self, n: int, *, max_concurrent: int = 50) -> list[str]:
        return [f"ws://{HOST}:{self.port}/agent?id=a{i}" for i in range(n)]

    def buyer_url(self, i: int, n_agents: int) -> str:
        return f"ws://{HOST}:{self.port}/buyer?id=b{i}&agent=a{i % max(1, n_agents)}"

    async def agent_ready(self, client: Client) -> None:
        """Make a connected agent available for work (nothing to do for the relays)."""


class WsRelay(System):
    name = "websockets relay"

    async def start(self) -> WsRelay:
        self.port = free_port()
        proc = Proc(
            f"ws-relay-{self.port}",
            [python(), "-m", "bench.peers.ws_relay", "--port", str(self.port)],
            log_dir=self.log_dir,
        ).start()
        self.procs.append(proc)
        await wait_port(proc, self.port)
        return self


class SocketIORelay(System):
    proto = SocketIOProto()

    def __init__(self, log_dir: Path, *, redis: bool = False, **kw: Any) -> None:
        super().__init__(log_dir, **kw)
        self.redis = redis
        self.name = "python-socketio + Redis" if redis else "python-socketio"
        self._redis: Redis | None = None

    async def start(self) -> SocketIORelay:
        self.port = free_port()
        args = [python(), "-m", "bench.peers.sio_relay", "--port", str(self.port)]
        if self.redis:
            self._redis = await Redis(self.log_dir).start()
            self.procs.append(self._redis.proc)
            args += ["--redis", self._redis.url, "--channel", f"bench-sio-{self.port}"]
        proc = Proc(f"sio-relay-{self.port}", args, log_dir=self.log_dir).start()
        self.procs.append(proc)
        await wait_port(proc, self.port)
        return self

    async def agent_urls(self, n: int, *, max_concurrent: int = 50) -> list[str]:
        return [self._url(f"role=agent&id=a{i}") for i in range(n)]

    def buyer_url(self, i: int, n_agents: int) -> str:
        return self._url(f"role=buyer&id=b{i}&agent=a{i % max(1, n_agents)}")

    def _url(self, query: str) -> str:
        return f"ws://{HOST}:{self.port}/socket.io/?EIO=4&transport=websocket&{query}"


class Homing(System):
    """`python -m app serve --demo` on a fresh SQLite file in a temporary directory."""

    routes = True
    # Seconds a node may take to answer /healthz (migrations, the demo shop) before the
    # start counts as failed.
    start_timeout = 60.0

    def __init__(self, log_dir: Path, *, jobs: bool = True, **kw: Any) -> None:
        super().__init__(log_dir, **kw)
        self.name = "Homing (SQLite)"
        self.jobs = jobs
        self.tmp = Path(tempfile.mkdtemp(prefix="homing-bench-"))
        self.database_url = f"sqlite:///{self.tmp / 'homing.db'}"
        self.shop_slug = "demo"
        self.buyer_secret = DEMO_BUYER_SECRET
        self.run_id = secrets.token_hex(3)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL",)}
        env.update(
            {
                "DATABASE_URL": self.database_url,
                "HOMING_BUS_CHANNEL": f"homing:bench:{self.run_id}",
                "HOMING_FRAMES_PER_SECOND": str(self.frames_per_second),
            }
        )
        return env

    async def start(self) -> Homing:
        self.port = free_port()
        args = [
            python(),
            "-m",
            "app",
            "serve",
            "--demo",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        if not self.jobs:
            args.append("--no-jobs")
        proc = Proc(f"homing-{self.port}", args, env=self.env(), log_dir=self.log_dir).start()
        self.procs.append(proc)
        await wait_http(proc, f"http://{HOST}:{self.port}/healthz", self.start_timeout)
        return self

    def stop(self) -> None:
        super().stop()
        for f in self.tmp.glob("*"):
            f.unlink(missing_ok=True)
        try:
            self.tmp.rmdir()
        except OSError:
            pass

    async def make_shop(self, n_agents: int, max_concurrent: int) -> tuple[str, str, list[str]]:
        """A fresh shop with n agents on the general queue, through the app's own actions."""
        from app.clock import Clock
        from app.config import Settings
        from app.db import Database
        from app.shops import actions as shop_actions

        slug = f"bench-{secrets.token_hex(4)}"
        now = Clock().now()
        usernames = [f"agent{i:03d}" for i in range(n_agents)]

        async def build(uow: Any) -> str:
            new = await shop_actions.create_shop(
                uow, slug=slug, admin_username="admin", admin_password=BENCH_PASSWORD, now=now
            )
            for u in usernames:
                await shop_actions.create_agent(
                    uow,
                    new.shop,
                    username=u,
                    password=BENCH_PASSWORD,
                    role="agent",
                    display_name=f"{u} 客服",
                    queues=("general",),
                    now=now,
                    max_concurrent=max_concurrent,
                )
            await self.shop_setup(uow, new.shop.id, now)
            return new.buyer_secret

        settings = Settings(DATABASE_URL=self.database_url)  # type: ignore[call-arg]
        db = Database(settings.async_database_url)
        try:
            secret = await db.run(build)
        finally:
            await db.dispose()
        return slug, secret, usernames

    async def shop_setup(self, uow: Any, shop_id: str, now: Any) -> None:
        """More of the bench shop, in the transaction that creates it (nothing here)."""

    async def agent_urls(self, n: int, *, max_concurrent: int = 50) -> list[str]:
        slug, secret, usernames = await self.make_shop(n, max_concurrent)
        self.shop_slug, self.buyer_secret = slug, secret
        urls = []
        for i, u in enumerate(usernames):
            port = self.node_port(i)
            status, body = await http_json(
                "POST",
                f"http://{HOST}:{port}/api/v1/auth/login",
                {"shop": slug, "username": u, "password": BENCH_PASSWORD},
            )
            if status != 200:
                raise RuntimeError(f"login {u} failed: {status} {body!r}")
            urls.append(f"ws://{HOST}:{port}/ws/agent?token={body['token']}")
        return urls

    def node_port(self, i: int) -> int:
        """The node agent i and buyer i connect to (one node here)."""
        return self.port

    def buyer_token(self, i: int) -> str:
        claims = {
            "sub": f"bench-{self.run_id}-b{i}",
            "shop": self.shop_slug,
            "name": f"买家{i}",
            "exp": int(time.time()) + 6 * 3600,
        }
        return jwt.encode(claims, self.buyer_secret, algorithm="HS256")

    def buyer_url(self, i: int, n_agents: int) -> str:
        return f"ws://{HOST}:{self.node_port(i)}/ws/buyer?token={self.buyer_token(i)}"

    async def agent_ready(self, client: Client) -> None:
        await client.send({"type": "agent.status", "status": "online"})


class HomingBot(Homing):
    """Homing (SQLite) with the bench shop's bot in `bot_first` and the demo's knowledge base
    (`app/bot/demo_faqs.json`): every new conversation is held by the bot, which matches and
    answers each buyer message; agents are online but get nothing while the bot holds it."""

    title = "Homing (SQLite, bot_first)"

    def __init__(self, log_dir: Path, **kw: Any) -> None:
        super().__init__(log_dir, **kw)
        self.name = self.title

    async def shop_setup(self, uow: Any, shop_id: str, now: Any) -> None:
        from app.bot import actions as bot_actions
        from app.bot.rules import BOT_FIRST

        await bot_actions.import_faqs(uow, shop_id, bot_actions.demo_entries(), now)
        await bot_actions.put_settings(uow, shop_id, {"mode": BOT_FIRST}, now)

    def tally(self) -> dict[str, dict[str, int]]:
        """What the bench shop's bot did, read from the database file: its replies by outcome,
        the conversations by status and the messages by sender."""
        import sqlite3
        from contextlib import closing

        path = self.database_url.removeprefix("sqlite:///")
        shop = "(SELECT id FROM shops WHERE slug = ?)"
        queries = {
            "bot_replies": f"SELECT outcome, count(*) FROM bot_replies WHERE shop_id = {shop} "
            "GROUP BY outcome",
            "conversations": f"SELECT status, count(*) FROM conversations WHERE shop_id = {shop} "
            "GROUP BY status",
            "messages": f"SELECT sender, count(*) FROM messages WHERE shop_id = {shop} "
            "GROUP BY sender",
        }
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
            return {
                k: {str(a): int(n) for a, n in db.execute(q, (self.shop_slug,))}
                for k, q in queries.items()
            }


class HomingCluster(Homing):
    """Two `homing serve` nodes on a fresh PostgreSQL database and a private Redis.

    No balancer: agents and buyers alternate between the nodes (agent i and buyer i on
    node i % 2), so most round trips cross from one node to the other over Redis. Only
    the first node runs the periodic jobs, as a deployment with `homing worker` would.
    """

    title = "Homing (PostgreSQL + Redis, 2 nodes)"

    def __init__(self, log_dir: Path, **kw: Any) -> None:
        super().__init__(log_dir, **kw)
        self.name = self.title
        self.db_name = f"homing_bench_{self.run_id}"
        self.database_url = pg_url(self.db_name)
        self.redis: Redis | None = None
        self.ports: list[int] = []
        self.nodes: list[Proc] = []

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.nodes]

    @property
    def pid(self) -> int:
        return self.nodes[0].pid

    def env(self) -> dict[str, str]:
        env = super().env()
        assert self.redis is not None
        env["REDIS_URL"] = self.redis.url
        return env

    async def create_database(self) -> None:
        """The cluster's database, empty (the first node applies the migrations)."""
        await pg_admin(f'CREATE DATABASE "{self.db_name}"')

    async def start(self) -> HomingCluster:
        await self.create_database()
        self.redis = await Redis(self.log_dir).start()
        self.procs.append(self.redis.proc)
        for node in range(2):
            port = free_port()
            args = [
                python(),
                "-m",
                "app",
                "serve",
                "--demo",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ]
            if node or not self.jobs:
                args.append("--no-jobs")
            proc = Proc(f"homing-pg-{port}", args, env=self.env(), log_dir=self.log_dir).start()
            self.procs.append(proc)
            self.nodes.append(proc)
            self.ports.append(port)
            # One at a time: the first applies the migrations.
            await wait_http(proc, f"http://{HOST}:{port}/healthz", self.start_timeout)
        self.port = self.ports[0]
        return self

    def stop(self) -> None:
        super().stop()
        # Called from inside the workload's event loop: drop the database from a thread.
        drop = threading.Thread(
            target=lambda: asyncio.run(
                pg_admin(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            )
        )
        drop.start()
        drop.join(30)

    def node_port(self, i: int) -> int:
        return self.ports[i % 2]
