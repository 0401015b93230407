"""Compliance reads: a shop's rules and their version, the flags to review, a buyer's abuse."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.compliance import rules
from app.compliance.models import ComplianceFlag, ComplianceRule, ComplianceSettings

FLAG_PAGE = 200


async def version(s: AsyncSession, shop_id: str) -> int:
    """The shop's rules version (0 before any change)."""
    found = await s.get(ComplianceSettings, shop_id)
    return found.version if found is not None else 0


async def shop_rules(s: AsyncSession, shop_id: str) -> list[ComplianceRule]:
    rows = await s.execute(
        select(ComplianceRule)
        .where(col(ComplianceRule.shop_id) == shop_id)
        .order_by(col(ComplianceRule.created_at), col(ComplianceRule.word))
    )
    return list(rows.scalars())


async def versioned_rules(s: AsyncSession, shop_id: str) -> tuple[int, list[rules.Rule]]:
    """The shop's version and its own rules (read together, so they agree)."""
    v = await version(s, shop_id)
    found = await shop_rules(s, shop_id)
    return v, [rules.Rule("shop", r.category, r.action, r.word) for r in found]


async def flags(
    s: AsyncSession, shop_id: str, *, reviewed: bool | None = None, limit: int = FLAG_PAGE
) -> list[ComplianceFlag]:
    """The shop's flags, newest first; `reviewed` False: those still to review."""
    q = select(ComplianceFlag).where(col(ComplianceFlag.shop_id) == shop_id)
    if reviewed is not None:
        q = q.where(col(ComplianceFlag.reviewed_at).is_not(None) == reviewed)
    rows = await s.execute(q.order_by(col(ComplianceFlag.created_at).desc()).limit(limit))
    return list(rows.scalars())


async def buyer_abuse_count(s: AsyncSession, conversation_id: str) -> int:
    """How many of the buyer's messages in the conversation were abusive."""
    return int(
        (
            await s.execute(
                select(func.count()).where(
                    col(ComplianceFlag.conversation_id) == conversation_id,
                    col(ComplianceFlag.sender) == "buyer",
                    col(ComplianceFlag.category) == "abuse",
                )
            )
        ).scalar_one()
    )


async def flagged_conversations(s: AsyncSession, conversation_ids: list[str]) -> set[str]:
    """Which of these conversations have an agent's message flagged (for quality inspection)."""
    if not conversation_ids:
        return set()
    rows = await s.execute(
        select(col(ComplianceFlag.conversation_id)).where(
            col(ComplianceFlag.conversation_id).in_(conversation_ids),
            col(ComplianceFlag.sender) == "agent",
        )
    )
    return set(rows.scalars())
