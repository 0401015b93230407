"""The 3-minute reply rate leaves out the shop's closed hours (app/metrics/rules.py), by a table."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.metrics.rules import ConversationScore, Said, score_conversation
from app.routing.hours_rules import clock_start, parse_schedule

SH = ZoneInfo("Asia/Shanghai")
# Open 09:00-21:00 every day.
HOURS = parse_schedule(
    {d: [["09:00", "21:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}, []
)
T0 = datetime(2026, 12, 7, 20, 50, tzinfo=SH)  # a Monday, 10 minutes before closing
NEXT_OPEN = (datetime(2026, 12, 8, 9, 0, tzinfo=SH) - T0).total_seconds()  # 36600 s later


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def closed_hours_clock(moment: datetime) -> datetime:
    return clock_start(HOURS, SH, moment)


B, A = "buyer", "agent"
# (case, assigned_at seconds, messages, (judged, answered, first response s))
CASES = [
    ("open hours: as before", 0, [(B, 0), (A, 100)], (1, 1, 100.0)),
    (
        "asked after closing, answered 2 min after opening: counts as answered",
        0,
        [(B, 1200), (A, NEXT_OPEN + 120)],
        (1, 1, 120.0),
    ),
    (
        "asked after closing, answered 4 min after opening: too late",
        0,
        [(B, 1200), (A, NEXT_OPEN + 240)],
        (1, 0, 240.0),
    ),
    (
        "asked after closing, answered by an agent working late: answered, 0 s first response",
        0,
        [(B, 1200), (A, 1300)],
        (1, 1, 0.0),
    ),
    (
        "asked before closing and answered overnight: the open minutes count",
        0,
        [(B, 500), (A, NEXT_OPEN + 10)],
        (1, 0, NEXT_OPEN - 490),
    ),
    (
        "a 留言 assigned when the shop opens: clocked from the assignment",
        NEXT_OPEN + 30,
        [(B, 1200), (B, 1500), (A, NEXT_OPEN + 60)],
        (2, 2, 30.0),
    ),
]


@pytest.mark.parametrize(
    ("assigned", "messages", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_closed_hours_do_not_count_against_the_reply_rate(assigned, messages, expected):
    got = score_conversation(
        at(assigned), [Said(s, at(t)) for s, t in messages], clock_start=closed_hours_clock
    )
    assert got == ConversationScore(*expected)


def test_without_hours_the_rule_is_unchanged():
    # The same conversation, no schedule: asked at closing + 20 min, answered next morning.
    got = score_conversation(at(0), [Said(B, at(1200)), Said(A, at(NEXT_OPEN + 120))])
    assert got == ConversationScore(1, 0, NEXT_OPEN + 120 - 1200)
