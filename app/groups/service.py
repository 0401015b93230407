"""Reads for fan groups, who may see what, and the wire shapes (GROUP, group MSG, GIVEAWAY)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import desc, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.chat.schemas import iso
from app.errors import DomainError, NotFound
from app.groups import rules
from app.groups.models import (
    MEMBER_ACTIVE,
    MEMBER_REMOVED,
    Giveaway,
    Group,
    GroupMember,
    GroupMessage,
    GroupSensitiveWord,
)
from app.shops.identities import BuyerIdentity, Caller
from app.shops.models import Buyer

PAGE = 500


class NotMember(DomainError):
    code = "not_member"
    status = 403


def caller_shop(caller: Caller) -> str:
    return caller.shop_id


def group_public(g: Group, member: GroupMember | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": g.id,
        "name": g.name,
        "max_members": g.max_members,
        "member_count": g.member_count,
        "last_seq": g.last_seq,
        "muted_until": iso(g.muted_until),
        "created_at": iso(g.created_at),
    }
    if member is not None:
        out["member_status"] = member.status
        out["my_muted_until"] = iso(member.muted_until)
    return out


def message_public(m: GroupMessage) -> dict[str, Any]:
    """PROTOCOL MSG with `group_id`; `conversation_id` is null for group messages."""
    return {
        "id": m.id,
        "conversation_id": None,
        "group_id": m.group_id,
        "seq": m.seq,
        "sender": m.sender,
        "sender_id": m.sender_id,
        "kind": m.kind,
        "body": m.body,
        "payload": m.payload or {},
        "created_at": iso(m.created_at),
        "client_msg_id": m.client_msg_id,
    }


def giveaway_public(gw: Giveaway) -> dict[str, Any]:
    return {
        "id": gw.id,
        "group_id": gw.group_id,
        "title": gw.title,
        "quantity": gw.quantity,
        "claimed": gw.claimed,
        "remaining": gw.quantity - gw.claimed,
        "coupon": gw.coupon,
        "created_at": iso(gw.created_at),
    }


async def group_in_shop(s: AsyncSession, shop_id: str, group_id: str) -> Group:
    """The group, if it is this shop's; another shop's looks exactly like a missing one."""
    g = await s.get(Group, group_id)
    if g is None or g.shop_id != shop_id:
        raise NotFound("No such group.")
    return g


async def membership(s: AsyncSession, group_id: str, buyer_id: str) -> GroupMember | None:
    return await s.get(GroupMember, (group_id, buyer_id))


async def active_member(s: AsyncSession, group: Group, buyer_id: str) -> GroupMember:
    """The buyer's membership in force; anyone else is refused (403 not_member)."""
    m = await membership(s, group.id, buyer_id)
    if m is None or m.status != MEMBER_ACTIVE:
        if m is not None and m.status == MEMBER_REMOVED:
            raise NotMember("You were removed from this group.")
        raise NotMember("Join the group first.")
    return m


async def readable_group(s: AsyncSession, caller: Caller, group_id: str) -> Group:
    """A group the caller may read: any agent of the shop, or an active member."""
    g = await group_in_shop(s, caller.shop_id, group_id)
    if isinstance(caller, BuyerIdentity):
        await active_member(s, g, caller.buyer_id)
    return g


async def messages_after(
    s: AsyncSession, group_id: str, after_seq: int, limit: int = PAGE
) -> list[GroupMessage]:
    rows = await s.execute(
        select(GroupMessage)
        .where(col(GroupMessage.group_id) == group_id, col(GroupMessage.seq) > after_seq)
        .order_by(col(GroupMessage.seq))
        .limit(limit)
    )
    return list(rows.scalars())


def sees_offers(caller: Caller) -> bool:
    """Staff see everything; a buyer sees giveaways unless their identity says they are a minor."""
    return not isinstance(caller, BuyerIdentity) or rules.sees_offers(caller.age)


async def history(
    s: AsyncSession, caller: Caller, group_id: str, after_seq: int, limit: int = PAGE
) -> list[dict[str, Any]]:
    """Up to `limit` messages after `after_seq` the caller may see, oldest first. Hidden
    offers are skipped by reading on, so a short page still means the end."""
    g = await readable_group(s, caller, group_id)
    if sees_offers(caller):
        return [message_public(m) for m in await messages_after(s, g.id, after_seq, limit)]
    shown: list[dict[str, Any]] = []
    while len(shown) < limit:
        rows = await messages_after(s, g.id, after_seq, limit)
        shown += [message_public(m) for m in rows if not rules.is_offer(m.kind, m.payload)]
        if len(rows) < limit:
            break
        after_seq = rows[-1].seq
    return shown[:limit]


async def groups_for(
    s: AsyncSession, caller: Caller, *, all_of_shop: bool = False
) -> list[dict[str, Any]]:
    """Agents: the shop's groups. Buyers: their groups, or with `all_of_shop` every group
    of their shop (to find one to join), each with their membership if any."""
    if isinstance(caller, BuyerIdentity):
        q = (
            select(Group, GroupMember)
            .join(
                GroupMember,
                (col(GroupMember.group_id) == col(Group.id))
                & (col(GroupMember.buyer_id) == caller.buyer_id),
                isouter=all_of_shop,
            )
            .where(col(Group.shop_id) == caller.shop_id)
            .order_by(col(Group.created_at), col(Group.id))
        )
        if not all_of_shop:
            q = q.where(col(GroupMember.status) == MEMBER_ACTIVE)
        return [group_public(g, m) for g, m in (await s.execute(q)).all()]
    rows = await s.execute(
        select(Group)
        .where(col(Group.shop_id) == caller.shop_id)
        .order_by(col(Group.created_at), col(Group.id))
    )
    return [group_public(g) for g in rows.scalars()]


async def active_group_ids(s: AsyncSession, shop_id: str, buyer_id: str) -> list[str]:
    rows = await s.execute(
        select(col(GroupMember.group_id)).where(
            col(GroupMember.shop_id) == shop_id,
            col(GroupMember.buyer_id) == buyer_id,
            col(GroupMember.status) == MEMBER_ACTIVE,
        )
    )
    return list(rows.scalars())


async def groups_by_ids(
    s: AsyncSession, group_ids: list[str], buyer_id: str
) -> list[dict[str, Any]]:
    if not group_ids:
        return []
    rows = await s.execute(
        select(Group, GroupMember)
        .join(
            GroupMember,
            (col(GroupMember.group_id) == col(Group.id)) & (col(GroupMember.buyer_id) == buyer_id),
        )
        .where(col(Group.id).in_(group_ids))
        .order_by(col(Group.created_at), col(Group.id))
    )
    return [group_public(g, m) for g, m in rows.all()]


async def sensitive_words(s: AsyncSession, shop_id: str) -> list[str]:
    rows = await s.execute(
        select(col(GroupSensitiveWord.word))
        .where(col(GroupSensitiveWord.shop_id) == shop_id)
        .order_by(col(GroupSensitiveWord.word))
    )
    return list(rows.scalars())


async def giveaway_in_shop(
    s: AsyncSession, shop_id: str, giveaway_id: str, caller: Caller | None = None
) -> Giveaway:
    """The shop's giveaway; to a minor (`caller`) none exists: they may not see or claim it."""
    gw = await s.get(Giveaway, giveaway_id)
    if gw is None or gw.shop_id != shop_id or (caller is not None and not sees_offers(caller)):
        raise NotFound("No such giveaway.")
    return gw


async def active_members(
    s: AsyncSession, group_id: str, limit: int = PAGE
) -> list[tuple[GroupMember, str]]:
    """The group's members in force, first joined first, with the name their token gave."""
    rows = await s.execute(
        select(GroupMember, col(Buyer.name))
        .join(
            Buyer,
            (col(Buyer.shop_id) == col(GroupMember.shop_id))
            & (col(Buyer.id) == col(GroupMember.buyer_id)),
            isouter=True,
        )
        .where(col(GroupMember.group_id) == group_id, col(GroupMember.status) == MEMBER_ACTIVE)
        .order_by(col(GroupMember.joined_at), col(GroupMember.buyer_id))
        .limit(limit)
    )
    return [(m, name or "") for m, name in rows.all()]


async def giveaways_of_group(s: AsyncSession, group_id: str) -> list[Giveaway]:
    rows = await s.execute(
        select(Giveaway)
        .where(col(Giveaway.group_id) == group_id)
        .order_by(desc(col(Giveaway.created_at)), col(Giveaway.id))
    )
    return list(rows.scalars())


async def latest_messages(s: AsyncSession, group_id: str, limit: int = 30) -> list[GroupMessage]:
    """The group's last `limit` messages, oldest first."""
    rows = await s.execute(
        select(GroupMessage)
        .where(col(GroupMessage.group_id) == group_id)
        .order_by(desc(col(GroupMessage.seq)))
        .limit(limit)
    )
    return list(reversed(list(rows.scalars())))
