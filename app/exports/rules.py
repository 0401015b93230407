"""How an export writes its cells: pure functions, tested by tables.

Excel-friendly CSV: UTF-8 with a byte-order mark (Excel otherwise reads 中文 as mojibake),
CRLF line ends, every cell quoted where needed by the csv module. Text that a person typed
(a message body, a buyer's name, a note) is guarded against CSV injection: a cell that
starts with = + - @ (or a tab / carriage return, which Excel strips before looking) is
prefixed with an apostrophe, so a spreadsheet shows it as text instead of running it as a
formula (OWASP "CSV Injection").
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime, tzinfo
from decimal import Decimal

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
KINDS = ("conversations", "messages", "metrics", "ledger")

Cell = str | int | float | Decimal | None


def guard(text: str) -> str:
    """A typed text cell made safe for a spreadsheet (see the module docstring)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def cell(value: Cell) -> str:
    """Numbers as written; None as empty; text guarded."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float | Decimal):
        return str(value)  # ours, not typed by anyone: a leading minus is a number
    return guard(value)


def lines(rows: Iterable[Sequence[Cell]]) -> str:
    """Rows as CSV text (CRLF line ends), each cell through `cell`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows([cell(v) for v in row] for row in rows)
    return out.getvalue()


def local(at: datetime | None, zone: tzinfo) -> str | None:
    """A time on the shop's wall clock, "2026-11-22 09:30:05" (what Excel reads as a time)."""
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if at else None


def yuan(cents: int | None) -> Decimal | None:
    """Cents as a plain yuan amount, 12.50 (a number to Excel, no currency sign)."""
    return None if cents is None else Decimal(cents).scaleb(-2)


def seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def filename(kind: str, start: datetime, end_inclusive: datetime, zone: tzinfo) -> str:
    first = start.astimezone(zone).date().isoformat()
    last = end_inclusive.astimezone(zone).date().isoformat()
    return f"homing-{kind}-{first}_{last}.csv"
