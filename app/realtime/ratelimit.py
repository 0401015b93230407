"""Per-connection frame limit: at most `limit` frames in any sliding one-second window."""

from __future__ import annotations

import time
from collections import deque


class SlidingWindowLimiter:
    __slots__ = ("limit", "stamps", "window")

    def __init__(self, limit: int, window: float = 1.0) -> None:
        self.limit = max(1, limit)
        self.window = window
        self.stamps: deque[float] = deque()

    def take(self) -> bool:
        now = time.monotonic()
        while self.stamps and now - self.stamps[0] >= self.window:
            self.stamps.popleft()
        if len(self.stamps) >= self.limit:
            return False
        self.stamps.append(now)
        return True
