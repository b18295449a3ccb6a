"""Health model definitions (indicators, bands, segments) and their strict YAML loader."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal, NoReturn, get_args

import yaml

Direction = Literal["higher", "lower"]
Kind = Literal["leading", "lagging"]
Objectivity = Literal["objective", "subjective"]
Measure = Literal["quantitative", "qualitative"]
BandName = Literal["red", "amber", "green"]
SurveyKind = Literal["nps", "csat", "ces"]

_PACKAGED_DIR = "health_models"
_PACKAGED_DEFAULT = "default.yaml"


@dataclass(frozen=True)
class Indicator:
    """One weighted input of the health score; thresholds are in the indicator's own unit."""

    key: str
    label: str
    weight: float
    direction: Direction
    red: float
    green: float
    floor: float  # the worst value: scores 0
    ceiling: float  # the best value: scores 100
    kind: Kind
    objectivity: Objectivity
    measure: Measure
    max_age_days: int
    unit: str = ""
    description: str = ""
    # The range a reading can take at all (a percentage 0..100, NPS -100..100); None = open.
    # Imports reject readings outside it instead of scoring a typo.
    min_value: float | None = None
    max_value: float | None = None
    # False for step-like or judgement values (a 1/2/3 rating, a "days since" sawtooth): the
    # forecast holds them at today's value instead of drawing a line through their steps.
    continuous: bool = True
    # Survey responses of this kind feed the indicator when the window has any: its value is then
    # the NPS (or CSAT %, or mean CES) of the answers in the last survey_window_days days.
    survey: SurveyKind | None = None
    survey_window_days: int | None = None

    @property
    def survey_window(self) -> int:
        """Days of survey answers behind a survey-fed value (default: the max age of a reading)."""
        return self.survey_window_days or self.max_age_days

    def accepts(self, value: float) -> bool:
        """Whether a reading is possible for this indicator (within min/max when set)."""
        if self.min_value is not None and value < self.min_value:
            return False
        return self.max_value is None or value <= self.max_value

    def __post_init__(self) -> None:
        # The loader gives friendlier messages; this guards indicators built directly in code, so
        # indicator_score can rely on ordered thresholds.
        problem = _threshold_problem(self.direction, self.floor, self.red, self.green, self.ceiling)
        if problem:
            raise ValueError(f"indicator {self.key!r}: {problem}")
        if not self.weight > 0:
            raise ValueError(f"indicator {self.key!r}: weight must be > 0")
        if self.max_age_days <= 0:
            raise ValueError(f"indicator {self.key!r}: max_age_days must be > 0")
        if self.survey is not None and self.survey not in get_args(SurveyKind):
            raise ValueError(f"indicator {self.key!r}: unknown survey kind {self.survey!r}")
        if self.survey_window_days is not None and self.survey_window_days <= 0:
            raise ValueError(f"indicator {self.key!r}: survey_window_days must be > 0")


@dataclass(frozen=True)
class Bands:
    """Red-Amber-Green cut-offs on the 0..100 overall score."""

    red_max: float = 50
    green_min: float = 76

    def __post_init__(self) -> None:
        if not 0 <= self.red_max < self.green_min <= 100:
            raise ValueError("bands need 0 <= red_max < green_min <= 100")

    def band(self, score: float) -> BandName:
        """Red at or below red_max, green at or above green_min, amber in between."""
        if score <= self.red_max:
            return "red"
        if score >= self.green_min:
            return "green"
        return "amber"


@dataclass(frozen=True)
class ExpansionRule:
    """A commercial signal: an indicator's latest value at or past a threshold ("active seats ≥ 90%")."""

    key: str
    label: str
    indicator: str
    at_least: float | None = None
    at_most: float | None = None

    def fires(self, value: float | None) -> bool:
        if value is None:
            return False
        if self.at_least is not None and value < self.at_least:
            return False
        return self.at_most is None or value <= self.at_most


# The expansion signal every model has unless it declares its own (design.md).
DEFAULT_EXPANSION_RULES: tuple[ExpansionRule, ...] = (
    ExpansionRule(
        key="seats_near_limit",
        label="active seats ≥ 90% of licensed seats",
        indicator="product_usage",
        at_least=90.0,
    ),
)


@dataclass(frozen=True)
class HealthModel:
    """A named set of indicators plus the bands that turn their weighted mean into RAG."""

    name: str
    indicators: tuple[Indicator, ...]
    bands: Bands = field(default_factory=Bands)
    expansion: tuple[ExpansionRule, ...] = DEFAULT_EXPANSION_RULES

    def __post_init__(self) -> None:
        if not self.indicators:
            raise ValueError(f"health model {self.name!r} has no indicators")
        keys = [i.key for i in self.indicators]
        if len(set(keys)) != len(keys):
            raise ValueError(f"health model {self.name!r} has duplicate indicator keys")

    def indicator(self, key: str) -> Indicator:
        """The indicator with this key; KeyError if the model has none."""
        for ind in self.indicators:
            if ind.key == key:
                return ind
        raise KeyError(key)

    # Cached (the model is immutable): scoring reads these for every account and day.
    @cached_property
    def total_weight(self) -> float:
        return math.fsum(i.weight for i in self.indicators)

    @cached_property
    def keys(self) -> tuple[str, ...]:
        return tuple(i.key for i in self.indicators)

    @cached_property
    def survey_fed(self) -> tuple[Indicator, ...]:
        """The indicators whose value comes from survey answers when there are any."""
        return tuple(i for i in self.indicators if i.survey is not None)


@dataclass(frozen=True)
class HealthModels:
    """The default model plus per-segment overrides (keys are lower-cased segment names)."""

    default: HealthModel
    by_segment: dict[str, HealthModel]
    source: str

    def for_segment(self, segment: str | None) -> HealthModel:
        """The model for a segment, matched case-insensitively; the default when none matches."""
        if segment:
            model = self.by_segment.get(segment.strip().lower())
            if model is not None:
                return model
        return self.default


class HealthModelError(ValueError):
    """A health model file is invalid; the message names the file, the indicator and the field."""


# --------------------------------------------------------------------------------------------
# validation helpers


def _threshold_problem(
    direction: str, floor: float, red: float, green: float, ceiling: float
) -> str | None:
    """Why the thresholds are out of order for the direction, or None when they are fine."""
    if direction == "higher":
        if floor < red < green <= ceiling:
            return None
        return (
            "thresholds must satisfy floor < red < green <= ceiling for direction 'higher', "
            f"got floor={floor:g}, red={red:g}, green={green:g}, ceiling={ceiling:g}"
        )
    if floor > red > green >= ceiling:
        return None
    return (
        "thresholds must satisfy floor > red > green >= ceiling for direction 'lower', "
        f"got floor={floor:g}, red={red:g}, green={green:g}, ceiling={ceiling:g}"
    )


_REQUIRED_FIELDS = (
    "key",
    "label",
    "weight",
    "direction",
    "red",
    "green",
    "floor",
    "ceiling",
    "kind",
    "objectivity",
    "measure",
    "max_age_days",
)
_OPTIONAL_FIELDS = ("unit", "description")
_OPTIONAL_NUMBER_FIELDS = ("min", "max")
_OPTIONAL_OTHER_FIELDS = ("continuous", "survey", "survey_window_days")
_ENUMS: dict[str, tuple[str, ...]] = {
    "direction": get_args(Direction),
    "kind": get_args(Kind),
    "objectivity": get_args(Objectivity),
    "measure": get_args(Measure),
}
_NUMBER_FIELDS = ("weight", "red", "green", "floor", "ceiling")


class _Ctx:
    """Where we are in a file, so every error message can say file, indicator and field."""

    def __init__(self, source: str, segment: str | None = None) -> None:
        self.source = source
        self.segment = segment

    def error(self, msg: str, *, indicator: str | None = None, fld: str | None = None) -> NoReturn:
        parts = [self.source]
        if self.segment is not None:
            parts.append(f"segment {self.segment!r}")
        if indicator is not None:
            parts.append(f"indicator {indicator}")
        if fld is not None:
            parts.append(f"field {fld!r}")
        raise HealthModelError(": ".join([*parts, msg]))


def _is_number(value: Any) -> bool:
    # bool is an int subclass, but `weight: yes` is a typo, not a weight of 1.
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _parse_indicator(raw: Any, index: int, ctx: _Ctx) -> Indicator:
    if not isinstance(raw, dict):
        ctx.error(f"must be a mapping, got {type(raw).__name__}", indicator=f"#{index + 1}")
    key = raw.get("key")
    if isinstance(key, str) and key.strip():
        name = repr(key)
    else:
        name = f"#{index + 1}"
        ctx.error(
            "missing" if key is None else f"must be a non-empty string, got {key!r}",
            indicator=name,
            fld="key",
        )
    known = _REQUIRED_FIELDS + _OPTIONAL_FIELDS + _OPTIONAL_NUMBER_FIELDS + _OPTIONAL_OTHER_FIELDS
    for fld in sorted(set(raw) - set(known), key=str):
        ctx.error(
            f"unknown field (allowed: {', '.join(known)})",
            indicator=name,
            fld=str(fld),
        )
    for fld in _REQUIRED_FIELDS:
        if fld not in raw or raw[fld] is None:
            ctx.error("missing", indicator=name, fld=fld)
    for fld in ("label", *_OPTIONAL_FIELDS):
        if fld in raw and not isinstance(raw[fld], str):
            ctx.error(f"must be a string, got {raw[fld]!r}", indicator=name, fld=fld)
    if not raw["label"].strip():
        ctx.error("must not be empty", indicator=name, fld="label")
    for fld, allowed in _ENUMS.items():
        if raw[fld] not in allowed:
            ctx.error(
                f"must be one of {', '.join(allowed)}, got {raw[fld]!r}", indicator=name, fld=fld
            )
    for fld in _NUMBER_FIELDS:
        if not _is_number(raw[fld]):
            ctx.error(f"must be a number, got {raw[fld]!r}", indicator=name, fld=fld)
    if raw["weight"] <= 0:
        ctx.error(f"must be > 0, got {raw['weight']!r}", indicator=name, fld="weight")
    for fld in _OPTIONAL_NUMBER_FIELDS:
        if fld in raw and not _is_number(raw[fld]):
            ctx.error(f"must be a number, got {raw[fld]!r}", indicator=name, fld=fld)
    if "min" in raw and "max" in raw and raw["min"] >= raw["max"]:
        ctx.error(f"must be greater than min ({raw['min']!r})", indicator=name, fld="max")
    age = raw["max_age_days"]
    if not isinstance(age, int) or isinstance(age, bool):
        ctx.error(
            f"must be a whole number of days, got {age!r}", indicator=name, fld="max_age_days"
        )
    if age <= 0:
        ctx.error(f"must be > 0, got {age!r}", indicator=name, fld="max_age_days")
    if "continuous" in raw and not isinstance(raw["continuous"], bool):
        ctx.error(
            f"must be true or false, got {raw['continuous']!r}", indicator=name, fld="continuous"
        )
    survey = raw.get("survey")
    if survey is not None and survey not in get_args(SurveyKind):
        allowed = ", ".join(get_args(SurveyKind))
        ctx.error(f"must be one of {allowed}, got {survey!r}", indicator=name, fld="survey")
    window = raw.get("survey_window_days")
    if window is not None:
        if survey is None:
            ctx.error(
                "needs 'survey' (which answers to read)", indicator=name, fld="survey_window_days"
            )
        if not isinstance(window, int) or isinstance(window, bool) or window <= 0:
            ctx.error(
                f"must be a whole number of days > 0, got {window!r}",
                indicator=name,
                fld="survey_window_days",
            )
    problem = _threshold_problem(
        raw["direction"], raw["floor"], raw["red"], raw["green"], raw["ceiling"]
    )
    if problem:
        # Name the threshold that breaks the order, so the fix is obvious.
        ctx.error(problem, indicator=name, fld=_first_bad_threshold(raw))
    return Indicator(
        key=key,
        label=raw["label"],
        weight=float(raw["weight"]),
        direction=raw["direction"],
        red=float(raw["red"]),
        green=float(raw["green"]),
        floor=float(raw["floor"]),
        ceiling=float(raw["ceiling"]),
        kind=raw["kind"],
        objectivity=raw["objectivity"],
        measure=raw["measure"],
        max_age_days=age,
        unit=raw.get("unit", ""),
        description=raw.get("description", ""),
        min_value=float(raw["min"]) if "min" in raw else None,
        max_value=float(raw["max"]) if "max" in raw else None,
        continuous=raw.get("continuous", True),
        survey=survey,
        survey_window_days=window,
    )


def _first_bad_threshold(raw: dict[str, Any]) -> str:
    """The first of red/green/ceiling that is out of order relative to the previous threshold."""
    sign = 1 if raw["direction"] == "higher" else -1
    floor, red, green = (sign * raw[k] for k in ("floor", "red", "green"))
    if not floor < red:
        return "red"
    if not red < green:
        return "green"
    return "ceiling"


def _parse_bands(raw: Any, ctx: _Ctx, inherited: Bands | None) -> Bands:
    if raw is None:
        return inherited if inherited is not None else Bands()
    if not isinstance(raw, dict):
        ctx.error(f"must be a mapping, got {type(raw).__name__}", fld="bands")
    for fld in raw:
        if fld not in ("red_max", "green_min"):
            ctx.error("unknown field (allowed: red_max, green_min)", fld=f"bands.{fld}")
    base = inherited or Bands()
    values = {"red_max": base.red_max, "green_min": base.green_min}
    for fld in values:
        if fld in raw:
            if not _is_number(raw[fld]):
                ctx.error(f"must be a number, got {raw[fld]!r}", fld=f"bands.{fld}")
            values[fld] = float(raw[fld])
    if not 0 <= values["red_max"] < values["green_min"] <= 100:
        ctx.error(
            "must satisfy 0 <= red_max < green_min <= 100, "
            f"got red_max={values['red_max']:g}, green_min={values['green_min']:g}",
            fld="bands",
        )
    return Bands(red_max=values["red_max"], green_min=values["green_min"])


def _parse_indicators(raw: Any, ctx: _Ctx) -> tuple[Indicator, ...]:
    if raw is None:
        ctx.error("missing", fld="indicators")
    if not isinstance(raw, list):
        ctx.error(f"must be a list, got {type(raw).__name__}", fld="indicators")
    if not raw:
        ctx.error("must list at least one indicator", fld="indicators")
    indicators: list[Indicator] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        ind = _parse_indicator(item, index, ctx)
        if ind.key in seen:
            ctx.error("duplicate key", indicator=repr(ind.key), fld="key")
        seen.add(ind.key)
        indicators.append(ind)
    return tuple(indicators)


def _read_yaml(src: Path | Traversable, label: str) -> dict[str, Any]:
    try:
        text = src.read_text(encoding="utf-8")
    except OSError as exc:
        raise HealthModelError(f"{label}: cannot read file: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise HealthModelError(f"{label}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise HealthModelError(f"{label}: must be a mapping with 'indicators', got {data!r:.60}")
    return data


_TOP_FIELDS = ("name", "bands", "indicators", "segments", "expansion")
_SEGMENT_FIELDS = ("name", "bands", "indicators", "expansion")


def _parse_expansion(
    raw: Any, ctx: _Ctx, indicators: tuple[Indicator, ...]
) -> tuple[ExpansionRule, ...]:
    """``expansion: [{key, label, indicator, at_least | at_most}]``; absent: the default rule."""
    if raw is None:
        keys = {i.key for i in indicators}
        return tuple(r for r in DEFAULT_EXPANSION_RULES if r.indicator in keys)
    if not isinstance(raw, list):
        ctx.error(f"must be a list, got {type(raw).__name__}", fld="expansion")
    rules: list[ExpansionRule] = []
    keys = {i.key for i in indicators}
    for n, item in enumerate(raw):
        where = f"expansion[{n}]"
        if not isinstance(item, dict):
            ctx.error(f"must be a mapping, got {type(item).__name__}", fld=where)
        for fld in item:
            if fld not in ("key", "label", "indicator", "at_least", "at_most"):
                ctx.error(
                    "unknown field (allowed: key, label, indicator, at_least, at_most)",
                    fld=f"{where}.{fld}",
                )
        for fld in ("key", "label", "indicator"):
            if not isinstance(item.get(fld), str) or not item[fld].strip():
                ctx.error("must be a non-empty string", fld=f"{where}.{fld}")
        if item["indicator"] not in keys:
            ctx.error(f"names no indicator of this model: {item['indicator']!r}", fld=where)
        bounds = {f: item.get(f) for f in ("at_least", "at_most")}
        if all(v is None for v in bounds.values()):
            ctx.error("needs at_least or at_most", fld=where)
        for fld, value in bounds.items():
            if value is not None and not _is_number(value):
                ctx.error(f"must be a number, got {value!r}", fld=f"{where}.{fld}")
        rules.append(
            ExpansionRule(
                key=item["key"],
                label=item["label"],
                indicator=item["indicator"],
                at_least=None if bounds["at_least"] is None else float(bounds["at_least"]),
                at_most=None if bounds["at_most"] is None else float(bounds["at_most"]),
            )
        )
    return tuple(rules)


def _parse_model(
    data: dict[str, Any], ctx: _Ctx, default_name: str, allowed: tuple[str, ...], base: Bands | None
) -> HealthModel:
    for fld in data:
        if fld not in allowed:
            ctx.error(f"unknown field (allowed: {', '.join(allowed)})", fld=str(fld))
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        ctx.error(f"must be a non-empty string, got {name!r}", fld="name")
    bands = _parse_bands(data.get("bands"), ctx, base)
    indicators = _parse_indicators(data.get("indicators"), ctx)
    return HealthModel(
        name=name,
        indicators=indicators,
        bands=bands,
        expansion=_parse_expansion(data.get("expansion"), ctx, indicators),
    )


def _packaged_dir() -> Path | Traversable:
    """The packaged health_models directory, wherever the package is installed (even a zip)."""
    try:
        return resources.files(__package__ or "domain").joinpath(_PACKAGED_DIR)
    except (NotADirectoryError, TypeError, ModuleNotFoundError):
        # An editable install made while domain/ had no __init__.py maps it as a namespace
        # package, which importlib.resources (3.11) cannot read; the source tree still can.
        return Path(__file__).resolve().parent / _PACKAGED_DIR


def load_health_models(path: str | Path | None = None) -> HealthModels:
    """Load and validate a health model file; None loads the packaged default model.

    Segment models are either inline (`segments: {enterprise: {indicators: [...], bands: {...}}}`)
    or a path relative to this file (`segments: {enterprise: enterprise.yaml}`). A segment that
    leaves out `bands` inherits the top-level bands; it must always list its own indicators, since
    mixing two indicator sets silently would make scores hard to explain.
    """
    src: Path | Traversable
    if path is None:
        src = _packaged_dir().joinpath(_PACKAGED_DEFAULT)
        label = f"domain/{_PACKAGED_DIR}/{_PACKAGED_DEFAULT}"
    else:
        src = Path(path)
        label = str(path)
    data = _read_yaml(src, label)
    ctx = _Ctx(label)
    default = _parse_model(data, ctx, "default", _TOP_FIELDS, None)

    segments_raw = data.get("segments") or {}
    if not isinstance(segments_raw, dict):
        ctx.error(f"must be a mapping, got {type(segments_raw).__name__}", fld="segments")
    by_segment: dict[str, HealthModel] = {}
    for seg_name, seg in segments_raw.items():
        if not isinstance(seg_name, str) or not seg_name.strip():
            ctx.error(f"segment names must be non-empty strings, got {seg_name!r}", fld="segments")
        norm = seg_name.strip().lower()
        if norm in by_segment:
            ctx.error(
                f"duplicate segment {seg_name!r} (names are case-insensitive)", fld="segments"
            )
        if isinstance(seg, str):
            # A file next to the one being loaded; its own errors name that file.
            seg_src: Path | Traversable = (
                src.parent / seg if isinstance(src, Path) else _packaged_dir().joinpath(seg)
            )
            seg_label = str(Path(label).parent / seg)
            seg_data = _read_yaml(seg_src, seg_label)
            by_segment[norm] = _parse_model(
                seg_data, _Ctx(seg_label, seg_name), seg_name, _SEGMENT_FIELDS, default.bands
            )
        elif isinstance(seg, dict):
            by_segment[norm] = _parse_model(
                seg, _Ctx(label, seg_name), seg_name, _SEGMENT_FIELDS, default.bands
            )
        else:
            ctx.error(
                f"must be a mapping or a file name, got {type(seg).__name__}",
                fld=f"segments.{seg_name}",
            )
    return HealthModels(default=default, by_segment=by_segment, source=label)
