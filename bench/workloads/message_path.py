"""Message path: B buyers, A agents; buyer message -> agent receives -> agent reply -> buyer receives.

Open-loop load: buyers send at an aggregate rate R (round-robin over buyers); every
agent replies to every buyer message it receives at once. Latency is the full round
trip seen by the buyer. A step passes when p99 <= the limit (50 ms) and nothing is
lost (no reply within the grace period, or an error frame). The search halves R until a
step passes, raises it by a factor until a step fails, then bisects between the last
pass and the first failure; a failing step is run once more before it counts (the
machine is shared). A step that loses messages may leave a system broken for good
(python-socketio's Redis manager does, past its limit), so the system is then started
afresh, with new clients, before the next step: every rate is measured on a system that
had not broken before it.

R counts buyer messages per second; each is answered by an agent, so a system
carries 2R messages a second (and, with acks, 4R frames out).

`homing-bot` is Homing with the shop's bot in `bot_first` and the demo's knowledge base
(issue 18): buyers send real questions (those of `bench/data/bot_questions.tsv` the bot
answers from the knowledge base without handing over), every conversation stays with the
bot, and the round trip ends when the bot's answer (`sender: "bot"`, its
`payload.bot.reply_to` naming the buyer's message from the ack) reaches the buyer. A
message not acked, or not answered by the bot within the grace period, is lost. Agents
are online as for `homing` and get nothing. The same search, the same R (buyer messages
a second, each answered: 2R stored): its rate over plain Homing's is judged against 0.8x.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.clients import Client, close_all, connect_all
from bench.common import Figure, cpu_seconds, percentile, run_delay_s
from bench.systems import HomingBot, HomingCluster, NodeSocketIO, System, make
from bench.workloads.bot import DATA, answered_questions

NAME = "message_path"
TITLE = "message path rate search"

SYSTEM_KEYS = (
    "homing",
    "homing-bot",
    "ws",
    "sio",
    "node-sio",
    "sio-redis",
    "node-sio-redis",
    "homing-pg",
)
WARM_WINDOW = 20
NOISY_WAIT = 0.05
NOISY_RETRIES = 2


def make_system(key: str, log_dir: Path, fps: int, *, nodes: int = 2) -> System:
    return make(key, log_dir, fps, nodes=nodes)


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("message path")
    g.add_argument("--mp-buyers", type=int, help="buyers (default 1000; --quick 100)")
    g.add_argument("--mp-agents", type=int, help="agents (default 50; --quick 10)")
    g.add_argument(
        "--mp-systems",
        default=",".join(SYSTEM_KEYS),
        help=f"comma-separated, from {', '.join(SYSTEM_KEYS)}",
    )
    g.add_argument(
        "--mp-nodes",
        type=int,
        default=2,
        help="Homing nodes of the homing-pg system (default 2; the bus workload runs 2 and 4)",
    )
    g.add_argument("--mp-step-s", type=float, help="seconds per rate step (default 5; --quick 2)")
    g.add_argument("--mp-start-rate", type=float, default=100.0, help="first rate, msg/s")
    g.add_argument("--mp-factor", type=float, default=1.5, help="rate multiplier between steps")
    g.add_argument(
        "--mp-max-rate", type=float, default=30000.0, help="never ask for more than this"
    )
    g.add_argument("--mp-p99-ms", type=float, default=50.0, help="p99 round-trip limit")
    g.add_argument(
        "--mp-refine", type=int, default=2, help="bisection steps after the first failure"
    )
    g.add_argument(
        "--mp-retries", type=int, default=1, help="re-runs of a failing step before it counts"
    )
    g.add_argument(
        "--profile",
        action="store_true",
        help="record Homing's message path with py-spy (bench/results/profile-*.svg/.txt)",
    )
    g.add_argument("--profile-s", type=float, default=10.0, help="seconds per profile window")


@dataclass
class Step:
    rate: float
    duration: float
    sent: int = 0
    send_elapsed: float = 0.0
    lat: list[float] = field(default_factory=list)
    lost: int = 0
    errors: int = 0
    generator_limited: bool = False
    passed: bool = False
    odd_frames: dict[str, int] = field(default_factory=dict)  # frames other than the message path's
    srv_wait: float = 0.0  # server threads' run-queue wait / wall time (other work on the machine)
    gen_wait: float = 0.0  # the same for the load generator
    gen_cpu: float = 0.0  # load generator CPU / wall time over the sending phase
    srv_cpu: float = 0.0  # server CPU / wall time over the sending phase

    def summary(self) -> dict[str, Any]:
        p50, p99 = percentile(self.lat, 50), percentile(self.lat, 99)
        return {
            "rate": round(self.rate, 1),
            "sent": self.sent,
            "achieved_rate": round(self.sent / self.send_elapsed, 1) if self.send_elapsed else None,
            "p50_ms": round(p50 * 1000, 2) if p50 is not None else None,
            "p99_ms": round(p99 * 1000, 2) if p99 is not None else None,
            "max_ms": round(max(self.lat) * 1000, 2) if self.lat else None,
            "lost": self.lost,
            "errors": self.errors,
            "generator_limited": self.generator_limited,
            "passed": self.passed,
            "odd_frames": self.odd_frames,
            "gen_cpu": round(self.gen_cpu, 2),
            "srv_wait": round(self.srv_wait, 3),
            "gen_wait": round(self.gen_wait, 3),
            "srv_cpu": round(self.srv_cpu, 2),
        }


class Driver:
    """Buyers and agents of one system, and the open-loop sender."""

    def __init__(
        self, system: System, n_buyers: int, n_agents: int, questions: list[str] | None = None
    ) -> None:
        self.system = system
        # bot_first: buyers send these questions and the bot answers; None: the key is the
        # body and an agent answers.
        self.questions = questions
        self.answer_of: dict[str, str] = {}  # bot_first: acked message id -> pending key
        self.n_buyers = n_buyers
        self.n_agents = n_agents
        self.agents: list[Client] = []
        self.buyers: list[Client] = []
        self.pending: dict[str, tuple[float, Step | None]] = {}
        self.error_codes: Counter[str] = Counter()
        self.frames: Counter[str] = Counter()  # "agent message.new" -> count, for diagnosis
        self.errors = 0
        self.online = 0
        self.rr = 0
        self.step_no = 0
        self.warm_replies = 0

    # ---- frames --------------------------------------------------------------------
    def on_agent(self, c: Client, f: dict[str, Any]) -> Any:
        t = f.get("type")
        self.frames["agent " + str(t)] += 1
        if t == "message.new":
            m = f["message"]
            if m.get("sender") == "buyer":
                body = m.get("body") or ""
                return c.send(
                    {
                        "type": "message.send",
                        "conversation_id": m["conversation_id"],
                        "client_msg_id": "r" + body,
                        "body": body,
                    }
                )
        elif t == "agent.status":
            self.online += 1
        elif t == "error":
            self._error(f)
        return None

    def on_buyer(self, c: Client, f: dict[str, Any]) -> None:
        t = f.get("type")
        self.frames["buyer " + str(t)] += 1
        if t == "message.new":
            m = f["message"]
            sender = m.get("sender")
            if sender == "agent" and self.questions is None:
                self._answered(m.get("body") or "")
            elif sender == "bot" and self.questions is not None:
                self._bot_answer(m)
        elif t == "message.ack" and self.questions is not None:
            key = f.get("client_msg_id")
            if key in self.pending:
                self.answer_of[f["message"]["id"]] = key
        elif t == "error":
            self._error(f)

    def _answered(self, key: str) -> None:
        entry = self.pending.pop(key, None)
        if entry is not None:
            t0, step = entry
            if step is None:
                self.warm_replies += 1
            else:
                step.lat.append(time.perf_counter() - t0)

    def _bot_answer(self, m: dict[str, Any]) -> None:
        """The bot answered a buyer message: the round trip ends if its ack came first."""
        bot = (m.get("payload") or {}).get("bot") or {}
        reply_to = bot.get("reply_to")
        if reply_to is None:
            self.frames["buyer bot greeting"] += 1
            return
        if not bot.get("faq_id"):
            self.frames["buyer bot not from the knowledge base"] += 1  # fallback or order
        key = self.answer_of.pop(reply_to, None)
        if key is None:
            # Not acked (yet): the message counts as lost, the answer as an odd frame.
            self.frames["buyer bot answer without ack"] += 1
            return
        self._answered(key)

    def _error(self, f: dict[str, Any]) -> None:
        self.errors += 1
        self.error_codes[str(f.get("code"))] += 1

    # ---- set-up --------------------------------------------------------------------
    async def setup(self, say: Any) -> None:
        s = self.system
        urls = await s.agent_urls(self.n_agents, max_concurrent=50)
        self.agents = [Client(s.proto, u, self.on_agent) for u in urls]
        ok, bad, _ = await connect_all(self.agents, concurrency=25)
        if bad:
            raise RuntimeError(f"{bad} agents could not connect")
        for a in self.agents:
            await s.agent_ready(a)
        if s.routes:
            deadline = time.monotonic() + 10
            while self.online < self.n_agents and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        self.buyers = [
            Client(s.proto, s.buyer_url(i, self.n_agents), self.on_buyer)
            for i in range(self.n_buyers)
        ]
        ok, bad, secs = await connect_all(self.buyers, concurrency=100)
        say(f"    {ok} buyers connected in {secs:.1f}s ({bad} failed)")
        if bad:
            raise RuntimeError(f"{bad} buyers could not connect")
        # Warm-up: each buyer's first message (on Homing it opens and routes a conversation),
        # at most WARM_WINDOW round trips in flight: a warm-up, not a surge (that is `surge`).
        t0 = time.perf_counter()
        deadline = time.monotonic() + 60 + self.n_buyers / 5
        for i, b in enumerate(self.buyers):
            while i - self.warm_replies >= WARM_WINDOW and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            key = f"w.{i}"
            body = key if self.questions is None else self.questions[i % len(self.questions)]
            self.pending[key] = (time.perf_counter(), None)
            await b.send({"type": "message.send", "client_msg_id": key, "body": body})
        while self.warm_replies < self.n_buyers and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        say(
            f"    warm-up: {self.warm_replies}/{self.n_buyers} round trips in {time.perf_counter() - t0:.1f}s"
        )
        if self.warm_replies < self.n_buyers:
            raise RuntimeError(
                f"warm-up incomplete: {self.warm_replies}/{self.n_buyers} replies "
                f"(errors {dict(self.error_codes)})"
            )
        self.pending.clear()
        self.answer_of.clear()
        gc.collect()
        gc.freeze()  # the load generator's own GC pauses would show up as server latency

    def healthy(self) -> bool:
        return all(c.alive for c in self.agents) and all(c.alive for c in self.buyers)

    async def drain(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return not self.pending

    # ---- one step ------------------------------------------------------------------
    async def step(
        self, rate: float, duration: float, p99_limit: float, grace: float = 3.0
    ) -> Step:
        self.step_no += 1
        st = Step(rate, duration)
        errors0 = self.errors
        frames0 = Counter(self.frames)
        n = max(1, int(rate * duration))
        buyers, nb = self.buyers, len(self.buyers)
        questions = self.questions
        nq = len(questions) if questions else 1
        pending = self.pending
        prefix = f"{self.step_no}."
        t0 = time.perf_counter()
        c0, s0 = time.process_time(), self._server_cpu()
        w0, g0 = self._server_wait(), self._wait(os.getpid())
        i = 0
        while i < n:
            due = min(n, int((time.perf_counter() - t0) * rate) + 1)
            while i < due:
                b = buyers[self.rr % nb]
                self.rr += 1
                key = prefix + str(i)
                body = key if questions is None else questions[self.rr % nq]
                pending[key] = (time.perf_counter(), st)
                await b.send({"type": "message.send", "client_msg_id": key, "body": body})
                i += 1
            await asyncio.sleep(0.001)
        st.sent = n
        st.send_elapsed = time.perf_counter() - t0
        st.gen_cpu = (time.process_time() - c0) / st.send_elapsed
        st.srv_cpu = (self._server_cpu() - s0) / st.send_elapsed
        st.srv_wait = (self._server_wait() - w0) / st.send_elapsed
        st.gen_wait = (self._wait(os.getpid()) - g0) / st.send_elapsed
        st.generator_limited = st.send_elapsed > duration * 1.15 + 0.05
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(s is st for _k, (_t, s) in pending.items()):
            await asyncio.sleep(0.02)
        lost = [k for k, (_t, s) in pending.items() if s is st]
        for k in lost:
            del pending[k]
        if lost and self.answer_of:
            gone = set(lost)
            self.answer_of = {m: k for m, k in self.answer_of.items() if k not in gone}
        st.lost = len(lost)
        st.errors = self.errors - errors0
        usual = {"agent message.new", "agent message.ack", "buyer message.new", "buyer message.ack"}
        st.odd_frames = {k: v for k, v in (self.frames - frames0).items() if k not in usual}
        p99 = percentile(st.lat, 99)
        st.passed = (
            st.lost == 0
            and st.errors == 0
            and p99 is not None
            and p99 * 1000 <= p99_limit
            and not st.generator_limited
        )
        return st

    @staticmethod
    def _wait(pid: int) -> float:
        try:
            return run_delay_s(pid)
        except (OSError, AssertionError):
            return 0.0

    def _server_wait(self) -> float:
        """Run-queue wait of the busiest-waiting server process (one figure per system)."""
        return max(self._wait(pid) for pid in self.system.pids)

    def _server_cpu(self) -> float:
        """CPU of every server process of the system (both nodes of a cluster)."""
        total = 0.0
        for pid in self.system.pids:
            try:
                total += cpu_seconds(pid)
            except (OSError, AssertionError):
                continue
        return total

    async def close(self) -> None:
        gc.unfreeze()
        await close_all(self.buyers + self.agents)


async def search(
    d: Driver,
    ctx: Any,
    *,
    step_s: float,
    start: float,
    factor: float,
    max_rate: float,
    p99_ms: float,
    refine: int,
    retries: int,
    restart: Callable[[], Awaitable[Driver]] | None = None,
    min_rate: float = 5.0,
) -> dict[str, Any]:
    say = ctx.say
    steps: list[Step] = []
    best: Step | None = None
    fail: Step | None = None
    stop = ""
    rate = start

    async def run(r: float) -> Step:
        nonlocal d
        st = await d.step(r, step_s, p99_ms)
        steps.append(st)
        s = st.summary()
        flag = "ok" if st.passed else "FAIL"
        lim = " (load generator could not keep up)" if st.generator_limited else ""
        if st.odd_frames:
            lim += f" other frames {st.odd_frames}"
        say(
            f"    {r:9.0f}/s  sent {s['sent']:6d}  p50 {s['p50_ms']} ms  p99 {s['p99_ms']} ms  "
            f"lost {st.lost}  errors {st.errors}  cpu gen/srv {st.gen_cpu:.0%}/{st.srv_cpu:.0%}  "
            f"run-queue wait gen/srv {st.gen_wait:.0%}/{st.srv_wait:.0%}  {flag}{lim}"
        )
        # Let late replies arrive before the next step so steps don't bleed into each other.
        await d.drain(10.0)
        await asyncio.sleep(0.3)
        if restart is not None and (st.lost or not d.healthy() or d.pending):
            say("    (messages lost: starting the system afresh before the next step)")
            try:
                d = await restart()
            except Exception as exc:  # noqa: BLE001 - the search ends with what it measured
                say(f"    could not start it again: {type(exc).__name__}: {exc}")
        return st

    async def judged(r: float) -> Step:
        """A failing step is tried again (the machine is shared, so one noisy step is no verdict):
        `retries` times, and up to NOISY_RETRIES more while the failure came with the server
        or the generator waiting for a CPU (run-queue wait above NOISY_WAIT of the step)."""
        st = await run(r)
        tries, noisy_tries = 0, 0
        while not (st.passed or st.generator_limited or not d.healthy() or d.pending):
            if tries < retries:
                tries += 1
            elif max(st.srv_wait, st.gen_wait) > NOISY_WAIT and noisy_tries < NOISY_RETRIES:
                noisy_tries += 1
            else:
                break
            say("    (again, to tell noise from a limit)")
            st = await run(r)
        return st

    # Down from the start rate until a step passes, then up by `factor` until one fails.
    st = await judged(rate)
    while not st.passed:
        fail = st
        if rate / 2 < min_rate or not d.healthy():
            break
        rate /= 2
        st = await judged(rate)
    if st.passed:
        best = st
    while best is not None and fail is None:
        if rate >= max_rate:
            stop = f"reached --mp-max-rate {max_rate:.0f}"
            break
        rate = min(max_rate, rate * factor)
        st = await judged(rate)
        if st.passed:
            best = st
        else:
            fail = st
    if fail is not None and best is not None:
        for _ in range(refine):
            if not d.healthy() or d.pending or fail.generator_limited:
                break
            if fail.rate / best.rate < 1.08:
                break
            st = await judged((best.rate * fail.rate) ** 0.5)
            if st.passed:
                best = st
            else:
                fail = st
    if fail is not None:
        s = fail.summary()
        why = []
        if fail.generator_limited:
            why.append("load generator could not keep up")
        if s["p99_ms"] is not None and s["p99_ms"] > p99_ms:
            why.append(f"p99 {s['p99_ms']} ms")
        if fail.lost:
            why.append(f"{fail.lost} lost")
        if fail.errors:
            why.append(f"{fail.errors} error frames {dict(d.error_codes)}")
        stop = f"at {fail.rate:.0f}/s: " + ", ".join(why or ["failed"])
    return {
        "best": best,
        "fail": fail,
        "stop": stop,
        "steps": [s.summary() for s in steps],
        "generator_limited": bool(fail and fail.generator_limited),
    }


async def profile(d: Driver, ctx: Any, rate: float, seconds: float, key: str) -> list[str]:
    """py-spy on the Homing server while the driver holds `rate`: an SVG and a text summary."""
    import shutil
    import sys

    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        ctx.say(
            "    py-spy not installed (pip install -c constraints.txt -e '.[bench]'); no profile"
        )
        return []
    out: list[str] = []
    for fmt, suffix in (("raw", "txt.raw"), ("flamegraph", "svg")):
        path = ctx.results_dir / f"profile-{ctx.stamp}-{key}.{suffix}"
        cmd = [
            spy,
            "record",
            "--pid",
            str(d.system.pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            "250",
            "--nonblocking",
            "--format",
            fmt,
            "-o",
            str(path),
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: ASYNC220
        try:
            await asyncio.sleep(0.5)
            await d.step(rate, seconds, 1e9)
            await asyncio.to_thread(proc.wait, seconds + 30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        await d.drain(10.0)
        if path.exists():
            out.append(str(path))
    raw = ctx.results_dir / f"profile-{ctx.stamp}-{key}.txt.raw"
    if raw.exists():
        from bench.profile_summary import summarize

        text = summarize(raw.read_text(), top=20)
        txt = ctx.results_dir / f"profile-{ctx.stamp}-{key}.txt"
        txt.write_text(text)
        out.append(str(txt))
        ctx.say(text)
    return out


async def measure_system(
    ctx: Any,
    make: Callable[[], System],
    n_buyers: int,
    n_agents: int,
    step_s: float,
    *,
    questions: list[str] | None = None,
    profile_key: str | None = None,
    inspect: Callable[[System, Driver], Awaitable[dict[str, Any]]] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The rate search on one system made by `make` (again after a step that broke it).

    `inspect`, if given, is called on the last system while it still runs (its result is
    `res["inspect"]`): for figures read from the servers or the database after the search.
    """
    a = ctx.args
    system = make()
    name = system.name
    ctx.say(f"  [{name}] {n_buyers} buyers, {n_agents} agents, {step_s:g}s steps")
    d = Driver(system, n_buyers, n_agents, questions)

    async def restart() -> Driver:
        nonlocal d, system
        await d.close()
        system.stop()
        system = make()
        d = Driver(system, n_buyers, n_agents, questions)
        await system.start()
        await d.setup(ctx.say)
        return d

    try:
        await system.start()
        await d.setup(ctx.say)
        res = await search(
            d,
            ctx,
            step_s=step_s,
            start=a.mp_start_rate,
            factor=a.mp_factor,
            max_rate=a.mp_max_rate,
            p99_ms=a.mp_p99_ms,
            refine=a.mp_refine,
            retries=a.mp_retries,
            restart=restart,
        )
        if profile_key is not None and a.profile and d.healthy():
            best = res["best"]
            rate = best.rate if best else a.mp_start_rate
            ctx.say(
                f"    profiling with py-spy at {rate:.0f}/s for {a.profile_s:g}s (x2: raw + svg)"
            )
            res["profile"] = await profile(d, ctx, rate, a.profile_s, profile_key)
        if isinstance(system, HomingBot):
            res["bot"] = system.tally()
            ctx.say(f"    the bot's work, from the database: {res['bot']}")
        if inspect is not None:
            res["inspect"] = await inspect(system, d)
    except Exception as exc:  # noqa: BLE001 - one system failing must not hide the others
        ctx.say(f"    {name} failed: {type(exc).__name__}: {exc}")
        res = {
            "best": None,
            "fail": None,
            "stop": f"error: {exc}",
            "steps": [],
            "generator_limited": False,
        }
    finally:
        await d.close()
        system.stop()
    res["cpu_ms"] = cpu_cost_ms(res["steps"])
    return name, res


def system_figures(
    name: str,
    res: dict[str, Any],
    n_buyers: int,
    n_agents: int,
    step_s: float,
    workload: str = NAME,
) -> list[Figure]:
    """The rate search's figures for one system (rate, latency, loss, CPU cost)."""
    best = res["best"]
    bs = best.summary() if best else {}
    extra = {
        "buyers": n_buyers,
        "agents": n_agents,
        "step_s": step_s,
        "steps": res["steps"],
        "profile": res.get("profile"),
        "bot": res.get("bot"),
    }
    rate_val = round(best.rate) if best else 0
    cost = res.get("cpu_ms")
    return [
        Figure(
            workload,
            name,
            "max sustainable rate",
            rate_val,
            "msg/s",
            note=f"stop {res['stop']}",
            extra=extra,
        ),
        Figure(workload, name, "p50 at max rate", bs.get("p50_ms"), "ms"),
        Figure(workload, name, "p99 at max rate", bs.get("p99_ms"), "ms"),
        Figure(
            workload,
            name,
            "loss at max rate",
            (bs.get("lost", 0) + bs.get("errors", 0)) if bs else None,
            "msgs",
        ),
        Figure(
            workload,
            name,
            "server CPU per round trip",
            round(cost, 3) if cost else None,
            "ms",
            note="CPU time is far less disturbed by other work on the machine than latency"
            + ("; Redis's own CPU not counted" if "Redis" in name else ""),
        ),
        Figure(
            workload,
            name,
            "CPU-bound ceiling (one core)",
            round(1000 / cost) if cost else None,
            "msg/s",
        ),
    ]


async def run(ctx: Any) -> list[Figure]:
    a = ctx.args
    n_buyers, n_agents, step_s = sizes(ctx)
    keys = [k.strip() for k in a.mp_systems.split(",") if k.strip()]
    figures: list[Figure] = []
    results: dict[str, dict[str, Any]] = {}
    questions: list[str] | None = None
    if "homing-bot" in keys:
        questions = answered_questions()
        ctx.say(
            f"  bot_first: {len(questions)} questions of {DATA.name} the demo knowledge base "
            "answers without a hand-off"
        )
    for key in keys:
        name, res = await measure_system(
            ctx,
            lambda key=key: make_system(key, ctx.log_dir, a.frames_per_second, nodes=a.mp_nodes),
            n_buyers,
            n_agents,
            step_s,
            questions=questions if key == "homing-bot" else None,
            profile_key=key if key.startswith("homing") else None,
        )
        results[name] = res
        figures += system_figures(name, res, n_buyers, n_agents, step_s)
    figures += ratios(results)
    return figures


def sizes(ctx: Any) -> tuple[int, int, float]:
    """(buyers, agents, seconds per step) from the options."""
    a = ctx.args
    n_buyers = a.mp_buyers or (100 if ctx.quick else 1000)
    n_agents = a.mp_agents or (10 if ctx.quick else 50)
    step_s = a.mp_step_s or (2.0 if ctx.quick else 5.0)
    return n_buyers, n_agents, step_s


async def measure(
    ctx: Any,
    key: str,
    make: Callable[[], System],
    *,
    n_buyers: int,
    n_agents: int,
    step_s: float,
    asks: list[str] | None = None,
) -> tuple[dict[str, Any], list[Figure]]:
    """One system's rate search (started by `make()`, afresh after a step that broke it):
    its result (`best` step, `steps`, `cpu_ms`) and its figures. `key` names it for the
    profile (only Homing systems are profiled)."""
    name, res = await measure_system(
        ctx,
        make,
        n_buyers,
        n_agents,
        step_s,
        questions=asks,
        profile_key=key if key.startswith("homing") else None,
    )
    return res, system_figures(name, res, n_buyers, n_agents, step_s)


def cpu_cost_ms(steps: list[dict[str, Any]]) -> float | None:
    """Server CPU milliseconds per round trip, over the steps that lost nothing."""
    cpu = sent = 0.0
    for s in steps:
        if s["lost"] or not s["achieved_rate"]:
            continue
        cpu += s["srv_cpu"] * s["sent"] / s["achieved_rate"]
        sent += s["sent"]
    return cpu / sent * 1000 if sent else None


# (Homing system, peer, the target for the rate ratio)
TARGETS = (
    # issue 20: one node >= 1.5x python-socketio; two nodes >= 1.0x Node socket.io + Redis.
    ("Homing (SQLite)", "python-socketio", 1.5),
    ("Homing (SQLite)", "websockets relay", 0.25),
    (HomingCluster.title, "python-socketio + Redis", 1.5),
    (HomingCluster.title, NodeSocketIO.REDIS_NAME, 1.0),
    # issue 18: the message path with the bot answering (bot_first) keeps 0.8x the rate.
    (HomingBot.title, "Homing (SQLite)", 0.8),
)


def ratios(results: dict[str, dict[str, Any]]) -> list[Figure]:
    out: list[Figure] = []
    for name, peer, need in TARGETS:
        homing, r = results.get(name), results.get(peer)
        if not homing or not r:
            continue
        h = homing["best"].rate if homing["best"] else 0.0
        if not r["best"]:
            out.append(
                Figure(
                    NAME,
                    name,
                    f"rate vs {peer}",
                    None,
                    "x",
                    target=f">= {need:g}x",
                    note=f"not judged: {peer} passed no step in this run ({r['stop']})",
                )
            )
            continue
        if homing.get("cpu_ms") and r.get("cpu_ms"):
            out.append(
                Figure(
                    NAME,
                    name,
                    f"CPU-bound ceiling vs {peer}",
                    round(r["cpu_ms"] / homing["cpu_ms"], 3),
                    "x",
                    note="the same comparison from CPU cost per round trip (no verdict: the "
                    "target is on the sustainable rate)",
                )
            )
        ratio = h / r["best"].rate
        note = ""
        if r["generator_limited"]:
            note = f"{peer} hit the load generator's limit: its real ceiling is higher, this ratio lower"
        out.append(
            Figure(
                NAME,
                name,
                f"rate vs {peer}",
                round(ratio, 3),
                "x",
                target=f">= {need:g}x",
                met=ratio >= need,
                note=note,
            )
        )
    return out
