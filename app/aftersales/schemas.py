"""Wire shapes: an after-sales request (AFTERSALE), its ledger lines, the shop's settings,
and the data of the `aftersale.requested` / `aftersale.decided` events."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from app.aftersales.models import AfterSale, AfterSaleLedgerEntry
from app.chat.schemas import iso


def aftersale_public(a: AfterSale) -> dict[str, Any]:
    return {
        "id": a.id,
        "conversation_id": a.conversation_id,
        "order_id": a.order_id,
        "buyer_id": a.buyer_id,
        "type": a.type,
        "amount_cents": a.amount_cents,
        "reason": a.reason,
        "upload_ids": list(a.upload_ids or []),
        "status": a.status,
        "auto": a.auto,
        "decided_by": a.decided_by,
        "decision_note": a.decision_note,
        "created_at": iso(a.created_at),
        "decided_at": iso(a.decided_at),
        "completed_at": iso(a.completed_at),
    }


def event_data(a: AfterSale) -> dict[str, Any]:
    """The `data` of the `aftersale.requested` and `aftersale.decided` webhook events: the
    request as the storefront needs it to act (refund, take the return, ship an exchange)."""
    return aftersale_public(a)


def card_payload(a: AfterSale) -> dict[str, Any]:
    """The payload of an `aftersale_card` in the chat: the request and its status then."""
    return {
        "aftersale_id": a.id,
        "order_id": a.order_id,
        "type": a.type,
        "amount_cents": a.amount_cents,
        "status": a.status,
        "auto": a.auto,
        "note": a.decision_note,
    }


def ledger_public(e: AfterSaleLedgerEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": iso(e.at),
        "entry": e.entry,
        "aftersale_id": e.aftersale_id,
        "actor_kind": e.actor_kind,
        "actor_id": e.actor_id,
        "order_id": e.order_id,
        "buyer_id": e.buyer_id,
        "type": e.type,
        "amount_cents": e.amount_cents,
        "code": e.code,
        "note": e.note,
    }


class AfterSalePublic(BaseModel):
    """AFTERSALE: one after-sales request and where it stands."""

    id: str
    conversation_id: str
    order_id: str
    buyer_id: str
    type: str
    amount_cents: int
    reason: str
    upload_ids: list[str]
    status: str
    auto: bool
    decided_by: str | None
    decision_note: str | None
    created_at: str | None
    decided_at: str | None
    completed_at: str | None


class AfterSaleLedgerLine(BaseModel):
    id: int
    at: str | None
    entry: str
    aftersale_id: str | None
    actor_kind: str
    actor_id: str | None
    order_id: str | None
    buyer_id: str | None
    type: str | None
    amount_cents: int
    code: str | None
    note: str | None


class OrderRoom(BaseModel):
    """What a buyer may still ask for on one of their orders (the 申请售后 sheet)."""

    order_id: str
    amount_cents: int
    room_cents: int
    status: str
    delivered_at: str | None
    damage_window_open: bool
    # 价保: what a price drop since payment is worth now (0: nothing to claim).
    price_protection_cents: int
    tracking_line: str | None


class AfterSaleSettingsOut(BaseModel):
    fast_refund_max_cents: int
    price_protection_days: int
    price_protection_auto_cents: int


class PriceOut(BaseModel):
    product_id: str
    price_cents: int
    changed_at: str | None
