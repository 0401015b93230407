"""Per-connection frame limit: at most `limit` frames in any sliding one-second window."""

from __future__ import annotations

import time


class SlidingWindowLimiter:
    """Exact sliding window over the times of recent frames.

    A plain list with a moving start (not a deque, whose first block costs ~760 bytes):
    an idle socket keeps only the few times of its last second, and the list is cut
    down whenever its expired head is longer than what is still in the window.
    """

    __slots__ = ("head", "limit", "stamps", "window")

    def __init__(self, limit: int, window: float = 1.0) -> None:
        self.limit = max(1, limit)
        self.window = window
        self.stamps: list[float] = []
        self.head = 0  # stamps[:head] have left the window

    def take(self) -> bool:
        now = time.monotonic()
        stamps, head = self.stamps, self.head
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
