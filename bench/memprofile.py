"""Where an idle buyer socket's memory goes: RSS per socket, and tracemalloc's allocation sites.

    .venv/bin/python -m bench.memprofile [--sockets 2000] [--top 25] [--frames 25] [--no-trace]

Two passes on a fresh Homing node (SQLite, `homing serve --demo`, as the connections
workload starts it), each with 10 warm-up sockets first:

1. untraced: RSS (VmRSS) before and after `--sockets` idle buyer sockets, per socket,
   measured as the connections workload measures it;
2. traced (unless `--no-trace`): the node runs with `tracemalloc.start(--frames)`; a
   snapshot is taken (after `gc.collect()`) before and after the sockets open, and the
   growth is printed per socket, by allocation site (innermost frame) and by traceback
   (frames outside the standard library's import machinery, innermost last).

tracemalloc counts what Python allocates, not the allocator's own overhead (pymalloc
pools, malloc arenas) nor memory outside Python (uvloop's handles), so its total per
socket is below the RSS figure; the gap is printed too.

The traced node is `python -m bench.memprofile serve ...`: tracemalloc on, a thread that
takes a snapshot when a file appears, then `homing serve` as usual.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import linecache
import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

TRIGGER_ENV = "HOMING_MEMPROFILE_DIR"
FRAMES_ENV = "HOMING_MEMPROFILE_FRAMES"


# ---- the traced server ----------------------------------------------------------------
def serve(argv: list[str]) -> None:
    """`homing serve argv` with tracemalloc on and snapshots taken on request: a file
    `DIR/take-NAME` makes the node write `DIR/NAME.snap`, then `DIR/NAME.done`."""
    tracemalloc.start(int(os.environ.get(FRAMES_ENV, "25")))
    folder = Path(os.environ[TRIGGER_ENV])

    def watch() -> None:
        while True:
            for trigger in folder.glob("take-*"):
                name = trigger.name.removeprefix("take-")
                gc.collect()
                tracemalloc.take_snapshot().dump(str(folder / f"{name}.snap"))
                trigger.unlink()
                (folder / f"{name}.done").write_text("")
            time.sleep(0.2)

    threading.Thread(target=watch, name="memprofile", daemon=True).start()
    from app.cli import main

    main(["serve", *argv])


# ---- the load generator ---------------------------------------------------------------
def _system(log_dir: Path, traced: bool, frames: int, snap_dir: Path) -> Any:
    from bench.common import HOST, Proc, free_port, python, wait_http
    from bench.systems import Homing

    class Node(Homing):
        async def start(self) -> Node:
            self.port = self.port or free_port()
            head = (
                [python(), "-m", "bench.memprofile", "serve"]
                if traced
                else [
                    python(),
                    "-m",
                    "app",
                    "serve",
                ]
            )
            args = [*head, "--demo", "--port", str(self.port), "--log-level", "warning"]
            env = self.env()
            if traced:
                env[TRIGGER_ENV] = str(snap_dir)
                env[FRAMES_ENV] = str(frames)
            proc = Proc(f"homing-{self.port}", args, env=env, log_dir=self.log_dir).start()
            self.procs.append(proc)
            await wait_http(proc, f"http://{HOST}:{self.port}/healthz", self.start_timeout)
            return self

    return Node(log_dir)


async def _snapshot(snap_dir: Path, name: str, timeout: float = 300) -> tracemalloc.Snapshot:
    (snap_dir / f"take-{name}").write_text("")
    done = snap_dir / f"{name}.done"
    t0 = time.monotonic()
    while not done.exists():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"no snapshot {name} after {timeout:.0f}s")
        await asyncio.sleep(0.2)
    return await asyncio.to_thread(tracemalloc.Snapshot.load, str(snap_dir / f"{name}.snap"))


async def _pass(
    n: int, *, traced: bool, frames: int, log_dir: Path, snap_dir: Path
) -> tuple[float, int, tuple[tracemalloc.Snapshot, tracemalloc.Snapshot] | None]:
    """RSS per socket, sockets alive, and (traced) the snapshots before and after."""
    from bench.clients import Client, close_all, connect_all
    from bench.common import rss_kb

    system = _system(log_dir, traced, frames, snap_dir)
    warm = [Client(system.proto, "", None) for _ in range(10)]
    clients: list[Client] = []
    try:
        await system.start()
        for i, c in enumerate(warm):
            c.url = system.buyer_url(n + i, 1)
        await connect_all(warm)
        await asyncio.sleep(1.5)
        before = await _snapshot(snap_dir, "before") if traced else None
        rss0 = rss_kb(system.pid)
        clients = [Client(system.proto, system.buyer_url(i, 1), None) for i in range(n)]
        ok, bad, secs = await connect_all(clients, concurrency=200, timeout=60, deadline_s=600)
        await asyncio.sleep(3.0)
        alive = sum(1 for c in clients if c.alive)
        rss1 = rss_kb(system.pid)
        after = await _snapshot(snap_dir, "after") if traced else None
        print(
            f"  {'traced' if traced else 'untraced'}: {ok} connected ({bad} failed) in "
            f"{secs:.1f}s, {alive} alive; RSS {rss0 / 1024:.1f} -> {rss1 / 1024:.1f} MiB = "
            f"{(rss1 - rss0) / max(1, alive):.2f} KB/socket",
            flush=True,
        )
        snaps = (before, after) if before is not None and after is not None else None
        return (rss1 - rss0) / max(1, alive), alive, snaps
    finally:
        await close_all(clients + warm)
        system.stop()


_SKIP = ("<frozen importlib", "<frozen runpy")


def _frames(tb: tracemalloc.Traceback, root: str, depth: int) -> list[str]:
    """The traceback's frames, innermost last, shortened to paths under the repo or
    site-packages; at most `depth` of the innermost."""
    out = []
    for fr in reversed(tb):  # a Traceback runs from the oldest frame to the newest
        if fr.filename.startswith(_SKIP):
            continue
        name = fr.filename
        if name.startswith(root):
            name = name[len(root) :].lstrip("/")
        elif "site-packages/" in name:
            name = name.split("site-packages/", 1)[1]
        elif "/lib/python" in name:
            name = "stdlib/" + name.split("/lib/python", 1)[1].split("/", 1)[1]
        line = linecache.getline(fr.filename, fr.lineno).strip()
        out.append(f"{name}:{fr.lineno}  {line[:90]}")
        if len(out) >= depth:
            break
    return list(reversed(out))


def report(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, n: int, top: int) -> float:
    """Print the growth per socket by site and by traceback; return traced KB per socket."""
    root = str(Path(__file__).resolve().parent.parent)
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)]
    before, after = before.filter_traces(ignore), after.filter_traces(ignore)
    total = sum(s.size_diff for s in after.compare_to(before, "filename"))
    print(f"\n  tracemalloc growth: {total / 1024 / n:.2f} KB/socket ({total / 1024:.0f} KB)")

    print(f"\n  by file (top {top}), bytes/socket, blocks/socket:")
    for s in after.compare_to(before, "filename")[:top]:
        name = s.traceback[0].filename
        if name.startswith(root):
            name = name[len(root) :].lstrip("/")
        elif "site-packages/" in name:
            name = name.split("site-packages/", 1)[1]
        print(f"    {s.size_diff / n:8.0f} B {s.count_diff / n:6.1f}  {name}")

    print(f"\n  by site (innermost frame, top {top}), bytes/socket, blocks/socket:")
    for s in after.compare_to(before, "lineno")[:top]:
        print(
            f"    {s.size_diff / n:8.0f} B {s.count_diff / n:6.1f}  {_frames(s.traceback, root, 1)[0]}"
        )

    print(f"\n  by traceback (top {top}; innermost last):")
    for s in after.compare_to(before, "traceback")[:top]:
        print(f"    {s.size_diff / n:8.0f} B {s.count_diff / n:6.1f} blocks/socket")
        for line in _frames(s.traceback, root, 8):
            print(f"          {line}")
    return total / 1024 / n


async def amain(args: argparse.Namespace) -> None:
    import tempfile

    from bench.common import raise_nofile, stop_all

    raise_nofile()
    log_dir = Path(tempfile.mkdtemp(prefix="memprofile-logs-"))
    snap_dir = Path(tempfile.mkdtemp(prefix="memprofile-snaps-"))
    n = args.sockets
    try:
        print(f"memprofile: {n} idle buyer sockets (server logs in {log_dir})", flush=True)
        rss, alive, _ = await _pass(
            n, traced=False, frames=args.frames, log_dir=log_dir, snap_dir=snap_dir
        )
        if args.no_trace:
            return
        _, t_alive, snaps = await _pass(
            args.trace_sockets or n,
            traced=True,
            frames=args.frames,
            log_dir=log_dir,
            snap_dir=snap_dir,
        )
        assert snaps is not None
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for snap in ("before.snap", "after.snap"):
                (snap_dir / snap).replace(args.keep / snap)
            (args.keep / "sockets").write_text(str(t_alive))
        traced = report(*snaps, max(1, t_alive), args.top)
        print(
            f"\n  summary: RSS {rss:.2f} KB/socket ({alive} sockets, untraced); "
            f"tracemalloc {traced:.2f} KB/socket; not traced (allocator, C) {rss - traced:.2f}"
        )
    finally:
        stop_all()
        for left in snap_dir.glob("*"):
            left.unlink(missing_ok=True)
        snap_dir.rmdir()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(sys.argv[2:])
        return
    p = argparse.ArgumentParser(prog="python -m bench.memprofile", description=__doc__)
    p.add_argument("--sockets", type=int, default=2000, help="idle buyer sockets (default 2000)")
    p.add_argument("--top", type=int, default=25, help="rows per table")
    p.add_argument("--frames", type=int, default=25, help="tracemalloc frames kept")
    p.add_argument("--no-trace", action="store_true", help="the RSS pass only")
    p.add_argument(
        "--trace-sockets", type=int, help="sockets of the traced pass (default --sockets)"
    )
    p.add_argument("--keep", type=Path, help="keep the traced pass's snapshots in this folder")
    p.add_argument("--report", type=Path, help="only print the report of snapshots kept by --keep")
    args = p.parse_args()
    if args.report:
        n = int((args.report / "sockets").read_text())
        before, after = (
            tracemalloc.Snapshot.load(str(args.report / snap))
            for snap in ("before.snap", "after.snap")
        )
        report(before, after, n, args.top)
        return
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
