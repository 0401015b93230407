"""Scheduled payout work: proactive late-shipment compensation (晚发即赔, 主动服务)."""

from __future__ import annotations

import logging

from app.payouts import coupons
from app.payouts import service as payout_service
from app.scheduler import JobContext

log = logging.getLogger(__name__)

LATE_SHIPMENT_JOB = "late_shipment_coupons"
LATE_SHIPMENT_EVERY_S = 30.0
# Orders decided per run; the rest wait for the next tick (short runs, short transactions).
LATE_SHIPMENT_BATCH = 500


async def issue_late_shipment_coupons(ctx: JobContext) -> int:
    """Give every paid order past its `ship_by` its coupon; returns how many were issued.

    Safe on several workers at once: each order is claimed by a unique row in its own
    transaction, so however the workers interleave, an order is decided exactly once.
    A failure is logged with the order and retried on a later run (nothing is claimed).
    """
    now = ctx.clock.now()
    async with ctx.db.read() as s:
        due = await payout_service.late_orders_without_coupon(s, now, LATE_SHIPMENT_BATCH)
    issued = 0
    for shop_id, order_id in due:
        try:
            coupon = await ctx.db.run(
                coupons.issue_late_shipment_coupon, shop_id=shop_id, order_id=order_id, now=now
            )
        except Exception:
            log.exception(
                "late-shipment coupon for order %s of shop %s failed; will retry", order_id, shop_id
            )
            continue
        if coupon is not None and coupon.amount_cents > 0:
            issued += 1
    if issued:
        log.info("issued %d late-shipment coupons", issued)
    return issued
