"""Connection capacity: N idle buyer sockets; server RSS growth per socket, time to connect.

Two-node systems (`homing-pg`, `node-sio-redis`) take the buyers alternately on both
nodes and count both processes' RSS. Each Homing system's time to connect is compared
with the websockets relay's in the same run (issue 20: <= 3x; with the same deflate offer).

RSS is read from /proc/PID/status (VmRSS) after a few warm-up sockets and again once
all N are connected and the server has settled. By default the load generator offers
permessage-deflate as browsers do (`homing`), and each system is measured once more
with no compression offered (`homing:nodeflate`): deflate costs memory per socket.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.clients import Client, close_all, connect_all
from bench.common import Figure, cpu_seconds, rss_kb
from bench.systems import Homing, System, WsRelay
from bench.systems import make as make_system

NAME = "connections"
TITLE = "idle buyer sockets"
TARGET_KB = 20.0  # issue 20 (was 30)
IDLE_CPU_PCT = 5.0
TARGET_RATIO = 3.0  # issue 20: connecting 10,000 buyers <= 3x the websockets relay's time


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("connection capacity")
    g.add_argument(
        "--conn-sockets", type=int, help="idle buyer sockets (default 10000; --quick 1000)"
    )
    g.add_argument(
        "--conn-systems",
        default="homing,homing:nodeflate,homing-pg,ws,ws:nodeflate,sio,sio:nodeflate,"
        "node-sio,node-sio-redis",
        help="comma-separated from homing, homing-pg, ws, sio, node-sio, node-sio-redis; "
        "':nodeflate' offers no compression",
    )
    g.add_argument("--conn-concurrency", type=int, default=200, help="handshakes in flight")
    g.add_argument(
        "--conn-idle-s",
        type=float,
        default=10.0,
        help="seconds over which the server's CPU is read with every socket idle",
    )


def make(key: str, log_dir: Any, fps: int) -> System:
    return make_system(key, log_dir, fps)


def start_profile(ctx: Any, system: System, label: str) -> tuple[Any, Path] | None:
    """py-spy (raw) on the first server process while the sockets connect (`--profile`)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        ctx.say("    py-spy not installed; no profile")
        return None
    key = "conn-" + "".join(ch if ch.isalnum() else "-" for ch in label.lower())
    path = ctx.results_dir / f"profile-{ctx.stamp}-{key}.txt.raw"
    cmd = [spy, "record", "--pid", str(system.pid), "--rate", "250", "--nonblocking"]
    cmd += ["--format", "raw", "-o", str(path)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), path


async def end_profile(ctx: Any, spy: tuple[Any, Path]) -> None:
    """Stop py-spy (SIGINT writes its file) and print the summary beside the raw file."""
    proc, path = spy
    proc.send_signal(signal.SIGINT)
    try:
        await asyncio.to_thread(proc.wait, 30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if path.exists():
        from bench.profile_summary import summarize

        text = summarize(path.read_text(), top=20)
        path.with_suffix("").write_text(text)
        ctx.say(text)


async def run(ctx: Any) -> list[Figure]:
    a = ctx.args
    want = a.conn_sockets or (1000 if ctx.quick else 10000)
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    n = min(want, soft - 300)
    if n < want:
        ctx.say(f"  open-file limit {soft}: measuring {n} sockets, not {want}")
    figures: list[Figure] = []
    for spec in [s.strip() for s in a.conn_systems.split(",") if s.strip()]:
        key, _, opt = spec.partition(":")
        deflate = opt != "nodeflate"
        system = make(key, ctx.log_dir, a.frames_per_second)
        label = system.name + ("" if deflate else ", no deflate")
        ctx.say(f"  [{label}] {n} idle buyer sockets")
        warm = [Client(system.proto, "", None) for _ in range(10)]
        clients: list[Client] = []
        try:
            await system.start()
            for i, c in enumerate(warm):
                c.url = system.buyer_url(n + i, 1)
            await connect_all(warm, deflate=deflate)
            gc.collect()
            await asyncio.sleep(1.5)
            pids = system.pids
            rss0 = sum(rss_kb(pid) for pid in pids)
            cpu0 = sum(cpu_seconds(pid) for pid in pids)
            clients = [Client(system.proto, system.buyer_url(i, 1), None) for i in range(n)]
            spy = (
                start_profile(ctx, system, label)
                if a.profile and isinstance(system, Homing)
                else None
            )
            try:
                ok, bad, secs = await connect_all(
                    clients,
                    concurrency=a.conn_concurrency,
                    deflate=deflate,
                    timeout=60,
                    deadline_s=600,
                )
            finally:
                if spy is not None:
                    await end_profile(ctx, spy)
            connect_cpu = sum(cpu_seconds(pid) for pid in pids) - cpu0
            await asyncio.sleep(3.0)
            alive = sum(1 for c in clients if c.alive)
            rss1 = sum(rss_kb(pid) for pid in pids)
            per = (rss1 - rss0) / max(1, alive)
            # Idle: every socket open, nothing sent; the servers' CPU share of one core.
            idle0, t_idle = sum(cpu_seconds(pid) for pid in pids), time.perf_counter()
            await asyncio.sleep(a.conn_idle_s)
            idle_cpu = (sum(cpu_seconds(pid) for pid in pids) - idle0) / (
                time.perf_counter() - t_idle
            )
            ctx.say(
                f"    connected {ok} ({bad} failed) in {secs:.1f}s; {alive} alive after 3s; "
                f"RSS {rss0 / 1024:.0f} -> {rss1 / 1024:.0f} MiB = {per:.1f} KB/socket; "
                f"server CPU {connect_cpu:.1f}s to connect, {100 * idle_cpu:.1f}% idle"
            )
            is_homing = isinstance(system, Homing)
            extra = {
                "sockets": n,
                "connected": ok,
                "failed": bad,
                "alive": alive,
                "rss0_kb": rss0,
                "rss1_kb": rss1,
                "deflate_offered": deflate,
                "connect_cpu_s": round(connect_cpu, 2),
                "idle_cpu_share": round(idle_cpu, 4),
            }
            figures += [
                Figure(
                    NAME,
                    label,
                    f"RSS per idle socket ({n} sockets)",
                    round(per, 1),
                    "KB",
                    target=f"<= {TARGET_KB:g} KB" if is_homing else "",
                    met=(per <= TARGET_KB and alive == n) if is_homing else None,
                    note="" if alive == n else f"only {alive}/{n} connected",
                    extra=extra,
                ),
                Figure(
                    NAME,
                    label,
                    f"time to connect {n}",
                    round(secs, 2),
                    "s",
                    note=(f"{ok / secs:.0f} connections/s; " if secs else "")
                    + f"server CPU {connect_cpu:.1f} s",
                ),
                Figure(
                    NAME,
                    label,
                    f"idle CPU, {n} sockets",
                    round(100 * idle_cpu, 1),
                    "% of a core",
                    target=f"<= {IDLE_CPU_PCT:g}%" if is_homing else "",
                    met=(100 * idle_cpu <= IDLE_CPU_PCT) if is_homing else None,
                ),
            ]
        except Exception as exc:  # noqa: BLE001
            ctx.say(f"    {label} failed: {type(exc).__name__}: {exc}")
            figures.append(
                Figure(
                    NAME,
                    label,
                    f"RSS per idle socket ({n} sockets)",
                    None,
                    "KB",
                    target=f"<= {TARGET_KB:g} KB" if key.startswith("homing") else "",
                    met=False if key.startswith("homing") else None,
                    note=f"error: {exc}",
                )
            )
        finally:
            t0 = time.perf_counter()
            await close_all(clients + warm)
            system.stop()
            ctx.say(f"    closed in {time.perf_counter() - t0:.1f}s")
    return figures + ratios(figures, n)


def ratios(figures: list[Figure], n: int) -> list[Figure]:
    """Homing's time to connect over the bare relay's in this run (no deflate offered to
    the relay if it was measured so, as Homing negotiates none): issue 20 wants <= 3x."""
    times = {f.system: f.value for f in figures if f.metric == f"time to connect {n}"}
    relay = times.get(WsRelay.name + ", no deflate") or times.get(WsRelay.name)
    out = []
    for system, secs in times.items():
        if not system.startswith("Homing") or not relay or not isinstance(secs, float | int):
            continue
        ratio = secs / float(relay)
        out.append(
            Figure(
                NAME,
                system,
                f"time to connect {n} vs websockets relay",
                round(ratio, 2),
                "x",
                target=f"<= {TARGET_RATIO:g}x",
                met=ratio <= TARGET_RATIO,
            )
        )
    return out
