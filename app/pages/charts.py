"""Server-rendered SVG charts: the geometry as pure functions, the templates draw it.

No JavaScript library: a line chart is a polyline (a gap where a day has no value) with
its axis ticks, a heat map a grid of cells shaded by count. Text in the charts comes from
the catalogs through the template, so they read in zh-CN and English alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 460, 200
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 54, 14, 12, 34


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str  # the day
    text: str  # the value as shown


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    segments: list[str]  # SVG polyline "points" attributes, one per unbroken run
    points: list[Point]
    y_ticks: list[tuple[float, str]]  # (y, label)
    x_ticks: list[tuple[float, str]]  # (x, label)
    empty: bool


def nice_step(value: float) -> float:
    """A round step at or above `value` (1, 2, 2.5, 5 × 10^n)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def nice_max(value: float) -> float:
    """A top for the axis at or above `value` whose four gridlines fall on round numbers."""
    return 4 * nice_step(value / 4) if value > 0 else 4.0


def line_chart(
    days: Sequence[str],
    values: Sequence[float | None],
    fmt: Callable[[float], str],
    *,
    top: float | None = None,
) -> LineChart:
    """Days along x, values up y (0 at the bottom, `top` or a round maximum at the top)."""
    inner_w = WIDTH - PAD_LEFT - PAD_RIGHT
    inner_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    present = [v for v in values if v is not None]
    y_top = top if top is not None else nice_max(max(present, default=0.0))
    n = len(days)

    def x_of(i: int) -> float:
        return round(PAD_LEFT + (inner_w * i / (n - 1) if n > 1 else inner_w / 2), 1)

    def y_of(v: float) -> float:
        return round(PAD_TOP + inner_h * (1 - min(v, y_top) / y_top), 1)

    segments: list[str] = []
    run: list[str] = []
    points: list[Point] = []
    for i, (day, v) in enumerate(zip(days, values, strict=True)):
        if v is None:
            if run:
                segments.append(" ".join(run))
            run = []
            continue
        x, y = x_of(i), y_of(v)
        run.append(f"{x},{y}")
        points.append(Point(x, y, day, fmt(v)))
    if run:
        segments.append(" ".join(run))
    y_ticks = [(y_of(y_top * k / 4), fmt(y_top * k / 4)) for k in range(5)]
    every = max(1, math.ceil(n / 7))
    x_ticks = [(x_of(i), days[i][5:]) for i in range(0, n, every)]
    return LineChart(WIDTH, HEIGHT, segments, points, y_ticks, x_ticks, not present)


@dataclass(frozen=True)
class HeatCell:
    x: int
    y: int
    count: int
    shade: float  # 0-1 of the busiest hour


CELL, HEAT_LEFT, HEAT_TOP = 26, 64, 22


def heat_cells(grid: Sequence[Sequence[int]]) -> tuple[list[HeatCell], int]:
    """Cells of a weekday × hour grid, shaded relative to the busiest; and that maximum."""
    busiest = max((c for row in grid for c in row), default=0)
    cells = [
        HeatCell(
            HEAT_LEFT + hour * CELL,
            HEAT_TOP + weekday * CELL,
            count,
            round(count / busiest, 3) if busiest else 0.0,
        )
        for weekday, row in enumerate(grid)
        for hour, count in enumerate(row)
    ]
    return cells, busiest
