"""The plain data each chart is drawn from: one frozen spec per chart, JSON round-trippable."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date
from itertools import pairwise
from typing import Any, ClassVar

from charts.text import sparkline

Series = tuple[tuple[date, float], ...]


def _series(points: Iterable[Sequence[Any]]) -> Series:
    return tuple((_day(p[0]), float(p[1])) for p in points)


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _plain(value: Any) -> Any:
    """Dates as ISO strings, dataclasses as dicts, tuples as lists: what json.dumps takes."""
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


class ChartSpec:
    """Base of every spec: a kind name, the data's source (for speaker notes) and JSON round trips."""

    kind: ClassVar[str] = ""
    title: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **_plain(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChartSpec:
        raise NotImplementedError

    def summary(self) -> str:
        """One line of text that says what the chart shows (console, fallbacks, alt text)."""
        raise NotImplementedError

    @property
    def slug(self) -> str:
        return self.kind.replace("_", "-")


# -- health over time ------------------------------------------------------------------------


@dataclass(frozen=True)
class ChartEvent:
    """Something that happened on a day: a milestone done, an escalation opened, a QBR."""

    day: date
    kind: str  # milestone | escalation | qbr
    label: str


@dataclass(frozen=True)
class ForecastPath:
    """The projected score after today; low/high bound the range when the forecast gives one."""

    points: Series
    label: str
    low: Series = ()
    high: Series = ()


@dataclass(frozen=True)
class HealthTrendSpec(ChartSpec):
    """An account's health score over time, the RAG zones, the forecast and what happened."""

    kind: ClassVar[str] = "health_trend"
    title: str
    account: str
    today: date
    red_max: float
    green_min: float
    history: Series
    forecast: ForecastPath | None = None
    events: tuple[ChartEvent, ...] = ()
    source: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HealthTrendSpec:
        forecast = data.get("forecast")
        return cls(
            title=str(data["title"]),
            account=str(data["account"]),
            today=_day(data["today"]),
            red_max=float(data["red_max"]),
            green_min=float(data["green_min"]),
            history=_series(data.get("history") or ()),
            forecast=None
            if not forecast
            else ForecastPath(
                points=_series(forecast.get("points") or ()),
                label=str(forecast.get("label") or ""),
                low=_series(forecast.get("low") or ()),
                high=_series(forecast.get("high") or ()),
            ),
            events=tuple(
                ChartEvent(_day(e["day"]), str(e["kind"]), str(e["label"]))
                for e in data.get("events") or ()
            ),
            source=str(data.get("source") or ""),
        )

    def summary(self) -> str:
        if not self.history:
            return f"{self.account}: no health history to chart yet"
        values = [v for _, v in self.history]
        days = (self.history[-1][0] - self.history[0][0]).days
        line = f"{self.account} health, {days} days: {sparkline(values, lo=0, hi=100)} {values[-1]:.0f}/100"
        if self.forecast is not None:
            line += f"; {self.forecast.label}"
        return line


# -- indicators behind the score -------------------------------------------------------------


@dataclass(frozen=True)
class IndicatorBar:
    """One indicator: its 0..100 score and raw value against its own red and green thresholds."""

    key: str
    label: str
    kind: str  # leading | lagging
    score: float | None
    value: float | None
    unit: str
    red: float
    green: float
    direction: str  # higher | lower
    status: str  # fresh | stale | missing


@dataclass(frozen=True)
class IndicatorsSpec(ChartSpec):
    """The indicators behind a score, leading and lagging apart, against their thresholds.

    Bars are indicator scores (0..100); an indicator's red threshold scores ``red_score`` and its
    green threshold ``green_score``, so one pair of lines marks every indicator's thresholds.
    """

    kind: ClassVar[str] = "indicators"
    title: str
    account: str
    day: date
    bars: tuple[IndicatorBar, ...]
    red_score: float = 50.0
    green_score: float = 76.0
    source: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IndicatorsSpec:
        return cls(
            title=str(data["title"]),
            account=str(data["account"]),
            day=_day(data["day"]),
            bars=tuple(IndicatorBar(**b) for b in data.get("bars") or ()),
            red_score=float(data.get("red_score", 50.0)),
            green_score=float(data.get("green_score", 76.0)),
            source=str(data.get("source") or ""),
        )

    def leading(self) -> tuple[IndicatorBar, ...]:
        return tuple(b for b in self.bars if b.kind == "leading")

    def lagging(self) -> tuple[IndicatorBar, ...]:
        return tuple(b for b in self.bars if b.kind == "lagging")

    def summary(self) -> str:
        below = [b.label for b in self.bars if b.score is not None and b.score < self.red_score]
        missing = sum(1 for b in self.bars if b.score is None)
        line = f"{self.account} indicators: {len(self.leading())} leading, {len(self.lagging())} lagging"
        if below:
            line += "; below red: " + ", ".join(below)
        if missing:
            line += f"; {missing} without a fresh reading"
        return line


# -- the client health map -------------------------------------------------------------------


@dataclass(frozen=True)
class MapPoint:
    """One account on the health map."""

    name: str
    health: float
    arr: float
    days_to_renewal: int | None
    band: str
    quadrant: str  # protect | grow | fix | watch


@dataclass(frozen=True)
class HealthMapSpec(ChartSpec):
    """A portfolio as health against ARR, bubbles sized by how soon they renew, in four quadrants."""

    kind: ClassVar[str] = "health_map"
    title: str
    scope: str
    today: date
    health_split: float
    arr_split: float
    points: tuple[MapPoint, ...]
    unscored: int = 0  # accounts left off: no health score (insufficient data)
    source: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HealthMapSpec:
        return cls(
            title=str(data["title"]),
            scope=str(data["scope"]),
            today=_day(data["today"]),
            health_split=float(data["health_split"]),
            arr_split=float(data["arr_split"]),
            points=tuple(MapPoint(**p) for p in data.get("points") or ()),
            unscored=int(data.get("unscored") or 0),
            source=str(data.get("source") or ""),
        )

    def counts(self) -> dict[str, int]:
        out = {"protect": 0, "grow": 0, "fix": 0, "watch": 0}
        for point in self.points:
            out[point.quadrant] = out.get(point.quadrant, 0) + 1
        return out

    def summary(self) -> str:
        c = self.counts()
        line = (
            f"Health map of {self.scope}: {c['fix']} fix, {c['watch']} watch, "
            f"{c['protect']} protect, {c['grow']} grow"
        )
        if self.unscored:
            line += f" ({self.unscored} without a score not shown)"
        return line


# -- a milestone plan against its KPI target (the hurdler method) ----------------------------


@dataclass(frozen=True)
class PlannedPoint:
    """A hurdle: the KPI value a milestone should reach by its due date."""

    day: date
    value: float
    label: str
    status: str


@dataclass(frozen=True)
class MilestonePlanSpec(ChartSpec):
    """An objective's KPI from baseline to target: planned hurdles against measured actuals."""

    kind: ClassVar[str] = "milestone_plan"
    title: str
    account: str
    objective: str
    kpi: str
    unit: str
    start: date
    today: date
    baseline: float
    target: float
    planned: tuple[PlannedPoint, ...]
    actual: Series
    source: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MilestonePlanSpec:
        return cls(
            title=str(data["title"]),
            account=str(data["account"]),
            objective=str(data["objective"]),
            kpi=str(data["kpi"]),
            unit=str(data.get("unit") or ""),
            start=_day(data["start"]),
            today=_day(data["today"]),
            baseline=float(data["baseline"]),
            target=float(data["target"]),
            planned=tuple(
                PlannedPoint(_day(p["day"]), float(p["value"]), str(p["label"]), str(p["status"]))
                for p in data.get("planned") or ()
            ),
            actual=_series(data.get("actual") or ()),
            source=str(data.get("source") or ""),
        )

    def planned_on(self, day: date) -> float | None:
        """The plan's KPI value on a day, read off the line through baseline and the hurdles."""
        points = [(self.start, self.baseline), *((p.day, p.value) for p in self.planned)]
        points.sort()
        if day < points[0][0]:
            return None
        for (d0, v0), (d1, v1) in pairwise(points):
            if d0 <= day <= d1:
                span = (d1 - d0).days
                return v1 if span == 0 else v0 + (v1 - v0) * (day - d0).days / span
        return points[-1][1]

    def summary(self) -> str:
        unit = self.unit if self.unit in ("%", "") else f" {self.unit}"
        if not self.actual:
            return (
                f"{self.objective}: {self.kpi} {self.baseline:g}{unit} → {self.target:g}{unit}, "
                "no measurements recorded yet"
            )
        day, value = self.actual[-1]
        plan = self.planned_on(day)
        line = (
            f"{self.objective}: {self.kpi} {sparkline([v for _, v in self.actual])} "
            f"{value:g}{unit} on {day.isoformat()} (target {self.target:g}{unit}"
        )
        if plan is not None:
            line += f", plan {plan:.3g}{unit} by then"
        return line + ")"


# -- renewals ahead --------------------------------------------------------------------------


@dataclass(frozen=True)
class RenewalMark:
    """One renewal on the timeline."""

    name: str
    day: date
    arr: float
    band: str


@dataclass(frozen=True)
class RenewalsSpec(ChartSpec):
    """Renewals in a window on a timeline, sized by ARR and coloured by health band."""

    kind: ClassVar[str] = "renewals"
    title: str
    start: date
    end: date
    today: date
    renewals: tuple[RenewalMark, ...]
    source: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RenewalsSpec:
        return cls(
            title=str(data["title"]),
            start=_day(data["start"]),
            end=_day(data["end"]),
            today=_day(data["today"]),
            renewals=tuple(
                RenewalMark(str(r["name"]), _day(r["day"]), float(r["arr"]), str(r["band"]))
                for r in data.get("renewals") or ()
            ),
            source=str(data.get("source") or ""),
        )

    def summary(self) -> str:
        bands: dict[str, float] = {}
        for r in self.renewals:
            bands[r.band] = bands.get(r.band, 0.0) + r.arr
        parts = [
            f"{b} ${bands[b]:,.0f}" for b in ("red", "amber", "green", "insufficient") if b in bands
        ]
        return f"{len(self.renewals)} renewals {self.start.isoformat()}…{self.end.isoformat()}" + (
            ": " + ", ".join(parts) if parts else ""
        )


SPECS: dict[str, type[ChartSpec]] = {
    cls.kind: cls
    for cls in (HealthTrendSpec, IndicatorsSpec, HealthMapSpec, MilestonePlanSpec, RenewalsSpec)
}


def spec_from_dict(data: Mapping[str, Any]) -> ChartSpec:
    """The spec a to_dict() came from; ValueError for an unknown kind."""
    kind = data.get("kind")
    cls = SPECS.get(str(kind))
    if cls is None:
        raise ValueError(f"unknown chart kind {kind!r}")
    return cls.from_dict(data)
