"""Group fan-out: one 500-member fan group, every member connected; one message -> time until
every member has it. Repeated for a few messages (one at a time); p50/p99 over every
delivery, and the median and worst time until the last member had it.

Members join over HTTP first, then connect (their sockets listen to the group from hello).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bench.clients import Client, close_all, connect_all
from bench.common import HOST, Figure, http_json, percentile
from bench.systems import BENCH_PASSWORD, Homing

NAME = "group_fanout"
TITLE = "one message to a 500-member fan group"


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("group fan-out")
    g.add_argument(
        "--gf-members", type=int, help="members, all connected (default 500; --quick 100)"
    )
    g.add_argument("--gf-messages", type=int, default=20, help="messages, sent one at a time")


class Fanout:
    def __init__(self) -> None:
        self.sent_at: dict[str, float] = {}  # client_msg_id -> send time
        self.got: dict[str, list[float]] = {}  # client_msg_id -> delivery latencies
        self.errors = 0

    def on_frame(self, _client: Client, frame: dict[str, Any]) -> None:
        t = frame.get("type")
        if t == "group.message":
            cid = frame["message"].get("client_msg_id")
            if cid in self.sent_at:
                self.got.setdefault(cid, []).append(time.perf_counter() - self.sent_at[cid])
        elif t == "error":
            self.errors += 1


async def run(ctx: Any) -> list[Figure]:
    a = ctx.args
    n = a.gf_members or (100 if ctx.quick else 500)
    system = Homing(ctx.log_dir, jobs=False, frames_per_second=a.frames_per_second)
    ctx.say(
        f"  [{system.name}] a {n}-member group, all connected; {a.gf_messages} messages one at a time"
    )
    fo = Fanout()
    members: list[Client] = []
    try:
        await system.start()
        slug, secret, _ = await system.make_shop(0, 1)
        system.shop_slug, system.buyer_secret = slug, secret
        base = f"http://{HOST}:{system.port}/api/v1"
        status, body = await http_json(
            "POST",
            f"{base}/auth/login",
            {"shop": slug, "username": "admin", "password": BENCH_PASSWORD},
        )
        if status != 200:
            raise RuntimeError(f"admin login failed: {status} {body!r}")
        admin = {"Authorization": f"Bearer {body['token']}"}
        status, group = await http_json(
            "POST", f"{base}/groups", {"name": "bench", "max_members": n}, headers=admin
        )
        if status != 201:
            raise RuntimeError(f"create group failed: {status} {group!r}")
        sem = asyncio.Semaphore(20)

        async def join(i: int) -> None:
            async with sem:
                st, b = await http_json(
                    "POST",
                    f"{base}/groups/{group['id']}/join",
                    headers={"Authorization": f"Bearer {system.buyer_token(i)}"},
                )
                if st != 200:
                    raise RuntimeError(f"join failed: {st} {b!r}")

        await asyncio.gather(*(join(i) for i in range(n)))
        members = [
            Client(system.proto, system.buyer_url(i, 0), fo.on_frame, tag=i) for i in range(n)
        ]
        ok, bad, secs = await connect_all(members, concurrency=100)
        if bad:
            raise RuntimeError(f"{bad} members could not connect")
        ctx.say(f"    {ok} members joined and connected ({secs:.1f}s)")
        await asyncio.sleep(1.0)
        times_to_all: list[float] = []
        for k in range(a.gf_messages):
            cid = f"gf-{k}"
            sender = members[k % n]
            fo.sent_at[cid] = time.perf_counter()
            await sender.send(
                {
                    "type": "group.send",
                    "group_id": group["id"],
                    "client_msg_id": cid,
                    "body": f"bench {k}",
                }
            )
            deadline = time.perf_counter() + 10
            while len(fo.got.get(cid, ())) < n and time.perf_counter() < deadline:
                await asyncio.sleep(0.002)
            lat = fo.got.get(cid, [])
            if len(lat) == n:
                times_to_all.append(max(lat))
            await asyncio.sleep(0.2)
        every = [x for v in fo.got.values() for x in v]
        expected = n * a.gf_messages
        lost = expected - len(every)
        p50, p99 = percentile(every, 50), percentile(every, 99)
        all50 = percentile(times_to_all, 50)
        worst = max(times_to_all) if times_to_all else None

        def ms(v: float | None) -> float | None:
            return round(v * 1000, 2) if v is not None else None

        ctx.say(
            f"    deliveries {len(every)}/{expected} (lost {lost}, errors {fo.errors}); "
            f"per member p50 {ms(p50)} ms, p99 {ms(p99)} ms; "
            f"until all {n} have it: median {ms(all50)} ms, worst {ms(worst)} ms"
        )
        extra = {"members": n, "messages": a.gf_messages, "lost": lost, "errors": fo.errors}
        note = "" if not lost else f"{lost} deliveries missing"
        return [
            Figure(
                NAME,
                system.name,
                f"delivery latency p50 ({n} members)",
                ms(p50),
                "ms",
                note=note,
                extra=extra,
            ),
            Figure(
                NAME, system.name, f"delivery latency p99 ({n} members)", ms(p99), "ms", note=note
            ),
            Figure(NAME, system.name, f"time until all {n} have it (median)", ms(all50), "ms"),
            Figure(NAME, system.name, f"time until all {n} have it (worst)", ms(worst), "ms"),
        ]
    finally:
        await close_all(members)
        system.stop()
