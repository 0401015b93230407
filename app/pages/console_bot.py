"""The console's bot tab (智能接待): the mode, the knowledge base (list, search, add, edit,
switch off, delete, import, export), 试一试, the questions it could not answer (未识别问题,
one click turns one into an entry) and its figures. The same domain code as
`app/bot/api.py` does the work (and checks who may do what).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC
from typing import Annotated, Any

from babel.support import Translations
from fastapi import APIRouter, Request, Response
from starlette.datastructures import UploadFile

from app.bot import actions as bot_actions
from app.bot import service as bot_service
from app.bot.rules import MODES
from app.bot.schemas import faq_public, settings_public, unrecognised_public
from app.deps import Ctx
from app.errors import BadInput
from app.metrics.rules import resolve_period
from app.pages.console import answer, console_form, form_text, tab_reader
from app.pages.i18n import N_
from app.shops.models import Agent
from app.shops.policy import Permission, may

router = APIRouter(include_in_schema=False)
KbEditor = Annotated[Agent, console_form(Permission.MANAGE_BOT_KB)]
ModeSetter = Annotated[Agent, console_form(Permission.SET_BOT_MODE)]
MODE_LABELS = {
    "off": N_("Off: people answer every chat"),
    "bot_first": N_("Assistant first, then a person"),
    "human_first": N_("People first; the assistant covers when none is online"),
    "assist": N_("Assist: suggestions for agents only"),
}


@tab_reader("bot")
async def bot_data(me: Agent, ctx: Ctx, request: Request) -> dict[str, Any]:
    q = request.query_params.get("q") or None
    tried = (request.query_params.get("try") or "").strip()[:200]
    async with ctx.db.read() as s:
        settings = settings_public(await bot_service.settings_row(s, me.shop_id))
        faqs = [faq_public(f) for f in await bot_service.list_faqs(s, me.shop_id, q)]
        unknown = [unrecognised_public(r) for r in await bot_service.unrecognised(s, me.shop_id)]
        figures = None
        if may(me.role, Permission.VIEW_METRICS):
            period = resolve_period(None, None, now=ctx.clock.now(), tz=UTC)
            figures = asdict(await bot_service.metrics(s, me.shop_id, *period))
    matches: list[dict[str, Any]] = []
    if tried:
        index = await ctx.bot.index(me.shop_id, settings.version)
        matches = [asdict(m) for m in index.match(tried)]
    return {
        "bot_settings": settings,
        "faqs": faqs,
        "unknown": unknown[:50],
        "figures": figures,
        "q": q or "",
        "tried": tried,
        "matches": matches,
        "modes": [(m, MODE_LABELS[m]) for m in MODES],
        "new_question": (request.query_params.get("new") or "")[:200],
    }


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


async def _run(request: Request, ctx: Ctx, me: Agent, work: Any, done: str) -> Response:
    form = await request.form()

    async def run(t: Translations) -> str:
        result = await work(form)
        return t.gettext(done) % {"result": result}

    try:
        return await answer(request, ctx, me, "bot", run)
    finally:
        await form.close()  # an import's upload is spooled to a temporary file


@router.post("/console/bot/settings")
async def set_mode(request: Request, ctx: Ctx, me: ModeSetter) -> Response:
    async def work(form: Any) -> str:
        changes: dict[str, Any] = {"mode": form_text(form, "mode")}
        threshold = form_text(form, "threshold")
        if threshold:
            try:
                changes["threshold"] = min(1.0, max(0.0, float(threshold)))
            except ValueError:
                raise BadInput(N_("The threshold is a number from 0 to 1.")) from None
        await ctx.db.run(bot_actions.put_settings, me.shop_id, changes, ctx.clock.now())
        return str(changes["mode"])

    return await _run(request, ctx, me, work, N_("The assistant's mode is now %(result)s"))


def _entry(form: Any) -> bot_actions.FaqInput:
    question = form_text(form, "question").strip()
    answer_text = form_text(form, "answer").strip()
    if not question or not answer_text:
        raise BadInput(N_("An entry needs a question and an answer."))
    return bot_actions.FaqInput(
        question=question[:200],
        answer=answer_text[:4000],
        similar=tuple(s[:200] for s in _lines(form_text(form, "similar"))[:50]),
        category=form_text(form, "category").strip()[:64] or None,
    )


@router.post("/console/bot/faqs")
async def add_entry(request: Request, ctx: Ctx, me: KbEditor) -> Response:
    async def work(form: Any) -> str:
        faq = await ctx.db.run(bot_actions.create_faq, me.shop_id, _entry(form), ctx.clock.now())
        return str(faq.question)

    return await _run(request, ctx, me, work, N_("Added the entry %(result)s"))


@router.post("/console/bot/faqs/{faq_id}")
async def edit_entry(faq_id: str, request: Request, ctx: Ctx, me: KbEditor) -> Response:
    async def work(form: Any) -> str:
        e = _entry(form)
        changes = {
            "question": e.question,
            "answer": e.answer,
            "similar": list(e.similar),
            "category": e.category,
            "enabled": form_text(form, "enabled") == "on",
        }
        faq = await ctx.db.run(bot_actions.update_faq, me.shop_id, faq_id, changes, ctx.clock.now())
        return str(faq.question)

    return await _run(request, ctx, me, work, N_("Saved the entry %(result)s"))


@router.post("/console/bot/faqs/{faq_id}/delete")
async def delete_entry(faq_id: str, request: Request, ctx: Ctx, me: KbEditor) -> Response:
    async def work(form: Any) -> str:
        await ctx.db.run(bot_actions.delete_faq, me.shop_id, faq_id, ctx.clock.now())
        return ""

    return await _run(request, ctx, me, work, N_("Deleted the entry%(result)s"))


@router.post("/console/bot/import")
async def import_entries(request: Request, ctx: Ctx, me: KbEditor) -> Response:
    async def work(form: Any) -> str:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise BadInput(N_("Choose a CSV or JSON file to import."))
        data = await upload.read(5 * 1024 * 1024 + 1)
        try:
            entries = bot_actions.parse_import(data)
        except (UnicodeDecodeError, ValueError) as exc:
            if isinstance(exc, BadInput):
                raise
            raise BadInput(N_("Could not read the file as UTF-8 CSV or JSON.")) from None
        added, updated = await ctx.db.run(
            bot_actions.import_faqs, me.shop_id, entries, ctx.clock.now()
        )
        return f"+{added} / {updated}"

    return await _run(request, ctx, me, work, N_("Imported: %(result)s (added / updated)"))
