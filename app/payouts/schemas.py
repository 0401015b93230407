"""Wire shapes: PAYOUT of PROTOCOL.md (plus a few fields), ledger lines, coupons."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from app.chat.schemas import iso
from app.payouts.models import LateShipmentCoupon, Payout, PayoutLedgerEntry


def payout_public(p: Payout) -> dict[str, Any]:
    return {
        "id": p.id,
        "conversation_id": p.conversation_id,
        "order_id": p.order_id,
        "buyer_id": p.buyer_id,
        "agent_id": p.agent_id,
        "amount_cents": p.amount_cents,
        "reason": p.reason,
        "status": p.status,
        "approved_by": p.approved_by,
        "created_at": iso(p.created_at),
        "note": p.note,
        "decided_at": iso(p.decided_at),
        "paid_at": iso(p.paid_at),
    }


def ledger_public(e: PayoutLedgerEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": iso(e.at),
        "entry": e.entry,
        "payout_id": e.payout_id,
        "actor_kind": e.actor_kind,
        "actor_id": e.actor_id,
        "agent_id": e.agent_id,
        "approver_id": e.approver_id,
        "order_id": e.order_id,
        "conversation_id": e.conversation_id,
        "buyer_id": e.buyer_id,
        "amount_cents": e.amount_cents,
        "reason": e.reason,
        "code": e.code,
        "note": e.note,
    }


def coupon_public(c: LateShipmentCoupon) -> dict[str, Any]:
    return {
        "id": c.id,
        "order_id": c.order_id,
        "buyer_id": c.buyer_id,
        "amount_cents": c.amount_cents,
        "conversation_id": c.conversation_id,
        "message_id": c.message_id,
        "issued_at": iso(c.issued_at),
    }


class PayoutPublic(BaseModel):
    """PAYOUT of PROTOCOL.md, with its note and when it was decided and paid."""

    id: str
    conversation_id: str
    order_id: str | None
    buyer_id: str | None
    agent_id: str | None  # None: paid by the platform without an agent (automatic 价保)
    amount_cents: int
    reason: str
    status: str
    approved_by: str | None
    created_at: str | None
    note: str | None
    decided_at: str | None
    paid_at: str | None


class LedgerLine(BaseModel):
    """One line of the append-only payout ledger."""

    id: int
    at: str | None
    entry: str
    payout_id: str | None
    actor_kind: str
    actor_id: str | None
    agent_id: str | None
    approver_id: str | None
    order_id: str | None
    conversation_id: str | None
    buyer_id: str | None
    amount_cents: int | None
    reason: str | None
    code: str | None
    note: str | None


class CouponPublic(BaseModel):
    """A late-shipment coupon (amount 0: the order was too small for one)."""

    id: str
    order_id: str
    buyer_id: str
    amount_cents: int
    conversation_id: str | None
    message_id: str | None
    issued_at: str | None


class FundOut(BaseModel):
    balance_cents: int
