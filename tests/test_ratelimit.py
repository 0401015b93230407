"""The per-socket frame limit: at most N frames in any sliding one-second window."""

from __future__ import annotations

import pytest

from app.realtime import ratelimit
from app.realtime.ratelimit import SlidingWindowLimiter


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: now[0])
    return now


def test_ten_in_any_second_and_not_one_more(clock):
    lim = SlidingWindowLimiter(10)
    assert all(lim.take() for _ in range(10))
    assert not lim.take()
    clock[0] += 0.999
    assert not lim.take()  # the first ten are still inside the window
    clock[0] += 0.001
    assert all(lim.take() for _ in range(10))  # all ten left it together
    assert not lim.take()


def test_a_window_slides_one_frame_at_a_time(clock):
    lim = SlidingWindowLimiter(3)
    for _ in range(3):
        assert lim.take()
        clock[0] += 0.4  # frames at 0.0, 0.4, 0.8
    # At 1.2: the frame at 0.0 has left (1.2 s ago); 0.4 and 0.8 remain.
    assert lim.take()
    assert not lim.take()
    clock[0] += 0.2  # 1.4: the frame at 0.4 leaves
    assert lim.take()
    assert not lim.take()


def test_refused_frames_do_not_count_and_memory_stays_small(clock):
    lim = SlidingWindowLimiter(5)
    for _ in range(1000):
        lim.take()
        clock[0] += 0.05  # 20 a second offered, 5 allowed
    assert len(lim.stamps) - lim.head <= 5
    assert len(lim.stamps) <= 12  # expired times are cut away, not kept
