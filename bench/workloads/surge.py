"""Surge (大促 20:00): B connected buyers open conversations within a few seconds against A agents.

Buyers connect first (idle, not timed); then each sends its first message, spread
evenly over the window. Measured from the first send: when every buyer has been told
either `conversation.assigned` or `conversation.queued` with a position, when every
conversation that fits the agents' capacity is assigned, and the assignment rate.
No conversation may be assigned twice: checked on the agents' frames, the buyers'
frames, and against the database (no agent past its limit).

Each opening message is followed to its agent: the first-message ack p99 (after send)
and, where an agent had room, the delivery p99 — from the send until the agent that got
the conversation has that message (`message.new`, matched by `client_msg_id`). A message
never acked, or whose conversation was assigned but whose agent never got it, counts as
undelivered. Systems (`--surge-systems`): Homing on SQLite, the two-node cluster on
PostgreSQL + Redis (`homing-pg`, agents and buyers alternating between the nodes), and
the relay peers, which route nothing (buyer i's message goes to agent i % A): for them
only the ack and delivery figures apply.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from typing import Any

from bench.clients import Client, close_all, connect_all
from bench.common import Figure, percentile
from bench.spy import Spy
from bench.systems import Homing, System, make

NAME = "surge"
TITLE = "surge of openers"
TARGET_S = 5.0  # issue 20: every conversation assigned or queued with a position within 5 s
TARGET_ACK_MS = 300.0
TARGET_DELIVERY_MS = 500.0
DEFAULT_SYSTEMS = "ws,sio,node-sio,node-sio-redis,homing,homing-pg"


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
        default=DEFAULT_SYSTEMS,
        help="comma-separated from homing, homing-pg, ws, sio, node-sio, node-sio-redis "
        f"(default {DEFAULT_SYSTEMS})",
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
        self.delivered: dict[int, float] = {}  # opening message at an agent

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
        if t == "message.new":
            key = str((f.get("message") or {}).get("client_msg_id") or "")
            if key.startswith("s") and key[1:].isdigit():
                self.delivered.setdefault(int(key[1:]), time.perf_counter())
        elif t == "conversation.assigned":
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
    a = ctx.args
    figures: list[Figure] = []
    for key in [k.strip() for k in a.surge_systems.split(",") if k.strip()]:
        system = make(key, ctx.log_dir, a.frames_per_second)
        try:
            figures += await surge_one(ctx, system, key)
        except Exception as exc:  # noqa: BLE001 - one system failing must not hide the others
            ctx.say(f"    {system.name} failed: {type(exc).__name__}: {exc}")
            homing = isinstance(system, Homing)
            figures.append(
                Figure(
                    NAME,
                    system.name,
                    "opening delivery p50/p99",
                    None,
                    "ms",
                    target=f"p99 <= {TARGET_DELIVERY_MS:g} ms" if homing else "",
                    met=False if homing else None,
                    note=f"error: {exc}",
                )
            )
    return figures


async def surge_on(ctx: Any, system: Homing) -> tuple[list[Figure], dict[str, float | None]]:
    """The surge against `system` (started here, stopped at the end): its figures, and the
    numbers another workload compares (`all_answered_s`, `all_assigned_s`, `rate`,
    `ack_p99_ms`, `slowest_answer_s`, `wait_p99_ms`: each opening assigned or queued,
    from its own first message; None where not reached)."""
    numbers: dict[str, float | None] = {
        "all_answered_s": None,
        "all_assigned_s": None,
        "rate": None,
        "ack_p99_ms": None,
    }
    figures = await surge_one(ctx, system, "homing", numbers)
    return figures, numbers


def _ms(values: list[float]) -> str | None:
    p50, p99 = percentile(values, 50), percentile(values, 99)
    if p50 is None or p99 is None:
        return None
    return f"{p50 * 1000:.0f}/{p99 * 1000:.0f}"


async def surge_one(
    ctx: Any, system: System, key: str, numbers: dict[str, float | None] | None = None
) -> list[Figure]:
    """The surge against one system; `numbers`, if given, gets the figures another
    workload compares (see `surge_on`)."""
    a = ctx.args
    n_buyers = a.surge_buyers or (200 if ctx.quick else 2000)
    n_agents = a.surge_agents or (10 if ctx.quick else 50)
    cap = a.surge_capacity
    window = a.surge_window_s
    sys_name = system.name
    homing = isinstance(system, Homing)
    spies: list[Spy] = []
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
        while (
            homing
            and not all(c.state.get("online") for c in agents)
            and time.monotonic() < deadline
        ):
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

        expect_assigned = min(n_buyers, n_agents * cap) if homing else 0
        if a.profile and homing:
            for k, pid in enumerate(system.pids):
                spies.append(Spy(ctx, pid, f"surge-{key}-n{k}"))
                await spies[-1].start()
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
            (homing and (len(sg.answered) < n_buyers or len(sg.assigned_at) < expect_assigned))
            or len(sg.ack) < n_buyers
            or len(sg.delivered) < (expect_assigned if homing else n_buyers)
        ):
            await asyncio.sleep(0.02)
        await asyncio.sleep(1.0)  # late duplicates, if any, would show up here
        for spy in spies:
            await spy.stop()
        acks = [sg.ack[i] - sg.sent[i] for i in sg.ack]
        # Where an agent had room: the conversations assigned (Homing) or every message (relays).
        owed = set(sg.assigned_at) if homing else set(range(n_buyers))
        deliveries = [sg.delivered[i] - sg.sent[i] for i in owed if i in sg.delivered]
        undelivered = len(owed - set(sg.delivered)) + (n_buyers - len(sg.ack))
        ack_p99 = percentile(acks, 99)
        del_p99 = percentile(deliveries, 99)
        extra_common = {
            "buyers": n_buyers,
            "agents": n_agents,
            "window_s": window,
            "waited_s": round(time.perf_counter() - t0, 3),
            "acked": len(sg.ack),
            "delivered": len(sg.delivered),
            "owed": len(owed),
            "errors": dict(sg.errors),
            "agent_frames": dict(sg.agent_frames),
            "profile": [p for spy in spies for p in (spy.done or [])],
        }
        ctx.say(
            f"    acked {len(sg.ack)}/{n_buyers}, ack p50/p99 {_ms(acks)} ms; delivered "
            f"{len([i for i in owed if i in sg.delivered])}/{len(owed)} to their agent, "
            f"p50/p99 {_ms(deliveries)} ms after send; undelivered {undelivered}"
        )
        delivery_figs = [
            Figure(
                NAME,
                sys_name,
                "first-message ack p50/p99",
                _ms(acks),
                "ms",
                target=f"p99 <= {TARGET_ACK_MS:g} ms" if homing else "",
                met=(ack_p99 is not None and ack_p99 * 1000 <= TARGET_ACK_MS) if homing else None,
                extra=extra_common,
            ),
            Figure(
                NAME,
                sys_name,
                "opening delivery to its agent p50/p99",
                _ms(deliveries),
                "ms",
                target=f"p99 <= {TARGET_DELIVERY_MS:g} ms" if homing else "",
                met=(del_p99 is not None and del_p99 * 1000 <= TARGET_DELIVERY_MS)
                if homing
                else None,
                note=f"over the {len(owed)} messages whose "
                + ("conversation was assigned" if homing else "agent was connected"),
            ),
            Figure(
                NAME,
                sys_name,
                "undelivered",
                undelivered,
                "msgs",
                target="0" if homing else "",
                met=(undelivered == 0) if homing else None,
                note=f"not acked {n_buyers - len(sg.ack)}; "
                f"not at the agent {len(owed - set(sg.delivered))} of {len(owed)}",
            ),
        ]
        if not homing:
            return delivery_figs

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
        assert isinstance(system, Homing)
        check = await db_check(system, cap)
        doubles = (
            dup_agent_frames + multi_agent_convs + multi_agent_buyers + check["agents_over_limit"]
        )
        ack_p99 = percentile(acks, 99)
        if numbers is not None:
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
        # Each conversation assigned or queued with a position within TARGET_S of its
        # buyer's first message (the target). The time until all of them are, from the
        # surge's start, is printed beside it: it cannot be under the window itself (the
        # last buyer opens at `window` s).
        waits = [sg.answered[i] - sg.sent[i] for i in sg.answered if i in sg.sent]
        slowest = max(waits) if len(sg.answered) == n_buyers and waits else None
        met_time = slowest is not None and slowest <= TARGET_S and doubles == 0
        if numbers is not None:
            p99 = percentile(waits, 99) if len(sg.answered) == n_buyers else None
            numbers.update(
                slowest_answer_s=slowest, wait_p99_ms=p99 * 1000 if p99 is not None else None
            )
        figures += [
            Figure(
                NAME,
                sys_name,
                "each opening assigned or queued with a position: slowest, from its first message",
                round(slowest, 3) if slowest is not None else None,
                "s",
                target=f"<= {TARGET_S:g} s, no double",
                met=met_time,
                note=(
                    f"p50 {percentile(waits, 50) * 1000:.0f} ms, p99 {percentile(waits, 99) * 1000:.0f} ms"
                    if slowest is not None
                    else f"only {len(sg.answered)}/{n_buyers} answered in {a.surge_timeout_s:g}s"
                ),
                extra=extra,
            ),
            Figure(
                NAME,
                sys_name,
                f"all {n_buyers} assigned or queued with a position, from the surge's start",
                round(all_answered, 2) if all_answered is not None else None,
                "s",
                note=f"the buyers open over {window:g} s: the last at {window:g} s"
                if all_answered is not None
                else f"only {len(sg.answered)}/{n_buyers} answered in {a.surge_timeout_s:g}s",
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
        ] + delivery_figs
    finally:
        for spy in spies:
            await spy.stop()
        await close_all(buyers + agents)
        system.stop()
    return figures
