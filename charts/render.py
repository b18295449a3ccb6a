"""Draws each chart from its spec with matplotlib's object-oriented API on the Agg canvas: PNG bytes out.

One function per chart; each takes only its spec (plain data), so a test checks the data and a
benchmark times the drawing. No pyplot: figures are plain objects, nothing global is left behind.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import date, timedelta

import matplotlib

matplotlib.use("Agg")  # before anything else of matplotlib is imported: no display, ever

from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator

from charts.specs import (
    ChartSpec,
    HealthMapSpec,
    HealthTrendSpec,
    IndicatorBar,
    IndicatorsSpec,
    MilestonePlanSpec,
    RenewalsSpec,
)

logger = logging.getLogger(__name__)

# Sized for chat: 800 x 450 px at the default dpi reads well in a Slack preview and a Teams card,
# and stays a few tens of KB; decks ask for a higher dpi.
WIDTH_IN, HEIGHT_IN = 8.0, 4.5
CHAT_DPI = 100

RED, AMBER, GREEN, GREY = "#c8102e", "#e89f0c", "#2a9d5c", "#9aa0a6"
INK, MUTED, BLUE = "#1d3557", "#5f6b7a", "#3a6ea5"
BAND_COLOURS = {"red": RED, "amber": AMBER, "green": GREEN, "insufficient": GREY}
EVENT_STYLE = {
    "milestone": ("^", GREEN, "Milestone done"),
    "escalation": ("X", RED, "Escalation opened"),
    "qbr": ("D", BLUE, "QBR"),
}
QUADRANT_TEXT = {
    "protect": "PROTECT\nhealthy, high ARR",
    "grow": "GROW\nhealthy, room to expand",
    "fix": "FIX\nat risk, high ARR",
    "watch": "WATCH\nat risk, lower ARR",
}

# matplotlib shares font and text caches between figures; one drawing at a time keeps them sane
# when the Slack and Teams edges render from worker threads.
_DRAW_LOCK = threading.Lock()


def money(value: float) -> str:
    """$1.2M, $85k, $900."""
    if abs(value) >= 1_000_000:
        return f"${value / 1_000_000:.1f}M"
    if abs(value) >= 1_000:
        return f"${value / 1_000:.0f}k"
    return f"${value:.0f}"


# Fixed margins, not constrained layout: the layout engine measures every tick label twice and
# would take half of the drawing time.
MARGINS = {"left": 0.08, "right": 0.97, "top": 0.9, "bottom": 0.12}


def _figure(dpi: int, **margins: float) -> tuple[Figure, FigureCanvasAgg]:
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=dpi)
    fig.subplots_adjust(**{**MARGINS, **margins})
    return fig, FigureCanvasAgg(fig)


def _png(fig: Figure, canvas: FigureCanvasAgg) -> bytes:
    buffer = io.BytesIO()
    # No metadata: the same data gives the same bytes, whatever the matplotlib version.
    canvas.print_png(buffer, metadata={"Software": None})
    return buffer.getvalue()


def _style(ax: Axes) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(colors=MUTED, labelsize=8)
    for spine in ax.spines.values():
        spine.set_color("#c9ced6")


def _dates(ax: Axes) -> None:
    locator = mdates.AutoDateLocator(maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _labels(
    ax: Axes, x: str | None = None, y: str | None = None, *, x_at: float = -0.1, y_at: float = -0.07
) -> None:
    """Axis labels at fixed places: automatic placement measures every tick label first."""
    if x:
        ax.set_xlabel(x, fontsize=8, color=MUTED)
        ax.xaxis.set_label_coords(0.5, x_at)
    if y:
        ax.set_ylabel(y, fontsize=8, color=MUTED)
        ax.yaxis.set_label_coords(y_at, 0.5)


def _short(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _value_at(series: Sequence[tuple[date, float]], day: date) -> float | None:
    """The series' value on a day: the nearest earlier point (or the first one)."""
    best: float | None = None
    for d, v in series:
        if d > day:
            break
        best = v
    return best if best is not None else (series[0][1] if series else None)


def render_health_trend(spec: HealthTrendSpec, *, dpi: int = CHAT_DPI) -> bytes:
    """Health over time in its red/amber/green zones, the forecast dashed, events marked."""
    fig, canvas = _figure(dpi)
    ax = fig.add_subplot()
    _style(ax)
    ax.axhspan(0, spec.red_max, color=RED, alpha=0.08, lw=0)
    ax.axhspan(spec.red_max, spec.green_min, color=AMBER, alpha=0.10, lw=0)
    ax.axhspan(spec.green_min, 100, color=GREEN, alpha=0.08, lw=0)
    for y, colour in ((spec.red_max, RED), (spec.green_min, GREEN)):
        ax.axhline(y, color=colour, lw=0.6, alpha=0.5)
    handles: list[Line2D] = []
    if spec.history:
        days = [d for d, _ in spec.history]
        values = [v for _, v in spec.history]
        (line,) = ax.plot(days, values, color=INK, lw=2, label="Health score")
        handles.append(line)
        ax.annotate(
            f"{values[-1]:.0f}",
            (days[-1], values[-1]),
            textcoords="offset points",
            xytext=(4, 6),
            fontsize=9,
            color=INK,
            weight="bold",
        )
    forecast = spec.forecast
    if forecast is not None and forecast.points:
        fdays = [d for d, _ in forecast.points]
        (dashed,) = ax.plot(
            fdays,
            [v for _, v in forecast.points],
            color=INK,
            lw=1.6,
            ls="--",
            label=forecast.label or "Forecast",
        )
        handles.append(dashed)
        if forecast.low and forecast.high:
            ax.fill_between(
                [d for d, _ in forecast.low],
                [v for _, v in forecast.low],
                [v for _, v in forecast.high],
                color=INK,
                alpha=0.12,
                lw=0,
            )
    ax.axvline(spec.today, color=MUTED, lw=0.8, ls=":")
    ax.annotate(
        "today", (spec.today, 98), fontsize=7, color=MUTED, ha="right", va="top", rotation=90
    )
    series = list(spec.history) + (list(forecast.points) if forecast else [])
    series.sort()
    shown: set[str] = set()
    for event in spec.events:
        marker, colour, name = EVENT_STYLE.get(event.kind, ("o", MUTED, event.kind))
        y = _value_at(series, event.day)
        y = 96.0 if y is None else y
        label = None if event.kind in shown else name
        shown.add(event.kind)
        point = ax.scatter(
            [event.day], [y], marker=marker, s=60, color=colour, zorder=5, label=label, lw=0.5
        )
        if label:
            handles.append(point)  # type: ignore[arg-type]
    start = spec.history[0][0] if spec.history else spec.today - timedelta(days=30)
    end = max([spec.today, *(d for d, _ in series), *(e.day for e in spec.events)])
    ax.set_xlim(start, end + timedelta(days=2))
    ax.set_ylim(0, 100)
    ax.yaxis.set_major_locator(FixedLocator([0, spec.red_max, spec.green_min, 100]))
    _labels(ax, y="Health score")
    _dates(ax)
    ax.set_title(spec.title, loc="left", fontsize=11, color=INK, weight="bold", y=1.01)
    if handles:
        ax.legend(handles=handles, loc="lower left", fontsize=7, frameon=False, ncol=3)
    return _png(fig, canvas)


def _threshold_text(bar: IndicatorBar) -> str:
    unit = "" if not bar.unit else (bar.unit if bar.unit == "%" else f" {bar.unit}")
    if bar.value is None:
        value = "no reading"
    else:
        value = f"{bar.value:g}{unit}"
        if bar.status == "stale":
            value += " (stale)"
    better = "≥" if bar.direction == "higher" else "≤"
    worse = "≤" if bar.direction == "higher" else "≥"
    return f"{value} · red {worse}{bar.red:g} · green {better}{bar.green:g}"


def _indicator_panel(
    ax: Axes, bars: Sequence[IndicatorBar], spec: IndicatorsSpec, title: str
) -> None:
    _style(ax)
    ax.set_title(title, loc="left", fontsize=9, color=INK, weight="bold", y=1.0)
    ax.set_xlim(0, 100)
    if not bars:
        ax.text(50, 0.5, "none in this model", ha="center", va="center", color=MUTED, fontsize=8)
        ax.set_yticks([])
        return
    # Each label carries the raw value and the indicator's own thresholds on a second line.
    labels = [f"{_short(b.label, 30)}\n{_threshold_text(b)}" for b in bars]
    ys = list(range(len(bars)))[::-1]
    for y, bar in zip(ys, bars, strict=True):
        if bar.score is None or bar.status != "fresh":
            ax.barh(y, 100, color="none", edgecolor=GREY, hatch="///", lw=0.5, height=0.6)
        else:
            if bar.score <= spec.red_score:
                colour = RED
            elif bar.score < spec.green_score:
                colour = AMBER
            else:
                colour = GREEN
            ax.barh(y, bar.score, color=colour, height=0.6, alpha=0.9)
    ax.axvline(spec.red_score, color=RED, lw=1, ls="--")
    ax.axvline(spec.green_score, color=GREEN, lw=1, ls="--")
    ax.xaxis.set_major_locator(FixedLocator([0, spec.red_score, spec.green_score, 100]))
    ax.set_yticks(ys, labels, fontsize=7)
    ax.set_ylim(-0.7, len(bars) - 0.3)


def render_indicators(spec: IndicatorsSpec, *, dpi: int = CHAT_DPI) -> bytes:
    """Indicator scores as bars, leading and lagging in separate panels, threshold lines across."""
    fig, canvas = _figure(dpi, left=0.27, hspace=0.45, top=0.88, bottom=0.11)
    leading, lagging = spec.leading(), spec.lagging()
    rows = max(1, len(leading)) + max(1, len(lagging))
    grid = fig.add_gridspec(2, 1, height_ratios=[max(1, len(leading)), max(1, len(lagging))])
    top = fig.add_subplot(grid[0])
    bottom = fig.add_subplot(grid[1])
    _indicator_panel(top, leading, spec, "Leading indicators (predict what comes)")
    _indicator_panel(bottom, lagging, spec, "Lagging indicators (report what happened)")
    _labels(
        bottom,
        x=f"Indicator score (red threshold = {spec.red_score:g}, green threshold = {spec.green_score:g})",
        x_at=-0.3,
    )
    fig.suptitle(spec.title, x=0.01, ha="left", fontsize=11, color=INK, weight="bold")
    logger.debug("indicators chart with %d rows", rows)
    return _png(fig, canvas)


def render_health_map(spec: HealthMapSpec, *, dpi: int = CHAT_DPI) -> bytes:
    """Health against ARR (log scale), quadrants labelled, bubbles larger the sooner they renew."""
    fig, canvas = _figure(dpi, bottom=0.17, left=0.09)
    ax = fig.add_subplot()
    _style(ax)
    ax.set_xscale("log")
    # Decades only: a log axis otherwise builds a dozen minor ticks per decade, and ticks are
    # what the drawing spends its time on.
    ax.xaxis.set_major_locator(LogLocator(base=10, numticks=6))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_locator(FixedLocator([0, 25, 50, 75, 100]))
    arrs = [*(max(p.arr, 1.0) for p in spec.points), max(spec.arr_split, 1.0)]
    lo, hi = min(arrs) / 1.8, max(arrs) * 1.8
    ax.set_xlim(lo, hi)
    ax.set_ylim(0, 100)
    ax.axhline(spec.health_split, color=MUTED, lw=1, ls="--")
    ax.axvline(max(spec.arr_split, 1.0), color=MUTED, lw=1, ls="--")
    corners = {
        "grow": (0.01, 0.99, "left", "top"),
        "protect": (0.99, 0.99, "right", "top"),
        "watch": (0.01, 0.01, "left", "bottom"),
        "fix": (0.99, 0.01, "right", "bottom"),
    }
    counts = spec.counts()
    for quadrant, (x, y, ha, va) in corners.items():
        ax.text(
            x,
            y,
            f"{QUADRANT_TEXT[quadrant]} ({counts[quadrant]})",
            transform=ax.transAxes,
            ha=ha,
            va=va,
            fontsize=7.5,
            color=MUTED,
            weight="bold",
        )
    sizes = [
        40.0
        if p.days_to_renewal is None
        else 40.0 + 560.0 * (1 - min(max(p.days_to_renewal, 0), 365) / 365)
        for p in spec.points
    ]
    ax.scatter(
        [max(p.arr, 1.0) for p in spec.points],
        [p.health for p in spec.points],
        s=sizes,
        c=[BAND_COLOURS.get(p.band, GREY) for p in spec.points],
        alpha=0.65,
        edgecolors="white",
        linewidths=0.8,
        zorder=3,
    )
    named = (
        spec.points if len(spec.points) <= 20 else [p for p in spec.points if p.quadrant == "fix"]
    )
    for point in named:
        ax.annotate(
            _short(point.name, 18),
            (max(point.arr, 1.0), point.health),
            textcoords="offset points",
            xytext=(5, 4),
            fontsize=6.5,
            color=INK,
        )
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: money(v)))
    _labels(
        ax,
        x=f"ARR (split at the median, {money(spec.arr_split)})",
        y=f"Health score (split at {spec.health_split:g})",
    )
    note = "Bubble size: the sooner the renewal, the larger"
    if spec.unscored:
        note += f" · {spec.unscored} without a score not shown"
    ax.text(0.5, -0.16, note, transform=ax.transAxes, ha="center", fontsize=7, color=MUTED)
    ax.set_title(spec.title, loc="left", fontsize=11, color=INK, weight="bold", y=1.01)
    return _png(fig, canvas)


def render_milestone_plan(spec: MilestonePlanSpec, *, dpi: int = CHAT_DPI) -> bytes:
    """The hurdler chart: planned KPI points (one per milestone) against the measured actuals."""
    fig, canvas = _figure(dpi)
    ax = fig.add_subplot()
    _style(ax)
    unit = "" if spec.unit in ("", "%") else f" {spec.unit}"
    suffix = "%" if spec.unit == "%" else unit
    plan = [(spec.start, spec.baseline), *((p.day, p.value) for p in spec.planned)]
    plan.sort()
    ax.plot(
        [d for d, _ in plan],
        [v for _, v in plan],
        color=BLUE,
        lw=1.4,
        ls="--",
        marker="o",
        mfc="white",
        label="Plan (milestone hurdles)",
    )
    status_colour = {"done": GREEN, "at_risk": RED, "blocked": RED}
    for point in spec.planned:
        colour = status_colour.get(point.status, BLUE)
        ax.scatter([point.day], [point.value], s=55, color=colour, zorder=4)
        ax.annotate(
            _short(point.label, 22),
            (point.day, point.value),
            textcoords="offset points",
            xytext=(0, 8),
            ha="center",
            fontsize=6.5,
            color=MUTED,
        )
    ax.axhline(spec.target, color=GREEN, lw=1, ls=":")
    ax.annotate(
        f"target {spec.target:g}{suffix}",
        (1.0, spec.target),
        xycoords=("axes fraction", "data"),
        ha="right",
        va="bottom",
        fontsize=7.5,
        color=GREEN,
    )
    if spec.actual:
        ax.plot(
            [d for d, _ in spec.actual],
            [v for _, v in spec.actual],
            color=INK,
            lw=2,
            marker=".",
            label="Actual",
        )
    ax.axvline(spec.today, color=MUTED, lw=0.8, ls=":")
    _dates(ax)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}{suffix}"))
    _labels(ax, y=spec.kpi, y_at=-0.08)
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    ax.set_title(spec.title, loc="left", fontsize=11, color=INK, weight="bold", y=1.01)
    return _png(fig, canvas)


def render_renewals(spec: RenewalsSpec, *, dpi: int = CHAT_DPI) -> bytes:
    """Renewals ahead as a lollipop timeline: when (x), how much ARR (y), health band (colour)."""
    fig, canvas = _figure(dpi)
    ax = fig.add_subplot()
    _style(ax)
    marks = sorted(spec.renewals, key=lambda r: (r.day, -r.arr))
    if marks:
        days = [r.day for r in marks]
        arrs = [r.arr for r in marks]
        colours = [BAND_COLOURS.get(r.band, GREY) for r in marks]
        ax.vlines(days, 0, arrs, colors=colours, lw=2, alpha=0.8)
        ax.scatter(days, arrs, c=colours, s=40, zorder=3)
        biggest = sorted(marks, key=lambda r: -r.arr)[:10]
        for r in biggest:
            ax.annotate(
                _short(r.name, 18),
                (r.day, r.arr),
                textcoords="offset points",
                xytext=(3, 4),
                fontsize=6.5,
                color=INK,
            )
        ax.set_ylim(0, max(arrs) * 1.2)
    else:
        ax.text(0.5, 0.5, "No renewals in this window", transform=ax.transAxes, ha="center")
    ax.set_xlim(spec.start - timedelta(days=2), spec.end + timedelta(days=2))
    ax.axvline(spec.today, color=MUTED, lw=0.8, ls=":")
    _dates(ax)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: money(v)))
    _labels(ax, y="ARR up for renewal", y_at=-0.08)
    legend = [
        Line2D([0], [0], marker="o", color="w", markerfacecolor=c, markersize=7, label=b)
        for b, c in BAND_COLOURS.items()
        if any(r.band == b for r in marks)
    ]
    if legend:
        ax.legend(handles=legend, loc="upper right", fontsize=7, frameon=False, title="health")
    ax.set_title(spec.title, loc="left", fontsize=11, color=INK, weight="bold", y=1.01)
    return _png(fig, canvas)


RENDERERS: dict[str, Callable[..., bytes]] = {
    HealthTrendSpec.kind: render_health_trend,
    IndicatorsSpec.kind: render_indicators,
    HealthMapSpec.kind: render_health_map,
    MilestonePlanSpec.kind: render_milestone_plan,
    RenewalsSpec.kind: render_renewals,
}


def render(spec: ChartSpec, *, dpi: int = CHAT_DPI) -> bytes:
    """PNG bytes of any chart spec (one drawing at a time; see _DRAW_LOCK)."""
    renderer = RENDERERS.get(spec.kind)
    if renderer is None:
        raise ValueError(f"no renderer for chart kind {spec.kind!r}")
    with _DRAW_LOCK:
        return renderer(spec, dpi=dpi)
