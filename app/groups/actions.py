"""Fan-group state changes: membership under a member limit, gap-free group messages,
check-in streaks, giveaways that never over-issue, and moderation.

Every limit that must hold under concurrency is held by the database: conditional
updates of counters (`member_count`, `claimed`, `last_seq`) and primary keys
(one membership, one check-in a day, one claim per member).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped
from sqlmodel import SQLModel, col

from app.db import UnitOfWork, append_numbered, rowcount, table_of
from app.errors import BadInput, Conflict, DomainError, NotFound
from app.groups import rules
from app.groups.models import (
    MEMBER_ACTIVE,
    MEMBER_LEFT,
    MEMBER_REMOVED,
    Giveaway,
    GiveawayClaim,
    Group,
    GroupCheckin,
    GroupMember,
    GroupMessage,
    GroupSensitiveWord,
)
from app.groups.service import (
    Caller,
    NotMember,
    active_member,
    giveaway_in_shop,
    giveaway_public,
    group_in_shop,
    group_public,
    membership,
    message_public,
    sensitive_words,
)
from app.realtime.topics import buyer_topic, group_offers_topic, group_topic
from app.shops.identities import BuyerIdentity
from app.shops.models import Agent, Shop
from app.shops.policy import Permission, check
from app.shops.service import shop_zone
from app.webhooks import outbox
from app.webhooks.rules import coupon_data


class GroupFull(DomainError):
    code = "group_full"
    status = 409


class Muted(DomainError):
    code = "muted"
    status = 403


class SensitiveWord(DomainError):
    code = "sensitive_word"
    status = 422


class SoldOut(DomainError):
    code = "sold_out"
    status = 409


class AlreadyClaimed(DomainError):
    code = "already_claimed"
    status = 409


@dataclass
class SentToGroup:
    message: GroupMessage
    duplicate: bool


# ---- groups and membership ---------------------------------------------------------


async def create_group(
    uow: UnitOfWork, admin: Agent, name: str, max_members: int, now: datetime
) -> Group:
    check(admin.role, Permission.MANAGE_GROUPS, "Only the shop's admin may create groups.")
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise BadInput("A group name is 1 to 100 characters.", code="bad_name")
    if not 1 <= max_members <= rules.MAX_MEMBERS_LIMIT:
        raise BadInput(
            f"max_members must be 1 to {rules.MAX_MEMBERS_LIMIT}, but got {max_members}.",
            code="bad_max_members",
        )
    g = Group(shop_id=admin.shop_id, name=name, max_members=max_members, created_at=now)
    uow.session.add(g)
    await uow.session.flush()
    return g


async def _count_one_more(
    uow: UnitOfWork, model: type[SQLModel], row_id: str, counter: Mapped[int], limit: Mapped[int]
) -> int | None:
    """`counter + 1` on the row, only while it is below `limit` (both columns of `model`);
    the new count, or None at the limit. The row lock makes the limit exact under races."""
    return (
        await uow.session.execute(
            update(model)
            .where(table_of(model).c.id == row_id, counter < limit)
            .values({counter: counter + 1})
            .returning(counter)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()


async def _take_seat(uow: UnitOfWork, group_id: str) -> None:
    """Count one more member, or refuse."""
    taken = await _count_one_more(
        uow, Group, group_id, col(Group.member_count), col(Group.max_members)
    )
    if taken is None:
        raise GroupFull("This group is full.")


async def _free_seat(uow: UnitOfWork, group_id: str) -> None:
    await uow.session.execute(
        update(Group)
        .where(col(Group.id) == group_id, col(Group.member_count) > 0)
        .values(member_count=col(Group.member_count) - 1)
        .execution_options(synchronize_session=False)
    )


async def join_group(
    uow: UnitOfWork, buyer: BuyerIdentity, group_id: str, now: datetime
) -> dict[str, Any]:
    """Make the buyer a member (idempotent); 409 group_full past the limit, 403 if removed."""
    s = uow.session
    g = await group_in_shop(s, buyer.shop_id, group_id)
    m = await membership(s, g.id, buyer.buyer_id)
    if m is not None and m.status == MEMBER_REMOVED:
        raise NotMember("You were removed from this group and cannot rejoin it.")
    if m is None or m.status != MEMBER_ACTIVE:
        if m is None:
            member = GroupMember(
                group_id=g.id,
                buyer_id=buyer.buyer_id,
                shop_id=buyer.shop_id,
                status=MEMBER_ACTIVE,
                joined_at=now,
            )
            if not await uow.add_if_new(member):
                # Another request of this buyer joined a moment ago: that one counts.
                return await _joined(uow, g, buyer)
        else:
            rejoined = await _move_member(
                uow,
                g.id,
                buyer.buyer_id,
                MEMBER_LEFT,
                status=MEMBER_ACTIVE,
                joined_at=now,
                muted_until=None,
            )
            if not rejoined:
                return await _joined(uow, g, buyer)
        await _take_seat(uow, g.id)
        await s.refresh(g)
        m = await membership(s, g.id, buyer.buyer_id)
        await s.refresh(m)
    assert m is not None
    public = group_public(g, m)
    # The buyer's sockets (on every node) start listening to the group.
    uow.emit(
        buyer_topic(buyer.shop_id, buyer.buyer_id),
        {"type": "group.joined", "group": public, "subscribe": member_topics(g.id, buyer)},
    )
    return public


def member_topics(group_id: str, buyer: BuyerIdentity) -> list[str]:
    """The topics a member's sockets listen to: the group's, and its offers' unless a minor."""
    topics = [group_topic(group_id)]
    if rules.sees_offers(buyer.age):
        topics.append(group_offers_topic(group_id))
    return topics


async def _joined(uow: UnitOfWork, g: Group, buyer: BuyerIdentity) -> dict[str, Any]:
    m = await membership(uow.session, g.id, buyer.buyer_id)
    if m is None or m.status != MEMBER_ACTIVE:
        raise Conflict("Joining raced with leaving; please retry.")
    await uow.session.refresh(g)
    return group_public(g, m)


async def _move_member(
    uow: UnitOfWork, group_id: str, buyer_id: str, from_status: str, **values: Any
) -> bool:
    """Update the membership only if its status is `from_status` as stored now (the row
    lock decides between racing requests); True if it was."""
    result = await uow.session.execute(
        update(GroupMember)
        .where(
            col(GroupMember.group_id) == group_id,
            col(GroupMember.buyer_id) == buyer_id,
            col(GroupMember.status) == from_status,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


async def _end_membership(
    uow: UnitOfWork, g: Group, buyer_id: str, status: str, reason: str
) -> bool:
    """Mark the member left or removed; frees the seat if they were active. True if it changed."""
    if await _move_member(uow, g.id, buyer_id, MEMBER_ACTIVE, status=status):
        await _free_seat(uow, g.id)
    elif status == MEMBER_REMOVED:
        # One who had left is removed too: they may not rejoin.
        if not await _move_member(uow, g.id, buyer_id, MEMBER_LEFT, status=status):
            return False
    else:
        return False
    uow.emit(
        buyer_topic(g.shop_id, buyer_id),
        {
            "type": "group.left",
            "group_id": g.id,
            "reason": reason,
            "unsubscribe": [group_topic(g.id), group_offers_topic(g.id)],
        },
    )
    return True


async def leave_group(uow: UnitOfWork, buyer: BuyerIdentity, group_id: str) -> None:
    g = await group_in_shop(uow.session, buyer.shop_id, group_id)
    await active_member(uow.session, g, buyer.buyer_id)
    await _end_membership(uow, g, buyer.buyer_id, MEMBER_LEFT, "left")


async def remove_member(uow: UnitOfWork, staff: Agent, group_id: str, buyer_id: str) -> None:
    """Remove a buyer for good: they can no longer read, post or rejoin."""
    check(
        staff.role,
        Permission.MODERATE_GROUPS,
        "Only the shop's supervisors and admins may remove group members.",
    )
    g = await group_in_shop(uow.session, staff.shop_id, group_id)
    m = await membership(uow.session, g.id, buyer_id)
    if m is None:
        raise DomainError("That buyer is not in this group.", code="not_found", status=404)
    await _end_membership(uow, g, buyer_id, MEMBER_REMOVED, "removed")


async def mute(
    uow: UnitOfWork, staff: Agent, group_id: str, buyer_id: str | None, minutes: int, now: datetime
) -> dict[str, Any]:
    """Mute one member, or the whole group (no buyer), for `minutes`; 0 lifts the mute."""
    check(
        staff.role,
        Permission.MODERATE_GROUPS,
        "Only the shop's supervisors and admins may mute in groups.",
    )
    if not 0 <= minutes <= rules.MAX_MUTE_MINUTES:
        raise BadInput(
            f"minutes must be 0 to {rules.MAX_MUTE_MINUTES}, but got {minutes}.", code="bad_minutes"
        )
    s = uow.session
    g = await group_in_shop(s, staff.shop_id, group_id)
    until = now + timedelta(minutes=minutes) if minutes else None
    frame = {
        "type": "group.muted",
        "group_id": g.id,
        "buyer_id": buyer_id,
        "until": until.isoformat() if until else None,
    }
    if buyer_id is None:
        await s.execute(
            update(Group)
            .where(col(Group.id) == g.id)
            .values(muted_until=until)
            .execution_options(synchronize_session=False)
        )
        uow.emit(group_topic(g.id), frame)
    else:
        await active_member(s, g, buyer_id)
        await s.execute(
            update(GroupMember)
            .where(col(GroupMember.group_id) == g.id, col(GroupMember.buyer_id) == buyer_id)
            .values(muted_until=until)
            .execution_options(synchronize_session=False)
        )
        uow.emit(buyer_topic(g.shop_id, buyer_id), frame)
    return {"group_id": g.id, "buyer_id": buyer_id, "until": frame["until"]}


async def set_sensitive_words(uow: UnitOfWork, admin: Agent, words: list[str]) -> list[str]:
    check(admin.role, Permission.MANAGE_GROUPS, "Only the shop's admin may set sensitive words.")
    clean = rules.normalise_words(words)
    if len(clean) > rules.MAX_WORDS or any(len(w) > rules.MAX_WORD_CHARS for w in clean):
        raise BadInput(
            f"At most {rules.MAX_WORDS} words of at most {rules.MAX_WORD_CHARS} characters.",
            code="bad_words",
        )
    s = uow.session
    await s.execute(
        delete(GroupSensitiveWord).where(col(GroupSensitiveWord.shop_id) == admin.shop_id)
    )
    s.add_all([GroupSensitiveWord(shop_id=admin.shop_id, word=w) for w in clean])
    await s.flush()
    return await sensitive_words(s, admin.shop_id)


# ---- messages ----------------------------------------------------------------------


async def append_group_message(
    uow: UnitOfWork,
    g: Group,
    *,
    sender: str,
    sender_id: str | None,
    kind: str,
    body: str,
    payload: dict[str, Any] | None,
    now: datetime,
    client_msg_id: str | None = None,
) -> tuple[GroupMessage, bool]:
    """Store a message as the group's next `seq` and fan it out to the group after commit.

    The conditional `UPDATE ... RETURNING last_seq` row-locks the group, so concurrent
    senders get consecutive numbers; the savepoint undoes the increment if the insert
    loses an idempotency race, so no number is skipped. Returns (message, duplicate).
    """
    counter = (
        update(Group)
        .where(col(Group.id) == g.id)
        .values(last_seq=col(Group.last_seq) + 1)
        .returning(col(Group.last_seq))
    )

    async def original() -> GroupMessage | None:
        if client_msg_id is None:
            return None
        return await _find_sent(uow, g.id, sender, sender_id, client_msg_id)

    stored = await append_numbered(
        uow,
        counter,
        lambda row: GroupMessage(
            shop_id=g.shop_id,
            group_id=g.id,
            seq=row.last_seq,
            sender=sender,
            sender_id=sender_id,
            kind=kind,
            body=body,
            payload=payload or {},
            client_msg_id=client_msg_id,
            created_at=now,
        ),
        find_duplicate=original,
        missing=NotFound("No such group."),
    )
    if stored.duplicate:
        return stored.item, True
    msg = stored.item
    # Offers go only to the members who may see them (minors' sockets do not listen there).
    topic = group_offers_topic(g.id) if rules.is_offer(kind, payload) else group_topic(g.id)
    uow.emit(topic, {"type": "group.message", "message": message_public(msg)})
    return msg, False


async def _find_sent(
    uow: UnitOfWork, group_id: str, sender: str, sender_id: str | None, client_msg_id: str
) -> GroupMessage | None:
    rows = await uow.session.execute(
        select(GroupMessage).where(
            col(GroupMessage.group_id) == group_id,
            col(GroupMessage.sender) == sender,
            col(GroupMessage.sender_id) == sender_id,
            col(GroupMessage.client_msg_id) == client_msg_id,
        )
    )
    return rows.scalars().first()


async def send_to_group(
    uow: UnitOfWork, caller: Caller, group_id: str, client_msg_id: str, body: str, now: datetime
) -> SentToGroup:
    """A member's (or an agent's) text into the group: membership, mutes and words checked here."""
    s = uow.session
    g = await group_in_shop(s, caller.shop_id, group_id)
    if isinstance(caller, BuyerIdentity):
        sender, sender_id = "buyer", caller.buyer_id
        member = await active_member(s, g, caller.buyer_id)
        dup = await _find_sent(uow, g.id, sender, sender_id, client_msg_id)
        if dup is not None:
            return SentToGroup(dup, True)
        until = rules.muted_until(now, g.muted_until, member.muted_until)
        if until is not None:
            raise Muted(f"You are muted in this group until {until.isoformat()}.")
    else:
        sender, sender_id = "agent", caller.id
        dup = await _find_sent(uow, g.id, sender, sender_id, client_msg_id)
        if dup is not None:
            return SentToGroup(dup, True)
    word = rules.find_sensitive(body, await sensitive_words(s, g.shop_id))
    if word is not None:
        raise SensitiveWord(f"The message contains the sensitive word {word!r}; it was not sent.")
    msg, duplicate = await append_group_message(
        uow,
        g,
        sender=sender,
        sender_id=sender_id,
        kind="text",
        body=body,
        payload=None,
        now=now,
        client_msg_id=client_msg_id,
    )
    return SentToGroup(msg, duplicate)


# ---- check-ins ---------------------------------------------------------------------


async def check_in(
    uow: UnitOfWork, buyer: BuyerIdentity, group_id: str, now: datetime
) -> dict[str, Any]:
    """Today's check-in (the shop's calendar day): once a day, the same answer if repeated."""
    s = uow.session
    g = await group_in_shop(s, buyer.shop_id, group_id)
    await active_member(s, g, buyer.buyer_id)
    shop = await s.get(Shop, g.shop_id)
    assert shop is not None
    today = rules.local_day(now, shop_zone(shop))
    existing = await s.get(GroupCheckin, (g.id, buyer.buyer_id, today))
    if existing is None:
        last = (
            await s.execute(
                select(col(GroupCheckin.day), col(GroupCheckin.streak))
                .where(
                    col(GroupCheckin.group_id) == g.id,
                    col(GroupCheckin.buyer_id) == buyer.buyer_id,
                    col(GroupCheckin.day) < today,
                )
                .order_by(col(GroupCheckin.day).desc())
                .limit(1)
            )
        ).first()
        streak = rules.next_streak(last[0] if last else None, last[1] if last else 0, today)
        try:
            async with s.begin_nested():
                s.add(
                    GroupCheckin(
                        group_id=g.id,
                        buyer_id=buyer.buyer_id,
                        day=today,
                        streak=streak,
                        created_at=now,
                    )
                )
                await s.flush()
        except IntegrityError:
            existing = await s.get(GroupCheckin, (g.id, buyer.buyer_id, today))
            if existing is None:
                raise
            streak = existing.streak
    else:
        streak = existing.streak
    return {"group_id": g.id, "day": today.isoformat(), "streak": streak, "checked_in_today": True}


# ---- giveaways ---------------------------------------------------------------------


def _checked_coupon(coupon: Any) -> dict[str, Any]:
    if not isinstance(coupon, dict):
        raise BadInput('Expected an object "coupon".', code="bad_coupon")
    for key in ("amount_cents", "min_spend_cents"):
        v = coupon.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise BadInput(f"coupon.{key} must be a whole number of cents ≥ 0.", code="bad_coupon")
    return dict(coupon)


async def create_giveaway(
    uow: UnitOfWork,
    staff: Agent,
    group_id: str,
    title: str,
    quantity: int,
    coupon: Any,
    now: datetime,
) -> dict[str, Any]:
    check(
        staff.role,
        Permission.MODERATE_GROUPS,
        "Only the shop's supervisors and admins may post giveaways.",
    )
    title = title.strip()
    if not 1 <= len(title) <= 200:
        raise BadInput("A giveaway title is 1 to 200 characters.", code="bad_title")
    if not 1 <= quantity <= 1_000_000:
        raise BadInput(f"quantity must be 1 to 1000000, but got {quantity}.", code="bad_quantity")
    s = uow.session
    g = await group_in_shop(s, staff.shop_id, group_id)
    gw = Giveaway(
        shop_id=g.shop_id,
        group_id=g.id,
        title=title,
        quantity=quantity,
        coupon=_checked_coupon(coupon),
        created_by=staff.id,
        created_at=now,
    )
    s.add(gw)
    await s.flush()
    public = giveaway_public(gw)
    await append_group_message(
        uow,
        g,
        sender="agent",
        sender_id=staff.id,
        kind="giveaway",
        body=f"福利放送:{title}(共 {quantity} 份)",
        payload={"giveaway": public},
        now=now,
    )
    return public


async def claim_giveaway(
    uow: UnitOfWork, buyer: BuyerIdentity, giveaway_id: str, now: datetime
) -> dict[str, Any]:
    """One coupon for a member: the claim row's key refuses a second, and the conditional
    increment refuses the (N+1)th, both in this transaction, on any number of nodes."""
    s = uow.session
    gw = await giveaway_in_shop(s, buyer.shop_id, giveaway_id, buyer)
    g = await group_in_shop(s, buyer.shop_id, gw.group_id)
    await active_member(s, g, buyer.buyer_id)
    claim = GiveawayClaim(
        giveaway_id=gw.id, buyer_id=buyer.buyer_id, shop_id=gw.shop_id, claimed_at=now
    )
    if not await uow.add_if_new(claim):
        raise AlreadyClaimed("You have already claimed this giveaway.")
    claimed = await _count_one_more(
        uow, Giveaway, gw.id, col(Giveaway.claimed), col(Giveaway.quantity)
    )
    if claimed is None:
        # Raising rolls the whole transaction back, the claim row with it.
        raise SoldOut("This giveaway has run out.")
    issued = coupon_data(
        coupon_id=f"{gw.id}:{buyer.buyer_id}",
        source="giveaway",
        buyer_id=buyer.buyer_id,
        title=str(gw.coupon.get("title") or gw.title),
        amount_cents=int(gw.coupon.get("amount_cents") or 0),
        min_spend_cents=int(gw.coupon.get("min_spend_cents") or 0),
        issued_at=now,
        giveaway_id=gw.id,
        group_id=g.id,
    )
    await outbox.record(
        uow, gw.shop_id, "coupon.issued", issued, now=now, about=f"coupon:{gw.id}:{buyer.buyer_id}"
    )
    if claimed == gw.quantity:
        await append_group_message(
            uow,
            g,
            sender="system",
            sender_id=None,
            kind="system",
            body=f"福利「{gw.title}」已领完",
            payload={
                "giveaway_id": gw.id,
                "sold_out": True,
                "notice": "giveaway_sold_out",
                "params": {"title": gw.title},
            },
            now=now,
        )
    return {
        "giveaway_id": gw.id,
        "coupon": gw.coupon,
        "claimed_at": now.isoformat(),
        "remaining": gw.quantity - claimed,
    }
