"""Quick phrases as plain values: pinyin initials, variables, checks and the CSV shape."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pypinyin import Style, lazy_pinyin

from app.errors import BadInput

MAX_TEXT = 500
MAX_GROUP = 32
MAX_IMPORT = 2000  # phrases in one import or upload
SCOPES = ("shop", "mine")
# The variables a phrase may hold, filled when it is inserted (`render`).
BUYER_NAME = "买家昵称"
AGENT_NAME = "客服昵称"
ORDER_ID = "订单号"
PRODUCT = "商品名"
SHOP_NAME = "店铺名"
VARIABLES = (BUYER_NAME, AGENT_NAME, ORDER_ID, PRODUCT, SHOP_NAME)
_VARIABLE = re.compile(r"\{(" + "|".join(VARIABLES) + r")\}")
CSV_HEADER = ("scope", "group", "text")
BOM = "\ufeff"


def initials(text: str) -> str:
    """What `?q=` matches besides the text: each Chinese character's pinyin initial and
    every ASCII letter or digit, lowercase, nothing else (`发货了吗?` → `fhlm`). Variables
    are left out: they are not what the agent reads as the phrase's words."""
    out: list[str] = []
    words = _VARIABLE.sub(" ", text)
    for part in lazy_pinyin(words, style=Style.FIRST_LETTER, errors="default"):
        out.extend(ch.lower() for ch in part if ch.isascii() and ch.isalnum())
    return "".join(out)


def clean_text(text: str) -> str:
    text = text.strip()
    if not text:
        raise BadInput("A phrase needs some text.", code="bad_text")
    if len(text) > MAX_TEXT:
        raise BadInput(f"A phrase is at most {MAX_TEXT} characters.", code="bad_text")
    if "\x00" in text:
        raise BadInput("A phrase cannot contain a NUL character.", code="bad_text")
    return text


def clean_group(group: str | None) -> str:
    group = (group or "").strip()
    if len(group) > MAX_GROUP or "\x00" in group:
        raise BadInput(f"A group name is at most {MAX_GROUP} characters.", code="bad_group")
    return group


def variables_in(text: str) -> list[str]:
    return list(dict.fromkeys(m.group(1) for m in _VARIABLE.finditer(text)))


def render(text: str, values: Mapping[str, str | None]) -> tuple[str, list[str]]:
    """The text with each known variable filled; those with no value become "" and are
    named in the second part (the agent sees what is missing before sending)."""
    missing: list[str] = []

    def fill(m: re.Match[str]) -> str:
        value = values.get(m.group(1))
        if not value:
            if m.group(1) not in missing:
                missing.append(m.group(1))
            return ""
        return value

    return _VARIABLE.sub(fill, text), missing


@dataclass(frozen=True)
class PhraseRow:
    scope: str
    group: str
    text: str


def parse_csv(data: bytes) -> list[PhraseRow]:
    """Rows of a phrases CSV as `to_csv` writes it: UTF-8 (a BOM or not), the header
    `scope,group,text` first. Errors name the line."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput("The file is not UTF-8 text.", code="bad_csv") from exc
    reader = csv.reader(io.StringIO(text))
    rows: list[PhraseRow] = []
    header = False
    for line_no, cells in enumerate(reader, start=1):
        if not any(c.strip() for c in cells):
            continue
        if not header:
            if [c.strip().lower() for c in cells] != list(CSV_HEADER):
                raise BadInput(
                    f"Line {line_no}: expected the header {','.join(CSV_HEADER)}.", code="bad_csv"
                )
            header = True
            continue
        if len(cells) != len(CSV_HEADER):
            raise BadInput(f"Line {line_no}: expected 3 columns.", code="bad_csv")
        scope, group, words = cells
        scope = scope.strip().lower() or "mine"
        if scope not in SCOPES:
            raise BadInput(f"Line {line_no}: scope must be shop or mine.", code="bad_csv")
        try:
            row = PhraseRow(scope, clean_group(group), clean_text(_unsafe_cell(words)))
        except BadInput as exc:
            raise BadInput(f"Line {line_no}: {exc.message}", code="bad_csv") from exc
        rows.append(row)
        if len(rows) > MAX_IMPORT:
            raise BadInput(f"At most {MAX_IMPORT} phrases at once.", code="too_many")
    if not header:
        raise BadInput("The file is empty.", code="bad_csv")
    return rows


def to_csv(rows: Iterable[PhraseRow]) -> str:
    """The phrases as Excel-friendly CSV: UTF-8 with a BOM, header `scope,group,text`."""
    out = io.StringIO()
    out.write(BOM)
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(CSV_HEADER)
    for r in rows:
        w.writerow((r.scope, r.group, _safe_cell(r.text)))
    return out.getvalue()


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe_cell(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection): quoted with `'`."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _unsafe_cell(text: str) -> str:
    """The text `_safe_cell` quoted, as it was (an export imports back unchanged)."""
    return text[1:] if text.startswith("'") and text[1:].startswith(_FORMULA_START) else text
