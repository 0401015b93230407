"""Surge (大促 20:00): B connected buyers open conversations within a few seconds against A agents.

Buyers connect first (idle, not timed); then each sends its first message, spread
evenly over the window. Measured from the first send: when every buyer has been told
either `conversation.assigned` or `conversation.queued` with a position, when every
conversation that fits the agents' capacity is assigned, and the assignment rate.
No conversation may be assigned twice: checked on the agents' frames, the buyers'
frames, and against the database (no agent past its limit).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from typing import Any

from bench.clients import Client, close_all, connect_all
from bench.common import Figure, percentile
from bench.systems import Homing

NAME = "surge"
TITLE = "surge of openers"
TARGET_S = 10.0


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
    system = Homing(ctx.log_dir, frames_per_second=ctx.args.frames_per_second)
    figures, _numbers = await surge_on(ctx, system)
    return figures


async def surge_on(ctx: Any, system: Homing) -> tuple[list[Figure], dict[str, float | None]]:
    """The surge against `system` (started here, stopped at the end): its figures, and the
    numbers another workload compares (`all_answered_s`, `all_assigned_s`, `rate`,
    `ack_p99_ms`; None where not reached)."""
    a = ctx.args
    n_buyers = a.surge_buyers or (200 if ctx.quick else 2000)
    n_agents = a.surge_agents or (10 if ctx.quick else 50)
    cap = a.surge_capacity
    window = a.surge_window_s
    sys_name = system.name
    numbers: dict[str, float | None] = {
        "all_answered_s": None,
        "all_assigned_s": None,
        "rate": None,
        "ack_p99_ms": None,
    }
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
            len(sg.answered) < n_buyers or len(sg.assigned_at) < expect_assigned
        ):
            await asyncio.sleep(0.02)
        await asyncio.sleep(1.0)  # late duplicates, if any, would show up here

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
        ack_p99 = percentile(acks, 99)
        numbers.update(
            all_answered_s=all_answered,
            all_assigned_s=all_assigned,
            rate=rate,
            ack_p99_ms=ack_p99 * 1000 if ack_p99 is not None else None,
        )
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
                f"{percentile(acks, 50) * 1000:.0f}/{percentile(acks, 99) * 1000:.0f}"
                if acks
                else None,
                "ms",
            ),
        ]
    finally:
        await close_all(buyers + agents)
        system.stop()
    return figures, numbers
