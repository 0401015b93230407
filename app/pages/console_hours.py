"""The console's service-hours tab: the weekly plan, holidays and 大促 hours, and the
auto-reply buyers get while nobody can answer (admins edit; supervisors read). The same
domain code as `GET|PUT /api/v1/service-hours` does the work (`app.routing.hours`)."""

from __future__ import annotations

from typing import Annotated, Any

from babel.support import Translations
from fastapi import APIRouter, Request, Response

from app.deps import Ctx
from app.pages.console import answer, console_form, form_text, tab_reader
from app.pages.i18n import N_
from app.routing import hours
from app.routing import hours_rules as rules
from app.shops.models import Agent
from app.shops.policy import Permission

router = APIRouter(include_in_schema=False)
HoursEditor = Annotated[Agent, console_form(Permission.MANAGE_SERVICE_HOURS)]

DAY_NAMES = {
    "mon": N_("Monday"),
    "tue": N_("Tuesday"),
    "wed": N_("Wednesday"),
    "thu": N_("Thursday"),
    "fri": N_("Friday"),
    "sat": N_("Saturday"),
    "sun": N_("Sunday"),
}
CLOSED_WORDS = ("closed", "休息", "关闭", "")


def exceptions_text(wire: list[dict[str, Any]]) -> str:
    """One line a date: "2026-10-01 closed" or "2026-11-11 08:00-24:00"."""
    lines = []
    for item in wire:
        ranges = ", ".join(f"{s}-{e}" for s, e in item["hours"])
        lines.append(f"{item['date']} {ranges or 'closed'}")
    return "\n".join(lines)


def parse_exceptions_text(text: str) -> list[dict[str, Any]]:
    items = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        day, _, rest = line.partition(" ")
        rest = rest.strip()
        ranges = [] if rest.lower() in CLOSED_WORDS else rules.parse_ranges_text(rest, day)
        items.append({"date": day, "hours": ranges})
    return items


@tab_reader("hours")
async def hours_tab(me: Agent, ctx: Ctx, request: Request) -> dict[str, Any]:
    async with ctx.db.read() as s:
        found = await hours.shop_hours(s, me.shop_id)
    now = ctx.clock.now()
    wire = hours.hours_wire(found, now)
    opens = found.opens_at(now)
    return {
        "days": [
            (day, DAY_NAMES[day], ", ".join(f"{a}-{b}" for a, b in wire["weekly"][day]))
            for day in rules.DAYS
        ],
        "exceptions_text": exceptions_text(wire["exceptions"]),
        "auto_reply": wire["auto_reply"],
        "time_zone": wire["time_zone"],
        "open_now": wire["open_now"],
        "opens_at": opens.astimezone(found.zone).strftime("%Y-%m-%d %H:%M") if opens else None,
    }


@router.post("/console/hours")
async def save_hours(request: Request, ctx: Ctx, me: HoursEditor) -> Response:
    form = await request.form()

    async def work(t: Translations) -> str:
        weekly = {
            day: rules.parse_ranges_text(form_text(form, f"day_{day}"), day) for day in rules.DAYS
        }
        exceptions = parse_exceptions_text(str(form.get("exceptions") or ""))
        await ctx.db.run(
            hours.set_hours,
            me.shop_id,
            weekly,
            exceptions,
            str(form.get("auto_reply") or ""),
            ctx.clock.now(),
        )
        return t.gettext("Service hours saved")

    return await answer(request, ctx, me, "hours", work)
