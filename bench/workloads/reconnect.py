"""Reconnect storm: N connected buyers with open conversations are dropped at once and come back.

Set-up (not timed): A agents and N buyers connect; on Homing each buyer opens a
conversation (one message; an agent with room answers it, the rest wait in the queue:
with the default 50 agents at Homing's limit of 50 each, 2,500 of 10,000 are assigned).
Then the buyers are dropped at once:
- a one-node system restarts its server process (same port; Homing keeps its database);
- a two-node system (`homing-pg`, `node-sio-redis`) has every agent on node 0 and every
  buyer on node 1, and node 1 is killed (SIGKILL): its buyers reconnect to node 0.
While the buyers are down (after the restart, once the agents are back) each assigned
conversation gets `--rc-missed` agent messages (acked, so stored). Then all N buyers reconnect at once
(`--rc-concurrency` handshakes in flight, as a storm of retrying clients would) and, on
Homing, send `sync` with the last `seq` they had seen. Timed from the first reconnect
until every socket has its hello and (Homing) every missed message and its `sync.done`.

Server CPU per reconnect: the server processes' CPU (/proc/PID/stat) over that window over
N. The relays store nothing, so for them the storm is the hello alone; the target compares
Homing's time with the bare websockets relay's time to accept the same N in the same run
(<= 3x). `--profile` records the Homing servers with py-spy during the storm.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from collections import Counter
from typing import Any

from bench.clients import Client, close_all, connect_all
from bench.common import Figure, cpu_seconds, percentile, run_delay_s
from bench.spy import Spy
from bench.systems import Homing, System, make

NAME = "reconnect"
TITLE = "reconnect storm: buyers dropped at once reconnect and sync"
DEFAULT_SYSTEMS = "ws,node-sio,node-sio-redis,homing,homing-pg"
TARGET_X = 3.0
OPEN_WINDOW = 200  # conversations opening at once during the set-up
MAX_CONCURRENT = 50  # Homing's limit per agent


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("reconnect storm")
    g.add_argument(
        "--rc-buyers", type=int, help="buyers dropped at once (default 10000; --quick 1000)"
    )
    g.add_argument(
        "--rc-agents",
        type=int,
        help="agents (default 50; --quick 10), each with room for buyers / agents (at most 50)",
    )
    g.add_argument(
        "--rc-systems",
        default=DEFAULT_SYSTEMS,
        help="comma-separated from ws, sio, node-sio, node-sio-redis, homing, homing-pg "
        f"(default {DEFAULT_SYSTEMS})",
    )
    g.add_argument("--rc-concurrency", type=int, default=200, help="reconnect handshakes in flight")
    g.add_argument(
        "--rc-retries",
        type=int,
        default=5,
        help="a failed (re)connect is tried again, as a client would, up to this many times",
    )
    g.add_argument(
        "--rc-missed", type=int, default=1, help="agent messages per conversation while down"
    )
    g.add_argument("--rc-timeout-s", type=float, default=600.0, help="give up on the storm after")


class Storm:
    """Frames of one system's buyers and agents, before and after the drop."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.conv_of: dict[int, str] = {}  # buyer -> conversation id
        self.seen: dict[int, int] = {}  # buyer -> last seq seen before the drop
        self.replied: set[int] = set()  # buyers whose opening the agent answered
        self.acked: set[int] = set()
        self.agent_of: dict[str, Client] = {}  # conversation -> the agent that has it
        self.buyer_of_conv: dict[str, int] = {}
        self.expect: dict[int, set[int]] = {}  # buyer -> seqs sent while it was down
        self.got: dict[int, set[int]] = {}
        self.synced: dict[int, float] = {}  # buyer -> sync.done time
        self.hello: dict[int, float] = {}
        self.done: dict[int, float] = {}
        self.acks = 0
        self.errors: Counter[str] = Counter()
        self.online = 0
        self.phase = "setup"

    # ---- set-up ---------------------------------------------------------------------
    def on_agent(self, c: Client, f: dict[str, Any]) -> Any:
        t = f.get("type")
        if t == "message.new":
            m = f["message"]
            if m.get("sender") == "buyer" and self.phase == "setup":
                self.agent_of[m["conversation_id"]] = c
                return c.send(
                    {
                        "type": "message.send",
                        "conversation_id": m["conversation_id"],
                        "client_msg_id": "re." + str(m.get("client_msg_id")),
                        "body": "您好，在的",
                    }
                )
        elif t == "message.ack" and self.phase == "missed":
            m = f["message"]
            i = self.buyer_of_conv.get(m["conversation_id"])
            if i is not None:
                self.expect.setdefault(i, set()).add(int(m["seq"]))
            self.acks += 1
        elif t == "agent.status":
            self.online += 1
        elif t == "error":
            self.errors["agent " + str(f.get("code"))] += 1
        return None

    def on_buyer(self, c: Client, f: dict[str, Any]) -> None:
        i = c.tag
        t = f.get("type")
        if self.phase == "setup":
            if t == "message.ack":
                m = f["message"]
                self.acked.add(i)
                self.conv_of[i] = m["conversation_id"]
                self.seen[i] = max(self.seen.get(i, 0), int(m["seq"]))
            elif t == "message.new":
                m = f["message"]
                self.seen[i] = max(self.seen.get(i, 0), int(m["seq"]))
                if m.get("sender") == "agent":
                    self.replied.add(i)
            elif t == "error":
                self.errors["buyer " + str(f.get("code"))] += 1
            return
        if self.phase != "storm":
            return
        if t == "message.new":
            seq = int(f["message"]["seq"])
            if seq in self.expect.get(i, ()):
                self.got.setdefault(i, set()).add(seq)
                self._check(i)
        elif t == "sync.done":
            self.synced.setdefault(i, time.perf_counter())
            self._check(i)
        elif t == "error":
            self.errors["buyer " + str(f.get("code"))] += 1

    def _check(self, i: int) -> None:
        if i in self.done or i not in self.synced:
            return
        if self.got.get(i, set()) >= self.expect.get(i, set()):
            self.done[i] = time.perf_counter()


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except OSError:
            pass
    return total


def _wait(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += run_delay_s(pid)
        except OSError:
            pass
    return total


async def until(cond: Any, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(step)
    return True


async def storm_one(ctx: Any, key: str, n: int, n_agents: int) -> dict[str, Any]:
    a = ctx.args
    system: System = make(key, ctx.log_dir, a.frames_per_second)
    homing = isinstance(system, Homing)
    two = system.n_nodes == 2
    if two:
        system.place(agents=0, buyers=1)
    st = Storm(n)
    say = ctx.say
    how = "kill node 1 of 2, its buyers reconnect to node 0" if two else "restart the server"
    say(f"  [{system.name}] {n} buyers, {n_agents} agents; drop: {how}")
    agents: list[Client] = []
    buyers: list[Client] = []
    out: dict[str, Any] = {"system": system.name, "buyers": n, "drop": how}
    spy: Spy | None = None
    try:
        await system.start()
        cap = min(MAX_CONCURRENT, math.ceil(n / n_agents))
        urls = await system.agent_urls(n_agents, max_concurrent=cap)
        agents = [Client(system.proto, u, st.on_agent) for u in urls]
        _ok, bad, _ = await connect_all(agents, concurrency=25)
        if bad:
            raise RuntimeError(f"{bad} agents could not connect")
        for c in agents:
            await system.agent_ready(c)
        if homing:
            await until(lambda: st.online >= n_agents, 15)
        buyers = [
            Client(system.proto, system.buyer_url(i, n_agents), st.on_buyer, tag=i)
            for i in range(n)
        ]
        t_connect = time.perf_counter()
        ok, bad, secs = await connect_all(buyers, concurrency=a.rc_concurrency, timeout=120)
        for _ in range(a.rc_retries):
            if not bad:
                break
            again = [b for b in buyers if not b.alive]
            ok2, bad, _s = await connect_all(again, concurrency=a.rc_concurrency, timeout=120)
            ok += ok2
        secs = time.perf_counter() - t_connect
        say(f"    {ok} buyers connected in {secs:.1f}s ({bad} failed after retries)")
        out["first_connect_s"] = round(secs, 2)
        if bad:
            raise RuntimeError(f"{bad} buyers could not connect")
        if homing:
            t0 = time.perf_counter()
            fit = min(n, n_agents * cap)
            for i, b in enumerate(buyers):
                while i - len(st.acked) >= OPEN_WINDOW:
                    if not await until(lambda i=i: i - len(st.acked) < OPEN_WINDOW, 120, 0.005):
                        raise RuntimeError(
                            f"opening stalled: {len(st.acked)}/{i} acked ({dict(st.errors)})"
                        )
                await b.send({"type": "message.send", "client_msg_id": f"o{i}", "body": "在吗"})
            await until(lambda: len(st.acked) >= n and len(st.replied) >= fit, 300)
            if len(st.acked) < n or len(st.replied) < fit:
                raise RuntimeError(
                    f"only {len(st.acked)}/{n} openings acked, {len(st.replied)}/{fit} answered"
                )
            say(
                f"    {n} conversations opened ({fit} assigned and answered) in "
                f"{time.perf_counter() - t0:.1f}s"
            )
            st.buyer_of_conv = {c: i for i, c in st.conv_of.items()}

        # ---- the drop ----------------------------------------------------------------
        st.phase = "down"
        t0 = time.perf_counter()
        if two:
            system.kill_node(1)
        else:
            out["restart_s"] = round(await system.restart(), 2)
        await until(lambda: not any(b.alive for b in buyers), 30)
        say(
            f"    dropped ({'node 1 killed' if two else 'server restarted'}) in "
            f"{time.perf_counter() - t0:.1f}s; {sum(b.alive for b in buyers)} buyer sockets still open"
        )
        await close_all(buyers)
        if not two:  # the agents were dropped too: back first, as a desk's agents would be
            old = agents
            await close_all(old)
            st.online = 0
            agents = [Client(system.proto, c.url, st.on_agent) for c in old]
            _ok, bad, _ = await connect_all(agents, concurrency=25)
            if bad:
                raise RuntimeError(f"{bad} agents could not reconnect")
            for c in agents:
                await system.agent_ready(c)
            if homing:
                await until(lambda: st.online >= n_agents, 15)
                by_url = {c.url: c for c in agents}
                st.agent_of = {cid: by_url[c.url] for cid, c in st.agent_of.items()}
        if homing and a.rc_missed:
            st.phase = "missed"
            t0 = time.perf_counter()
            owed = [i for i in range(n) if st.conv_of[i] in st.agent_of]
            want = len(owed) * a.rc_missed
            sent = 0
            for k in range(a.rc_missed):
                for i in owed:
                    cid = st.conv_of[i]
                    while sent - st.acks >= OPEN_WINDOW:
                        if not await until(lambda s=sent: s - st.acks < OPEN_WINDOW, 60, 0.005):
                            raise RuntimeError(f"missed messages stalled ({dict(st.errors)})")
                    agent = st.agent_of[cid]
                    if not agent.alive:  # closed by the server (e.g. a keepalive timeout)
                        st.errors["agent socket closed before its missed message"] += 1
                        want -= 1
                        continue
                    try:
                        await agent.send(
                            {
                                "type": "message.send",
                                "conversation_id": cid,
                                "client_msg_id": f"m{k}.{i}",
                                "body": f"您的订单已发货 ({k})",
                            }
                        )
                    except Exception:  # noqa: BLE001 - counted; the buyer expects nothing
                        st.errors["agent send failed"] += 1
                        want -= 1
                        continue
                    sent += 1
            await until(lambda: st.acks >= want, 60)
            say(
                f"    {st.acks}/{want} messages sent to the buyers while they were down in "
                f"{time.perf_counter() - t0:.1f}s (errors {dict(st.errors)})"
            )

        # ---- the storm ---------------------------------------------------------------
        st.phase = "storm"
        buyers = [
            Client(system.proto, system.buyer_url(i, n_agents), st.on_buyer, tag=i)
            for i in range(n)
        ]
        pids = system.pids
        if a.profile and homing:
            spy = Spy(ctx, pids[0], f"reconnect-{key}")
            await spy.start()
        sem = asyncio.Semaphore(a.rc_concurrency)
        failed: list[str] = []
        retried: Counter[str] = Counter()

        async def one(c: Client) -> None:
            i = c.tag
            for attempt in range(a.rc_retries + 1):
                async with sem:
                    try:
                        await c.connect(timeout=a.rc_timeout_s)
                        break
                    except Exception as exc:  # noqa: BLE001
                        if attempt == a.rc_retries:
                            failed.append(f"{type(exc).__name__}: {exc}")
                            return
                        retried[type(exc).__name__] += 1
                await asyncio.sleep(0.5 * (attempt + 1))
            st.hello[i] = time.perf_counter()
            if homing:
                cid = (c.hello or {}).get("conversation") or {}
                if cid.get("id") != st.conv_of.get(i):
                    st.errors["hello without the open conversation"] += 1
                await c.send(
                    {"type": "sync", "conversation_id": st.conv_of[i], "after_seq": st.seen[i]}
                )
            else:
                st.done[i] = st.hello[i]

        cpu0, wait0, gen0 = _cpu(pids), _wait(pids), time.process_time()
        t0 = time.perf_counter()
        tasks = [asyncio.create_task(one(c)) for c in buyers]
        await until(lambda: len(st.done) + len(failed) >= n, a.rc_timeout_s, 0.01)
        t_end = max(st.done.values()) if len(st.done) == n else time.perf_counter()
        wall = t_end - t0
        cpu = _cpu(pids) - cpu0
        srv_wait = _wait(pids) - wait0
        gen_cpu = time.process_time() - gen0
        for t in tasks:
            t.cancel()
        if spy is not None:
            out["profile"] = await spy.stop()
        hellos = [t - t0 for t in st.hello.values()]
        dones = [t - t0 for t in st.done.values()]
        missing = sum(len(st.expect.get(i, set()) - st.got.get(i, set())) for i in range(n))
        out.update(
            {
                "reconnected": len(st.hello),
                "synced": len(st.done),
                "failed": len(failed),
                "retries": dict(retried),
                "first_error": failed[0][:300] if failed else None,
                "all_s": round(wall, 2) if len(st.done) == n else None,
                "all_hello_s": round(max(hellos), 2) if len(hellos) == n else None,
                "hello_p50_s": percentile(hellos, 50),
                "done_p99_s": percentile(dones, 99),
                "missed_expected": sum(len(s) for s in st.expect.values()),
                "missed_undelivered": missing,
                "cpu_s": round(cpu, 3),
                "cpu_ms_per_reconnect": round(cpu / max(1, len(st.hello)) * 1000, 3),
                "server_run_queue_wait_s": round(srv_wait, 2),
                "gen_cpu_share": round(gen_cpu / wall, 2) if wall else None,
                "errors": dict(st.errors),
            }
        )
        say(
            f"    storm: {len(st.hello)}/{n} hellos (last at {out['all_hello_s']}s), "
            f"{len(st.done)}/{n} synced with every missed message; all in {out['all_s']}s; "
            f"{missing} missed messages undelivered; server CPU {cpu:.2f}s "
            f"({out['cpu_ms_per_reconnect']} ms/reconnect, run-queue wait {srv_wait:.1f}s); "
            f"load generator CPU {gen_cpu / wall:.0%} of its core; errors {dict(st.errors)}; "
            f"retried connects {dict(retried)}"
            + (f"; first failure {failed[0][:200]}" if failed else "")
        )
    finally:
        if spy is not None:
            await spy.stop()
        await close_all(buyers + agents)
        system.stop()
    return out


async def run(ctx: Any) -> list[Figure]:
    a = ctx.args
    n = a.rc_buyers or (1000 if ctx.quick else 10000)
    n_agents = a.rc_agents or (10 if ctx.quick else 50)
    figures: list[Figure] = []
    results: dict[str, dict[str, Any]] = {}
    for key in [k.strip() for k in a.rc_systems.split(",") if k.strip()]:
        try:
            res = await storm_one(ctx, key, n, n_agents)
        except Exception as exc:  # noqa: BLE001 - one system failing must not hide the others
            name = make(key, ctx.log_dir, a.frames_per_second).name
            ctx.say(f"    {name} failed: {type(exc).__name__}: {exc}")
            res = {"system": name, "error": str(exc)}
        results[key] = res
        name = res["system"]
        is_homing = key.startswith("homing")
        if "error" in res:
            figures.append(
                Figure(
                    NAME,
                    name,
                    f"all {n} reconnected and synced",
                    None,
                    "s",
                    target=f"<= {TARGET_X:g}x websockets relay" if is_homing else "",
                    met=False if is_homing else None,
                    note=f"error: {res['error']}",
                )
            )
            continue
        what = "reconnected and synced" if is_homing else "reconnected (hello)"
        note = f"{res['reconnected']}/{n} hellos, {res['synced']}/{n} done"
        if res["failed"]:
            note += f", {res['failed']} failed ({res['first_error']})"
        if res["retries"]:
            note += f", connects retried {res['retries']}"
        if is_homing:
            note += (
                f"; {res['missed_expected']} messages sent while down, "
                f"{res['missed_undelivered']} not delivered"
            )
        note += (
            f"; load generator CPU {res['gen_cpu_share']:.0%} of its core"
            if res["gen_cpu_share"] is not None
            else ""
        )
        figures += [
            Figure(NAME, name, f"all {n} {what}", res["all_s"], "s", note=note, extra=res),
            Figure(
                NAME,
                name,
                "server CPU per reconnect",
                res["cpu_ms_per_reconnect"],
                "ms",
                note=f"{res['cpu_s']} s over the storm"
                + (
                    "; Redis's and PostgreSQL's own CPU not counted"
                    if system_uses_redis(key)
                    else ""
                ),
            ),
        ]
        if is_homing:
            figures.append(
                Figure(
                    NAME,
                    name,
                    "missed messages undelivered",
                    res["missed_undelivered"],
                    "",
                    target="0",
                    met=res["missed_undelivered"] == 0 and res["synced"] == n,
                )
            )
    base = results.get("ws")
    for key, res in results.items():
        if not key.startswith("homing") or "error" in res:
            continue
        if not base or base.get("all_s") is None:
            figures.append(
                Figure(
                    NAME,
                    res["system"],
                    "storm time vs websockets relay",
                    None,
                    "x",
                    target=f"<= {TARGET_X:g}x",
                    note="not judged: no websockets relay figure in this run (add ws to --rc-systems)",
                )
            )
            continue
        ratio = res["all_s"] / base["all_s"] if res.get("all_s") else None
        figures.append(
            Figure(
                NAME,
                res["system"],
                "storm time vs websockets relay",
                round(ratio, 2) if ratio is not None else None,
                "x",
                target=f"<= {TARGET_X:g}x",
                met=ratio is not None and ratio <= TARGET_X,
                note=f"websockets relay accepted {n} in {base['all_s']}s"
                + ("" if ratio is not None else "; not every buyer synced"),
            )
        )
    return figures


def system_uses_redis(key: str) -> bool:
    return key in ("homing-pg", "node-sio-redis", "sio-redis")
