"""Shared plumbing: pinned server processes, readiness, RSS, Redis, statistics, figures.

Everything here talks to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
SERVER_CORE = 0
LOADGEN_CORE = 1


# ---- figures -------------------------------------------------------------------------
@dataclass
class Figure:
    """One measured number, with its target when the issue sets one."""

    workload: str
    system: str
    metric: str
    value: float | int | str | None
    unit: str = ""
    target: str = ""  # human text, e.g. ">= 1.0x python-socketio"
    met: bool | None = None  # None: no target for this figure
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(p / 100.0 * (len(s) - 1))))
    return s[k]


# ---- machine -------------------------------------------------------------------------
def raise_nofile() -> int:
    """Raise this process's open-file limit to the hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pin_self(core: int = LOADGEN_CORE) -> bool:
    """Pin the load generator (this process) to one core, if the machine has two or more."""
    if (os.cpu_count() or 1) < 2 or not hasattr(os, "sched_setaffinity"):
        return False
    try:
        os.sched_setaffinity(0, {core})
        return True
    except OSError:
        return False


def pin_prefix(core: int | None = SERVER_CORE) -> list[str]:
    """`taskset` to one core; nothing for `core=None` (a process free to run on any core)."""
    if core is not None and (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", str(core)]
    return []


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (/proc/PID/stat), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_delay_s(pid: int) -> float:
    """Seconds the process's threads have waited on a run queue (/proc/PID/task/*/schedstat).

    Time a server wanted a CPU and did not get one: other work on the machine, not the
    server's own cost. Workloads report it per step so noisy steps can be told apart.
    """
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


# ---- processes -----------------------------------------------------------------------
_RUNNING: set[Proc] = set()


def stop_all() -> None:
    """Stop every child still running (the safety net behind each workload's own finally)."""
    for p in list(_RUNNING):
        p.stop()


class Proc:
    """A child process pinned to the server core, in its own process group."""

    def __init__(
        self,
        name: str,
        args: list[str],
        *,
        env: dict[str, str] | None = None,
        log_dir: Path,
        core: int | None = SERVER_CORE,
    ) -> None:
        self.name = name
        self.args = pin_prefix(core) + args
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid  # taskset execs the command: same pid

    def start(self) -> Proc:
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                self.args,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _RUNNING.add(self)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL the process group at once (a crash), and reap it."""
        _RUNNING.discard(self)
        if not self.alive():
            return
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        self.proc.wait()

    def stop(self) -> None:
        _RUNNING.discard(self)
        if not self.alive():
            return
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()


async def wait_port(proc: Proc, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
        try:
            _r, w = await asyncio.open_connection(HOST, port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not open port {port}:\n{proc.tail()}")


async def wait_http(proc: Proc, url: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
        try:
            status, _ = await http_json("GET", url, timeout=1.0)
            if status == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not answer {url}:\n{proc.tail()}")


async def http_json(
    method: str,
    url: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[int, Any]:
    """A small JSON HTTP call (stdlib, in a thread); 127.0.0.1 only."""
    import json
    import urllib.error
    import urllib.request

    assert url.startswith(f"http://{HOST}:"), url

    def call() -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            url,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    return await asyncio.to_thread(call)


class Redis:
    """A private redis-server on its own port (server core), for the runs that need one."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.proc = Proc(
            f"redis-{self.port}",
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                HOST,
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            log_dir=log_dir,
        )

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    async def start(self) -> Redis:
        if not shutil.which("redis-server"):
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.proc.start()
        await wait_port(self.proc, self.port)
        return self

    def stop(self) -> None:
        self.proc.stop()


def python() -> str:
    return sys.executable


PG_ADMIN = os.environ.get("HOMING_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def pg_url(database: str, admin: str | None = None) -> str:
    """The admin URL with another database name (for a database a benchmark creates)."""
    return (admin or PG_ADMIN).rsplit("/", 1)[0] + "/" + database


async def pg_admin(sql: str, admin: str | None = None) -> None:
    """One statement on the admin database (CREATE / DROP DATABASE)."""
    import asyncpg

    url = admin or PG_ADMIN
    conn = await asyncpg.connect(url.replace("postgresql://", "postgres://"), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class Postgres:
    """A private PostgreSQL server (Debian's binaries, run as the `postgres` user) on a free
    loopback port, in a temporary data directory removed at `stop`.

    For runs that need more connections than the shared server on 5432 can spare (its
    `max_connections` is shared by everyone on the machine): four Homing nodes keep up to
    31 connections each. Settings are the server's defaults (fsync and synchronous_commit
    on) but `max_connections`. Not pinned: like the shared server, it runs on either core.
    """

    def __init__(self, log_dir: Path, *, max_connections: int = 400) -> None:
        import tempfile

        self.port = free_port()
        self.max_connections = max_connections
        self.dir = Path(tempfile.mkdtemp(prefix="homing-bench-pg-"))
        self.log_dir = log_dir
        self.proc: Proc | None = None

    @staticmethod
    def bindir() -> Path:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
        if not found:
            raise RuntimeError("PostgreSQL server binaries not installed (postgresql)")
        return found[-1].parent

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/postgres"

    async def start(self) -> Postgres:
        bindir = self.bindir()
        data = self.dir / "data"
        as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        init = await asyncio.to_thread(
            subprocess.run,
            [*as_pg, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
            capture_output=True,
            text=True,
            check=False,
        )
        if init.returncode:
            raise RuntimeError(f"initdb failed: {init.stderr[-2000:]}")
        self.proc = Proc(
            f"postgres-{self.port}",
            [
                *as_pg,
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-k",
                str(self.dir),
                "-c",
                f"listen_addresses={HOST}",
                "-c",
                f"max_connections={self.max_connections}",
            ],
            log_dir=self.log_dir,
            core=None,
        ).start()
        await wait_port(self.proc, self.port)
        # The port opens before the server takes connections ("starting up").
        import asyncpg

        deadline = time.monotonic() + 30
        while True:
            try:
                conn = await asyncpg.connect(
                    self.admin_url.replace("postgresql://", "postgres://"), timeout=2
                )
            except (OSError, asyncpg.PostgresError):
                if time.monotonic() > deadline or not self.proc.alive():
                    raise RuntimeError(f"private PostgreSQL not ready:\n{self.proc.tail()}")
                await asyncio.sleep(0.1)
            else:
                await conn.close()
                return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
