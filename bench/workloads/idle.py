"""Idle cost: N idle buyer sockets and A idle agents held for a while; what the server spends.

Per system: A agents connect (on Homing they go online), then a few warm-up buyers; the
server's RSS is read, N buyer sockets connect (permessage-deflate offered, as browsers
do), and after a 3 s settle RSS is read again: KB per idle socket = RSS rise / sockets
alive. Then nothing is sent for `--idle-s` seconds and the server's CPU over that window
(/proc/PID/stat, every server process of the system summed) is reported as % of one core:
pings, timers, presence, jobs. Every process of a two-node system counts (RSS and CPU);
Redis's and PostgreSQL's own do not.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from typing import Any

from bench.clients import Client, close_all, connect_all
from bench.common import Figure, cpu_seconds, rss_kb, run_delay_s
from bench.systems import Homing, make

NAME = "idle"
TITLE = "idle cost: idle buyer sockets and agents, server CPU and memory"
DEFAULT_SYSTEMS = "ws,sio,node-sio,node-sio-redis,homing,homing-pg"
TARGET_KB = 20.0
TARGET_CPU = 5.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("idle cost")
    g.add_argument(
        "--idle-sockets", type=int, help="idle buyer sockets (default 10000; --quick 1000)"
    )
    g.add_argument("--idle-agents", type=int, default=50, help="idle agents (online on Homing)")
    g.add_argument("--idle-s", type=float, help="idle window, seconds (default 60; --quick 10)")
    g.add_argument(
        "--idle-systems",
        default=DEFAULT_SYSTEMS,
        help=f"comma-separated from ws, sio, node-sio, node-sio-redis, homing, homing-pg "
        f"(default {DEFAULT_SYSTEMS})",
    )
    g.add_argument("--idle-concurrency", type=int, default=200, help="handshakes in flight")


def _sum(f: Any, pids: list[int]) -> float:
    return float(sum(f(pid) for pid in pids))


async def run(ctx: Any) -> list[Figure]:
    a = ctx.args
    n = a.idle_sockets or (1000 if ctx.quick else 10000)
    window = a.idle_s or (10.0 if ctx.quick else 60.0)
    figures: list[Figure] = []
    for key in [k.strip() for k in a.idle_systems.split(",") if k.strip()]:
        system = make(key, ctx.log_dir, a.frames_per_second)
        name = system.name
        is_homing = isinstance(system, Homing)
        ctx.say(f"  [{name}] {n} idle buyers + {a.idle_agents} idle agents for {window:g}s")
        agents: list[Client] = []
        warm = [Client(system.proto, "", None) for _ in range(10)]
        buyers: list[Client] = []
        try:
            await system.start()
            urls = await system.agent_urls(a.idle_agents, max_concurrent=10)
            agents = [Client(system.proto, u, None) for u in urls]
            _ok, bad, _ = await connect_all(agents, concurrency=25)
            if bad:
                raise RuntimeError(f"{bad} agents could not connect")
            for c in agents:
                await system.agent_ready(c)
            for i, c in enumerate(warm):
                c.url = system.buyer_url(n + i, a.idle_agents)
            await connect_all(warm, deflate=True)
            gc.collect()
            await asyncio.sleep(1.5)
            pids = system.pids
            rss0 = _sum(rss_kb, pids)
            buyers = [
                Client(system.proto, system.buyer_url(i, a.idle_agents), None) for i in range(n)
            ]
            ok, bad, secs = await connect_all(
                buyers, concurrency=a.idle_concurrency, deflate=True, timeout=60, deadline_s=600
            )
            await asyncio.sleep(3.0)
            rss1 = _sum(rss_kb, pids)
            alive0 = sum(c.alive for c in buyers)
            cpu0, wait0, t0 = _sum(cpu_seconds, pids), _sum(run_delay_s, pids), time.monotonic()
            await asyncio.sleep(window)
            cpu1, wait1 = _sum(cpu_seconds, pids), _sum(run_delay_s, pids)
            wall = time.monotonic() - t0
            rss2 = _sum(rss_kb, pids)
            alive = sum(c.alive for c in buyers)
            agents_alive = sum(c.alive for c in agents)
            per = (rss1 - rss0) / max(1, alive0)
            cpu_pct = (cpu1 - cpu0) / wall * 100
            ctx.say(
                f"    connected {ok} ({bad} failed) in {secs:.1f}s; RSS {rss0 / 1024:.0f} -> "
                f"{rss1 / 1024:.0f} MiB = {per:.1f} KB/socket ({rss2 / 1024:.0f} MiB after the "
                f"window); idle CPU {cpu_pct:.2f}% of a core over {wall:.0f}s (run-queue wait "
                f"{wait1 - wait0:.1f}s); alive after the window: {alive}/{n} buyers, "
                f"{agents_alive}/{a.idle_agents} agents"
            )
            whole = alive == n and agents_alive == a.idle_agents
            note = "" if whole else f"only {alive}/{n} buyers, {agents_alive} agents alive"
            extra = {
                "sockets": n,
                "agents": a.idle_agents,
                "connected": ok,
                "failed": bad,
                "connect_s": round(secs, 2),
                "alive": alive,
                "rss0_kb": rss0,
                "rss1_kb": rss1,
                "rss_after_window_kb": rss2,
                "window_s": round(wall, 1),
                "cpu_s": round(cpu1 - cpu0, 3),
                "run_queue_wait_s": round(wait1 - wait0, 2),
                "processes": len(pids),
            }
            figures += [
                Figure(
                    NAME,
                    name,
                    f"RSS per idle socket ({n} sockets)",
                    round(per, 1),
                    "KB",
                    target=f"<= {TARGET_KB:g} KB" if is_homing else "",
                    met=(per <= TARGET_KB and whole) if is_homing else None,
                    note=note,
                    extra=extra,
                ),
                Figure(
                    NAME,
                    name,
                    f"idle CPU ({n} buyers, {a.idle_agents} agents, {wall:.0f}s)",
                    round(cpu_pct, 2),
                    "% of a core",
                    target=f"<= {TARGET_CPU:g}%" if is_homing else "",
                    met=(cpu_pct <= TARGET_CPU and whole) if is_homing else None,
                    note=note,
                ),
            ]
        except Exception as exc:  # noqa: BLE001 - one system failing must not hide the others
            ctx.say(f"    {name} failed: {type(exc).__name__}: {exc}")
            figures.append(
                Figure(
                    NAME,
                    name,
                    f"RSS per idle socket ({n} sockets)",
                    None,
                    "KB",
                    target=f"<= {TARGET_KB:g} KB" if is_homing else "",
                    met=False if is_homing else None,
                    note=f"error: {exc}",
                )
            )
        finally:
            await close_all(buyers + warm + agents)
            system.stop()
    return figures
