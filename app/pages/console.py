"""The console `/console` for supervisors and admins: live queues, agents and their limits,
routing categories, payout approvals, the payout fund, the service metrics (体验分), and
(in their own modules) recall campaigns and fan groups.

Server-rendered (autoescaped) with htmx: tabs are plain links, the live parts poll a
fragment, and each form posts to a page route that calls the same domain code as the API
and answers the section again with what happened. Page POSTs must come from htmx (the
`HX-Request` header, which another site's form cannot send) besides the SameSite cookie.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from babel.support import Translations
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from app.deps import SESSION_COOKIE, Ctx
from app.errors import DomainError
from app.metrics import service as metrics_service
from app.metrics.api import agent_metrics_public
from app.pages.i18n import error_label, request_words
from app.pages.views import PageRefusal, csrf_refused, render, session_agent
from app.payouts import approvals as payout_approvals
from app.payouts import fund as payout_fund
from app.payouts import service as payout_service
from app.payouts.schemas import payout_public
from app.routing import queues as routing_queues
from app.shops import actions as shop_actions
from app.shops import api as shops_api
from app.shops import service as shop_service
from app.shops.models import Agent, Shop
from app.shops.policy import Permission, may
from app.shops.roles import ROLES
from app.tags import service as tags_service

router = APIRouter(include_in_schema=False)

TABS = (
    "queues",
    "agents",
    "categories",
    "approvals",
    "fund",
    "metrics",
    "recall",
    "groups",
    "webhooks",
    "care",
    "hours",
    *("compliance", "quality"),
    "bot",
)
REASONS = ("late_shipment", "damaged", "price_protection", "shipping_fee", "goodwill")
BAD_AMOUNT = "bad_amount"


class PageError(Exception):
    """A form value the page itself refuses (before the domain sees it)."""


def yuan(cents: int | None) -> str:
    return "" if cents is None else f"¥{cents / 100:,.2f}"


def yuan_plain(cents: int) -> str:
    """Cents as an editable yuan amount ("50" or "12.5")."""
    return f"{Decimal(cents) / 100:f}".rstrip("0").rstrip(".") if cents % 100 else str(cents // 100)


def cents_of(text: str, *, allow_zero: bool = False) -> int:
    """ "12.50" yuan -> 1250 cents; PageError unless ≥ 0 (or > 0) with at most two decimals."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise PageError(BAD_AMOUNT) from None
    if not value.is_finite() or value != value.quantize(Decimal("0.01")) or value > 10**10:
        raise PageError(BAD_AMOUNT)
    cents = int(value * 100)
    if cents < 0 or (cents == 0 and not allow_zero):
        raise PageError(BAD_AMOUNT)
    return cents


def local_time(iso: str | None, zone: ZoneInfo) -> str:
    """An API time on the shop's wall clock, "2026-11-22 09:30"."""
    if not iso:
        return ""
    return datetime.fromisoformat(iso).astimezone(zone).strftime("%Y-%m-%d %H:%M")


async def shop_zone_of(ctx: Ctx, shop_id: str) -> ZoneInfo:
    async with ctx.db.read() as s:
        shop = await s.get(Shop, shop_id)
    return shop_service.shop_zone(shop) if shop else ZoneInfo(shop_service.DEFAULT_TIMEZONE)


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def error_text(t: Translations, err: Exception) -> str:
    if isinstance(err, PageError):
        return t.gettext("Enter an amount above 0 with at most 2 decimals")
    if isinstance(err, DomainError):
        found = error_label(t, err.code)
        if found:
            return found
        # The message in the reader's language if the catalogs have it (`errors.N_`).
        text = t.gettext(err.msgid)
        return text % err.params if err.params else text
    if isinstance(err, ValidationError):
        first = err.errors()[0]
        error = f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
    else:
        error = str(err)
    return t.gettext("Failed: %(error)s") % {"error": error}


async def console_staff(request: Request, ctx: Ctx) -> Agent:
    """The supervisor or admin asking; else (as a `PageRefusal`) the login page or the 403 page."""
    agent = await session_agent(request, ctx)
    if agent is None:
        raise PageRefusal(RedirectResponse("/login", status_code=303))
    if not may(agent.role, Permission.USE_CONSOLE):
        raise PageRefusal(render(request, ctx, "console_forbidden.html", status=403, agent=agent))
    return agent


ConsoleStaff = Annotated[Agent, Depends(console_staff)]


def console_form(permission: Permission = Permission.USE_CONSOLE) -> Any:
    """A dependency: the staff member behind an htmx form post, if they may do `permission`.

    Every console form opens this way: the CSRF token (403), a signed-in staff member (the
    login page, or the 403 page), sent by htmx (400), then the form's own permission (the
    403 page). `me: Annotated[Agent, console_form(Permission.MANAGE_AGENTS)]`."""

    async def posted(request: Request, ctx: Ctx) -> Agent:
        refused = csrf_refused(request)
        if refused is not None:
            raise PageRefusal(refused)
        me = await console_staff(request, ctx)
        if not _from_htmx(request):
            raise PageRefusal(Response("Send this form from the console page.", status_code=400))
        if not may(me.role, permission):
            raise PageRefusal(render(request, ctx, "console_forbidden.html", status=403, agent=me))
        return me

    return Depends(posted)


TabReader = Callable[[Agent, Ctx, Request], Awaitable[dict[str, Any]]]
# Tabs whose reads live in their own module (console_recall, console_groups) register here.
TAB_READERS: dict[str, TabReader] = {}


def tab_reader(tab: str) -> Callable[[TabReader], TabReader]:
    def register(reader: TabReader) -> TabReader:
        TAB_READERS[tab] = reader
        return reader

    return register


def _from_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


# ---- what each tab shows ----------------------------------------------------------------


async def _agent_rows(ctx: Ctx, shop_id: str) -> list[dict[str, Any]]:
    async with ctx.db.read() as s:
        return [
            shops_api.agent_detail(a).model_dump()
            for a in await shop_service.agents_of_shop(s, shop_id)
        ]


async def _queues(ctx: Ctx, shop_id: str) -> list[dict[str, Any]]:
    async with ctx.db.read() as s:
        return [asdict(q) for q in await routing_queues.list_queues(s, shop_id, ctx.clock.now())]


async def tab_data(tab: str, me: Agent, ctx: Ctx, request: Request) -> dict[str, Any]:
    shop_id = me.shop_id
    if tab in TAB_READERS:
        return await TAB_READERS[tab](me, ctx, request)
    if tab == "queues":
        queues = await _queues(ctx, shop_id)
        return {
            "queues": queues,
            "total_waiting": sum(q["waiting"] for q in queues),
            "longest_wait_s": max((q["longest_wait_s"] for q in queues), default=0),
            # Agents, not queue seats: someone serving two queues counts once.
            "total_online": sum(a["status"] == "online" for a in await _agent_rows(ctx, shop_id)),
        }
    if tab == "agents":
        return {"agents": await _agent_rows(ctx, shop_id), "queues": await _queues(ctx, shop_id)}
    if tab == "categories":
        async with ctx.db.read() as s:
            mapping = await routing_queues.category_map(s, shop_id)
        return {"categories": sorted(mapping.items()), "queues": await _queues(ctx, shop_id)}
    if tab == "approvals":
        async with ctx.db.read() as s:
            pending = await payout_service.list_payouts(s, shop_id, status="pending_approval")
        names = {a["id"]: a["display_name"] for a in await _agent_rows(ctx, shop_id)}
        rows = [payout_public(p) for p in pending]
        for row in rows:
            row["agent_name"] = names.get(row["agent_id"], row["agent_id"])
        return {"payouts": rows}
    if tab == "fund":
        async with ctx.db.read() as s:
            balance = await payout_service.fund_balance(s, shop_id)
            pending = await payout_service.list_payouts(s, shop_id, status="pending_approval")
        return {"balance": balance, "pending_cents": sum(p.amount_cents for p in pending)}
    if tab == "metrics":
        start = request.query_params.get("from") or None
        end = request.query_params.get("to") or None
        tag = request.query_params.get("tag") or None  # only conversations with this tag
        async with ctx.db.read() as s:
            tags = [t.name for t in await tags_service.shop_tags(s, shop_id)]
        chosen = {"tags": tags, "tag": tag or ""}
        try:
            async with ctx.db.read() as s:
                report = await metrics_service.shop_metrics(
                    s, shop_id, start, end, ctx.clock.now(), tag=tag
                )
                shop = await s.get(Shop, shop_id)
        except DomainError as err:
            said = error_label(request_words(request), err.code) or err.message
            return {"metrics_error": said, "start": start or "", "end": end or "", **chosen}
        zone = shop_service.shop_zone(shop) if shop else None
        first = report.start.astimezone(zone).date().isoformat()
        # The period is [from, to): show its last day (a `to` at midnight ends the day before).
        shown_end = (report.end.astimezone(zone) - timedelta(microseconds=1)).date()
        return {
            "shop": asdict(report.shop),
            "agents": [agent_metrics_public(row).model_dump() for row in report.agents],
            "start": start or first,
            "end": end or shown_end.isoformat(),
            "period": (first, shown_end.isoformat()),
            **chosen,
        }
    raise ValueError(tab)


def page_values(me: Agent, tab: str, data: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """What every console template gets: who is asking, the tab, formatters, its data."""
    return {
        "me": me,
        "tab": tab,
        "tabs": TABS,
        "roles": ROLES,
        "reasons": REASONS,
        "yuan": yuan,
        "yuan_plain": yuan_plain,
        "percent": percent,
        "flash": None,
        "error": None,
        **data,
        **extra,
    }


async def section(request: Request, ctx: Ctx, me: Agent, tab: str, **extra: Any) -> Response:
    """The tab's content again, with what just happened (`flash`, `error`) on top."""
    data = await tab_data(tab, me, ctx, request)
    return render(request, ctx, f"console/_{tab}.html", **page_values(me, tab, data, **extra))


Work = Callable[[Translations], Awaitable[str]]


async def answer(request: Request, ctx: Ctx, me: Agent, tab: str, work: Work) -> Response:
    """A console form's answer: run `work(words)`, one domain action returning what to say
    it did, and show the tab again with that (`flash`), or with why it was refused (`error`)."""
    t = request_words(request)
    try:
        flash = await work(t)
    except (PageError, DomainError, ValidationError) as err:
        return await section(request, ctx, me, tab, error=error_text(t, err))
    return await section(request, ctx, me, tab, flash=flash)


# ---- pages and fragments ----------------------------------------------------------------


@router.get("/console")
async def console(request: Request, ctx: Ctx, me: ConsoleStaff) -> Response:
    tab = request.query_params.get("tab") or "queues"
    if tab not in TABS:
        tab = "queues"
    data = await tab_data(tab, me, ctx, request)
    response = render(request, ctx, "console.html", **page_values(me, tab, data))
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/console/section/{tab}")
async def console_section(tab: str, request: Request, ctx: Ctx, me: ConsoleStaff) -> Response:
    """One tab's content again (htmx polling of the live queues and the approvals)."""
    if tab not in TABS:
        return Response(status_code=404)
    return await section(request, ctx, me, tab)


@router.post("/console/payouts/{payout_id}/{decision}")
async def decide(
    payout_id: str,
    decision: str,
    request: Request,
    ctx: Ctx,
    me: Annotated[Agent, console_form(Permission.APPROVE_PAYOUTS)],
) -> Response:
    if decision not in ("approve", "reject"):
        return Response(status_code=404)

    async def work(t: Translations) -> str:
        payout = await payout_approvals.decide_payout(
            ctx.db,
            approver_id=me.id,
            shop_id=me.shop_id,
            payout_id=payout_id,
            approve=decision == "approve",
            note=None,
            now=ctx.clock.now(),
        )
        if payout.status == "paid":
            done = t.gettext("Approved %(amount)s; the buyer got the card")
        else:
            done = t.gettext("Rejected %(amount)s")
        return done % {"amount": yuan(payout.amount_cents)}

    return await answer(request, ctx, me, "approvals", work)


def form_text(form: Any, name: str) -> str:
    return str(form.get(name) or "").strip()


def _agent_fields(form: Any, *, creating: bool) -> dict[str, Any]:
    """The agent form's fields as the API takes them (blank password: unchanged)."""
    fields: dict[str, Any] = {
        "display_name": form_text(form, "display_name"),
        "role": form_text(form, "role"),
        "queues": [str(q) for q in form.getlist("queues")],
        "payout_limit_cents": cents_of(form_text(form, "payout_limit"), allow_zero=True),
        "payout_daily_cents": cents_of(form_text(form, "payout_daily"), allow_zero=True),
    }
    try:
        fields["max_concurrent"] = int(form_text(form, "max_concurrent"))
    except ValueError:
        fields["max_concurrent"] = -1  # the domain's bad_limit
    password = str(form.get("password") or "")
    if password or creating:
        fields["password"] = password
    if creating:
        fields["username"] = form_text(form, "username")
    if not fields["display_name"] and not creating:
        del fields["display_name"]
    return fields


@router.post("/console/agents")
async def create_agent(
    request: Request, ctx: Ctx, me: Annotated[Agent, console_form(Permission.MANAGE_AGENTS)]
) -> Response:
    form = await request.form()

    async def work(t: Translations) -> str:
        fields = _agent_fields(form, creating=True)
        if not fields["display_name"]:
            del fields["display_name"]
        body = shops_api.AgentIn(**fields)
        added = await ctx.db.run(
            shop_actions.add_agent, me.shop_id, body.to_fields(), ctx.clock.now()
        )
        return t.gettext("Created %(name)s") % {"name": added.agent.display_name}

    return await answer(request, ctx, me, "agents", work)


@router.post("/console/agents/{agent_id}")
async def edit_agent(
    agent_id: str,
    request: Request,
    ctx: Ctx,
    me: Annotated[Agent, console_form(Permission.MANAGE_AGENTS)],
) -> Response:
    form = await request.form()
    own_token = request.cookies.get(SESSION_COOKIE) if agent_id == me.id else None

    async def work(t: Translations) -> str:
        body = shops_api.AgentPatchIn(**_agent_fields(form, creating=False))
        updated = await ctx.db.run(
            shop_actions.update_agent,
            me.shop_id,
            agent_id,
            body.to_fields(),
            now=ctx.clock.now(),
            keep_token=own_token,
        )
        return t.gettext("Saved %(name)s") % {"name": updated.agent.display_name}

    return await answer(request, ctx, me, "agents", work)


@router.post("/console/agents/{agent_id}/active")
async def set_agent_active(
    agent_id: str,
    request: Request,
    ctx: Ctx,
    me: Annotated[Agent, console_form(Permission.MANAGE_AGENTS)],
) -> Response:
    """Deactivate (`active=0`) or activate (`active=1`) an agent, as `PATCH {"active"}` does."""
    active = form_text(await request.form(), "active") == "1"

    async def work(t: Translations) -> str:
        updated = await ctx.db.run(
            shop_actions.update_agent,
            me.shop_id,
            agent_id,
            shop_actions.AgentFields(active=active),
            now=ctx.clock.now(),
        )
        if active:
            done = t.gettext("Activated %(name)s: they can log in again")
        else:
            done = t.gettext(
                "Deactivated %(name)s: their sessions ended and their open chats went back to"
                " the queues"
            )
        return done % {"name": updated.agent.display_name}

    return await answer(request, ctx, me, "agents", work)


@router.post("/console/categories")
async def save_categories(
    request: Request, ctx: Ctx, me: Annotated[Agent, console_form(Permission.MANAGE_QUEUES)]
) -> Response:
    form = await request.form()
    names = [str(c).strip() for c in form.getlist("category")]
    targets = [str(q) for q in form.getlist("queue")]
    mapping = {name: queue for name, queue in zip(names, targets, strict=False) if name}

    async def work(t: Translations) -> str:
        await ctx.db.run(routing_queues.replace_category_map, me.shop_id, mapping)
        return t.gettext("Categories saved")

    return await answer(request, ctx, me, "categories", work)


@router.post("/console/fund")
async def topup(
    request: Request, ctx: Ctx, me: Annotated[Agent, console_form(Permission.TOP_UP_FUND)]
) -> Response:
    form = await request.form()

    async def work(t: Translations) -> str:
        cents = cents_of(form_text(form, "amount"))
        await ctx.db.run(
            payout_fund.topup_fund, admin_id=me.id, amount_cents=cents, now=ctx.clock.now()
        )
        return t.gettext("Topped up %(amount)s") % {"amount": yuan(cents)}

    return await answer(request, ctx, me, "fund", work)
