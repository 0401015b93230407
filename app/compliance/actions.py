"""Compliance state changes: the shop's rules (versioned, announced to every node), an
agent's flagged message stored with its flag, reviews of flags, and buyers who abuse agents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import col

from app.chat import actions as chat_actions
from app.chat import notices
from app.chat import service as chat_service
from app.chat.actions import Outgoing, Sent
from app.compliance import rules, service
from app.compliance.models import AbuseWarning, ComplianceFlag, ComplianceRule, ComplianceSettings
from app.db import UnitOfWork, insert_ignore, rowcount
from app.errors import BadInput, DomainError, Forbidden, NotFound
from app.realtime.topics import agent_topic, compliance_topic, shop_staff_topic
from app.shops.models import Agent
from app.shops.policy import Permission, check

# The stored body of the warning (old clients show it); readers get `payload.notice`.
ABUSE_WARNING_BODY = "请文明沟通。如继续辱骂,客服可结束本次会话。"


class ComplianceBlocked(DomainError):
    """An agent's message broke a `block` rule: refused, nothing stored."""

    code = "compliance_blocked"
    status = 422

    def __init__(self, hit: rules.Hit) -> None:
        super().__init__(
            f"This message breaks the rule {hit.code!r} ({hit.category}): {hit.matched!r}."
        )
        self.hit = hit
        self.details = blocked_details(hit)


def blocked_details(hit: rules.Hit) -> dict[str, Any]:
    """The extra fields of the `compliance_blocked` error frame (docs/protocol-notes.md)."""
    return {"rule": hit.code, "category": hit.category, "matched": hit.matched}


def flag_public(f: ComplianceFlag) -> dict[str, Any]:
    return {
        "id": f.id,
        "conversation_id": f.conversation_id,
        "message_id": f.message_id,
        "sender": f.sender,
        "sender_id": f.sender_id,
        "rule": f.code,
        "category": f.category,
        "matched": f.matched,
        "created_at": f.created_at.isoformat(),
        "reviewed_by": f.reviewed_by,
        "reviewed_at": f.reviewed_at.isoformat() if f.reviewed_at else None,
    }


async def set_rules(
    uow: UnitOfWork, admin: Agent, given: list[tuple[str, str, str]], now: datetime
) -> int:
    """Replace the shop's own rules with `given` (word, action, category); returns the new
    version. Every node's cache hears of it after commit."""
    check(admin.role, Permission.MANAGE_COMPLIANCE)
    if len(given) > rules.MAX_SHOP_RULES:
        raise BadInput(
            f"At most {rules.MAX_SHOP_RULES} rules, but got {len(given)}.", code="too_many_rules"
        )
    kept: dict[str, tuple[str, str, str]] = {}
    for word, action, category in given:
        why = rules.check_shop_word(word, action, category)
        if why is not None:
            raise BadInput(f"Rule {word[:60]!r}: {why}.", code=why)
        key = rules.fold(word)
        if key not in kept or action == rules.BLOCK:
            kept[key] = (word.strip(), action, category)
    s = uow.session
    await s.execute(delete(ComplianceRule).where(col(ComplianceRule.shop_id) == admin.shop_id))
    for word, action, category in kept.values():
        s.add(
            ComplianceRule(
                shop_id=admin.shop_id, word=word, action=action, category=category, created_at=now
            )
        )
    await s.execute(
        insert_ignore(
            uow.dialect, ComplianceSettings, ["shop_id"], {"shop_id": admin.shop_id, "version": 0}
        )
    )
    # The row lock of this UPDATE orders concurrent editors: each gets its own version.
    version = (
        await s.execute(
            update(ComplianceSettings)
            .where(col(ComplianceSettings.shop_id) == admin.shop_id)
            .values(version=col(ComplianceSettings.version) + 1, updated_at=now)
            .returning(col(ComplianceSettings.version))
        )
    ).scalar_one()
    await s.flush()
    uow.emit(
        compliance_topic(),
        {"type": "compliance.rules", "shop_id": admin.shop_id, "version": version},
    )
    return int(version)


async def _record_flag(
    uow: UnitOfWork,
    msg_conv: tuple[str, str, str],
    sender: str,
    sender_id: str,
    hit: rules.Hit,
    now: datetime,
) -> ComplianceFlag | None:
    """Store the flag of one message (once: the message id is the key); None if it was."""
    shop_id, conversation_id, message_id = msg_conv
    flag = ComplianceFlag(
        shop_id=shop_id,
        conversation_id=conversation_id,
        message_id=message_id,
        sender=sender,
        sender_id=sender_id,
        code=hit.code,
        category=hit.category,
        matched=hit.matched[:200],
        created_at=now,
    )
    return flag if await uow.add_if_new(flag) else None


async def send_flagged(
    uow: UnitOfWork,
    agent: Agent,
    conversation_id: str,
    out: Outgoing,
    hit: rules.Hit,
    now: datetime,
) -> Sent:
    """An agent's message that broke a `flag` rule: stored and sent as any, and its flag
    stored in the same transaction; the shop's supervisors hear of it."""
    sent = await chat_actions.send_from_agent(uow, agent, conversation_id, out, now)
    m = sent.message
    flag = await _record_flag(
        uow, (m.shop_id, m.conversation_id, m.id), "agent", agent.id, hit, now
    )
    if flag is not None:
        uow.emit(
            shop_staff_topic(agent.shop_id),
            {"type": "compliance.flagged", "flag": flag_public(flag)},
        )
    return sent


async def review_flag(uow: UnitOfWork, staff: Agent, flag_id: str, now: datetime) -> ComplianceFlag:
    check(staff.role, Permission.REVIEW_COMPLIANCE)
    flag = await uow.session.get(ComplianceFlag, flag_id)
    if flag is None or flag.shop_id != staff.shop_id:
        raise NotFound("No such flag.")
    if flag.reviewed_at is None:
        flag.reviewed_at, flag.reviewed_by = now, staff.id
        await uow.session.flush()
    return flag


async def record_buyer_abuse(
    uow: UnitOfWork,
    shop_id: str,
    conversation_id: str,
    message_id: str,
    buyer_id: str,
    hit: rules.Hit,
    now: datetime,
) -> str | None:
    """A buyer's stored message was abusive: record it, then do what the count calls for
    (`rules.abuse_step`): warn the buyer once, or tell the agent they may end the
    conversation and the supervisors that a buyer is abusing an agent."""
    conv = await chat_service.get_conversation(uow.session, conversation_id)
    if conv is None or conv.shop_id != shop_id:
        raise NotFound("No such conversation.")
    flag = await _record_flag(
        uow, (shop_id, conversation_id, message_id), "buyer", buyer_id, hit, now
    )
    if flag is None:
        return None  # a resent message: already counted
    count = await service.buyer_abuse_count(uow.session, conversation_id)
    step = rules.abuse_step(count)
    if step == "warn":
        won = await uow.session.execute(
            insert_ignore(
                uow.dialect,
                AbuseWarning,
                ["conversation_id"],
                {
                    "conversation_id": conversation_id,
                    "shop_id": shop_id,
                    "buyer_id": buyer_id,
                    "warned_at": now,
                },
            )
        )
        if rowcount(won) == 1:
            await notices.post(
                uow,
                shop_id,
                [
                    notices.Notice(
                        buyer_id,
                        "system",
                        ABUSE_WARNING_BODY,
                        {"notice": "abuse_warning", "params": {}},
                        conversation_id=conversation_id,
                    )
                ],
                now=now,
            )
    elif step == "may_end":
        news = {
            "type": "conversation.abuse",
            "conversation_id": conversation_id,
            "buyer_id": buyer_id,
            "agent_id": conv.agent_id,
            "count": count,
            "may_end": True,
        }
        topics = [shop_staff_topic(shop_id)]
        if conv.agent_id:
            topics.append(agent_topic(conv.agent_id))
        uow.emit_many(topics, news)
    return step


async def end_for_abuse(uow: UnitOfWork, agent: Agent, conversation_id: str, now: datetime) -> bool:
    """The agent ends a conversation whose buyer kept abusing them (reason `abuse`, which
    the satisfaction rate leaves out); refused until the buyer was abusive again after the
    warning."""
    conv = await chat_actions.conversation_for_agent(uow, agent, conversation_id)
    if not rules.may_end_for_abuse(await service.buyer_abuse_count(uow.session, conv.id)):
        raise Forbidden(
            "Only a conversation whose buyer was abusive again after a warning may be ended "
            "for abuse.",
            code="abuse_not_established",
        )
    return await chat_actions.close_conversation(uow, conv, reason="abuse", now=now)
