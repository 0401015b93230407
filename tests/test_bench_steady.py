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
