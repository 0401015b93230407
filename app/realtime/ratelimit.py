"""Per-connection frame limit: at most `limit` frames in any sliding one-second window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.clock import Clock

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class SlidingWindowLimiter:
    """Exact sliding window over the times of recent frames, read from the injected clock.

    A plain list with a moving start (not a deque, whose first block costs ~760 bytes):
    an idle socket keeps only the few times of its last second, and the list is cut
    down whenever its expired head is longer than what is still in the window.
    """

    __slots__ = ("clock", "head", "limit", "stamps", "window")

    def __init__(self, limit: int, clock: Clock, window: float = 1.0) -> None:
        self.limit = max(1, limit)
        self.clock = clock
        self.window = round(window * 1_000_000)  # whole microseconds: exact arithmetic
        self.stamps: list[int] = []
        self.head = 0  # stamps[:head] have left the window

    def take(self) -> bool:
        now = (self.clock.now() - _EPOCH) // _MICROSECOND
        stamps, head = self.stamps, self.head
        if stamps and now < stamps[-1]:
            # The clock was set back: what was counted lies in the future; start afresh
            # rather than refuse every frame until the clock catches up.
            stamps.clear()
            head = 0
        while head < len(stamps) and now - stamps[head] >= self.window:
            head += 1
        if head and head * 2 >= len(stamps):
            del stamps[:head]
            head = 0
        self.head = head
        if len(stamps) - head >= self.limit:
            return False
        stamps.append(now)
        return True
