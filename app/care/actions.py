"""Care rules firing on an order, once each, and a buyer answering a 回访.

Each firing first claims (shop, order, rule) by inserting its `care_actions` row: the
unique constraint lets one worker through, the others find the row and stop; on SQLite
writing first also takes the write lock before anything is read. The claim, the card and
the order's re-check happen in one transaction, so a rule no longer due rolls its claim
back and may fire later.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlmodel import col

from app.care import rules, service
from app.care.models import CareAction, CareSettings
from app.chat import notices
from app.db import UnitOfWork, insert_ignore, new_id, rowcount
from app.errors import Conflict, NotFound
from app.orders.models import Order
from app.payouts.authority import acting_agent
from app.payouts.rules import yuan
from app.shops.policy import Permission, check


class _NotDue(Exception):
    """The order moved on (news arrived, delivered, refunded) since the job listed it."""


async def _claim(
    uow: UnitOfWork, shop_id: str, order_id: str, rule: str, now: datetime
) -> CareAction | None:
    s = uow.session
    claim = await s.execute(
        insert_ignore(
            uow.dialect,
            CareAction,
            ["shop_id", "order_id", "rule"],
            {
                "id": new_id(),
                "shop_id": shop_id,
                "order_id": order_id,
                "rule": rule,
                "buyer_id": "",
                "coupon_cents": 0,
                "fired_at": now,
            },
        )
    )
    if rowcount(claim) != 1:
        return None
    return (
        await s.execute(
            select(CareAction).where(
                col(CareAction.shop_id) == shop_id,
                col(CareAction.order_id) == order_id,
                col(CareAction.rule) == rule,
            )
        )
    ).scalar_one()


async def _locked_order(uow: UnitOfWork, shop_id: str, order_id: str) -> Order | None:
    return (
        (
            await uow.session.execute(
                select(Order)
                .where(col(Order.shop_id) == shop_id, col(Order.order_id) == order_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        )
        .scalars()
        .first()
    )


async def _send(
    uow: UnitOfWork,
    action: CareAction,
    body: str,
    payload: dict[str, Any],
    now: datetime,
    conversation_id: str | None = None,
) -> None:
    card = notices.Notice(
        action.buyer_id,
        "care_card",
        body,
        {"care_id": action.id, "rule": action.rule, "order_id": action.order_id, **payload},
        conversation_id=conversation_id,
    )
    (posted,) = await notices.post(uow, action.shop_id, [card], now=now)
    action.conversation_id, action.message_id = posted.conversation_id, posted.message_id


Due = Callable[[CareSettings, Order], bool]


async def _claim_due(
    uow: UnitOfWork, shop_id: str, order_id: str, rule: str, due: Due, now: datetime
) -> tuple[CareAction, CareSettings, Order] | None:
    """Claim (order, rule) and check it is still due on the locked order; None (the claim
    rolled back) if another worker has it or it is no longer due."""
    s = uow.session
    try:
        async with s.begin_nested():
            action = await _claim(uow, shop_id, order_id, rule, now)
            if action is None:
                return None
            settings = await service.settings_of(s, shop_id)
            order = await _locked_order(uow, shop_id, order_id)
            if order is None or not due(settings, order):
                raise _NotDue
    except _NotDue:
        return None
    action.buyer_id = order.buyer_id
    return action, settings, order


async def fire_stalled(
    uow: UnitOfWork, *, shop_id: str, order_id: str, now: datetime
) -> CareAction | None:
    """Logistics stalled: tell the buyer we are on it (and give the shop's coupon), once."""

    def due(settings: CareSettings, order: Order) -> bool:
        return settings.stalled_on and rules.stalled(
            shipped_at=order.shipped_at,
            tracking_at=order.tracking_at,
            delivered_at=order.delivered_at,
            status=order.status,
            now=now,
            hours=settings.stalled_hours,
        )

    claimed = await _claim_due(uow, shop_id, order_id, "logistics_stalled", due, now)
    if claimed is None:
        return None
    action, settings, _ = claimed
    action.coupon_cents = settings.stalled_coupon_cents
    params: dict[str, Any] = {"order_id": order_id, "hours": settings.stalled_hours}
    payload: dict[str, Any] = {"notice": "care_stalled", "params": params}
    body = f"您的订单 {order_id} 物流暂时没有更新,我们正在催促快递,请放心。"
    if action.coupon_cents:
        params["amount"] = yuan(action.coupon_cents)
        payload["notice"] = "care_stalled_coupon"
        payload["coupon"] = {
            "id": action.id,
            "title": f"物流关怀 {yuan(action.coupon_cents)} 无门槛券",
            "amount_cents": action.coupon_cents,
            "min_spend_cents": 0,
            "reason": "logistics_stalled",
            "order_id": order_id,
        }
        body += f"送您一张 {yuan(action.coupon_cents)} 无门槛券。"
    await _send(uow, action, body, payload, now)
    return action


async def fire_visit(
    uow: UnitOfWork, *, shop_id: str, order_id: str, now: datetime
) -> CareAction | None:
    """回访: ask the buyer to rate the goods and the service (1-5 each), once per order."""

    def due(settings: CareSettings, order: Order) -> bool:
        return settings.visit_on and rules.visit_due(
            delivered_at=order.delivered_at, status=order.status, now=now, days=settings.visit_days
        )

    claimed = await _claim_due(uow, shop_id, order_id, "follow_up_visit", due, now)
    if claimed is None:
        return None
    action = claimed[0]
    await _send(
        uow,
        action,
        f"您的订单 {order_id} 已签收几天了,商品和服务还满意吗?请为商品和服务各打 1-5 分。",
        {"notice": "care_visit", "params": {"order_id": order_id}, "visit": True},
        now,
    )
    return action


async def apologise_for_refund(
    uow: UnitOfWork,
    *,
    shop_id: str,
    order_id: str,
    buyer_id: str,
    conversation_id: str | None,
    now: datetime,
) -> CareAction | None:
    """A refund completed: a short apology card, once per order, if the shop has it on."""
    settings = await service.settings_of(uow.session, shop_id)
    if not settings.apology_on:
        return None
    action = await _claim(uow, shop_id, order_id, "refund_apology", now)
    if action is None:
        return None
    action.buyer_id = buyer_id
    await _send(
        uow,
        action,
        f"您的订单 {order_id} 已退款,给您添麻烦了,非常抱歉。",
        {"notice": "care_apology", "params": {"order_id": order_id}},
        now,
        conversation_id=conversation_id,
    )
    return action


async def answer_visit(
    uow: UnitOfWork,
    *,
    shop_id: str,
    buyer_id: str,
    care_id: str,
    goods: int,
    service_score: int,
    now: datetime,
) -> CareAction:
    """The buyer's 回访 answer, once: goods and service, 1 to 5 each."""
    rules.check_score(goods)
    rules.check_score(service_score)
    s = uow.session
    action = await s.get(CareAction, care_id)
    if (
        action is None
        or action.shop_id != shop_id
        or action.buyer_id != buyer_id
        or action.rule != "follow_up_visit"
    ):
        raise NotFound("No such follow-up visit.")
    done = await s.execute(
        update(CareAction)
        .where(col(CareAction.id) == care_id, col(CareAction.answered_at).is_(None))
        .values(goods_score=goods, service_score=service_score, answered_at=now)
        .execution_options(synchronize_session=False)
    )
    await s.refresh(action)
    if rowcount(done) != 1:
        raise Conflict("This visit was answered already.", code="already_answered")
    return action


SETTING_FIELDS = (
    "stalled_on",
    "stalled_hours",
    "stalled_coupon_cents",
    "visit_on",
    "visit_days",
    "apology_on",
    "late_shipment_on",
)


async def save_settings(
    uow: UnitOfWork, *, admin_id: str, values: dict[str, Any], now: datetime
) -> CareSettings:
    admin = await acting_agent(uow, admin_id)
    check(admin.role, Permission.MANAGE_CARE)
    rules.check_settings(values)
    s = uow.session
    found = await s.get(CareSettings, admin.shop_id)
    if found is None:
        found = await service.settings_of(s, admin.shop_id)
        s.add(found)
    for name in SETTING_FIELDS:
        if name in values:
            setattr(found, name, values[name])
    found.updated_at = now
    return found
