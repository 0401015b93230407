"""Pure after-sales decisions over plain values: what a request must look like, when
坏了包退 is still open, who gets 极速退款, what a price drop is worth (价保).

No I/O here; `actions` loads the facts, asks these, and makes the answer stick with
conditional updates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from app.aftersales.models import REFUND_TYPES, TYPES
from app.errors import BadInput
from app.payouts.rules import MAX_AMOUNT_CENTS

# 坏了包退: a damaged-goods claim must come within this long of delivery.
DAMAGE_WINDOW = timedelta(hours=24)
MAX_REASON_CHARS = 500
MAX_PHOTOS = 9
# A clean record (极速退款): no declined request, and few refunds, over this long.
RECORD_WINDOW = timedelta(days=90)
MAX_RECENT_REFUNDS = 3
DEFAULT_PROTECTION_DAYS = 30


def check_request(kind: str, amount_cents: int, reason: str, photos: int) -> None:
    if kind not in TYPES:
        raise BadInput(
            f"Expected type one of {', '.join(TYPES)}, but got {kind!r}.", code="invalid_type"
        )
    if kind in REFUND_TYPES and amount_cents <= 0:
        raise BadInput(
            f"Expected amount_cents > 0 for {kind}, but got {amount_cents}.",
            code="invalid_amount",
        )
    if amount_cents < 0 or amount_cents > MAX_AMOUNT_CENTS:
        raise BadInput(f"amount_cents must be 0 to {MAX_AMOUNT_CENTS}.", code="invalid_amount")
    if not reason.strip() or len(reason) > MAX_REASON_CHARS:
        raise BadInput(
            f"Give a reason of 1 to {MAX_REASON_CHARS} characters.", code="invalid_reason"
        )
    if photos > MAX_PHOTOS:
        raise BadInput(f"At most {MAX_PHOTOS} photos.", code="too_many_photos")


def damage_window_open(delivered_at: datetime | None, now: datetime) -> bool:
    """坏了包退 only from delivery until 24 hours after it."""
    return delivered_at is not None and delivered_at <= now <= delivered_at + DAMAGE_WINDOW


@dataclass(frozen=True)
class BuyerHistory:
    """The buyer's after-sales record in this shop over `RECORD_WINDOW`."""

    declined: int
    refunds: int

    @property
    def clean(self) -> bool:
        return self.declined == 0 and self.refunds < MAX_RECENT_REFUNDS


def fast_refund(kind: str, amount_cents: int, max_cents: int, history: BuyerHistory) -> bool:
    """极速退款: a refund-only request within the shop's amount from a buyer with a clean
    record is approved at once (max 0: the shop has it off)."""
    return kind == "refund_only" and 0 < amount_cents <= max_cents and history.clean


def price_drop_cents(
    *,
    paid_unit_cents: int | None,
    quantity: int,
    current_cents: int | None,
    paid_at: datetime,
    now: datetime,
    window_days: int,
) -> int:
    """价保: what a buyer who paid more than today's price is owed (0: nothing), within the
    shop's window after payment."""
    if paid_unit_cents is None or current_cents is None or quantity <= 0:
        return 0
    if now > paid_at + timedelta(days=window_days):
        return 0
    return max(paid_unit_cents - current_cents, 0) * quantity


def auto_price_protection(amount_cents: int, auto_cents: int) -> bool:
    """Paid without an agent up to the shop's agent-free authority; above it an agent decides."""
    return 0 < amount_cents <= auto_cents
