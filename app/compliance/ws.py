"""Compliance on the chat sockets: an agent's message screened before it is stored, a
buyer's checked for abuse after. Thin: the rules are in `rules`, the changes in `actions`."""

from __future__ import annotations

from typing import Any

from app.chat.actions import Outgoing
from app.chat.visibility import buyer_sees
from app.compliance import actions, rules
from app.context import AppContext
from app.shops.identities import BuyerIdentity
from app.shops.models import Agent


async def screen_agent_message(ctx: AppContext, agent: Agent, out: Outgoing) -> rules.Hit | None:
    """Raise `ComplianceBlocked` for a message a `block` rule refuses; the `flag` hit of a
    message to store with its flag; None for a clean one (the common path, unchanged)."""
    # What only staff read (internal notes) is not the buyer's to be protected from.
    if not buyer_sees(out.kind) or not out.body:
        return None
    verdict = await ctx.compliance.check(agent.shop_id, out.body)
    blocked = verdict.blocked
    if blocked is not None:
        raise actions.ComplianceBlocked(blocked)
    return verdict.flagged


async def after_buyer_message(
    ctx: AppContext, buyer: BuyerIdentity, out: Outgoing, stored: dict[str, Any]
) -> None:
    """A buyer's stored message: if abusive, record it and do what the count calls for."""
    if out.kind != "text" or not out.body:
        return
    hit = (await ctx.compliance.check(buyer.shop_id, out.body)).of("abuse")
    if hit is None:
        return
    await ctx.db.run(
        actions.record_buyer_abuse,
        buyer.shop_id,
        stored["conversation_id"],
        stored["id"],
        buyer.buyer_id,
        hit,
        ctx.clock.now(),
    )
