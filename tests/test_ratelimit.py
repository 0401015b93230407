"""The per-socket frame limit: at most N frames in any sliding one-second window, by the injected clock."""

from __future__ import annotations

from app.clock import FrozenClock
from app.realtime.ratelimit import SlidingWindowLimiter


def test_ten_in_any_second_and_not_one_more():
    clock = FrozenClock()
    lim = SlidingWindowLimiter(10, clock)
    assert all(lim.take() for _ in range(10))
    assert not lim.take()
    clock.advance(seconds=0.999)
    assert not lim.take()  # the first ten are still inside the window
    clock.advance(seconds=0.001)
    assert all(lim.take() for _ in range(10))  # all ten left it together
    assert not lim.take()


def test_a_window_slides_one_frame_at_a_time():
    clock = FrozenClock()
    lim = SlidingWindowLimiter(3, clock)
    for _ in range(3):
        assert lim.take()
        clock.advance(seconds=0.4)  # frames at 0.0, 0.4, 0.8
    # At 1.2: the frame at 0.0 has left (1.2 s ago); 0.4 and 0.8 remain.
    assert lim.take()
    assert not lim.take()
    clock.advance(seconds=0.2)  # 1.4: the frame at 0.4 leaves
    assert lim.take()
    assert not lim.take()


def test_refused_frames_do_not_count_and_memory_stays_small():
    clock = FrozenClock()
    lim = SlidingWindowLimiter(5, clock)
    for _ in range(1000):
        lim.take()
        clock.advance(seconds=0.05)  # 20 a second offered, 5 allowed
    assert len(lim.stamps) - lim.head <= 5
    assert len(lim.stamps) <= 12  # expired times are cut away, not kept


def test_a_clock_set_back_does_not_lock_the_socket_out():
    clock = FrozenClock()
    lim = SlidingWindowLimiter(2, clock)
    assert lim.take() and lim.take() and not lim.take()
    clock.advance(hours=-1)
    assert lim.take()  # not refused for the hour until the clock is back where it was
