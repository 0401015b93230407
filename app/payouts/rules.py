"""Pure payout decisions over plain values: what a request must look like, what an agent
may pay without asking, what evidence a reason needs, what a late shipment earns.

No I/O here. `actions` loads the facts, asks these functions, and makes the answer
stick with conditional updates, since the totals may move between a read and a write.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.errors import BadInput
from app.payouts.models import REASONS

# Larger than any compensation, small enough for every integer column.
MAX_AMOUNT_CENTS = 10**10

# Reason labels for the buyer's compensation card.
REASON_LABELS = {
    "late_shipment": "晚发即赔",
    "damaged": "坏了包退",
    "price_protection": "价保差价",
    "shipping_fee": "运费补偿",
    "goodwill": "安抚补偿",
}

# 晚发即赔: the coupon a paid order earns once it is late (PRODUCT.md section 3).
LATE_COUPON_MIN_ORDER_CENTS = 300
LATE_COUPON_FLAT_CENTS = 300
LATE_COUPON_PERCENT_FROM_CENTS = 30000
LATE_COUPON_CAP_CENTS = 3000


def check_amount(amount_cents: int) -> None:
    if amount_cents <= 0:
        raise BadInput(f"Expected amount_cents > 0, but got {amount_cents}.", code="invalid_amount")
    if amount_cents > MAX_AMOUNT_CENTS:
        raise BadInput(f"amount_cents may be at most {MAX_AMOUNT_CENTS}.", code="invalid_amount")


def check_reason(reason: str) -> None:
    if reason not in REASONS:
        raise BadInput(
            f"Expected reason one of {', '.join(REASONS)}, but got {reason!r}.",
            code="invalid_reason",
        )


def needs_evidence(reason: str, *, elder: bool) -> bool:
    """`damaged` needs a photo in the conversation, except from an elder buyer (简化举证)."""
    return reason == "damaged" and not elder


@dataclass(frozen=True)
class PayoutAuthority:
    """What one agent may pay without asking anyone: per payout, and in total per day."""

    per_payout_cents: int
    daily_cents: int

    def within_payout_limit(self, amount_cents: int) -> bool:
        return amount_cents <= self.per_payout_cents

    def fits_daily(self, paid_today_cents: int, amount_cents: int) -> bool:
        """The inequality the daily counter's conditional UPDATE enforces in the database."""
        return paid_today_cents + amount_cents <= self.daily_cents

    def pays_at_once(self, amount_cents: int, paid_today_cents: int) -> bool:
        return self.within_payout_limit(amount_cents) and self.fits_daily(
            paid_today_cents, amount_cents
        )


def shop_day(now: datetime, timezone: str) -> date:
    """The calendar day in the shop's time zone: daily totals restart at the shop's midnight."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return now.astimezone(zone).date()


def request_fingerprint(
    *,
    agent_id: str,
    conversation_id: str,
    order_id: str | None,
    amount_cents: int,
    reason: str,
    note: str | None,
) -> str:
    """What makes two requests "the same" for an idempotency key: who asked, and for what."""
    body = [agent_id, conversation_id, order_id, amount_cents, reason, note]
    return hashlib.sha256(json.dumps(body, ensure_ascii=False).encode()).hexdigest()


def late_shipment_coupon_cents(order_amount_cents: int) -> int:
    """Nothing under ¥3; ¥3 from ¥3 to ¥300; from ¥300, 1% (rounded down) capped at ¥30."""
    if order_amount_cents < LATE_COUPON_MIN_ORDER_CENTS:
        return 0
    if order_amount_cents < LATE_COUPON_PERCENT_FROM_CENTS:
        return LATE_COUPON_FLAT_CENTS
    return min(order_amount_cents // 100, LATE_COUPON_CAP_CENTS)


def yuan(amount_cents: int) -> str:
    return f"¥{amount_cents // 100}.{amount_cents % 100:02d}"
