"""Recall rules by tables: question topics, intent scores, audience reasons, the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.recall import rules

T0 = datetime(2026, 11, 11, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai


# Also run through the database by tests/test_recall.py, which must find the same topics.
QUESTION_CASES = [
    ("这个多少钱?", {"price_question"}),
    ("有优惠吗", {"price_question"}),
    ("What's the PRICE with the discount?", {"price_question"}),
    ("L 码尺码偏大吗", {"size_question"}),
    ("Does it fit a size 42?", {"size_question"}),
    ("Will it FIT", {"size_question"}),  # "fit " at the very end
    ("还有货吗", {"stock_question"}),
    ("Is it in stock?", {"stock_question"}),
    ("100% 有货_吗", {"stock_question"}),  # LIKE's wildcards are plain characters here
    ("什么时候发货?包邮吗", {"shipping_question"}),
    ("how long is delivery", {"shipping_question"}),
    ("有现货吗?几天到?", {"stock_question", "shipping_question"}),
    ("STOC\u212a", set()),  # only ASCII letters fold: the Kelvin sign is not a K
    ("你好", set()),
    ("谢谢", set()),
]


@pytest.mark.parametrize(("text", "topics"), QUESTION_CASES)
def test_question_topics(text: str, topics: set[str]) -> None:
    assert rules.question_topics(text) == topics


@pytest.mark.parametrize(
    ("counts", "score", "points"),
    [
        ({}, 0, {}),
        ({"product_view": 1}, 3, {"product_view": 3}),
        ({"product_view": 50}, 15, {"product_view": 15}),  # each signal has a ceiling
        ({"cart_add": 1, "product_card": 1}, 35, {"cart_add": 20, "product_card": 15}),
        ({"cart_add": 5}, 40, {"cart_add": 40}),
        (
            {"price_question": 3, "size_question": 1},
            30,
            {"price_question": 15, "size_question": 15},
        ),
        (
            {"repeat_consultation": 1, "order_card": 2},
            20,
            {"repeat_consultation": 10, "order_card": 10},
        ),
        (
            {
                "cart_add": 3,
                "product_card": 3,
                "price_question": 1,
                "stock_question": 1,
                "shipping_question": 1,
                "product_view": 9,
                "repeat_consultation": 4,
            },
            100,  # 40+30+15+15+10+15+20 = 145, at most 100
            {
                "cart_add": 40,
                "product_card": 30,
                "price_question": 15,
                "stock_question": 15,
                "shipping_question": 10,
                "product_view": 15,
                "repeat_consultation": 20,
            },
        ),
    ],
)
def test_score_intent_lists_the_signals_that_made_it(counts, score, points) -> None:
    intent = rules.score_intent(counts)
    assert intent.score == score
    assert {s.type: s.points for s in intent.signals} == points
    assert all(s.count == counts[s.type] for s in intent.signals)


def facts(**kw) -> rules.AudienceFacts:
    return rules.AudienceFacts(**{"score": 60, "last_consulted_at": T0 - timedelta(days=1), **kw})


@pytest.mark.parametrize(
    ("f", "reason"),
    [
        (facts(), None),
        (facts(score=49), "low_intent"),
        (facts(score=50), None),
        (facts(opted_out=True, score=0), "opted_out"),
        (facts(last_order_at=T0 - timedelta(hours=1)), "purchased"),  # after the consultation
        (facts(last_order_at=T0 - timedelta(days=2)), None),  # before it: still a prospect
        (facts(last_recalled_at=T0 - timedelta(days=6, hours=23)), "capped"),
        (facts(last_recalled_at=T0 - timedelta(days=7)), None),  # exactly 7 days: free again
        (facts(last_recalled_at=T0, score=10), "low_intent"),
        (facts(last_recalled_at=T0, last_order_at=T0), "purchased"),
        # A minor is left out before any other reason, whatever their intent.
        (facts(age=17), "minor"),
        (facts(age=0, opted_out=True, score=0), "minor"),
        (facts(age=17, last_recalled_at=T0), "minor"),
        (facts(age=18), None),
        (facts(age=None), None),
        (facts(age=18, score=10), "low_intent"),
    ],
)
def test_exclusion_reason(f: rules.AudienceFacts, reason: str | None) -> None:
    assert rules.exclusion_reason(f, min_intent=50, now=T0) == reason


SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("utc_hour_minute", "window", "open_"),
    [
        ((0, 59), rules.DEFAULT_WINDOW, False),  # 08:59 Shanghai
        ((1, 0), rules.DEFAULT_WINDOW, True),  # 09:00
        ((12, 59), rules.DEFAULT_WINDOW, True),  # 20:59
        ((13, 0), rules.DEFAULT_WINDOW, False),  # 21:00
        ((18, 0), (0, 1440), True),  # 02:00, the demo shop's all-day window
    ],
)
def test_sending_window_in_shop_time(utc_hour_minute, window, open_) -> None:
    h, m = utc_hour_minute
    assert rules.in_window(T0.replace(hour=h, minute=m), SHANGHAI, window) is open_


def test_windows_must_be_a_range_of_the_day() -> None:
    assert rules.valid_window(0, 1440) and rules.valid_window(540, 1260)
    assert not rules.valid_window(600, 600) and not rules.valid_window(-1, 10)
    assert not rules.valid_window(0, 1441)
