"""bench.steady's stall windows: the 100 ms windows of sends whose slowest round trip took
over 30 ms, timed from the step's first send."""

from __future__ import annotations

from bench.steady import slow_windows


def test_slow_windows_are_the_windows_whose_slowest_round_trip_passed_30_ms():
    trace = [
        (100.00, 0.005),
        (100.05, 0.031),  # window 0: slow
        (100.15, 0.010),  # window 1: fast
        (100.52, 0.002),
        (100.55, 0.090),  # window 5: slow, its slowest counts
        (100.58, 0.040),
    ]
    assert [(round(s, 1), round(ms)) for s, ms in slow_windows(trace)] == [(0.0, 31), (0.5, 90)]
    assert slow_windows([]) == []


# bench.cpusplit: `perf script -F comm,pid,tid,ip,dso` lines of the server core, summed by
# process and by server thread, with thread names from `py-spy dump`.
PERF_SCRIPT = """\
          python   100/100      7febe2afac5d (/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0)
          python   100/100  ffffffff81e89082 ([kernel.kallsyms])
          python   100/100      7feb9c001a88 (/work/.venv/lib/python3.11/site-packages/uvloop/loop.cpython-311-x86_64-linux-gnu.so)
          python   100/105      7feb9c001a88 (/usr/lib/x86_64-linux-gnu/libsqlite3.so.0.8.6)
          python   100/105      7feb9c001a88 (/usr/lib/x86_64-linux-gnu/libc.so.6)
          python   100/106  ffffffff81e89082 ([kernel.kallsyms])
          python   200/200      7febe2afac5d (/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0)
        postgres   300/300      55d5d0a1b2c3 (/usr/lib/postgresql/15/bin/postgres)
    redis-server   400/400      55d5d0a1b2c3 (/usr/bin/redis-server)
         swapper     0/0    ffffffff82250979 ([kernel.kallsyms])
"""
SPY_DUMP = """\
Process 100: /work/.venv/bin/python -m app serve
Python v3.11.7 (/root/.pyenv/versions/3.11.7/bin/python3.11)

Thread 100 (idle): "MainThread"
    run (asyncio/runners.py:118)
Thread 105 (idle): "appender_0"
    _worker (concurrent/futures/thread.py:81)
Thread 106 (idle): "sqlite-checkpoint"
    wait (threading.py:324)
"""


def test_the_core_split_names_each_process_and_each_server_thread_by_where_it_ran():
    from bench.cpusplit import split, thread_names

    names = {100: thread_names(SPY_DUMP)}
    assert names[100] == {100: "MainThread", 105: "appender_0", 106: "sqlite-checkpoint"}
    s = split(PERF_SCRIPT, {100: "node 1", 200: "node 2"}, names)
    assert s.samples == 10
    assert dict(s.processes) == {
        "node 1": 6,
        "node 2": 1,
        "PostgreSQL": 1,
        "Redis": 1,
        "idle": 1,
    }
    assert dict(s.threads) == {
        "node 1: event loop": 3,
        "node 1: appender_0": 2,
        "node 1: sqlite-checkpoint": 1,
        "node 2: event loop": 1,
    }
    assert dict(s.code["node 1: event loop"]) == {"interpreter": 1, "kernel": 1, "uvloop": 1}
    assert dict(s.code["node 1: appender_0"]) == {"SQLite": 1, "libc": 1}
    lines = s.lines()
    assert "   60.0%  node 1" in lines
    assert "   30.0%  node 1: event loop: interpreter 10.0, kernel 10.0, uvloop 10.0" in lines
    assert "   20.0%  node 1: appender_0: SQLite 10.0, libc 10.0" in lines
