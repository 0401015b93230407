"""Trends of the 体验分 figures as pure functions: the shop's calendar days of a period, and
incoming conversations bucketed by weekday and hour (for staffing). Tested by tables."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time, timedelta, tzinfo

from app.errors import BadInput

# The console's charts read a day at a time; a quarter keeps the tab quick.
MAX_TREND_DAYS = 92


def days_of(start: datetime, end: datetime, zone: tzinfo) -> list[tuple[str, datetime, datetime]]:
    """The shop's calendar days that [start, end) touches: (ISO date, from, to), each
    clipped to the period."""
    days: list[tuple[str, datetime, datetime]] = []
    day = start.astimezone(zone).date()
    while True:
        lo = max(start, datetime.combine(day, time(), tzinfo=zone))
        if lo >= end:
            return days
        hi = min(end, datetime.combine(day + timedelta(days=1), time(), tzinfo=zone))
        days.append((day.isoformat(), lo, hi))
        day += timedelta(days=1)


def check_trend_period(start: datetime, end: datetime) -> None:
    if end - start > timedelta(days=MAX_TREND_DAYS):
        raise BadInput(f"Trends show at most {MAX_TREND_DAYS} days.", code="bad_period")


def heat_map(opened: Iterable[datetime], zone: tzinfo) -> list[list[int]]:
    """Counts by [weekday 0=Monday][hour 0-23] on the shop's wall clock."""
    grid = [[0] * 24 for _ in range(7)]
    for at in opened:
        local = at.astimezone(zone)
        grid[local.weekday()][local.hour] += 1
    return grid
