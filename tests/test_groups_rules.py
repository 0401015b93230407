"""The pure rules of fan groups, by tables of cases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.groups import rules

D = date(2026, 3, 10)
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("last_day", "last_streak", "today", "streak"),
    [
        (None, 0, D, 1),  # first check-in
        (D - timedelta(days=1), 4, D, 5),  # yesterday continues
        (D - timedelta(days=2), 4, D, 1),  # a missed day resets
        (date(2026, 2, 28), 7, date(2026, 3, 1), 8),  # across a month end
    ],
)
def test_next_streak(last_day, last_streak, today, streak):
    assert rules.next_streak(last_day, last_streak, today) == streak


@pytest.mark.parametrize(
    ("utc", "day"),
    [
        (datetime(2026, 3, 1, 15, 59, tzinfo=UTC), date(2026, 3, 1)),  # 23:59 Shanghai
        (datetime(2026, 3, 1, 16, 0, tzinfo=UTC), date(2026, 3, 2)),  # 00:00 Shanghai
    ],
)
def test_local_day_is_the_shops_calendar(utc, day):
    assert rules.local_day(utc, ZoneInfo("Asia/Shanghai")) == day


@pytest.mark.parametrize(
    ("group", "member", "expected"),
    [
        (None, None, None),
        (NOW - timedelta(minutes=1), None, None),  # expired
        (NOW + timedelta(minutes=5), None, NOW + timedelta(minutes=5)),
        (NOW + timedelta(minutes=5), NOW + timedelta(minutes=9), NOW + timedelta(minutes=9)),
        (None, NOW + timedelta(minutes=1), NOW + timedelta(minutes=1)),
        (None, NOW, None),  # ends exactly now
    ],
)
def test_muted_until(group, member, expected):
    assert rules.muted_until(NOW, group, member) == expected


@pytest.mark.parametrize(
    ("body", "words", "found"),
    [
        ("加我微信", ["微信"], "微信"),
        ("my VX id", ["vx"], "vx"),
        ("hello", ["vx", "微信"], None),
        ("anything", [], None),
    ],
)
def test_find_sensitive(body, words, found):
    assert rules.find_sensitive(body, words) == found


def test_normalise_words_trims_and_dedupes_case_insensitively():
    assert rules.normalise_words([" VX ", "vx", "", "微信", "微信"]) == ["VX", "微信"]


@pytest.mark.parametrize(
    ("kind", "payload", "offer"),
    [
        ("giveaway", {"giveaway": {"id": "g1"}}, True),
        ("system", {"giveaway_id": "g1", "sold_out": True}, True),
        ("text", {}, False),
        ("text", None, False),
        ("system", {"notice": "muted"}, False),
    ],
)
def test_is_offer(kind, payload, offer) -> None:
    assert rules.is_offer(kind, payload) is offer


@pytest.mark.parametrize(
    ("age", "sees"), [(None, True), (18, True), (40, True), (17, False), (12, False), (0, False)]
)
def test_minors_see_no_offers(age, sees) -> None:
    assert rules.sees_offers(age) is sees
