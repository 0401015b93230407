"""Pure care decisions: when a rule is due for an order, what the settings may be."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.errors import BadInput

MAX_HOURS = 24 * 30
MAX_DAYS = 60
MAX_COUPON_CENTS = 100_000


def last_news(shipped_at: datetime | None, tracking_at: datetime | None) -> datetime | None:
    """When the buyer last had news of a shipped order: its latest tracking, or shipment."""
    if shipped_at is None:
        return None
    return max(shipped_at, tracking_at) if tracking_at is not None else shipped_at


def stalled(
    *,
    shipped_at: datetime | None,
    tracking_at: datetime | None,
    delivered_at: datetime | None,
    status: str,
    now: datetime,
    hours: int,
) -> bool:
    """Logistics stalled: shipped, not delivered nor refunded, no news for `hours`."""
    news = last_news(shipped_at, tracking_at)
    if news is None or delivered_at is not None or status == "refunded":
        return False
    return now - news >= timedelta(hours=hours)


def visit_due(*, delivered_at: datetime | None, status: str, now: datetime, days: int) -> bool:
    """回访: `days` after delivery, unless the order was refunded."""
    if delivered_at is None or status == "refunded":
        return False
    return now - delivered_at >= timedelta(days=days)


def check_settings(values: dict[str, int | bool]) -> None:
    bounds = {
        "stalled_hours": (1, MAX_HOURS),
        "visit_days": (1, MAX_DAYS),
        "stalled_coupon_cents": (0, MAX_COUPON_CENTS),
    }
    for name, (low, high) in bounds.items():
        v = values.get(name)
        if v is not None and not (low <= int(v) <= high):
            raise BadInput(f"{name} must be {low} to {high}.", code="invalid_setting")


def check_score(score: int) -> None:
    if not 1 <= score <= 5:
        raise BadInput(f"Expected a score of 1 to 5, but got {score}.", code="invalid_score")
