"""Quality inspection (质检) as pure functions: the scorecard, scores, the daily sample and
why a closed conversation must be reviewed. No database, no clock: callers pass values."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

DEFAULT_DAILY_SAMPLE = 3
MAX_DAILY_SAMPLE = 50
MAX_ITEMS = 20
MAX_ITEM_POINTS = 100
MAX_COMMENT = 2000
LOW_RATING = 2  # a rating of 1-2 brings a conversation to review

# The card a shop starts with; labels of these keys are translated, a shop's own are shown
# as written.
DEFAULT_SCORECARD: tuple[dict[str, Any], ...] = (
    {"key": "greeting", "label": "", "points": 10},
    {"key": "accuracy", "label": "", "points": 30},
    {"key": "attitude", "label": "", "points": 20},
    {"key": "resolution", "label": "", "points": 30},
    {"key": "compliance", "label": "", "points": 10},
)
# Which reason a conversation is reviewed for when several apply, most telling first.
REASON_ORDER = ("flag", "low_rating", "payout", "after_sales", "sample")


@dataclass(frozen=True)
class Item:
    key: str
    label: str
    points: int


def card_of(stored: Sequence[Mapping[str, Any]]) -> list[Item]:
    """The shop's card as stored (none stored: the default)."""
    return [
        Item(str(i["key"]), str(i.get("label") or ""), int(i["points"]))
        for i in (stored or DEFAULT_SCORECARD)
    ]


def check_card(items: Sequence[Item]) -> str | None:
    """Why a scorecard cannot be stored (a code), or None."""
    if not 1 <= len(items) <= MAX_ITEMS:
        return "bad_scorecard"
    keys = [i.key for i in items]
    if len(set(keys)) != len(keys):
        return "bad_scorecard"
    for i in items:
        if not (1 <= len(i.key) <= 32 and i.key.replace("_", "").isalnum()) or len(i.label) > 50:
            return "bad_scorecard"
        if not 1 <= i.points <= MAX_ITEM_POINTS:
            return "bad_scorecard"
    return None


def check_scores(card: Sequence[Item], scores: Mapping[str, int]) -> str | None:
    """Why these scores do not fit the card (a code), or None: each item scored once, 0
    to its points, nothing else."""
    if set(scores) != {i.key for i in card}:
        return "bad_scores"
    for i in card:
        v = scores[i.key]
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= i.points:
            return "bad_scores"
    return None


def totals(card: Sequence[Item], scores: Mapping[str, int]) -> tuple[int, int]:
    """(points given, points possible)."""
    return sum(scores[i.key] for i in card), sum(i.points for i in card)


def score_rate(total: int, most: int) -> float | None:
    """Points given as a fraction of the points possible (4 decimals), as metrics show rates."""
    return round(total / most, 4) if most else None


def draw_day(now: datetime, zone: ZoneInfo) -> date:
    """The day whose sample is drawn now: yesterday in the shop's time zone (a whole day)."""
    return now.astimezone(zone).date() - timedelta(days=1)


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of a calendar day in the shop's zone, as UTC instants."""
    start = datetime.combine(day, time(0), tzinfo=zone)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


def pick_sample(conversation_ids: Iterable[str], n: int, seed: str) -> list[str]:
    """`n` of the agent's conversations at random (all if fewer). The seed (agent and day)
    makes the draw the same whoever draws it."""
    ids = sorted(set(conversation_ids))
    return sorted(random.Random(seed).sample(ids, min(n, len(ids))))


def review_reason(
    *, flagged: bool, rating: int | None, paid: bool, after_sales: bool
) -> str | None:
    """Why a closed conversation must be reviewed whatever the sample, or None."""
    found = {
        "flag": flagged,
        "low_rating": rating is not None and rating <= LOW_RATING,
        "payout": paid,
        "after_sales": after_sales,
    }
    return next((r for r in REASON_ORDER if found.get(r)), None)
