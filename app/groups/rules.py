"""Pure rules of fan groups: check-in streaks over calendar days, mutes, sensitive words,
and who sees the group's offers (giveaways are marketing: never to minors)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.shops.minors import is_minor

DEFAULT_MAX_MEMBERS = 500
MAX_MEMBERS_LIMIT = 100_000
MAX_WORDS = 1000
MAX_WORD_CHARS = 100
MAX_MUTE_MINUTES = 60 * 24 * 365


def local_day(now: datetime, zone: ZoneInfo) -> date:
    """The calendar day `now` falls on in the shop's time zone."""
    return now.astimezone(zone).date()


def next_streak(last_day: date | None, last_streak: int, today: date) -> int:
    """The streak a check-in on `today` makes, given the latest earlier check-in.

    Yesterday continues the streak; any older day (or none) starts again at 1.
    """
    if last_day is not None and last_day == today - timedelta(days=1):
        return last_streak + 1
    return 1


def muted_until(
    now: datetime, group_until: datetime | None, member_until: datetime | None
) -> datetime | None:
    """When the mute in force for this member ends (the later of group and member), or None."""
    active = [u for u in (group_until, member_until) if u is not None and u > now]
    return max(active) if active else None


def normalise_words(words: Iterable[str]) -> list[str]:
    """Trimmed, de-duplicated (case-insensitively), in the order given."""
    seen: set[str] = set()
    out: list[str] = []
    for w in words:
        w = w.strip()
        if w and w.casefold() not in seen:
            seen.add(w.casefold())
            out.append(w)
    return out


def find_sensitive(body: str, words: Iterable[str]) -> str | None:
    """The first configured word the body contains (case-insensitive), or None."""
    folded = body.casefold()
    for w in words:
        if w and w.casefold() in folded:
            return w
    return None


def is_offer(kind: str, payload: dict[str, Any] | None) -> bool:
    """A group message that markets: a giveaway, or the notice that one ran out."""
    return kind == "giveaway" or bool((payload or {}).get("giveaway_id"))


def sees_offers(age: int | None) -> bool:
    """Whether a member whose identity says `age` is shown giveaways and may claim them."""
    return not is_minor(age)
