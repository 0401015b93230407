"""Summarise a py-spy `--format raw` (collapsed stacks) file: where the server's CPU went.

python -m bench.profile_summary bench/results/profile-XXXX.txt.raw
"""

from __future__ import annotations

import re
import sys
from collections import Counter

_LINE = re.compile(r"^(?P<fn>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    """`fn (path/to/site-packages/pkg/mod.py:12)` -> `pkg/mod.py:fn`."""
    m = _LINE.match(frame.strip())
    if not m:
        return frame.strip()
    path = m.group("file")
    for marker in ("site-packages/", "/lib/python3", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/lib/python3":
                path = "stdlib/" + path.split("/", 1)[-1]
            break
    else:
        # A checkout elsewhere (a worktree): the project's own files from app/ or bench/.
        own = re.search(r"/((?:app|bench)/.*)$", path)
        if own:
            path = own.group(1)
    return f"{path}:{m.group('fn')}"


def _package(short: str) -> str:
    path = short.split(":", 1)[0]
    if path.endswith("asyncio/runners.py"):
        return "event loop itself (uvloop, C: I/O and callbacks)"
    parts = path.split("/")
    if parts[0] == "stdlib" and len(parts) > 2:
        parts = parts[1:]
    if parts[0] in ("asyncio", "json", "concurrent", "logging", "importlib") or len(parts) == 1:
        return "stdlib" + ("/" + parts[0] if len(parts) > 1 else "")
    return parts[0]


def summarize(raw: str, *, top: int = 20) -> str:
    self_t: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    app_incl: Counter[str] = Counter()
    pkg: Counter[str] = Counter()
    thread: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [
            _short(f) for f in stack.split(";") if f and not f.startswith(("process ", "thread "))
        ]
        if not frames:
            continue
        total += n
        self_t[frames[-1]] += n
        pkg[_package(frames[-1])] += n
        thread[
            "aiosqlite worker thread"
            if "aiosqlite/core.py:_connection_worker_thread" in frames
            else "other threads"
            if frames[0].split(":", 1)[0].endswith("threading.py")
            else "event-loop thread"
        ] += n
        seen = set(frames)
        for f in seen:
            incl[f] += n
            if f.startswith("app/"):
                app_incl[f] += n
    if not total:
        return "profile: no samples\n"

    def table(title: str, c: Counter[str]) -> list[str]:
        rows = [f"{title} (of {total} samples of a busy server thread)"]
        rows += [f"  {v / total * 100:5.1f}%  {k}" for k, v in c.most_common(top)]
        return rows

    out = table("by thread", thread) + [""] + table("self time by package", pkg) + [""]
    out += table("self time", self_t) + [""] + table("inclusive, Homing code (app/)", app_incl)
    out += [""] + table("inclusive, everything", incl)
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    with open(sys.argv[1]) as fh:
        print(summarize(fh.read(), top=int(sys.argv[2]) if len(sys.argv) > 2 else 25))
