"""Real servers for tests: uvicorn in this process (clock injectable) or `homing serve` processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from app.cli import proxy_header_options
from app.clock import Clock
from app.config import Settings
from app.context import AppContext
from app.main import create_app
from app.realtime.asgi_ws import LightWebSocketsProtocol

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def asgi_server(app: Any, **config: Any) -> AsyncIterator[uvicorn.Server]:
    """A bare ASGI app served by uvicorn in this event loop on a free loopback port
    (`server.config.port`), for tests of the socket protocol below the application."""
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=free_port(), log_level="warning", lifespan="off", **config
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), task.result()
        await asyncio.sleep(0.01)
    try:
        yield server
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


class InProcessServer:
    """uvicorn serving the real app on a real port, inside the test's event loop."""

    def __init__(self, settings: Settings, clock: Clock, *, run_jobs: bool = True) -> None:
        self.settings = settings
        self.clock = clock
        self.app = create_app(settings, clock=clock, run_jobs=run_jobs)
        self.port = free_port()
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            ws=LightWebSocketsProtocol,  # as `homing serve` runs it
            ws_max_size=settings.max_frame_bytes * 4,
            lifespan="on",
            **proxy_header_options(settings),
        )
        self.server = uvicorn.Server(config)
        self._task: asyncio.Task[Any] | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def ctx(self) -> AppContext:
        return self.app.state.ctx  # type: ignore[no-any-return]

    async def start(self) -> InProcessServer:
        self._task = asyncio.create_task(self.server.serve())
        for _ in range(500):
            if self.server.started:
                return self
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        raise RuntimeError("server did not start")

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task:
            await asyncio.wait_for(self._task, 15)


class NodeProcess:
    """A separate `python -m app serve` process: a real second node."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        port: int | None = None,
        jobs: bool = False,
        host: str = "127.0.0.1",
        log_level: str = "warning",
        args: tuple[str, ...] = (),
    ) -> None:
        self.port = port or free_port()
        self.env = {**os.environ, **env}
        self.jobs = jobs
        self.host = host  # what it binds to; tests reach it on 127.0.0.1 either way
        self.log_level = log_level
        self.args = args  # more `homing serve` arguments (a later --host wins)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(os.environ.get("HOMING_TEST_LOGS", "/tmp")) / f"homing-node-{self.port}.log"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> NodeProcess:
        args = [
            sys.executable,
            "-m",
            "app",
            "serve",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--log-level",
            self.log_level,
        ]
        if not self.jobs:
            args.append("--no-jobs")
        args.extend(self.args)
        with open(self.log, "wb") as out:  # noqa: ASYNC230 - before the node runs; nothing to block
            self.proc = subprocess.Popen(  # noqa: ASYNC220 - a child that outlives this call
                args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        # Generous: on a loaded machine importing the app alone can take half a minute.
        deadline = time.monotonic() + 90
        async with httpx.AsyncClient() as c:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"node exited: {self.log.read_text()[-2000:]}")
                try:
                    if (await c.get(self.http + "/healthz", timeout=1)).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"node did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class RedisServer:
    """A private redis-server on its own port, which a test may stop and start again."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class RedisCluster:
    """A private Redis Cluster of `masters` masters with a replica each, on free loopback ports.

    Each node runs in a directory of its own (its nodes.conf); `cluster-node-timeout` is short
    so a killed master's replica takes over in a couple of seconds.
    """

    def __init__(self, workdir: Path, *, masters: int = 3, node_timeout_ms: int = 1000) -> None:
        self.workdir = workdir
        self.count = masters * 2
        self.node_timeout_ms = node_timeout_ms
        self.ports: list[int] = []
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        """The REDIS_URL of this cluster (the seed nodes Homing starts from)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:3])

    def start(self) -> RedisCluster:
        while len(self.ports) < self.count:
            port = free_port()
            if port not in self.ports:
                self.ports.append(port)
        for port in self.ports:
            self._spawn(port)
        for port in self.ports:
            _wait_for_redis(port)
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in self.ports),
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=60,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(self.info(p).get("cluster_state") == "ok" for p in self.ports):
                return self
            time.sleep(0.1)
        raise RuntimeError("the Redis Cluster did not come up")

    def _spawn(self, port: int) -> None:
        node_dir = self.workdir / str(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        self.procs[port] = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--cluster-port",
                str(free_port()),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                str(self.node_timeout_ms),
                # A replica takes over however long ago it last heard its master.
                "--cluster-replica-validity-factor",
                "0",
                "--repl-diskless-sync-delay",
                "0",
                "--logfile",
                str(node_dir / "redis.log"),
                "--dir",
                str(node_dir),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def info(self, port: int) -> dict[str, str]:
        """CLUSTER INFO of one node ({} if it does not answer)."""
        try:
            out = subprocess.run(
                ["redis-cli", "-p", str(port), "cluster", "info"],
                check=False,
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout
        except subprocess.TimeoutExpired:
            return {}
        return dict(line.strip().split(":", 1) for line in out.splitlines() if ":" in line)

    def masters(self) -> list[int]:
        """The ports of the live nodes that are masters now."""
        found = []
        for port, proc in self.procs.items():
            if proc.poll() is not None:
                continue
            out = subprocess.run(
                ["redis-cli", "-p", str(port), "role"],
                check=False,
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout
            if out.startswith("master"):
                found.append(port)
        return found

    def kill(self, port: int) -> None:
        """SIGKILL one node."""
        proc = self.procs[port]
        proc.kill()
        proc.wait()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _wait_for_redis(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"redis-server on {port} did not start")
