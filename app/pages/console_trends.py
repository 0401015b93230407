"""The 体验分 tab's trends and exports: daily line charts (3-minute reply rate, first
response, satisfaction, volume) and an hour-by-weekday heat map of incoming conversations,
drawn as SVG on the server (`charts`); and the CSV export buttons (`/static/exports.js`
streams the download and shows its progress). Loaded into the tab by htmx."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from app.deps import Ctx
from app.errors import DomainError
from app.metrics import trends as metrics_trends
from app.metrics.rules import resolve_period
from app.pages import charts
from app.pages.console import ConsoleStaff, percent, shop_zone_of
from app.pages.i18n import error_label, request_words
from app.pages.views import render
from app.shops.policy import Permission, may
from app.tags import service as tags_service

router = APIRouter(include_in_schema=False)


def _seconds(v: float) -> str:
    return f"{v:.0f}s" if v < 600 else f"{v / 60:.0f}m"


def _count(v: float) -> str:
    return f"{v:.0f}"


@router.get("/console/trends")
async def trends_fragment(request: Request, ctx: Ctx, me: ConsoleStaff) -> Response:
    if not may(me.role, Permission.VIEW_METRICS):
        return Response(status_code=403)
    zone = await shop_zone_of(ctx, me.shop_id)
    t = request_words(request)
    values: dict[str, Any] = {"error": None}
    try:
        start, end = resolve_period(
            request.query_params.get("from") or None,
            request.query_params.get("to") or None,
            now=ctx.clock.now(),
            tz=zone,
        )
        async with ctx.db.read() as s:
            tag_id = await tags_service.known_tag_id(
                s, me.shop_id, request.query_params.get("tag") or None
            )
            found = await metrics_trends.trends(s, me.shop_id, start, end, zone, tag_id)
    except DomainError as err:
        values["error"] = error_label(t, err.code) or err.message
        return render(request, ctx, "console/_trends.html", **values)
    days = [p.day for p in found.days]
    m = [p.metrics for p in found.days]
    cells, busiest = charts.heat_cells(found.heat)
    values.update(
        charts=[
            (
                "reply",
                t.gettext("Replied within 3 min"),
                charts.line_chart(days, [x.reply_3min_rate for x in m], percent, top=1.0),
            ),
            (
                "first",
                t.gettext("Avg first response"),
                charts.line_chart(days, [x.avg_first_response_s for x in m], _seconds),
            ),
            (
                "satisfaction",
                t.gettext("Satisfied"),
                charts.line_chart(days, [x.satisfaction_rate for x in m], percent, top=1.0),
            ),
            (
                "volume",
                t.gettext("Incoming conversations"),
                charts.line_chart(days, [float(p.incoming) for p in found.days], _count),
            ),
        ],
        cells=cells,
        busiest=busiest,
        cell=charts.CELL,
        heat_left=charts.HEAT_LEFT,
        heat_top=charts.HEAT_TOP,
    )
    return render(request, ctx, "console/_trends.html", **values)
