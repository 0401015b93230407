"""The payout ledger (append-only) and the news of each payout's change.

Every step of a payout is a line here, written in the transaction that takes the step;
a refusal is written in a transaction of its own, because the refused one rolls back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from app.db import Database, UnitOfWork
from app.errors import DomainError
from app.payouts.models import Payout, PayoutLedgerEntry
from app.payouts.schemas import payout_public
from app.realtime.topics import agent_topic, shop_staff_topic
from app.webhooks import outbox

T = TypeVar("T")

MAX_KEY_CHARS = 200


def actor_kind(actor_id: str | None) -> str:
    """An agent acted, or (no agent: None) the platform on the shop's own settings."""
    return "agent" if actor_id is not None else "platform"


def record(
    uow: UnitOfWork,
    entry: str,
    payout: Payout,
    *,
    actor_id: str | None,
    at: datetime,
    **fields: Any,
) -> None:
    """Append one line about `payout`. The ledger is only ever inserted into."""
    uow.session.add(
        PayoutLedgerEntry(
            shop_id=payout.shop_id,
            at=at,
            entry=entry,
            payout_id=payout.id,
            actor_kind=actor_kind(actor_id),
            actor_id=actor_id,
            agent_id=payout.agent_id,
            order_id=payout.order_id,
            conversation_id=payout.conversation_id,
            buyer_id=payout.buyer_id,
            amount_cents=payout.amount_cents,
            reason=payout.reason,
            idempotency_key=payout.idempotency_key,
            **fields,
        )
    )


def announce(uow: UnitOfWork, payout: Payout) -> None:
    """The requesting agent and the shop's supervisors hear of every change (after commit)."""
    topics = [shop_staff_topic(payout.shop_id)]
    if payout.agent_id is not None:
        topics.insert(0, agent_topic(payout.agent_id))
    uow.emit_many(
        topics,
        {"type": "payout.updated", "payout": payout_public(payout)},
    )


async def report(uow: UnitOfWork, event_type: str, payout: Payout, now: datetime) -> None:
    """The shop's webhooks hear of it (`payout.paid`, `payout.rejected`), in this transaction."""
    await outbox.record(
        uow, payout.shop_id, event_type, payout_public(payout), now=now, about=f"payout:{payout.id}"
    )


@dataclass(frozen=True)
class Refusal:
    """Who was refused what, for the ledger: a request (`fields` from the request) or a
    decision on `payout_id` (`note` says which). `actor_id` None: the platform was
    refused (an automatic 价保 payout the fund could not cover)."""

    shop_id: str
    actor_id: str | None
    now: datetime
    idempotency_key: str | None = None
    request_fields: dict[str, Any] | None = None
    payout_id: str | None = None
    note: str | None = None


async def run_or_record_refusal(
    db: Database,
    action: Callable[..., Awaitable[T]],
    refusal: Any,
    *,
    recorder: Callable[[UnitOfWork, Any, DomainError], Awaitable[None]] | None = None,
    **kwargs: Any,
) -> T:
    """Run `action(uow, **kwargs)` in one transaction; if a rule refuses it, write the
    refusal to the ledger in another (the refused one rolled back) and raise it again.

    `recorder(uow, refusal, error)` writes it (default: the payout ledger's
    `record_refusal`; other domains with a ledger of their own pass theirs)."""
    try:
        result: T = await db.run(action, **kwargs)
    except DomainError as exc:
        await db.run(recorder or record_refusal, refusal, exc)
        raise
    return result


async def record_refusal(uow: UnitOfWork, refusal: Refusal, error: DomainError) -> None:
    """A refused request or decision, in its own transaction (the refused one rolled back)."""
    fields: dict[str, Any] = {}
    note = refusal.note
    if refusal.payout_id is not None:
        payout = await uow.session.get(Payout, refusal.payout_id)
        if payout is not None and payout.shop_id == refusal.shop_id:
            fields = {
                "payout_id": payout.id,
                "agent_id": payout.agent_id,
                "order_id": payout.order_id,
                "conversation_id": payout.conversation_id,
                "buyer_id": payout.buyer_id,
                "amount_cents": payout.amount_cents,
                "reason": payout.reason,
            }
        else:
            note = f"{note or ''} {refusal.payout_id}".strip()  # not this shop's: keep only the id
    if refusal.request_fields is not None:
        fields = refusal.request_fields
    key = refusal.idempotency_key
    uow.session.add(
        PayoutLedgerEntry(
            shop_id=refusal.shop_id,
            at=refusal.now,
            entry="refused",
            actor_kind=actor_kind(refusal.actor_id),
            actor_id=refusal.actor_id,
            code=error.code,
            idempotency_key=(key or None) and key[:MAX_KEY_CHARS],
            note=f"{note + ': ' if note else ''}{error.message}",
            **fields,
        )
    )
