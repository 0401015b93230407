"""Service hours as pure functions: is the shop open at t, and when does it next open.

A schedule is a weekly plan (ranges per weekday) and dated exceptions (a holiday closed
all day, 大促 extended hours) that replace the weekly plan for their date. Everything is
read on the shop's wall clock (`zone`); comparisons are made in UTC, so a zone with
daylight saving is judged by the real instant, not by the wall time.

- A range is `[start, end)` in "HH:MM" ("24:00" ends at midnight). `end <= start` is an
  overnight range: it runs from `start` on its day to `end` on the next day.
- A day's hours are its exception's, if it has one (an empty list: closed all day), else
  its weekday's.
- An empty weekly plan means open all day every day (as a shop without hours always was);
  exceptions still close or limit their dates. No weekly hours and no exceptions: always open.

No I/O. `app.routing.hours` loads a shop's schedule and calls these.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from app.errors import BadInput

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_RANGES_PER_DAY = 6
MAX_EXCEPTIONS = 400
MAX_AUTO_REPLY = 500
# How far ahead `next_opening` looks: long enough for any holiday (春节 is about 9 days).
LOOKAHEAD_DAYS = 62

Range = tuple[time, time | None]  # end None: "24:00", midnight at the end of the day
ALL_DAY: tuple[Range, ...] = ((time(0, 0), None),)


@dataclass(frozen=True)
class Schedule:
    weekly: Mapping[str, tuple[Range, ...]] = field(default_factory=dict)
    exceptions: Mapping[date, tuple[Range, ...]] = field(default_factory=dict)

    @property
    def always_open(self) -> bool:
        return not any(self.weekly.values()) and not self.exceptions

    def hours_on(self, day: date) -> tuple[Range, ...]:
        if day in self.exceptions:
            return self.exceptions[day]
        if not any(self.weekly.values()):
            return ALL_DAY
        return self.weekly.get(DAYS[day.weekday()], ())


def _intervals(
    schedule: Schedule, zone: tzinfo, first: date, days: int
) -> Iterator[tuple[datetime, datetime]]:
    """Open intervals (UTC) of the ranges that start on `first` .. `first + days - 1`."""
    for n in range(days):
        day = first + timedelta(days=n)
        for start, end in schedule.hours_on(day):
            opens = datetime.combine(day, start, tzinfo=zone)
            if end is None or end <= start:
                closes = datetime.combine(day + timedelta(days=1), end or time(0, 0), tzinfo=zone)
            else:
                closes = datetime.combine(day, end, tzinfo=zone)
            yield opens.astimezone(UTC), closes.astimezone(UTC)


def is_open(schedule: Schedule, zone: tzinfo, at: datetime) -> bool:
    """Whether the shop is within its service hours at the instant `at` (aware)."""
    if schedule.always_open:
        return True
    moment = at.astimezone(UTC)
    # Yesterday's overnight ranges may still be running.
    first = at.astimezone(zone).date() - timedelta(days=1)
    return any(o <= moment < c for o, c in _intervals(schedule, zone, first, 2))


def next_opening(schedule: Schedule, zone: tzinfo, at: datetime) -> datetime | None:
    """`at` if open then, else the next instant the shop opens (UTC); None if not within
    `LOOKAHEAD_DAYS` (closed for good, as far as the schedule says)."""
    if is_open(schedule, zone, at):
        return at.astimezone(UTC)
    moment = at.astimezone(UTC)
    first = at.astimezone(zone).date() - timedelta(days=1)
    starts = [o for o, _ in _intervals(schedule, zone, first, LOOKAHEAD_DAYS + 1) if o > moment]
    return min(starts) if starts else None


def clock_start(schedule: Schedule, zone: tzinfo, at: datetime) -> datetime:
    """When a question asked at `at` starts to count against anyone: at once while open,
    else when the shop next opens (the closed hours are nobody's delay)."""
    return next_opening(schedule, zone, at) or at


# ---- reading and writing the wire shape ------------------------------------------------


def _time_of(text: Any, where: str, *, end: bool) -> time | None:
    if not isinstance(text, str) or len(text) != 5 or text[2] != ":":
        raise BadInput(f"Expected {where} as HH:MM, but got {text!r}.", code="bad_hours")
    if end and text == "24:00":
        return None
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise BadInput(f"Expected {where} as HH:MM, but got {text!r}.", code="bad_hours") from None


def parse_ranges(raw: Any, where: str) -> tuple[Range, ...]:
    """[["09:00", "21:00"], ["22:00", "02:00"]] -> ranges; BadInput (422) when malformed."""
    if not isinstance(raw, list) or len(raw) > MAX_RANGES_PER_DAY:
        raise BadInput(
            f"Expected {where} as a list of at most {MAX_RANGES_PER_DAY} [start, end] pairs.",
            code="bad_hours",
        )
    ranges: list[Range] = []
    for pair in raw:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise BadInput(f"Expected each range of {where} as [start, end].", code="bad_hours")
        start = _time_of(pair[0], f"{where} start", end=False)
        end = _time_of(pair[1], f"{where} end", end=True)
        assert start is not None  # a start is never "24:00"
        if end == start:
            raise BadInput(f"A range of {where} is empty ({pair[0]}–{pair[1]}).", code="bad_hours")
        ranges.append((start, end))
    return tuple(sorted(ranges, key=lambda r: r[0]))


def parse_schedule(weekly: Any, exceptions: Any) -> Schedule:
    """The API's `weekly` and `exceptions` as a Schedule (BadInput when malformed)."""
    if not isinstance(weekly, Mapping):
        raise BadInput("Expected 'weekly' as an object of weekday -> ranges.", code="bad_hours")
    unknown = sorted(set(weekly) - set(DAYS))
    if unknown:
        raise BadInput(
            f"Expected weekdays among {', '.join(DAYS)}, but got {', '.join(map(str, unknown))}.",
            code="bad_hours",
        )
    plan = {d: parse_ranges(weekly[d], d) for d in DAYS if weekly.get(d)}
    if not isinstance(exceptions, list) or len(exceptions) > MAX_EXCEPTIONS:
        raise BadInput(
            f"Expected 'exceptions' as a list of at most {MAX_EXCEPTIONS} dates.",
            code="bad_hours",
        )
    dated: dict[date, tuple[Range, ...]] = {}
    for item in exceptions:
        if not isinstance(item, Mapping):
            raise BadInput('Expected each exception as {"date", "hours"}.', code="bad_hours")
        try:
            day = date.fromisoformat(str(item.get("date")))
        except ValueError:
            raise BadInput(
                f"Expected an exception's date as 2026-10-01, but got {item.get('date')!r}.",
                code="bad_hours",
            ) from None
        if day in dated:
            raise BadInput(f"The date {day.isoformat()} is listed twice.", code="bad_hours")
        dated[day] = parse_ranges(item.get("hours", []), day.isoformat())
    return Schedule(weekly=plan, exceptions=dict(sorted(dated.items())))


def _hhmm(t: time | None) -> str:
    return "24:00" if t is None else t.strftime("%H:%M")


def ranges_wire(ranges: Iterable[Range]) -> list[list[str]]:
    return [[_hhmm(s), _hhmm(e)] for s, e in ranges]


def schedule_wire(schedule: Schedule) -> dict[str, Any]:
    """The schedule as the API and the stored JSON show it."""
    return {
        "weekly": {d: ranges_wire(schedule.weekly.get(d, ())) for d in DAYS},
        "exceptions": [
            {"date": day.isoformat(), "hours": ranges_wire(r)}
            for day, r in sorted(schedule.exceptions.items())
        ],
    }


def check_auto_reply(text: Any) -> str:
    if text is None:
        return ""
    if not isinstance(text, str) or len(text) > MAX_AUTO_REPLY:
        raise BadInput(
            f"Expected 'auto_reply' as text of at most {MAX_AUTO_REPLY} characters.",
            code="bad_hours",
        )
    return text.strip()


# Why a waiting buyer is told nobody can answer now (`conversation.queued` "reason").
OUTSIDE_HOURS = "outside_hours"
NO_AGENT_ONLINE = "no_agent_online"


def waiting_reason(open_now: bool, agents_online: int) -> str | None:
    """Outside the service hours, or in them with no agent of the queue online; else None."""
    if not open_now:
        return OUTSIDE_HOURS
    if agents_online == 0:
        return NO_AGENT_ONLINE
    return None


def ranges_text(ranges: Sequence[Range]) -> str:
    """ "09:00-12:00, 13:00-21:00" (the console's editing form)."""
    return ", ".join(f"{_hhmm(s)}-{_hhmm(e)}" for s, e in ranges)


def parse_ranges_text(text: str, where: str) -> list[list[str]]:
    """The console's "09:00-12:00, 22:00-02:00" as wire pairs (checked by parse_ranges later)."""
    pairs: list[list[str]] = []
    for part in text.replace("，", ",").split(","):
        part = part.strip()
        if not part:
            continue
        start, sep, end = part.partition("-")
        if not sep:
            raise BadInput(f"Expected {where} as 09:00-21:00, but got {part!r}.", code="bad_hours")
        pairs.append([start.strip(), end.strip()])
    return pairs
