"""Real servers for tests: uvicorn in this process (clock injectable) or `homing serve` processes."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
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
        deadline = time.monotonic() + 30
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
