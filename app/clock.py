"""The one source of "now": injected wherever a rule depends on time, so tests can move it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    """Wall-clock UTC time. Rules call `now()`, never `datetime.now()` directly."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock(Clock):
    """A clock tests set and advance by hand; starts at real time unless told otherwise."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, **kwargs: float) -> datetime:
        self._now += timedelta(**kwargs)
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when


class OffsetClock(Clock):
    """Real time plus an adjustable offset: time keeps flowing, and tests can jump ahead."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **kwargs: float) -> datetime:
        self.offset += timedelta(**kwargs)
        return self.now()
