"""Recall rules as pure functions: intent scoring, question topics, audience reasons, the window.

Nothing here touches the database or the clock; callers pass plain values, so every
rule is tested by tables of cases.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from app.shops.minors import is_minor

CONSULTATION_WINDOW = timedelta(days=30)
CAP_WINDOW = timedelta(days=7)
DEFAULT_WINDOW = (9 * 60, 21 * 60)  # 09:00-21:00 shop time, minutes after midnight
MAX_SCORE = 100

# Words that show what a buyer asked about (Chinese and English), matched ignoring the case
# of ASCII letters (see `fold_case`).
QUESTION_WORDS: dict[str, tuple[str, ...]] = {
    "price_question": (
        "价",
        "多少钱",
        "便宜",
        "优惠",
        "折扣",
        "打折",
        "price",
        "cost",
        "discount",
        "cheaper",
        "how much",
        "coupon",
    ),
    "size_question": (
        "尺码",
        "尺寸",
        "码数",
        "大小",
        "多大",
        "合身",
        "size",
        "fit ",
        "fits",
        "measure",
    ),
    "stock_question": (
        "库存",
        "有货",
        "现货",
        "缺货",
        "没货",
        "还有吗",
        "补货",
        "in stock",
        "stock",
        "available",
        "sold out",
    ),
    "shipping_question": (
        "发货",
        "快递",
        "包邮",
        "运费",
        "物流",
        "几天到",
        "什么时候到",
        "ship",
        "delivery",
        "deliver",
        "courier",
    ),
}

# (points per occurrence, most points from this signal). Explainable: the API lists each
# signal with its count and the points it earned.
WEIGHTS: dict[str, tuple[int, int]] = {
    "cart_add": (20, 40),
    "product_card": (15, 30),
    "order_card": (10, 10),
    "price_question": (15, 15),
    "size_question": (15, 15),
    "stock_question": (15, 15),
    "shipping_question": (10, 10),
    "product_view": (3, 15),
    "repeat_consultation": (10, 20),
}
SIGNAL_ORDER = tuple(WEIGHTS)

# Why a consulting buyer is left out, in the order the reasons are tested. A minor comes
# first: no other fact makes marketing to them right.
EXCLUSION_REASONS = ("minor", "opted_out", "purchased", "low_intent", "capped")


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def fold_case(text: str) -> str:
    """ASCII letters in lower case, nothing else changed.

    The words are ASCII or Chinese, so this is all the matching needs, and it is what the
    database does identically when it scores a whole audience (SQLite's `lower()`,
    PostgreSQL's `translate()`), whatever its locale.
    """
    return text.translate(_ASCII_LOWER)


def question_topics(text: str) -> set[str]:
    """Which of price / size / stock / shipping a buyer's message asks about: a topic's
    word occurs in the message with a space added at each end ("fit " matches at the end)."""
    low = f" {fold_case(text)} "
    return {topic for topic, words in QUESTION_WORDS.items() if any(w in low for w in words)}


@dataclass
class SignalCounts:
    """What the shop saw of one buyer in the consultation window, as plain counts."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, signal: str, n: int = 1) -> None:
        self.counts[signal] = self.counts.get(signal, 0) + n


@dataclass(frozen=True)
class Signal:
    type: str
    count: int
    points: int


@dataclass(frozen=True)
class Intent:
    score: int
    signals: tuple[Signal, ...]


def score_intent(counts: dict[str, int]) -> Intent:
    """Score 0-100: each signal earns points per occurrence up to its own ceiling."""
    signals = []
    for name in SIGNAL_ORDER:
        n = counts.get(name, 0)
        if n <= 0:
            continue
        per, most = WEIGHTS[name]
        signals.append(Signal(name, n, min(per * n, most)))
    return Intent(min(MAX_SCORE, sum(s.points for s in signals)), tuple(signals))


@dataclass(frozen=True)
class AudienceFacts:
    """What decides whether one consulting buyer is in a campaign's audience."""

    score: int
    last_consulted_at: datetime
    last_order_at: datetime | None = None
    opted_out: bool = False
    last_recalled_at: datetime | None = None
    age: int | None = None  # as the buyer's identity last said; None: not said


def exclusion_reason(facts: AudienceFacts, *, min_intent: int, now: datetime) -> str | None:
    """None when the buyer is eligible, else the first reason (EXCLUSION_REASONS order)."""
    if is_minor(facts.age):
        return "minor"
    if facts.opted_out:
        return "opted_out"
    if facts.last_order_at is not None and facts.last_order_at > facts.last_consulted_at:
        return "purchased"
    if facts.score < min_intent:
        return "low_intent"
    if is_capped(facts.last_recalled_at, now):
        return "capped"
    return None


def is_capped(last_recalled_at: datetime | None, now: datetime) -> bool:
    """Recalled within the rolling 7 days before `now` (exactly 7 days ago: free again)."""
    return last_recalled_at is not None and last_recalled_at > now - CAP_WINDOW


def cap_cutoff(now: datetime) -> datetime:
    """A cap row last claimed at or before this may be claimed again."""
    return now - CAP_WINDOW


def in_window(now: datetime, zone: ZoneInfo, window: tuple[int, int]) -> bool:
    """Whether `now` falls in [start, end) minutes after local midnight in the shop's zone."""
    local = now.astimezone(zone)
    minute = local.hour * 60 + local.minute
    start, end = window
    return start <= minute < end


def valid_window(start: int, end: int) -> bool:
    return 0 <= start < end <= 24 * 60
