"""Changes to quick phrases: add, edit, remove, import. Shop-wide phrases are edited by
those who may (`Permission.MANAGE_PHRASES`); an agent's own by that agent alone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from app.db import UnitOfWork, insert_ignore, new_id, rowcount
from app.errors import Conflict
from app.phrases import rules
from app.phrases.models import SHOP, Phrase
from app.phrases.rules import PhraseRow
from app.phrases.service import owner_key, phrase_of
from app.shops.models import Agent
from app.shops.policy import Permission, check

SHOP_REFUSAL = "Only the shop's supervisors and admins may change the shop's phrases."


@dataclass(frozen=True)
class Imported:
    created: int
    skipped: int  # already in the list (the same text)


def _may_edit(agent: Agent, key: str) -> None:
    if key == SHOP:
        check(agent.role, Permission.MANAGE_PHRASES, SHOP_REFUSAL)


async def _next_position(uow: UnitOfWork, shop_id: str, key: str) -> int:
    top = await uow.session.execute(
        select(func.max(col(Phrase.position))).where(
            col(Phrase.shop_id) == shop_id, col(Phrase.owner_key) == key
        )
    )
    return int(top.scalar() or 0) + 1


async def _insert(
    uow: UnitOfWork, agent: Agent, key: str, row: PhraseRow, position: int, now: datetime
) -> str | None:
    """Insert unless the list has that text already; the new id, or None."""
    phrase_id = new_id()
    result = await uow.session.execute(
        insert_ignore(
            uow.dialect,
            Phrase,
            ["shop_id", "owner_key", "text"],
            {
                "id": phrase_id,
                "shop_id": agent.shop_id,
                "owner_key": key,
                "group_name": row.group,
                "position": position,
                "text": row.text,
                "initials": rules.initials(row.text),
                "created_by": agent.id,
                "created_at": now,
                "updated_at": now,
            },
        )
    )
    return phrase_id if rowcount(result) == 1 else None


async def create_phrase(
    uow: UnitOfWork,
    agent: Agent,
    *,
    text: str,
    group: str | None,
    scope: str,
    position: int | None,
    now: datetime,
) -> Phrase:
    key = owner_key(agent, scope)
    _may_edit(agent, key)
    row = PhraseRow(scope, rules.clean_group(group), rules.clean_text(text))
    if position is None:
        position = await _next_position(uow, agent.shop_id, key)
    phrase_id = await _insert(uow, agent, key, row, position, now)
    if phrase_id is None:
        raise Conflict("That phrase is already in the list.", code="phrase_exists")
    return await phrase_of(uow.session, agent, phrase_id)


async def update_phrase(
    uow: UnitOfWork,
    agent: Agent,
    phrase_id: str,
    *,
    text: str | None,
    group: str | None,
    position: int | None,
    now: datetime,
) -> Phrase:
    phrase = await phrase_of(uow.session, agent, phrase_id)
    _may_edit(agent, phrase.owner_key)
    if text is not None:
        phrase.text = rules.clean_text(text)
        phrase.initials = rules.initials(phrase.text)
    if group is not None:
        phrase.group_name = rules.clean_group(group)
    if position is not None:
        phrase.position = position
    phrase.updated_at = now
    try:
        async with uow.session.begin_nested():
            await uow.session.flush()
    except IntegrityError as exc:
        raise Conflict("That phrase is already in the list.", code="phrase_exists") from exc
    return phrase


async def delete_phrase(uow: UnitOfWork, agent: Agent, phrase_id: str) -> None:
    phrase = await phrase_of(uow.session, agent, phrase_id)
    _may_edit(agent, phrase.owner_key)
    await uow.session.delete(phrase)


async def import_phrases(
    uow: UnitOfWork, agent: Agent, rows: Sequence[PhraseRow], now: datetime
) -> Imported:
    """Add the rows at the end of their lists, in order; a text a list has is skipped.
    All or nothing: one shop-wide row the agent may not add refuses the whole import."""
    keys = {owner_key(agent, r.scope) for r in rows}
    for key in keys:
        _may_edit(agent, key)
    positions = {key: await _next_position(uow, agent.shop_id, key) for key in keys}
    created = 0
    for row in rows:
        key = owner_key(agent, row.scope)
        if await _insert(uow, agent, key, row, positions[key], now) is not None:
            positions[key] += 1
            created += 1
    return Imported(created=created, skipped=len(rows) - created)
