"""Where the server core's time goes, counted by the kernel: `perf record -e cpu-clock`.

py-spy samples a thread whenever it is not asleep, so a thread that is ready to run but
waits for the core (behind the other node, PostgreSQL or Redis, all on core 0) is counted
in whatever Python line it stopped at: after a write that woke Redis, `writelines` looks
like a fifth of a node's time. `perf` counts only the time a thread is on the core,
whoever it is: every process on the server core, each server thread split by where its
instructions were (the interpreter, the kernel, SQLite, libc, uvloop, other C).

`bench.steady --perf` records the measured step with

    perf record -e cpu-clock -F 999 -a -C 0 -o FILE -- sleep SECONDS

and `split(perf script -F comm,pid,tid,ip,dso output, server pids, thread names)` sums
it. Thread names come from `py-spy dump` (Python threads keep their names to themselves;
the kernel calls them all `python`).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

# `perf script -F comm,pid,tid,ip,dso`: "python 24273/24273  7febe2afac5d (/usr/lib/x.so)"
_SAMPLE = re.compile(
    r"^\s*(?P<comm>.+?)\s+(?P<pid>\d+)/(?P<tid>\d+)\s+[0-9a-f]+\s+\((?P<dso>.*)\)\s*$"
)
# `py-spy dump`: 'Thread 988 (idle): "appender_0"'
_THREAD = re.compile(r'^Thread (?P<tid>\d+) \([^)]*\): "(?P<name>[^"]*)"')

DSO_CLASSES = (
    ("interpreter", ("libpython",)),
    ("kernel", ("[kernel.kallsyms]", "[vdso]")),
    ("SQLite", ("libsqlite3",)),
    ("libc", ("libc.so", "libm.so", "ld-linux")),
    ("uvloop", ("uvloop", "loop.cpython")),
)


def dso_class(dso: str) -> str:
    name = dso.rsplit("/", 1)[-1]
    for label, marks in DSO_CLASSES:
        if any(m in name for m in marks):
            return label
    return "other C" if name and name != "[unknown]" else "unknown"


def thread_names(dump: str) -> dict[int, str]:
    """tid -> Python thread name, from `py-spy dump` (native thread ids, decimal)."""
    names: dict[int, str] = {}
    for line in dump.splitlines():
        m = _THREAD.match(line.strip())
        if m:
            names[int(m["tid"])] = m["name"]
    return names


@dataclass
class Split:
    samples: int = 0
    processes: Counter[str] = field(default_factory=Counter)  # label -> samples
    threads: Counter[str] = field(default_factory=Counter)  # "server: thread" -> samples
    code: dict[str, Counter[str]] = field(default_factory=dict)  # thread -> dso class -> samples

    def share(self, n: int) -> float:
        return 100.0 * n / self.samples if self.samples else 0.0

    def lines(self, min_pct: float = 0.5) -> list[str]:
        out = [f"server core, by process (of {self.samples} samples):"]
        for label, n in self.processes.most_common():
            if self.share(n) >= min_pct:
                out.append(f"  {self.share(n):5.1f}%  {label}")
        out.append("server threads, and where their instructions were (% of the core):")
        for thread, n in self.threads.most_common():
            if self.share(n) < min_pct:
                continue
            parts = ", ".join(
                f"{kind} {self.share(k):.1f}"
                for kind, k in self.code[thread].most_common()
                if self.share(k) >= min_pct / 2
            )
            out.append(f"  {self.share(n):5.1f}%  {thread}: {parts}")
        return out


def split(script: str, servers: dict[int, str], names: dict[int, dict[int, str]]) -> Split:
    """Sum `perf script` samples of the server core.

    `servers`: pid -> label of each server process ("node 1"); `names`: pid -> tid ->
    thread name. A server's main thread is its event loop.
    """
    out = Split()
    for line in script.splitlines():
        m = _SAMPLE.match(line)
        if m is None:
            continue
        pid, tid, comm = int(m["pid"]), int(m["tid"]), m["comm"]
        out.samples += 1
        if pid in servers:
            label = servers[pid]
            out.processes[label] += 1
            if tid == pid:
                thread = f"{label}: event loop"
            else:
                thread = f"{label}: {names.get(pid, {}).get(tid, f'thread {tid}')}"
            out.threads[thread] += 1
            out.code.setdefault(thread, Counter())[dso_class(m["dso"])] += 1
        elif pid == 0:
            out.processes["idle"] += 1
        elif comm.startswith(("postgres", "postmaster")):
            out.processes["PostgreSQL"] += 1
        elif comm.startswith("redis-server"):
            out.processes["Redis"] += 1
        else:
            out.processes[f"other ({comm})"] += 1
    return out
