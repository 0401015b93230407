"""One system held at one rate on the message path: where its time goes, not how far it goes.

    .venv/bin/python -m bench.steady [--system homing] [--big] [--rate 1000] [--seconds 20]
        [--warm 2] [--spy] [--perf] [--buyers 1000] [--agents 50]

The rate search (`--only message_path`) says how fast a system goes; this says why a
rate costs what it costs. It starts the system as the message path workload does (the
load generator on core 1, the servers on core 0; `--big`: Homing on a copy of the big
database that `--only bigdb` built and cached), runs `--warm` five-second steps at the
rate, then one step of `--seconds` and prints: p50 and p99 of the round trip, the
servers' CPU per round trip, and every 100 ms window of sends whose slowest round trip
took over 30 ms, with the wall-clock time of the step's start, so that stalls can be laid
beside a server log. Stalls that come back at a steady period point to a timer (a job, a
checkpoint, the file system's journal), scattered ones to load. `--spy` records the
measured step with py-spy (raw, summarised as `--profile` does); `--perf` with Linux
`perf` (`bench/cpusplit.py`): the server core's time by process, and each server thread's
by where its instructions ran. py-spy tells which Python lines; only perf tells what a
thread waiting for the core did not spend there.

Found with it: SQLite's write-ahead log never started over under steady writes (`app/db.py`
`WalCheckpointer`); stalls every ~5 s were ext4's journal commits of a file growing by
every commit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import SERVER_CORE, percentile, pin_self, raise_nofile
from bench.cpusplit import split, thread_names
from bench.systems import System, make
from bench.workloads import bigdb, message_path

SLOW_S = 0.030  # a window is listed when its slowest round trip took longer
WINDOW_S = 0.1


def _system(args: argparse.Namespace, log_dir: Path) -> System:
    if not args.big:
        return make(args.system, log_dir, args.frames_per_second)
    # The template `--only bigdb` builds at its default sizes for this schema revision.
    key = bigdb.cache_key(bigdb.Sizes(5_000_000, 200_000, 100_000, 50))
    template = bigdb.CACHE / f"bigdb-{key}.db"
    if args.system != "homing" or not template.exists():
        raise SystemExit("--big: Homing on SQLite, after `python -m bench --only bigdb` built it")
    shop = json.loads(template.with_suffix(".json").read_text())
    system = bigdb.BigHoming(log_dir, template, shop, frames_per_second=args.frames_per_second)
    return bigdb._patient(system)


async def redis_calls(system: System) -> dict[str, int]:
    """Command -> calls so far, from the system's own Redis (if it has one)."""
    # Homing's cluster keeps its Redis in `redis`; python-socketio's and Node socket.io's
    # keep theirs in `_redis` (their `redis` is a flag).
    server = getattr(system, "_redis", None) or getattr(system, "redis", None)
    url = getattr(server, "url", None)
    if url is None:
        return {}
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def slow_windows(trace: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(seconds into the step, slowest ms) of each window whose slowest took over SLOW_S."""
    if not trace:
        return []
    t0 = min(t for t, _ in trace)
    worst: dict[int, float] = {}
    for t, lat in trace:
        w = int((t - t0) / WINDOW_S)
        worst[w] = max(worst.get(w, 0.0), lat)
    return [(w * WINDOW_S, v * 1000) for w, v in sorted(worst.items()) if v > SLOW_S]


def _tool(name: str) -> str:
    return shutil.which(name) or str(Path(sys.executable).with_name(name))


def _names(pids: list[int]) -> dict[int, dict[int, str]]:
    """Each server's thread names, by tid (`py-spy dump`)."""
    out: dict[int, dict[int, str]] = {}
    for pid in pids:
        dump = subprocess.run(
            [_tool("py-spy"), "dump", "--pid", str(pid), "--nonblocking"],
            check=False,  # not a Python process (Node): no names
            capture_output=True,
            text=True,
            timeout=30,
        )
        out[pid] = thread_names(dump.stdout)
    return out


def _core_split(perf_data: Path, names: dict[int, dict[int, str]]) -> list[str]:
    script = subprocess.run(
        ["perf", "script", "-i", str(perf_data), "-F", "comm,pid,tid,ip,dso"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    servers = {pid: f"server {k}" if len(names) > 1 else "server" for k, pid in enumerate(names, 1)}
    return split(script, servers, names).lines()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.perf and shutil.which("perf") is None:
        raise SystemExit("--perf needs Linux perf (Debian: apt-get install linux-perf)")
    pin_self()
    raise_nofile()
    log_dir = Path(args.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    system = _system(args, log_dir)
    d = message_path.Driver(system, args.buyers, args.agents)
    trace: list[tuple[float, float]] = []  # (sent at, round trip) of the measured step
    answered = d._answered

    def traced(key: str) -> None:
        entry = d.pending.get(key)
        if entry is not None and entry[1] is not None:
            trace.append((entry[0], time.perf_counter() - entry[0]))
        answered(key)

    d._answered = traced  # type: ignore[method-assign]
    await system.start()
    try:
        await d.setup(print)
        for _ in range(args.warm):
            st = await d.step(args.rate, 5.0, 1e9)
            s = st.summary()
            print(f"  warm-up step: p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms")
            await d.drain(10.0)
        spy = perf = None
        raw = log_dir / f"steady-{int(time.time())}.txt.raw"
        perf_data = raw.with_suffix(".perf")
        if args.spy:
            spy = subprocess.Popen(  # noqa: ASYNC220 - it runs beside the step
                [_tool("py-spy"), "record", "--pid", str(system.pid)]
                + ["--duration", str(int(args.seconds))]
                + ["--rate", "250", "--nonblocking", "--format", "raw", "-o", str(raw)]
                + (["--native"] if args.native else []),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            await asyncio.sleep(0.5)
        if args.perf:
            perf = subprocess.Popen(  # noqa: ASYNC220 - it runs beside the step
                ["perf", "record", "-e", "cpu-clock", "-F", "999", "-a", "-C", str(SERVER_CORE)]
                + ["-o", str(perf_data), "--", "sleep", str(args.seconds)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        trace.clear()
        started = time.time()
        before = await redis_calls(system)
        st = await d.step(args.rate, args.seconds, 1e9)
        after = await redis_calls(system)
        if spy is not None:
            await asyncio.to_thread(spy.wait, args.seconds + 30)
        names: dict[int, dict[int, str]] = {}
        if perf is not None:
            await asyncio.to_thread(perf.wait, args.seconds + 30)
            names = await asyncio.to_thread(_names, system.pids)
        await d.drain(10.0)
    finally:
        await d.close()
        system.stop()
    lat = [x for _, x in trace]
    result = {
        "system": system.name,
        "rate": args.rate,
        "started": time.strftime("%H:%M:%S", time.localtime(started)),
        "p50_ms": round((percentile(lat, 50) or 0) * 1000, 2),
        "p99_ms": round((percentile(lat, 99) or 0) * 1000, 2),
        "lost": st.lost,
        "server_cpu_ms_per_round_trip": round(st.srv_cpu / args.rate * 1000, 3),
        "slow_windows": [(round(s, 1), round(ms)) for s, ms in slow_windows(trace)],
    }
    sent = max(1, st.sent)
    result["redis_calls_per_round_trip"] = {
        name: round((n - before.get(name, 0)) / sent, 2)
        for name, n in sorted(after.items(), key=lambda kv: -kv[1])
        if n > before.get(name, 0)
    }
    for k, v in result.items():
        print(f"{k}: {v}")
    if args.spy and raw.exists():
        from bench.profile_summary import summarize

        print(summarize(raw.read_text(), top=25))
    if args.perf and perf_data.exists():
        result["core_split"] = await asyncio.to_thread(_core_split, perf_data, names)
        print("\n".join(result["core_split"]))
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.steady", description=__doc__.split("\n")[0])
    p.add_argument("--system", default="homing", help="a message path system key")
    p.add_argument("--big", action="store_true", help="Homing on the big database (cached)")
    p.add_argument("--rate", type=float, default=1000.0, help="round trips a second")
    p.add_argument("--seconds", type=float, default=20.0, help="the measured step")
    p.add_argument("--warm", type=int, default=2, help="five-second steps before it")
    p.add_argument("--spy", action="store_true", help="py-spy the measured step")
    p.add_argument("--native", action="store_true", help="with --spy: C frames too")
    p.add_argument("--perf", action="store_true", help="perf: the server core's time, by process")
    p.add_argument("--buyers", type=int, default=1000)
    p.add_argument("--agents", type=int, default=50)
    p.add_argument("--frames-per-second", type=int, default=10000)
    p.add_argument("--log-dir", default=str(Path(__file__).parent / "results" / "steady"))
    asyncio.run(run(p.parse_args(argv)))


if __name__ == "__main__":
    main()
