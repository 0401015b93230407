"""Wire shapes of quick phrases: PHRASE, a rendered phrase, an import's result."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from app.phrases import rules
from app.phrases.models import Phrase
from app.phrases.service import scope_of


def phrase_public(p: Phrase) -> dict[str, Any]:
    return {
        "id": p.id,
        "scope": scope_of(p),
        "group": p.group_name,
        "text": p.text,
        "position": p.position,
        "initials": p.initials,
        "variables": rules.variables_in(p.text),
        "created_at": p.created_at.isoformat(),
        "updated_at": p.updated_at.isoformat(),
    }


class PhrasePublic(BaseModel):
    id: str
    scope: Literal["shop", "mine"]
    group: str
    text: str
    position: int
    initials: str
    variables: list[str]
    created_at: str
    updated_at: str


class RenderedOut(BaseModel):
    id: str
    text: str
    missing: list[str]  # variables with no value here (filled with "")


class ImportOut(BaseModel):
    created: int
    skipped: int
