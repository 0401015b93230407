"""The console's trust-and-safety tabs and the agent's own scores page.

`compliance`: the platform's rules, the shop's own words (admins edit them), the flagged
messages to review. `quality`: the reviews to score with the shop's scorecard, the scored
ones, the CSV export, and (admins) the scorecard and daily sample. `/workbench/scores`: an
agent's own scorecards. The same domain code as the API does the work and decides who may.
"""

from __future__ import annotations

from typing import Annotated, Any

from babel.support import Translations
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from app.chat import service as chat_service
from app.chat.schemas import message_public
from app.compliance import actions as compliance_actions
from app.compliance import rules as compliance_rules
from app.compliance import service as compliance_service
from app.deps import Ctx
from app.errors import BadInput
from app.pages.console import answer, console_form, form_text, local_time, shop_zone_of, tab_reader
from app.pages.i18n import N_
from app.pages.views import render, session_agent
from app.quality import actions as quality_actions
from app.quality import rules as quality_rules
from app.quality import service as quality_service
from app.shops import service as shop_service
from app.shops.models import Agent
from app.shops.policy import Permission

router = APIRouter(include_in_schema=False)
RuleKeeper = Annotated[Agent, console_form(Permission.MANAGE_COMPLIANCE)]
FlagReviewer = Annotated[Agent, console_form(Permission.REVIEW_COMPLIANCE)]
Inspector = Annotated[Agent, console_form(Permission.INSPECT_QUALITY)]
QualityAdmin = Annotated[Agent, console_form(Permission.MANAGE_QUALITY)]


# ---- compliance ---------------------------------------------------------------------


def rules_text(rows: list[Any]) -> str:
    """The shop's words as the form edits them: one a line, "word, action, category"."""
    return "\n".join(f"{r.word}, {r.action}, {r.category}" for r in rows)


def parse_rules(text: str) -> list[tuple[str, str, str]]:
    """The form's lines back: "word[, action[, category]]" (flag and custom by default)."""
    found = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.replace(",", ",").split(",")]
        if not parts[0]:
            continue
        action = parts[1] if len(parts) > 1 and parts[1] else compliance_rules.FLAG
        category = parts[2] if len(parts) > 2 and parts[2] else "custom"
        found.append((parts[0], action, category))
    return found


@tab_reader("compliance")
async def compliance_data(me: Agent, ctx: Ctx, request: Request) -> dict[str, Any]:
    zone = await shop_zone_of(ctx, me.shop_id)
    async with ctx.db.read() as s:
        own = await compliance_service.shop_rules(s, me.shop_id)
        version = await compliance_service.version(s, me.shop_id)
        flags = await compliance_service.flags(s, me.shop_id, limit=100)
    defaults: dict[str, dict[str, Any]] = {}
    for r in compliance_rules.default_rules():
        d = defaults.setdefault(
            r.code, {"code": r.code, "category": r.category, "action": r.action, "words": []}
        )
        if r.word:
            d["words"].append(r.word)
    return {
        "defaults": list(defaults.values()),
        "own_rules": own,
        "rules_text": rules_text(own),
        "rules_version": version,
        "flags": [compliance_actions.flag_public(f) for f in flags],
        "local": lambda iso: local_time(iso, zone),
    }


@router.post("/console/compliance/rules")
async def save_rules(request: Request, ctx: Ctx, me: RuleKeeper) -> Response:
    form = await request.form()

    async def work(t: Translations) -> str:
        given = parse_rules(str(form.get("rules") or ""))
        version = await ctx.db.run(compliance_actions.set_rules, me, given, ctx.clock.now())
        return t.gettext("Saved %(count)s rules (version %(version)s)") % {
            "count": len(given),
            "version": version,
        }

    return await answer(request, ctx, me, "compliance", work)


@router.post("/console/compliance/flags/{flag_id}/review")
async def review_flag(flag_id: str, request: Request, ctx: Ctx, me: FlagReviewer) -> Response:
    async def work(t: Translations) -> str:
        await ctx.db.run(compliance_actions.review_flag, me, flag_id, ctx.clock.now())
        return t.gettext(N_("Marked as reviewed"))

    return await answer(request, ctx, me, "compliance", work)


# ---- quality ------------------------------------------------------------------------


def card_text(card: list[quality_rules.Item]) -> str:
    return "\n".join(f"{i.key}, {i.label}, {i.points}" for i in card)


def parse_card(text: str) -> list[quality_rules.Item]:
    """The form's lines: "key, label, points" (label may be empty)."""
    items = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.replace(",", ",").split(",")]
        if not parts[0]:
            continue
        points = parts[-1] if len(parts) > 1 else ""
        label = parts[1] if len(parts) > 2 else ""
        items.append(quality_rules.Item(parts[0], label, int(points) if points.isdigit() else -1))
    return items


@tab_reader("quality")
async def quality_data(me: Agent, ctx: Ctx, request: Request) -> dict[str, Any]:
    zone = await shop_zone_of(ctx, me.shop_id)
    async with ctx.db.read() as s:
        daily, card = await quality_service.settings_of(s, me.shop_id)
        pending = await quality_service.reviews(s, me, status="pending")
        done = await quality_service.reviews(s, me, status="done")
        names = {
            a.agent.id: a.agent.display_name
            for a in await shop_service.agents_of_shop(s, me.shop_id)
        }
        wanted = request.query_params.get("review")
        chosen = next(
            (r for r in pending + done if r.id == wanted), pending[0] if pending else None
        )
        messages: list[dict[str, Any]] = []
        if chosen is not None:
            messages = [
                message_public(m)
                for m in await chat_service.messages_after(s, chosen.conversation_id, 0, limit=200)
            ]
    return {
        "daily_sample": daily,
        "card": card,
        "card_text": card_text(card),
        "pending": [quality_service.review_public(r, card) for r in pending],
        "done": [quality_service.review_public(r, card) for r in done],
        "chosen": quality_service.review_public(chosen, card) if chosen else None,
        "conversation": messages,
        "names": names,
        "local": lambda iso: local_time(iso, zone),
    }


@router.post("/console/quality/reviews/{review_id}/score")
async def score_review(review_id: str, request: Request, ctx: Ctx, me: Inspector) -> Response:
    form = await request.form()

    async def work(t: Translations) -> str:
        async with ctx.db.read() as s:
            _daily, card = await quality_service.settings_of(s, me.shop_id)
        scores = {}
        for item in card:
            text = form_text(form, f"score_{item.key}")
            scores[item.key] = int(text) if text.isdigit() else -1
        public = await ctx.db.run(
            quality_actions.score_review,
            me,
            review_id,
            scores,
            form_text(form, "comment"),
            ctx.clock.now(),
        )
        return t.gettext("Scored %(total)s / %(max)s") % {
            "total": public["total"],
            "max": public["max_total"],
        }

    return await answer(request, ctx, me, "quality", work)


@router.post("/console/quality/settings")
async def save_settings(request: Request, ctx: Ctx, me: QualityAdmin) -> Response:
    form = await request.form()

    async def work(t: Translations) -> str:
        daily = form_text(form, "daily_sample")
        if not daily.isdigit():
            raise BadInput("daily_sample", code="bad_daily_sample")
        items = parse_card(str(form.get("scorecard") or ""))
        await ctx.db.run(quality_actions.set_settings, me, int(daily), items)
        return t.gettext(N_("Saved the scorecard"))

    return await answer(request, ctx, me, "quality", work)


# ---- the agent's own scores -----------------------------------------------------------


@router.get("/workbench/scores")
async def my_scores(request: Request, ctx: Ctx) -> Response:
    """The signed-in agent's own scored reviews (what `GET /quality/reviews` gives them)."""
    me = await session_agent(request, ctx)
    if me is None:
        return RedirectResponse("/login", status_code=303)
    zone = await shop_zone_of(ctx, me.shop_id)
    async with ctx.db.read() as s:
        _daily, card = await quality_service.settings_of(s, me.shop_id)
        own = await quality_service.reviews(s, me, agent_id=me.id, status="done")
    mine = [quality_service.review_public(r, card) for r in own if r.agent_id == me.id]
    given = sum(r["total"] or 0 for r in mine)
    possible = sum(r["max_total"] or 0 for r in mine)
    response = render(
        request,
        ctx,
        "scores.html",
        agent=me,
        reviews=mine,
        average=quality_rules.score_rate(given, possible),
        local=lambda iso: local_time(iso, zone),
    )
    response.headers["Cache-Control"] = "no-store"
    return response
