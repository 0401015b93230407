"""Surge (大促 20:00): B connected buyers open conversations within a few seconds against A agents.

Buyers connect first (idle, not timed); then each sends its first message, spread
evenly over the window. Measured from the first send: when every buyer has been told
either `conversation.assigned` or `conversation.queued` with a position, when every
conversation that fits the agents' capacity is assigned, and the assignment rate.
Per buyer: the ack of the first message after its send, and, for each conversation
an agent took, when that agent's socket got the opening message (`message.new` seq 1,
live or from the history loaded after `conversation.assigned`) after the buyer sent it.
An assigned conversation whose agent never got its opening message is undelivered.
No conversation may be assigned twice: checked on the agents' frames, the buyers'
frames, and against the database (no agent past its limit).

`--surge-systems homing,homing-pg`: on SQLite (one node) and on PostgreSQL + Redis with
two nodes (`HomingCluster`: agent i and buyer i on node i % 2). With `--profile`, py-spy
records every node of the system for the surge (bench/results/profile-*-surge-*.txt).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from typing import Any

from bench.clients import Client, close_all, connect_all
from bench.common import Figure, percentile
from bench.systems import Homing, HomingCluster

NAME = "surge"
TITLE = "surge of openers"
TARGET_S = 5.0  # issue 20: every conversation assigned or queued with a position
ACK_P99_MS = 300.0
DELIVERY_P99_MS = 500.0
SYSTEM_KEYS = ("homing", "homing-pg")


def make_system(key: str, log_dir: Any, fps: int) -> Homing:
    if key == "homing":
        return Homing(log_dir, frames_per_second=fps)
    if key == "homing-pg":
        return HomingCluster(log_dir, frames_per_second=fps)
    raise SystemExit(f"unknown surge system {key!r}; choose from {', '.join(SYSTEM_KEYS)}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("surge")
    g.add_argument("--surge-buyers", type=int, help="openers (default 2000; --quick 200)")
    g.add_argument("--surge-agents", type=int, help="agents (default 50; --quick 10)")
    g.add_argument(
        "--surge-window-s", type=float, default=5.0, help="seconds over which buyers open"
    )
    g.add_argument(
        "--surge-capacity",
        type=int,
        default=10,
        help="each agent's max_concurrent (10: half of 2000 openers wait in the queue)",
    )
    g.add_argument("--surge-timeout-s", type=float, default=180.0, help="give up after this long")
    g.add_argument(
        "--surge-systems",
        default=",".join(SYSTEM_KEYS),
        help=f"comma-separated, from {', '.join(SYSTEM_KEYS)} (homing-pg: PostgreSQL + Redis, 2 nodes)",
    )


class Surge:
    def __init__(self, n_buyers: int) -> None:
        self.t0 = 0.0
        self.sent: dict[int, float] = {}
        self.ack: dict[int, float] = {}
        self.answered: dict[int, float] = {}  # first assigned, or queued with a position
        self.assigned_at: dict[int, float] = {}
        self.buyer_agents: dict[int, set[str]] = {i: set() for i in range(n_buyers)}
        self.agent_assigned: Counter[tuple[str, str]] = (
            Counter()
        )  # (conv id, agent id) frames at agents
        self.conv_agents: dict[str, set[str]] = {}
        self.errors: Counter[str] = Counter()
        self.agent_frames: Counter[str] = Counter()
        self.requeued: set[str] = set()
        self.buyer_conv: dict[int, str] = {}
        self.delivered: dict[int, float] = {}  # the opening message at an agent's socket

    def on_buyer(self, c: Client, f: dict[str, Any]) -> None:
        i = c.tag
        t = f.get("type")
        now = time.perf_counter()
        if t == "message.ack":
            self.ack.setdefault(i, now)
        elif t == "conversation.queued":
            if isinstance(f.get("position"), int) and f["position"] >= 1:
                self.answered.setdefault(i, now)
        elif t == "conversation.assigned":
            self.answered.setdefault(i, now)
            self.assigned_at.setdefault(i, now)
            agent = (f.get("conversation") or {}).get("agent_id")
            self.buyer_conv[i] = (f.get("conversation") or {}).get("id")
            if agent:
                self.buyer_agents[i].add(agent)
        elif t == "error":
            self.errors[str(f.get("code"))] += 1

    def on_agent(self, c: Client, f: dict[str, Any]) -> None:
        t = f.get("type")
        self.agent_frames[str(t)] += 1
        if t == "conversation.assigned":
            conv = f.get("conversation") or {}
            cid, agent = conv.get("id"), conv.get("agent_id")
            self.agent_assigned[(cid, agent)] += 1
            self.conv_agents.setdefault(cid, set()).add(agent)
        elif t == "conversation.requeued":
            # Taken back from an agent (presence lost): a later assignment elsewhere is no double.
            self.requeued.add(f.get("conversation_id"))
        elif t == "message.new":
            msg = f.get("message") or {}
            cmid = str(msg.get("client_msg_id") or "")
            if msg.get("sender") == "buyer" and cmid.startswith("s") and cmid[1:].isdigit():
                self.delivered.setdefault(int(cmid[1:]), time.perf_counter())
        elif t == "agent.status":
            c.state["online"] = True
        elif t == "error":
            self.errors[str(f.get("code"))] += 1


async def db_check(system: Homing, capacity: int) -> dict[str, Any]:
    """From the record: assigned conversations per agent, against the limit and active_count."""
    from sqlalchemy import func, select

    from app.chat.models import Conversation
    from app.config import Settings
    from app.db import Database
    from app.shops.models import Agent, Shop

    db = Database(Settings(DATABASE_URL=system.database_url).async_database_url)  # type: ignore[call-arg]
    try:
        async with db.read() as s:
            shop_id = (
                await s.execute(select(Shop.id).where(Shop.slug == system.shop_slug))
            ).scalar_one()
            rows = (
                await s.execute(
                    select(Conversation.agent_id, func.count())
                    .where(Conversation.shop_id == shop_id, Conversation.status == "assigned")
                    .group_by(Conversation.agent_id)
                )
            ).all()
            counts = {a: n for a, n in rows}
            agents = (
                await s.execute(
                    select(Agent.id, Agent.active_count, Agent.max_concurrent).where(
                        Agent.shop_id == shop_id, Agent.role == "agent"
                    )
                )
            ).all()
            statuses = dict(
                (
                    await s.execute(
                        select(Conversation.status, func.count())
                        .where(Conversation.shop_id == shop_id)
                        .group_by(Conversation.status)
                    )
                ).all()
            )
    finally:
        await db.dispose()
    over = [a for a, active, cap in agents if counts.get(a, 0) > cap]
    mismatch = [a for a, active, cap in agents if counts.get(a, 0) != active]
    return {
        "assigned": sum(counts.values()),
        "by_status": statuses,
        "agents_over_limit": len(over),
        "active_count_mismatch": len(mismatch),
    }


async def run(ctx: Any) -> list[Figure]:
    figures: list[Figure] = []
    for key in [k.strip() for k in ctx.args.surge_systems.split(",") if k.strip()]:
        try:
            figures += await run_one(ctx, key)
        except Exception as exc:  # noqa: BLE001 - one system failing keeps the other's figures
            ctx.say(f"  [{key}] failed: {type(exc).__name__}: {exc}")
            figures.append(Figure(NAME, key, "run", None, "", note=f"error: {exc}"))
    return figures


def start_profile(ctx: Any, system: Homing, key: str, seconds: float) -> list[Any]:
    """py-spy (raw) on every node of the system for `seconds`; [] if py-spy is missing."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        ctx.say("    py-spy not installed (pip install -c constraints.txt -e '.[bench]')")
        return []
    pids = system.pids
    procs = []
    for n, pid in enumerate(pids):
        path = ctx.results_dir / f"profile-{ctx.stamp}-surge-{key}-node{n}.txt.raw"
        cmd = [spy, "record", "--pid", str(pid), "--duration", str(int(seconds) + 1)]
        cmd += ["--rate", "250", "--nonblocking", "--format", "raw", "-o", str(path)]
        procs.append(
            (subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), path)
        )
    return procs


async def finish_profile(ctx: Any, procs: list[Any]) -> list[str]:
    from bench.profile_summary import summarize

    out = []
    for proc, path in procs:
        try:
            await asyncio.to_thread(proc.wait, 60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if path.exists():
            text = summarize(path.read_text(), top=20)
            txt = path.with_suffix("")  # .txt.raw -> .txt
            txt.write_text(text)
            out.append(str(txt))
            ctx.say(f"    profile {txt.name}:")
            ctx.say(text)
    return out


async def run_one(ctx: Any, key: str) -> list[Figure]:
    a = ctx.args
    n_buyers = a.surge_buyers or (200 if ctx.quick else 2000)
    n_agents = a.surge_agents or (10 if ctx.quick else 50)
    cap = a.surge_capacity
    window = a.surge_window_s
    system = make_system(key, ctx.log_dir, a.frames_per_second)
    sys_name = system.name
    ctx.say(
        f"  [{sys_name}] {n_buyers} buyers open within {window:g}s; {n_agents} agents x {cap} slots"
    )
    sg = Surge(n_buyers)
    agents: list[Client] = []
    buyers: list[Client] = []
    figures: list[Figure] = []
    try:
        await system.start()
        urls = await system.agent_urls(n_agents, max_concurrent=cap)
        agents = [Client(system.proto, u, sg.on_agent) for u in urls]
        _ok, bad, _ = await connect_all(agents, concurrency=25)
        if bad:
            raise RuntimeError(f"{bad} agents could not connect")
        for c in agents:
            await system.agent_ready(c)
        deadline = time.monotonic() + 10
        while not all(c.state.get("online") for c in agents) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        buyers = [
            Client(system.proto, system.buyer_url(i, n_agents), sg.on_buyer, tag=i)
            for i in range(n_buyers)
        ]
        ok, bad, secs = await connect_all(buyers, concurrency=100)
        ctx.say(f"    {ok} buyers connected (idle) in {secs:.1f}s")
        if bad:
            raise RuntimeError(f"{bad} buyers could not connect")
        await asyncio.sleep(1.0)

        expect_assigned = min(n_buyers, n_agents * cap)
        spies = (
            start_profile(ctx, system, key, window + 5.0) if getattr(a, "profile", False) else []
        )
        if spies:
            await asyncio.sleep(0.5)
        sg.t0 = t0 = time.perf_counter()
        for i, b in enumerate(buyers):
            due = t0 + window * i / n_buyers
            delay = due - time.perf_counter()
            if delay > 0.001:
                await asyncio.sleep(delay)
            sg.sent[i] = time.perf_counter()
            await b.send(
                {"type": "message.send", "client_msg_id": f"s{i}", "body": "在吗？大促的券还能用吗"}
            )
        send_done = time.perf_counter() - t0
        end = t0 + a.surge_timeout_s
        while time.perf_counter() < end and (
            len(sg.answered) < n_buyers
            or len(sg.assigned_at) < expect_assigned
            or any(i not in sg.delivered for i in sg.assigned_at)
        ):
            await asyncio.sleep(0.02)
        await asyncio.sleep(1.0)  # late duplicates, if any, would show up here
        profiles = await finish_profile(ctx, spies) if spies else []

        all_answered = max(sg.answered.values()) - t0 if len(sg.answered) == n_buyers else None
        assigned = len(sg.assigned_at)
        all_assigned = (
            max(sg.assigned_at.values()) - t0 if assigned >= expect_assigned and assigned else None
        )
        first_assigned = min(sg.assigned_at.values()) - t0 if assigned else None
        rate = assigned / (max(sg.assigned_at.values()) - t0) if assigned else 0.0
        dup_agent_frames = sum(1 for n in sg.agent_assigned.values() if n > 1)
        multi_agent_convs = sum(
            1 for cid, s in sg.conv_agents.items() if len(s) > 1 and cid not in sg.requeued
        )
        multi_agent_buyers = sum(
            1
            for i, s in sg.buyer_agents.items()
            if len(s) > 1 and sg.buyer_conv.get(i) not in sg.requeued
        )
        check = await db_check(system, cap)
        doubles = (
            dup_agent_frames + multi_agent_convs + multi_agent_buyers + check["agents_over_limit"]
        )
        acks = [sg.ack[i] - sg.sent[i] for i in sg.ack]
        # Where an agent had room: every conversation an agent took (the first `expect_assigned`
        # openers when dispatch is oldest-first). Its opening message at the agent, after the send.
        deliveries = [sg.delivered[i] - sg.sent[i] for i in sg.assigned_at if i in sg.delivered]
        undelivered = sum(1 for i in sg.assigned_at if i not in sg.delivered) + (
            n_buyers - len(sg.ack)
        )
        ack_p99 = percentile(acks, 99) * 1000 if acks else None
        delivery_p99 = percentile(deliveries, 99) * 1000 if deliveries else None
        ctx.say(
            f"    sent in {send_done:.2f}s; answered {len(sg.answered)}/{n_buyers}; assigned {assigned}/"
            f"{expect_assigned}; record: {check}; errors {dict(sg.errors)}; agents got {dict(sg.agent_frames)}"
        )
        extra = {
            "buyers": n_buyers,
            "agents": n_agents,
            "capacity": cap,
            "window_s": window,
            "send_s": round(send_done, 3),
            "db": check,
            "errors": dict(sg.errors),
            "agent_frames": dict(sg.agent_frames),
            "first_assigned_s": first_assigned,
            "ack_ms": {q: percentile(acks, q) * 1000 for q in (50, 90, 99)} if acks else None,
            "delivery_ms": {q: percentile(deliveries, q) * 1000 for q in (50, 90, 99)}
            if deliveries
            else None,
            "undelivered": undelivered,
            "profile": profiles,
        }
        met_time = all_answered is not None and all_answered <= TARGET_S and doubles == 0
        figures += [
            Figure(
                NAME,
                sys_name,
                f"all {n_buyers} assigned or queued",
                round(all_answered, 2) if all_answered is not None else None,
                "s",
                target=f"<= {TARGET_S:g} s, no double",
                met=met_time,
                note=""
                if all_answered is not None
                else f"only {len(sg.answered)}/{n_buyers} answered in {a.surge_timeout_s:g}s",
                extra=extra,
            ),
            Figure(
                NAME,
                sys_name,
                f"all {expect_assigned} that fit assigned",
                round(all_assigned, 2) if all_assigned is not None else None,
                "s",
                note="" if all_assigned is not None else f"only {assigned}/{expect_assigned}",
            ),
            Figure(NAME, sys_name, "assignment rate", round(rate, 1), "conv/s"),
            Figure(
                NAME,
                sys_name,
                "double assignments",
                doubles,
                "",
                target="0",
                met=doubles == 0,
                note=f"agents over limit {check['agents_over_limit']}, "
                f"active_count mismatches {check['active_count_mismatch']}, "
                f"conversations requeued from live agents {len(sg.requeued)}",
            ),
            Figure(
                NAME,
                sys_name,
                "first-message ack p50/p99",
                f"{percentile(acks, 50) * 1000:.0f}/{ack_p99:.0f}" if acks else None,
                "ms",
                target=f"p99 <= {ACK_P99_MS:g} ms",
                met=ack_p99 is not None and ack_p99 <= ACK_P99_MS,
                note=f"{len(acks)}/{n_buyers} acked",
            ),
            Figure(
                NAME,
                sys_name,
                "opening message at its agent p50/p99 (after the send)",
                f"{percentile(deliveries, 50) * 1000:.0f}/{delivery_p99:.0f}"
                if deliveries
                else None,
                "ms",
                target=f"p99 <= {DELIVERY_P99_MS:g} ms",
                met=delivery_p99 is not None and delivery_p99 <= DELIVERY_P99_MS,
                note=f"{len(deliveries)} of {assigned} assigned",
            ),
            Figure(
                NAME,
                sys_name,
                "undelivered (not acked, or assigned and never at the agent)",
                undelivered,
                "",
                target="0",
                met=undelivered == 0,
            ),
        ]
    finally:
        await close_all(buyers + agents)
        system.stop()
    return figures
