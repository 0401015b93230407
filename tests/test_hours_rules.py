"""Service hours by tables: open at t, next opening, the metrics' clock start (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from app.errors import BadInput
from app.routing.hours_rules import (
    clock_start,
    is_open,
    next_opening,
    parse_ranges_text,
    parse_schedule,
    schedule_wire,
    waiting_reason,
)

SH = ZoneInfo("Asia/Shanghai")  # UTC+8 all year, no daylight saving
NY = ZoneInfo("America/New_York")  # daylight saving: 2026-03-08 02:00 jumps to 03:00

# Mon-Fri 09:00-21:00; Saturday overnight 20:00-02:00; Sunday closed.
WEEK = parse_schedule(
    {
        "mon": [["09:00", "21:00"]],
        "tue": [["09:00", "21:00"]],
        "wed": [["09:00", "12:00"], ["13:00", "21:00"]],
        "thu": [["09:00", "21:00"]],
        "fri": [["09:00", "21:00"]],
        "sat": [["20:00", "02:00"]],
    },
    [
        {"date": "2026-10-01", "hours": []},  # 国庆: closed
        {"date": "2026-11-11", "hours": [["00:00", "24:00"]]},  # 双11 (a Wednesday): all day
    ],
)
ALWAYS = parse_schedule({}, [])
HOLIDAY_ONLY = parse_schedule({}, [{"date": "2026-10-01", "hours": []}])


def sh(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


# (schedule, local time in Shanghai, open?, next opening in Shanghai)
CASES = [
    (WEEK, "2026-12-07 08:59:59", False, "2026-12-07 09:00"),  # Monday before opening
    (WEEK, "2026-12-07 09:00:00", True, "2026-12-07 09:00:00"),  # opening counts as open
    (WEEK, "2026-12-07 20:59:59", True, "2026-12-07 20:59:59"),
    (WEEK, "2026-12-07 21:00:00", False, "2026-12-08 09:00"),  # closing is closed
    (WEEK, "2026-12-09 12:30:00", False, "2026-12-09 13:00"),  # Wednesday lunch break
    (WEEK, "2026-12-11 22:00:00", False, "2026-12-12 20:00"),  # Friday night -> Saturday 20:00
    (WEEK, "2026-12-12 23:30:00", True, "2026-12-12 23:30:00"),  # Saturday overnight range
    (WEEK, "2026-12-13 01:59:00", True, "2026-12-13 01:59:00"),  # ... runs into Sunday
    (WEEK, "2026-12-13 02:00:00", False, "2026-12-14 09:00"),  # Sunday closed -> Monday
    (WEEK, "2026-09-30 22:00:00", False, "2026-10-02 09:00"),  # holiday skipped (Thu 10-01)
    (WEEK, "2026-10-01 10:00:00", False, "2026-10-02 09:00"),  # closed on the holiday
    (WEEK, "2026-11-11 03:00:00", True, "2026-11-11 03:00:00"),  # 双11 all day
    (WEEK, "2026-11-11 23:59:00", True, "2026-11-11 23:59:00"),
    (ALWAYS, "2026-12-13 03:00:00", True, "2026-12-13 03:00:00"),  # no schedule: always open
    (HOLIDAY_ONLY, "2026-10-01 12:00:00", False, "2026-10-02 00:00"),  # 24/7 but the holiday
    (HOLIDAY_ONLY, "2026-10-02 00:00:00", True, "2026-10-02 00:00:00"),
]


@pytest.mark.parametrize(("schedule", "local", "open_", "opens"), CASES)
def test_open_and_next_opening(schedule, local, open_, opens) -> None:
    at = sh(local)
    assert is_open(schedule, SH, at) is open_
    assert next_opening(schedule, SH, at) == sh(opens).astimezone(UTC)
    # The metrics' clock of a question asked then.
    assert clock_start(schedule, SH, at) == sh(opens).astimezone(UTC)


def test_the_instant_decides_not_the_wall_time_across_daylight_saving() -> None:
    every_day = parse_schedule({d: [["01:00", "04:00"]] for d in ("sat", "sun", "mon")}, [])
    # 2026-03-08 (Sunday) 02:30 does not exist in New York; 03:30 EDT is 07:30 UTC.
    assert is_open(every_day, NY, datetime(2026, 3, 8, 7, 30, tzinfo=UTC))
    # 04:00 EDT = 08:00 UTC: closed; next is Monday 01:00 EDT = 05:00 UTC.
    at = datetime(2026, 3, 8, 8, 0, tzinfo=UTC)
    assert not is_open(every_day, NY, at)
    assert next_opening(every_day, NY, at) == datetime(2026, 3, 9, 5, 0, tzinfo=UTC)


def test_a_schedule_never_open_has_no_next_opening() -> None:
    mondays = [{"date": f"2026-{m}", "hours": []} for m in ("12-14", "12-21", "12-28")]
    mondays += [{"date": f"2027-01-{d:02d}", "hours": []} for d in (4, 11, 18, 25)]
    mondays += [{"date": f"2027-02-{d:02d}", "hours": []} for d in (1, 8)]
    closed = parse_schedule({"mon": [["09:00", "10:00"]]}, mondays)
    assert next_opening(closed, SH, sh("2026-12-07 12:00:00")) is None
    assert clock_start(closed, SH, sh("2026-12-07 12:00:00")) == sh("2026-12-07 12:00:00")


@pytest.mark.parametrize(
    ("weekly", "exceptions"),
    [
        ({"monday": [["09:00", "21:00"]]}, []),  # unknown weekday
        ({"mon": [["9:00", "21:00"]]}, []),  # not HH:MM
        ({"mon": [["09:00", "25:00"]]}, []),
        ({"mon": [["24:00", "02:00"]]}, []),  # 24:00 only ends a range
        ({"mon": [["09:00", "09:00"]]}, []),  # empty range
        ({"mon": [["09:00"]]}, []),
        ({"mon": "09:00-21:00"}, []),
        ({}, [{"date": "2026-13-01", "hours": []}]),
        ({}, [{"date": "2026-10-01", "hours": []}, {"date": "2026-10-01", "hours": []}]),
        ([], []),
    ],
)
def test_malformed_schedules_are_refused(weekly, exceptions) -> None:
    with pytest.raises(BadInput):
        parse_schedule(weekly, exceptions)


def test_the_wire_shape_round_trips() -> None:
    wire = schedule_wire(WEEK)
    assert wire["weekly"]["sat"] == [["20:00", "02:00"]]
    assert wire["weekly"]["sun"] == []
    assert wire["exceptions"][1] == {"date": "2026-11-11", "hours": [["00:00", "24:00"]]}
    assert parse_schedule(wire["weekly"], wire["exceptions"]) == WEEK


@pytest.mark.parametrize(
    ("open_now", "online", "reason"),
    [
        (True, 1, None),
        (True, 0, "no_agent_online"),
        (False, 0, "outside_hours"),
        (False, 3, "outside_hours"),
    ],
)
def test_waiting_reason(open_now, online, reason) -> None:
    assert waiting_reason(open_now, online) == reason


def test_console_text_of_ranges() -> None:
    assert parse_ranges_text("09:00-12:00， 13:00-21:00,", "mon") == [
        ["09:00", "12:00"],
        ["13:00", "21:00"],
    ]
    with pytest.raises(BadInput):
        parse_ranges_text("09:00", "mon")
