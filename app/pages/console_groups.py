"""The console's fan-group tab: create a group (admins), see its members and latest messages,
post to it, start a giveaway, mute or remove a member, mute the whole group. The same domain
code as `app/groups/api.py` does the work (and checks who may do what).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from babel.support import Translations
from fastapi import APIRouter, Request, Response

from app.deps import Ctx
from app.errors import DomainError
from app.groups import actions as group_actions
from app.groups import rules as group_rules
from app.groups import service as group_service
from app.groups.models import Group
from app.pages.console import (
    answer,
    cents_of,
    console_form,
    form_text,
    local_time,
    shop_zone_of,
    tab_reader,
)
from app.pages.i18n import N_
from app.shops.models import Agent
from app.shops.policy import Permission

router = APIRouter(include_in_schema=False)
Manager = Annotated[Agent, console_form(Permission.MANAGE_GROUPS)]
Moderator = Annotated[Agent, console_form(Permission.MODERATE_GROUPS)]
Staff = Annotated[Agent, console_form()]

MUTE_CHOICES = (10, 60, 24 * 60)  # minutes offered next to each member


@tab_reader("groups")
async def groups_data(me: Agent, ctx: Ctx, request: Request) -> dict[str, Any]:
    """The shop's groups; the one asked for (`?group=`, else the newest) with its members,
    giveaways and latest messages."""
    zone = await shop_zone_of(ctx, me.shop_id)
    now = ctx.clock.now()
    async with ctx.db.read() as s:
        groups = await group_service.groups_for(s, me)
        wanted = request.query_params.get("group")
        # Groups come oldest first: the newest (just created) is shown unless one is asked for.
        chosen = next((g for g in groups if g["id"] == wanted), groups[-1] if groups else None)
        members: list[dict[str, Any]] = []
        giveaways: list[dict[str, Any]] = []
        messages: list[dict[str, Any]] = []
        if chosen is not None:
            for m, name in await group_service.active_members(s, chosen["id"]):
                until = group_rules.muted_until(now, None, m.muted_until)
                members.append(
                    {
                        "buyer_id": m.buyer_id,
                        "name": name,
                        "joined_at": m.joined_at.isoformat(),
                        "muted_until": until.isoformat() if until else None,
                    }
                )
            giveaways = [
                group_service.giveaway_public(gw)
                for gw in await group_service.giveaways_of_group(s, chosen["id"])
            ]
            messages = [
                group_service.message_public(m)
                for m in await group_service.latest_messages(s, chosen["id"])
            ]
    group_muted = (
        chosen is not None
        and group_rules.muted_until(now, _when(chosen["muted_until"]), None) is not None
    )
    return {
        "groups": groups,
        "chosen": chosen,
        "group_muted": group_muted,
        "members": members,
        "giveaways": giveaways,
        "group_messages": messages,
        "mute_choices": MUTE_CHOICES,
        "local": lambda iso: local_time(iso, zone),
        # A fresh id per rendered form: a double submit posts one message, not two.
        "client_msg_id": f"console-{secrets.token_hex(8)}",
    }


def _when(iso: str | None) -> datetime | None:
    return datetime.fromisoformat(iso) if iso else None


def _int(text: str) -> int:
    return int(text) if text.isdigit() else -1  # the domain's bad_* code says what is wrong


Work = Callable[[Agent, Any, Translations], Awaitable[str]]


async def _answer(request: Request, ctx: Ctx, me: Agent, work: Work, done: str) -> Response:
    """Run `work(me, form, words)`, one domain action, and answer the tab with its outcome
    (`done` formatted with its result)."""
    form = await request.form()

    async def run(t: Translations) -> str:
        return t.gettext(done) % {"result": await work(me, form, t)}

    return await answer(request, ctx, me, "groups", run)


@router.post("/console/groups")
async def create_group(request: Request, ctx: Ctx, me: Manager) -> Response:
    async def work(me: Agent, form: Any, t: Translations) -> str:
        max_text = form_text(form, "max_members") or str(group_rules.DEFAULT_MAX_MEMBERS)
        g: Group = await ctx.db.run(
            group_actions.create_group, me, form_text(form, "name"), _int(max_text), ctx.clock.now()
        )
        return g.name  # the newest group is the one the tab shows next

    return await _answer(request, ctx, me, work, N_("Created the fan group %(result)s"))


@router.post("/console/groups/{group_id}/giveaways")
async def create_giveaway(group_id: str, request: Request, ctx: Ctx, me: Moderator) -> Response:
    async def work(me: Agent, form: Any, t: Translations) -> str:
        title = form_text(form, "title")
        coupon = {
            "title": title,
            "amount_cents": cents_of(form_text(form, "amount")),
            "min_spend_cents": cents_of(form_text(form, "min_spend") or "0", allow_zero=True),
        }
        gw = await ctx.db.run(
            group_actions.create_giveaway,
            me,
            group_id,
            title,
            _int(form_text(form, "quantity")),
            coupon,
            ctx.clock.now(),
        )
        return str(gw["title"])

    return await _answer(request, ctx, me, work, N_("Started the giveaway %(result)s"))


@router.post("/console/groups/{group_id}/mute")
async def mute(group_id: str, request: Request, ctx: Ctx, me: Moderator) -> Response:
    """Mute a member (`buyer_id` in the form) or the whole group for `minutes` (0 lifts it)."""

    async def work(me: Agent, form: Any, t: Translations) -> str:
        buyer_id = form_text(form, "buyer_id") or None
        minutes = _int(form_text(form, "minutes"))
        await ctx.db.run(group_actions.mute, me, group_id, buyer_id, minutes, ctx.clock.now())
        if minutes == 0:
            return t.gettext("Mute lifted")
        who = buyer_id or t.gettext("everyone")
        return t.gettext("Muted %(who)s for %(minutes)s min") % {"who": who, "minutes": minutes}

    return await _answer(request, ctx, me, work, "%(result)s")


@router.post("/console/groups/{group_id}/remove")
async def remove_member(group_id: str, request: Request, ctx: Ctx, me: Moderator) -> Response:
    async def work(me: Agent, form: Any, t: Translations) -> str:
        buyer_id = form_text(form, "buyer_id")
        await ctx.db.run(group_actions.remove_member, me, group_id, buyer_id)
        return buyer_id

    return await _answer(request, ctx, me, work, N_("Removed %(result)s from the group"))


@router.post("/console/groups/{group_id}/messages")
async def post_message(group_id: str, request: Request, ctx: Ctx, me: Staff) -> Response:
    async def work(me: Agent, form: Any, t: Translations) -> str:
        body = form_text(form, "body")
        if not body or len(body) > ctx.settings.max_body_chars or "\x00" in body:
            raise DomainError(t.gettext("Write 1 to 4000 characters"), code="invalid")
        client_msg_id = form_text(form, "client_msg_id") or f"console-{secrets.token_hex(8)}"
        await ctx.db.run(
            group_actions.send_to_group, me, group_id, client_msg_id, body, ctx.clock.now()
        )
        return ""

    return await _answer(request, ctx, me, work, N_("Posted to the group"))
