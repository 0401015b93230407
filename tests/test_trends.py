"""Trends: the days of a period, the weekday × hour heat map and the chart geometry (pure),
and the console's trends fragment through a real server (both databases)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from app.errors import BadInput
from app.metrics.trend_rules import check_trend_period, days_of, heat_map
from app.pages.charts import heat_cells, line_chart, nice_max
from tests.support.factories import PASSWORD, make_shop
from tests.support.passwords import cheap_password_hashing  # noqa: F401  (fixture)

SH = ZoneInfo("Asia/Shanghai")


def test_days_of_a_period_on_the_shops_calendar():
    start = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)  # 2026-03-02 00:00 Shanghai
    end = datetime(2026, 3, 3, 4, 0, tzinfo=UTC)  # 2026-03-03 12:00 Shanghai
    days = days_of(start, end, SH)
    assert [d for d, _, _ in days] == ["2026-03-02", "2026-03-03"]
    assert days[0][1] == start and days[1][2] == end  # clipped to the period
    assert days[0][2] == days[1][1] == datetime(2026, 3, 2, 16, 0, tzinfo=UTC)


def test_trends_cover_at_most_a_quarter():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    check_trend_period(start, start + timedelta(days=92))
    with pytest.raises(BadInput):
        check_trend_period(start, start + timedelta(days=93))


@pytest.mark.parametrize(
    ("utc", "weekday", "hour"),
    [
        (datetime(2026, 3, 1, 16, 30, tzinfo=UTC), 0, 0),  # Monday 00:30 Shanghai
        (datetime(2026, 3, 8, 15, 59, tzinfo=UTC), 6, 23),  # Sunday 23:59 Shanghai
        (datetime(2026, 3, 4, 2, 0, tzinfo=UTC), 2, 10),  # Wednesday 10:00
    ],
)
def test_heat_map_buckets_on_the_shops_wall_clock(utc, weekday, hour):
    grid = heat_map([utc, utc], SH)
    assert grid[weekday][hour] == 2 and sum(map(sum, grid)) == 2


@pytest.mark.parametrize(
    ("value", "top"), [(0, 4.0), (0.9, 1.0), (38, 40.0), (190, 200.0), (1.0, 1.0), (7, 8.0)]
)
def test_axis_tops_fall_on_round_gridlines(value, top):
    assert nice_max(value) == top


def test_line_chart_breaks_at_days_without_a_value():
    days = ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"]
    chart = line_chart(days, [0.5, None, 1.0, 0.0], lambda v: f"{v:.0%}", top=1.0)
    assert len(chart.segments) == 2 and len(chart.points) == 3
    ys = [p.y for p in chart.points]
    assert ys[1] < ys[0] < ys[2]  # SVG y grows downwards: 100% on top, 0% at the bottom
    assert [label for _, label in chart.y_ticks] == ["0%", "25%", "50%", "75%", "100%"]
    assert not chart.empty
    assert line_chart(days, [None] * 4, str).empty


def test_heat_cells_shade_by_the_busiest_hour():
    grid = [[0] * 24 for _ in range(7)]
    grid[2][10], grid[4][20] = 4, 2
    cells, busiest = heat_cells(grid)
    assert busiest == 4 and len(cells) == 168
    shades = {(c.count, c.shade) for c in cells}
    assert shades == {(0, 0.0), (4, 1.0), (2, 0.5)}


@pytest.mark.usefixtures("cheap_password_hashing")
async def test_the_trends_fragment_draws_the_charts(server):
    kit = await make_shop(server.ctx.db, agents=(("a1", "agent", ("general",)),))
    async with httpx.AsyncClient(base_url=server.http) as c:
        r = await c.post(
            "/login",
            data={"shop": kit.slug, "username": "admin", "password": PASSWORD},
            headers={"HX-Request": "true"},
        )
        assert "homing_session" in c.cookies, r.text
        page = await c.get("/console/trends", params={"from": "2026-03-01", "to": "2026-03-07"})
        assert page.status_code == 200
        assert page.text.count('class="chart trend"') == 4 and 'id="heat-map"' in page.text
        assert page.text.count('class="heat-cell"') == 168
        bad = await c.get("/console/trends", params={"from": "2026-01-01", "to": "2026-06-01"})
        assert "92" in bad.text and "heat-map" not in bad.text
