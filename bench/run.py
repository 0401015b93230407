"""`python -m bench`: run the workloads against Homing and its peers, print a table, write JSON.

Load goes only to 127.0.0.1; every loop is bounded in count and time; every server
process started here is stopped before exit. The load generator (this process) runs on
core 1, the servers on core 0 (taskset), when the machine has two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import platform
import signal
import sys
import time
from datetime import UTC, datetime
from typing import Any

from bench.common import ROOT, Figure, pin_self, raise_nofile, stop_all
from bench.workloads import WORKLOADS, RunContext

RESULTS = ROOT / "bench" / "results"


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--quick", action="store_true", help="small sizes (100 buyers, 1000 sockets, 200 openers)"
    )
    p.add_argument(
        "--only",
        default=",".join(WORKLOADS),
        help=f"comma-separated workloads, from {', '.join(WORKLOADS)}",
    )
    p.add_argument(
        "--frames-per-second",
        type=int,
        default=10000,
        help="HOMING_FRAMES_PER_SECOND for the server under load (default 10000; product default 10)",
    )
    p.add_argument(
        "--workload-timeout-s", type=float, default=1500.0, help="stop a workload after this long"
    )
    p.add_argument(
        "--nice",
        type=int,
        default=0,
        help="scheduling niceness for the load generator and the servers it starts (e.g. -10 on "
        "a shared machine, as root); other work on the machine still makes figures noisy",
    )
    p.add_argument("--no-pin", action="store_true", help="do not pin the load generator to core 1")
    for m in WORKLOADS.values():
        m.add_arguments(p)
    return p.parse_args(argv)


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def table(figures: list[Figure], *, markdown: bool = False) -> str:
    head = ["workload", "system", "metric", "value", "target", "result"]
    rows = []
    for f in figures:
        result = "-" if f.met is None else ("met" if f.met else "MISSED")
        value = f"{fmt(f.value)} {f.unit}".strip()
        rows.append([f.workload, f.system, f.metric, value, f.target or "", result])
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(out)
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))
    out = [line, "-" * len(line)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


async def amain(args: argparse.Namespace) -> int:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    if (RESULTS / f"logs-{stamp}").exists():  # another run started in the same second
        stamp += f"-{os.getpid()}"
    log_dir = RESULTS / f"logs-{stamp}"
    log_dir.mkdir(parents=True, exist_ok=True)
    ctx = RunContext(args=args, quick=args.quick, log_dir=log_dir, results_dir=RESULTS, stamp=stamp)
    nofile = raise_nofile()
    pinned = False if args.no_pin else pin_self()
    if args.nice:
        try:
            os.nice(args.nice)  # children (the servers) inherit it
        except OSError as exc:
            ctx.say(f"could not change niceness: {exc}")
    load0 = os.getloadavg()
    ctx.say(
        f"bench {stamp}: {'quick' if args.quick else 'full'} run; load generator "
        f"{'on core 1' if pinned else 'not pinned'}, servers on core 0; open files {nofile}; "
        f"HOMING_FRAMES_PER_SECOND={args.frames_per_second}; niceness {os.nice(0)}; "
        f"load average {load0[0]:.2f} (other work on the machine makes figures noisy)"
    )
    figures: list[Figure] = []
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    for name in names:
        m = WORKLOADS.get(name)
        if m is None:
            raise SystemExit(f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}")
        ctx.say(f"\n== {name}: {m.TITLE}")
        t0 = time.monotonic()
        try:
            figures += await asyncio.wait_for(m.run(ctx), args.workload_timeout_s)
        except TimeoutError:
            ctx.say(f"  {name} stopped after {args.workload_timeout_s:g}s")
            figures.append(
                Figure(name, "-", "run", None, note=f"timed out after {args.workload_timeout_s:g}s")
            )
        except Exception as exc:  # noqa: BLE001 - report and go on to the next workload
            ctx.say(f"  {name} failed: {type(exc).__name__}: {exc}")
            figures.append(Figure(name, "-", "run", None, note=f"error: {exc}"))
        ctx.say(f"  ({name} took {time.monotonic() - t0:.0f}s)")

    ctx.say("\n" + table(figures))
    for f in figures:
        if f.met is False:
            ctx.say(
                f"MISSED: {f.workload} / {f.system} / {f.metric}: {fmt(f.value)} {f.unit} (target {f.target})"
                + (f" - {f.note}" if f.note else "")
            )
    notes = [f"{f.workload} / {f.system} / {f.metric}: {f.note}" for f in figures if f.note]
    if notes:
        ctx.say("\nnotes:\n  " + "\n  ".join(notes))
    out = RESULTS / f"{stamp}.json"
    git = _git()
    out.write_text(
        json.dumps(
            {
                "stamp": stamp,
                "quick": args.quick,
                "argv": sys.argv[1:],
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "load_avg_start": load0,
                    "load_avg_end": os.getloadavg(),
                    "loadgen_pinned": pinned,
                    "niceness": os.nice(0),
                    "open_files": nofile,
                },
                "frames_per_second": args.frames_per_second,
                "git": git,
                "figures": [f.to_json() for f in figures],
                "markdown": table(figures, markdown=True),
            },
            indent=2,
            default=str,
        )
    )
    ctx.say(f"\nwrote {out.relative_to(ROOT)} (server logs in {log_dir.relative_to(ROOT)})")
    return 0


def _git() -> dict[str, Any]:
    """Which code was measured: the commit, and whether app/ had changes not yet committed."""
    import subprocess

    def out(*cmd: str) -> str:
        try:
            return subprocess.run(
                cmd, check=False, cwd=ROOT, capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {
        "head": out("git", "rev-parse", "HEAD"),
        "app_dirty": bool(out("git", "status", "--porcelain", "--", "app")),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    # SIGTERM ends the run like Ctrl-C does: workloads unwind and stop their servers.
    signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))
    atexit.register(stop_all)
    try:
        import uvloop

        code = uvloop.run(amain(args))
    except ImportError:
        code = asyncio.run(amain(args))
    raise SystemExit(code)


if __name__ == "__main__":
    main()
