"""HTTP for the bot: the knowledge base (with import and export), 试一试, settings, the
questions it could not answer, its figures, and suggested answers for agents (assist)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from app.bot import actions, service
from app.bot.rules import ASSIST, MODES
from app.bot.schemas import (
    BotMetricsPublic,
    FaqPublic,
    ImportOut,
    MatchPublic,
    SettingsPublic,
    SuggestionPublic,
    UnrecognisedPublic,
    faq_public,
    settings_public,
    unrecognised_public,
)
from app.chat import service as chat_service
from app.chat.models import Message
from app.deps import Ctx, CurrentAgent, require
from app.errors import BadInput, NotFound, TooLarge
from app.limits import MAX_NUMBER
from app.metrics.rules import resolve_period
from app.schemas import ERROR_RESPONSES
from app.shops.models import Agent
from app.shops.policy import Permission

router = APIRouter(prefix="/api/v1/bot", tags=["bot"], responses=ERROR_RESPONSES)

KbEditor = Annotated[Agent, require(Permission.MANAGE_BOT_KB)]
ModeSetter = Annotated[Agent, require(Permission.SET_BOT_MODE)]
MetricsViewer = Annotated[Agent, require(Permission.VIEW_METRICS)]

MAX_IMPORT_BYTES = 5 * 1024 * 1024
Phrase = Annotated[str, Field(min_length=1, max_length=200)]


class ProductCardIn(BaseModel):
    """The product card an answer may carry (the chat's `product_card` payload)."""

    model_config = ConfigDict(extra="forbid")

    product_id: str = Field(min_length=1, max_length=128)
    title: str = Field(min_length=1, max_length=500)
    category: str | None = Field(default=None, max_length=64)
    price_cents: int = Field(ge=0, le=MAX_NUMBER)


class FaqIn(BaseModel):
    question: Phrase
    similar: list[Phrase] = Field(default_factory=list, max_length=50)
    answer: str = Field(min_length=1, max_length=4000)
    category: str | None = Field(default=None, max_length=64)
    enabled: bool = True
    product: ProductCardIn | None = None


class FaqPatch(BaseModel):
    question: Phrase | None = None
    similar: list[Phrase] | None = Field(default=None, max_length=50)
    answer: str | None = Field(default=None, min_length=1, max_length=4000)
    category: str | None = Field(default=None, max_length=64)
    enabled: bool | None = None
    product: ProductCardIn | None = None


class SettingsIn(BaseModel):
    mode: Literal["off", "bot_first", "human_first", "assist"] | None = None
    queue_modes: (
        dict[
            Annotated[str, Field(min_length=1, max_length=64)],
            Literal["off", "bot_first", "human_first", "assist"],
        ]
        | None
    ) = Field(default=None, max_length=100)
    # strict: a JSON true/false is not a number (lax mode read false as 0.0).
    threshold: float | None = Field(default=None, ge=0.0, le=1.0, strict=True)
    handoff_words: list[Annotated[str, Field(max_length=20)]] | None = Field(
        default=None, max_length=100
    )
    anger_words: list[Annotated[str, Field(max_length=20)]] | None = Field(
        default=None, max_length=100
    )
    greeting: str | None = Field(default=None, max_length=500)


@router.get("/faqs")
async def list_faqs(
    staff: KbEditor, ctx: Ctx, q: Annotated[str | None, Query(max_length=100)] = None
) -> list[FaqPublic]:
    async with ctx.db.read() as s:
        return [faq_public(f) for f in await service.list_faqs(s, staff.shop_id, q)]


@router.post("/faqs", status_code=201)
async def create_faq(body: FaqIn, staff: KbEditor, ctx: Ctx) -> FaqPublic:
    data = actions.FaqInput(
        question=body.question,
        answer=body.answer,
        similar=tuple(body.similar),
        category=body.category,
        enabled=body.enabled,
        product=body.product.model_dump() if body.product else None,
    )
    faq = await ctx.db.run(actions.create_faq, staff.shop_id, data, ctx.clock.now())
    return faq_public(faq)


@router.patch("/faqs/{faq_id}")
async def update_faq(faq_id: str, body: FaqPatch, staff: KbEditor, ctx: Ctx) -> FaqPublic:
    changes = body.model_dump(exclude_unset=True)
    faq = await ctx.db.run(actions.update_faq, staff.shop_id, faq_id, changes, ctx.clock.now())
    return faq_public(faq)


@router.delete("/faqs/{faq_id}", status_code=204)
async def delete_faq(faq_id: str, staff: KbEditor, ctx: Ctx) -> Response:
    await ctx.db.run(actions.delete_faq, staff.shop_id, faq_id, ctx.clock.now())
    return Response(status_code=204)


@router.get("/faqs/export", response_class=Response)
async def export_faqs(
    staff: KbEditor, ctx: Ctx, format: Literal["csv", "json"] = "csv"
) -> Response:
    async with ctx.db.read() as s:
        faqs = await service.list_faqs(s, staff.shop_id)
    if format == "json":
        body, media = actions.export_json(faqs), "application/json"
    else:
        body, media = actions.export_csv(faqs), "text/csv; charset=utf-8"
    name = f"knowledge-base.{format}"
    return Response(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.post("/faqs/import")
async def import_faqs(file: UploadFile, staff: KbEditor, ctx: Ctx) -> ImportOut:
    """A CSV or JSON file as `export` writes it (multipart field `file`); told apart by content."""
    data = await file.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise TooLarge(f"An import is at most {MAX_IMPORT_BYTES} bytes.")
    try:
        entries = actions.parse_import(data)
    except (UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, BadInput):
            raise
        raise BadInput(f"Could not read the file as UTF-8 CSV or JSON: {exc}.") from None
    added, updated = await ctx.db.run(actions.import_faqs, staff.shop_id, entries, ctx.clock.now())
    return ImportOut(added=added, updated=updated)


@router.get("/match")
async def match(
    staff: KbEditor, ctx: Ctx, q: Annotated[str, Query(min_length=1, max_length=500)]
) -> list[MatchPublic]:
    """试一试: the best 3 entries for a question, with their scores."""
    settings = await ctx.bot.settings(staff.shop_id, fresh=True)
    index = await ctx.bot.index(staff.shop_id, settings.version)
    return [MatchPublic(**asdict(m)) for m in index.match(q)]


@router.get("/settings")
async def get_settings(staff: KbEditor, ctx: Ctx) -> SettingsPublic:
    async with ctx.db.read() as s:
        return settings_public(await service.settings_row(s, staff.shop_id))


@router.put("/settings")
async def put_settings(body: SettingsIn, admin: ModeSetter, ctx: Ctx) -> SettingsPublic:
    row = await ctx.db.run(
        actions.put_settings, admin.shop_id, body.model_dump(exclude_none=True), ctx.clock.now()
    )
    return settings_public(row)


@router.get("/unrecognised")
async def unrecognised(staff: KbEditor, ctx: Ctx) -> list[UnrecognisedPublic]:
    """未识别问题: unanswered and disliked questions, newest first."""
    async with ctx.db.read() as s:
        return [unrecognised_public(r) for r in await service.unrecognised(s, staff.shop_id)]


@router.get("/metrics")
async def metrics(
    staff: MetricsViewer,
    ctx: Ctx,
    start: Annotated[str | None, Query(alias="from", max_length=64)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=64)] = None,
) -> BotMetricsPublic:
    from datetime import UTC

    period = resolve_period(start, end, now=ctx.clock.now(), tz=UTC)
    async with ctx.db.read() as s:
        m = await service.metrics(s, staff.shop_id, *period)
    return BotMetricsPublic(**asdict(m))


@router.get("/suggestions")
async def suggestions(
    agent: CurrentAgent,
    ctx: Ctx,
    conversation_id: Annotated[str, Query(max_length=32)],
    message_id: Annotated[str, Query(max_length=32)],
) -> list[SuggestionPublic]:
    """Assist mode: up to 3 answers for a buyer message, for the agent to insert, edit, send.
    Empty when the conversation's queue is not in assist mode, or none is above the threshold."""
    async with ctx.db.read() as s:
        conv = await chat_service.get_conversation(s, conversation_id)
        if conv is None or not chat_service.agent_may_see(agent, conv):
            raise NotFound("No such conversation.")
        msg = await s.get(Message, message_id)
        if msg is None or msg.conversation_id != conv.id or msg.sender != "buyer":
            raise NotFound("No such buyer message.")
    settings = await ctx.bot.settings(agent.shop_id)
    if settings.mode_for(conv.queue) != ASSIST or msg.kind != "text":
        return []
    index = await ctx.bot.index(agent.shop_id, settings.version)
    out = []
    async with ctx.db.read() as s:
        for m in index.match(msg.body):
            faq = await service.get_faq(s, agent.shop_id, m.faq_id)
            if faq is not None and m.score >= settings.threshold:
                out.append(SuggestionPublic(**asdict(m), answer=faq.answer))
    return out


assert set(MODES) == {"off", "bot_first", "human_first", "assist"}  # SettingsIn's Literal
