"""HTTP for quick phrases: list and search, add, edit, remove, render, CSV in and out."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field, StrictInt

from app.chat import service as chat_service
from app.deps import Ctx, CurrentAgent
from app.errors import NotFound, TooLarge
from app.phrases import actions, rules, service
from app.phrases.rules import PhraseRow
from app.phrases.schemas import ImportOut, PhrasePublic, RenderedOut, phrase_public
from app.schemas import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1", tags=["phrases"], responses=ERROR_RESPONSES)

Scope = Literal["shop", "mine"]
MAX_CSV_BYTES = 60 * 1024  # under the 64 KiB body limit, with room for multipart framing


class PhraseIn(BaseModel):
    text: str = Field(max_length=rules.MAX_TEXT * 2)
    group: str | None = Field(default=None, max_length=rules.MAX_GROUP * 2)
    scope: Scope = "mine"
    position: StrictInt | None = Field(default=None, ge=0, le=1_000_000)


class PhrasePatch(BaseModel):
    text: str | None = Field(default=None, max_length=rules.MAX_TEXT * 2)
    group: str | None = Field(default=None, max_length=rules.MAX_GROUP * 2)
    position: StrictInt | None = Field(default=None, ge=0, le=1_000_000)


class BulkIn(BaseModel):
    phrases: list[PhraseIn] = Field(max_length=rules.MAX_IMPORT)


@router.get("/phrases")
async def list_phrases(
    agent: CurrentAgent,
    ctx: Ctx,
    q: Annotated[str | None, Query(max_length=100)] = None,
    scope: Scope | None = None,
) -> list[PhrasePublic]:
    async with ctx.db.read() as s:
        rows = await service.list_phrases(s, agent, scope=scope, q=q)
    return [PhrasePublic.model_validate(phrase_public(p)) for p in rows]


@router.post("/phrases", status_code=201)
async def create_phrase(body: PhraseIn, agent: CurrentAgent, ctx: Ctx) -> PhrasePublic:
    p = await ctx.db.run(
        actions.create_phrase,
        agent,
        text=body.text,
        group=body.group,
        scope=body.scope,
        position=body.position,
        now=ctx.clock.now(),
    )
    return PhrasePublic.model_validate(phrase_public(p))


@router.patch("/phrases/{phrase_id}")
async def update_phrase(
    phrase_id: str, body: PhrasePatch, agent: CurrentAgent, ctx: Ctx
) -> PhrasePublic:
    p = await ctx.db.run(
        actions.update_phrase,
        agent,
        phrase_id,
        text=body.text,
        group=body.group,
        position=body.position,
        now=ctx.clock.now(),
    )
    return PhrasePublic.model_validate(phrase_public(p))


@router.delete("/phrases/{phrase_id}", status_code=204)
async def delete_phrase(phrase_id: str, agent: CurrentAgent, ctx: Ctx) -> Response:
    await ctx.db.run(actions.delete_phrase, agent, phrase_id)
    return Response(status_code=204)


@router.post("/phrases/{phrase_id}/render")
async def render_phrase(
    phrase_id: str,
    agent: CurrentAgent,
    ctx: Ctx,
    conversation_id: Annotated[str | None, Query(max_length=64)] = None,
) -> RenderedOut:
    """The phrase with its variables filled for this agent (and conversation, which the
    agent must be allowed to see: the one they serve, or any of the shop's for staff)."""
    async with ctx.db.read() as s:
        phrase = await service.phrase_of(s, agent, phrase_id)
        conv = None
        if conversation_id:
            conv = await chat_service.get_conversation(s, conversation_id)
            if conv is None or not chat_service.agent_may_see(agent, conv):
                raise NotFound("No such conversation.")
        values = await service.variable_values(s, agent, conv)
    text, missing = rules.render(phrase.text, values)
    return RenderedOut(id=phrase.id, text=text, missing=missing)


@router.post("/phrases/bulk")
async def bulk_phrases(body: BulkIn, agent: CurrentAgent, ctx: Ctx) -> ImportOut:
    """Many phrases at once (the workbench's upload of those kept in a browser)."""
    rows = [
        PhraseRow(p.scope, rules.clean_group(p.group), rules.clean_text(p.text))
        for p in body.phrases
    ]
    done = await ctx.db.run(actions.import_phrases, agent, rows, ctx.clock.now())
    return ImportOut(created=done.created, skipped=done.skipped)


@router.post("/phrases/import")
async def import_phrases(file: UploadFile, agent: CurrentAgent, ctx: Ctx) -> ImportOut:
    """A CSV file (multipart field `file`): `scope,group,text`, UTF-8 with or without BOM."""
    data = await file.read(MAX_CSV_BYTES + 1)
    if len(data) > MAX_CSV_BYTES:
        raise TooLarge(f"The file is over {MAX_CSV_BYTES // 1024} KiB; import it in parts.")
    rows = rules.parse_csv(data)
    done = await ctx.db.run(actions.import_phrases, agent, rows, ctx.clock.now())
    return ImportOut(created=done.created, skipped=done.skipped)


@router.get(
    "/phrases/export.csv",
    response_class=Response,
    responses={200: {"description": "UTF-8 CSV with BOM", "content": {"text/csv": {}}}},
)
async def export_phrases(agent: CurrentAgent, ctx: Ctx, scope: Scope | None = None) -> Response:
    async with ctx.db.read() as s:
        rows = await service.list_phrases(s, agent, scope=scope)
    body = rules.to_csv(PhraseRow(service.scope_of(p), p.group_name, p.text) for p in rows)
    return Response(
        body.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="phrases.csv"'},
    )
