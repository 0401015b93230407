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
import time
from typing import Any

from bench.clients import Client, close_all, connect_all
from bench.common import Figure, rss_kb
from bench.systems import Homing, System
from bench.systems import make as make_system

NAME = "connections"
TITLE = "idle buyer sockets"
TARGET_KB = 20.0  # issue 20 (was 30)
TARGET_X = 3.0  # issue 20: connecting 10,000 buyers <= 3x the websockets relay's time


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


def make(key: str, log_dir: Any, fps: int) -> System:
    return make_system(key, log_dir, fps)


def _rss(system: System) -> int:
    return sum(rss_kb(pid) for pid in system.pids)


async def run(ctx: Any) -> list[Figure]:
    a = ctx.args
    want = a.conn_sockets or (1000 if ctx.quick else 10000)
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    n = min(want, soft - 300)
    if n < want:
        ctx.say(f"  open-file limit {soft}: measuring {n} sockets, not {want}")
    figures: list[Figure] = []
    times: dict[tuple[str, bool], float] = {}  # (key, deflate) -> seconds, all connected
    names: dict[tuple[str, bool], str] = {}
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
            rss0 = _rss(system)
            clients = [Client(system.proto, system.buyer_url(i, 1), None) for i in range(n)]
            ok, bad, secs = await connect_all(
                clients, concurrency=a.conn_concurrency, deflate=deflate, timeout=60, deadline_s=600
            )
            await asyncio.sleep(3.0)
            alive = sum(1 for c in clients if c.alive)
            rss1 = _rss(system)
            per = (rss1 - rss0) / max(1, alive)
            ctx.say(
                f"    connected {ok} ({bad} failed) in {secs:.1f}s; {alive} alive after 3s; "
                f"RSS {rss0 / 1024:.0f} -> {rss1 / 1024:.0f} MiB = {per:.1f} KB/socket"
            )
            is_homing = isinstance(system, Homing)
            if alive == n:
                times[(key, deflate)] = secs
                names[(key, deflate)] = label
            extra = {
                "sockets": n,
                "connected": ok,
                "failed": bad,
                "alive": alive,
                "rss0_kb": rss0,
                "rss1_kb": rss1,
                "deflate_offered": deflate,
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
                    note=f"{ok / secs:.0f} connections/s" if secs else "",
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
    for (key, deflate), secs in times.items():
        base = times.get(("ws", deflate))
        if not key.startswith("homing") or not base:
            continue
        ratio = secs / base
        figures.append(
            Figure(
                NAME,
                names[(key, deflate)],
                f"time to connect {n} vs websockets relay",
                round(ratio, 2),
                "x",
                target=f"<= {TARGET_X:g}x",
                met=ratio <= TARGET_X,
                note=f"websockets relay{'' if deflate else ' (no deflate)'}: {base:.2f}s",
            )
        )
    return figures
