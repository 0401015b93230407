"""The systems under test: Homing (a real `homing serve` process) and the peers.

A system starts its server process(es) pinned to the server core, gives the load
generator URLs for agents and buyers, and stops everything it started. `HomingCluster`
is N Homing nodes (two by default) on one PostgreSQL database and a private Redis.
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

    # ---- dropping clients (the reconnect workload) ------------------------------------
    # A one-node system drops its clients by restarting its server process on the same
    # port; a two-node one (`n_nodes == 2`) by killing node 1, whose clients then reconnect
    # to node 0. `place` puts agents and buyers on chosen nodes before anyone connects.
    n_nodes = 1

    def place(self, *, agents: int | None = None, buyers: int | None = None) -> None:
        """Two-node systems: put every agent / buyer on that node (default: alternate)."""

    async def restart(self) -> float:
        """Stop the server process and start it again on the same port; seconds it took."""
        t0 = time.perf_counter()
        old = self.server
        old.stop()
        self.procs.remove(old)
        await self.start()
        return time.perf_counter() - t0

    def kill_node(self, node: int) -> None:
        raise NotImplementedError


class WsRelay(System):
    name = "websockets relay"

    async def start(self) -> WsRelay:
        self.port = self.port or free_port()
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
        self.port = self.port or free_port()
        args = [python(), "-m", "bench.peers.sio_relay", "--port", str(self.port)]
        if self.redis:
            if self._redis is None:
                self._redis = await Redis(self.log_dir).start()
                self.procs.insert(0, self._redis.proc)
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


NODE_SIO = Path(__file__).resolve().parent / "peers" / "node_sio"


def node_sio_install(log_dir: Path | None = None) -> Path:
    """`npm ci` the Node peer's pinned packages into its git-ignored node_modules, once.

    Runs again only when package-lock.json changed (its hash is kept beside the modules).
    Called when a Node system starts (never at import); `python -m bench.systems` does it
    ahead of a run.
    """
    import hashlib
    import shutil
    import subprocess

    lock = NODE_SIO / "package-lock.json"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    stamp = NODE_SIO / "node_modules" / ".bench-lock-sha256"
    if stamp.exists() and stamp.read_text().strip() == digest:
        return NODE_SIO
    npm = shutil.which("npm")
    if not npm or not shutil.which("node"):
        raise RuntimeError("Node.js and npm are needed for the node-sio peer (Node >= 18)")
    log = (log_dir / "npm-ci.log") if log_dir else None
    with open(log or os.devnull, "ab") as out:
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--omit=dev"],
            cwd=NODE_SIO,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=600,
            check=False,
        )
    if done.returncode:
        raise RuntimeError(f"npm ci failed in {NODE_SIO} (exit {done.returncode}; log {log})")
    stamp.write_text(digest)
    return NODE_SIO


class NodeSocketIO(SocketIORelay):
    """socket.io 4 on Node.js (`bench/peers/node_sio/server.js`): the peer to beat.

    Alone (one process), or with `@socket.io/redis-adapter` as two processes over a Redis of
    their own on the server core, as Homing's cluster and python-socketio's have (it was
    the machine's shared Redis, free to run on the load generator's core: Node's Redis work
    was not counted against it), agents and buyers alternating between them as for
    `HomingCluster`.
    """

    REDIS_NAME = "Node socket.io + Redis (2 procs)"

    def __init__(self, log_dir: Path, *, redis: bool = False, **kw: Any) -> None:
        super().__init__(log_dir, **kw)
        self.redis = redis
        self.n_nodes = 2 if redis else 1
        self.name = self.REDIS_NAME if redis else "Node socket.io"
        self.channel = f"bench-node-sio-{secrets.token_hex(4)}"
        self.ports: list[int] = []
        self.node_procs: list[Proc] = []
        self.placed: dict[str, int | None] = {"agents": None, "buyers": None}
        self.dead: set[int] = set()
        self._redis: Redis | None = None

    @property
    def pids(self) -> list[int]:
        return [p.pid for k, p in enumerate(self.node_procs) if k not in self.dead]

    @property
    def pid(self) -> int:
        return self.pids[0]

    async def start(self) -> NodeSocketIO:
        node_sio_install(self.log_dir)
        if not self.ports:
            self.ports = [free_port() for _ in range(self.n_nodes)]
        self.node_procs = []
        if self.redis and self._redis is None:
            self._redis = await Redis(self.log_dir).start()
            self.procs.insert(0, self._redis.proc)
        for port in self.ports:
            args = ["node", str(NODE_SIO / "server.js"), "--port", str(port)]
            if self._redis is not None:
                args += ["--redis", self._redis.url, "--channel", self.channel]
            proc = Proc(f"node-sio-{port}", args, log_dir=self.log_dir).start()
            self.procs.append(proc)
            self.node_procs.append(proc)
            await wait_port(proc, port)
        self.port = self.ports[0]
        return self

    async def restart(self) -> float:
        t0 = time.perf_counter()
        for p in self.node_procs:
            p.stop()
            self.procs.remove(p)
        await self.start()
        return time.perf_counter() - t0

    def place(self, *, agents: int | None = None, buyers: int | None = None) -> None:
        self.placed = {"agents": agents, "buyers": buyers}

    def kill_node(self, node: int) -> None:
        self.dead.add(node)
        self.node_procs[node].kill()

    def _port(self, i: int, fixed: int | None) -> int:
        k = (i % self.n_nodes) if fixed is None else fixed
        if k in self.dead:
            k = 1 - k
        return self.ports[k]

    async def agent_urls(self, n: int, *, max_concurrent: int = 50) -> list[str]:
        return [
            self._url(f"role=agent&id=a{i}", self._port(i, self.placed["agents"])) for i in range(n)
        ]

    def buyer_url(self, i: int, n_agents: int) -> str:
        return self._url(
            f"role=buyer&id=b{i}&agent=a{i % max(1, n_agents)}",
            self._port(i, self.placed["buyers"]),
        )

    def _url(self, query: str, port: int | None = None) -> str:
        return f"ws://{HOST}:{port or self.port}/socket.io/?EIO=4&transport=websocket&{query}"


class Homing(System):
    """`python -m app serve --demo` on a fresh SQLite file in a temporary directory."""

    routes = True
    # Seconds a node may take to answer /healthz (migrations, the demo shop) before the
    # start counts as failed.
    start_timeout = 180.0

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
        self.port = self.port or free_port()
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
            port = self.agent_port(i)
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
        """The node buyer i connects to (one node here)."""
        return self.port

    def agent_port(self, i: int) -> int:
        """The node agent i connects to (one node here)."""
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
    """`nodes` `homing serve` processes (2 by default) on a fresh PostgreSQL database and a
    private Redis.

    No balancer: agents and buyers are spread over the nodes (agent i and buyer i on node
    i % nodes), so most round trips cross from one node to another over Redis. Only the
    first node runs the periodic jobs, as a deployment with `homing worker` would. `bus`,
    when given, is the nodes' `HOMING_BUS` (`channel`: every node hears every envelope;
    `sharded`: a node hears the topics of its own sockets); None leaves the product default.
    `pg_admin_url` names another PostgreSQL server than the shared one (bench.common.Postgres).
    """

    title = "Homing (PostgreSQL + Redis, 2 nodes)"
    n_nodes = 2

    def __init__(
        self,
        log_dir: Path,
        *,
        nodes: int = 2,
        bus: str | None = None,
        pg_admin_url: str | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(log_dir, **kw)
        if nodes < 1:
            raise ValueError("a cluster has at least one node")
        self.n_nodes = nodes
        self.bus = bus
        self.name = self.title_for(nodes, bus)
        self.pg_admin_url = pg_admin_url  # None: the shared server (HOMING_TEST_PG)
        self.db_name = f"homing_bench_{self.run_id}"
        self.database_url = pg_url(self.db_name, pg_admin_url)
        self.redis: Redis | None = None
        self.ports: list[int] = []
        self.nodes: list[Proc] = []
        self.placed: dict[str, int | None] = {"agents": None, "buyers": None}
        self.dead: set[int] = set()

    @classmethod
    def title_for(cls, nodes: int, bus: str | None = None) -> str:
        name = f"Homing (PostgreSQL + Redis, {nodes} node{'s' if nodes != 1 else ''}"
        return name + (f", {bus} bus)" if bus else ")")

    @property
    def pids(self) -> list[int]:
        return [p.pid for k, p in enumerate(self.nodes) if k not in self.dead]

    def place(self, *, agents: int | None = None, buyers: int | None = None) -> None:
        self.placed = {"agents": agents, "buyers": buyers}

    def kill_node(self, node: int) -> None:
        """SIGKILL one node (a crash, not a shutdown); its clients go to the other one."""
        self.dead.add(node)
        self.nodes[node].kill()

    def _port(self, i: int, fixed: int | None) -> int:
        n = len(self.ports)
        k = i % n if fixed is None else fixed
        while k in self.dead and len(self.dead) < n:
            k = (k + 1) % n  # the next live node takes a dead one's clients
        return self.ports[k]

    def agent_port(self, i: int) -> int:
        return self._port(i, self.placed["agents"])

    @property
    def pid(self) -> int:
        return self.nodes[0].pid

    def env(self) -> dict[str, str]:
        env = super().env()
        assert self.redis is not None
        env["REDIS_URL"] = self.redis.url
        env.pop("HOMING_BUS", None)
        if self.bus:
            env["HOMING_BUS"] = self.bus
        return env

    async def create_database(self) -> None:
        """The cluster's database, empty (the first node applies the migrations)."""
        await pg_admin(f'CREATE DATABASE "{self.db_name}"', self.pg_admin_url)

    async def start(self) -> HomingCluster:
        await self.create_database()
        self.redis = await Redis(self.log_dir).start()
        self.procs.append(self.redis.proc)
        for node in range(self.n_nodes):
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
                pg_admin(
                    f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)', self.pg_admin_url
                )
            )
        )
        drop.start()
        drop.join(30)

    def node_port(self, i: int) -> int:
        return self._port(i, self.placed["buyers"])


def make(key: str, log_dir: Path, fps: int, *, nodes: int = 2) -> System:
    """A system by its short name, as the workloads' `--*-systems` options take them."""
    if key == "homing":
        return Homing(log_dir, frames_per_second=fps)
    if key == "homing-bot":
        return HomingBot(log_dir, frames_per_second=fps)
    if key == "homing-pg":
        return HomingCluster(log_dir, frames_per_second=fps, nodes=nodes)
    if key == "ws":
        return WsRelay(log_dir, frames_per_second=fps)
    if key == "sio":
        return SocketIORelay(log_dir, redis=False, frames_per_second=fps)
    if key == "sio-redis":
        return SocketIORelay(log_dir, redis=True, frames_per_second=fps)
    if key == "node-sio":
        return NodeSocketIO(log_dir, redis=False, frames_per_second=fps)
    if key == "node-sio-redis":
        return NodeSocketIO(log_dir, redis=True, frames_per_second=fps)
    raise SystemExit(f"unknown system {key!r}; choose from {', '.join(SYSTEM_KEYS)}")


SYSTEM_KEYS = (
    "homing",
    "homing-bot",
    "homing-pg",
    "ws",
    "sio",
    "sio-redis",
    "node-sio",
    "node-sio-redis",
)


if __name__ == "__main__":
    print(f"node-sio peer ready in {node_sio_install()}")
