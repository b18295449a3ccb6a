"""Charts a person can read: every label inside the picture, names and quadrant labels apart."""

from __future__ import annotations

from typing import Any

import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

import charts.render as render
from bot.console import ConsoleChat
from charts.specs import spec_from_dict


def drawn(monkeypatch: pytest.MonkeyPatch, spec: Any, dpi: int = render.CHAT_DPI) -> Figure:
    """The figure a renderer draws (captured instead of being written out as PNG)."""
    figures: list[Figure] = []

    def keep(fig: Figure, canvas: Any) -> bytes:
        canvas.draw()
        figures.append(fig)
        return b""

    monkeypatch.setattr(render, "_png", keep)
    render.render(spec, dpi=dpi)
    (fig,) = figures
    return fig


def _hidden_ticks(fig: Figure) -> set[int]:
    """Tick labels outside the axis limits: matplotlib keeps them but does not draw them."""
    hidden: set[int] = set()
    for ax in fig.axes:
        for axis, (lo, hi), at in (
            (ax.xaxis, sorted(ax.get_xlim()), 0),
            (ax.yaxis, sorted(ax.get_ylim()), 1),
        ):
            for label in axis.get_ticklabels(which="both"):
                where = label.get_position()[at]
                if not lo - 1e-9 * abs(hi - lo) <= where <= hi + 1e-9 * abs(hi - lo):
                    hidden.add(id(label))
    return hidden


def texts(fig: Figure) -> list[Text]:
    hidden = _hidden_ticks(fig)
    return [
        t
        for t in fig.findobj(Text)
        if isinstance(t, Text) and t.get_visible() and t.get_text().strip() and id(t) not in hidden
    ]


def outside(fig: Figure) -> list[str]:
    """Texts that do not fit inside the picture (cut off at its edge)."""
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    width, height = fig.bbox.width, fig.bbox.height
    out = []
    for t in texts(fig):
        box = t.get_window_extent(renderer)
        if box.x0 < -0.5 or box.y0 < -0.5 or box.x1 > width + 0.5 or box.y1 > height + 0.5:
            out.append(t.get_text())
    return out


def overlapping(fig: Figure, group: list[Text]) -> list[tuple[str, str]]:
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in group]
    return [
        (a, b)
        for i, (a, box_a) in enumerate(boxes)
        for b, box_b in boxes[i + 1 :]
        if box_a.overlaps(box_b)
    ]


def chart_specs(container: Any, text: str, as_email: str = "dana@example.com") -> list[Any]:
    reply = ConsoleChat(container, as_email).reply(text)
    return [spec_from_dict(a.data) for a in reply.attachments if a.kind == "chart"]


QUESTIONS = (
    "/health acme chart",
    "plan acme chart",
    "renewals next 90 days chart",
    "health map",
)


@pytest.mark.parametrize("dpi", [render.CHAT_DPI, 150])
def test_no_label_is_cut_off_at_the_edge(
    demo_container: Any, monkeypatch: pytest.MonkeyPatch, dpi: int
) -> None:
    specs = [s for q in QUESTIONS for s in chart_specs(demo_container, q)]
    specs += chart_specs(demo_container, "team map", "alex@example.com")
    cut = {s.title: outside(drawn(monkeypatch, s, dpi)) for s in specs}
    assert {title: labels for title, labels in cut.items() if labels} == {}


def test_the_team_map_keeps_names_and_quadrant_labels_apart(
    demo_container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (spec,) = chart_specs(demo_container, "team map", "alex@example.com")
    fig = drawn(monkeypatch, spec)
    (ax,) = fig.axes
    annotations = [
        t
        for t in texts(fig)
        if t in ax.texts and t.get_text() in {render._short(p.name, 18) for p in spec.points}
    ]
    quadrants = [t for t in ax.texts if t.get_text().split(" · ")[0].isupper()]
    assert len(quadrants) == 4 and annotations
    assert overlapping(fig, annotations + quadrants) == []
    # A quadrant label sits where no bubble can be: above 100 or below 0.
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    to_data = ax.transData.inverted()
    for label in quadrants:
        box = label.get_window_extent(renderer)
        (_, low), (_, high) = to_data.transform([(box.x0, box.y0), (box.x1, box.y1)])
        assert low >= 100 or high <= 0, label.get_text()


def test_a_first_days_trend_keeps_its_labels_inside_the_plot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datetime import date, timedelta

    from charts.specs import ForecastPath, HealthTrendSpec

    today = date(2026, 11, 30)
    spec = HealthTrendSpec(
        title="Fabrikam Inc — health today (no history yet)",
        account="Fabrikam Inc",
        today=today,
        red_max=50,
        green_min=76,
        history=((today, 63.0),),
        forecast=ForecastPath(
            points=((today, 63.0), (today + timedelta(days=38), 50.0)),
            label="Forecast: red in ~38 days",
        ),
        events=(),
        source="one snapshot",
    )
    fig = drawn(monkeypatch, spec)
    (ax,) = fig.axes
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    frame = ax.get_window_extent(renderer)
    for label in ax.texts:
        box = label.get_window_extent(renderer)
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1, label.get_text()


def test_a_big_books_map_names_only_what_can_be_read(monkeypatch: pytest.MonkeyPatch) -> None:
    import random
    from datetime import date

    from charts.specs import HealthMapSpec, MapPoint
    from domain.health_map import quadrant

    rng = random.Random(7)
    points = []
    for i in range(2_000):
        health, arr = rng.uniform(10, 100), 10 ** rng.uniform(3, 6.5)
        band = "green" if health >= 76 else "amber" if health > 50 else "red"
        points.append(
            MapPoint(
                f"Account {i}",
                health,
                arr,
                rng.randint(0, 400),
                band,
                quadrant(health, arr, health_split=76, arr_split=55_000),
            )
        )
    spec = HealthMapSpec(
        title="Health map — all accounts",
        scope="all",
        today=date(2026, 11, 30),
        health_split=76,
        arr_split=55_000,
        points=tuple(points),
    )
    fig = drawn(monkeypatch, spec)
    (ax,) = fig.axes
    names = [t for t in ax.texts if t.get_text().startswith("Account ")]
    # Hundreds of "fix" accounts: a dozen or two readable names, the largest first, not a smear.
    assert 0 < len(names) <= render.MAP_MAX_NAMES
    assert overlapping(fig, names) == []


def test_chart_labels_round_values_to_one_decimal(
    demo_container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    specs = [s for q in QUESTIONS for s in chart_specs(demo_container, q)]
    for spec in specs:
        shown = [t.get_text() for t in texts(drawn(monkeypatch, spec))] + [spec.summary()]
        long = [t for t in shown if re.search(r"\d+\.\d{2,}", t)]
        assert long == [], spec.title
