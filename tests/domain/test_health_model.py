"""Health model files: the packaged default, segment selection and strict validation messages."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from domain.health_model import (
    Bands,
    HealthModel,
    HealthModelError,
    Indicator,
    load_health_models,
)

DEFAULT_KEYS = (
    "product_usage",
    "feature_adoption",
    "support_tickets",
    "exec_engagement",
    "nps",
    "payment_days_overdue",
    "csm_sentiment",
)


def _ind(**over: Any) -> dict[str, Any]:
    """A valid indicator mapping as it appears in YAML, with overrides."""
    base: dict[str, Any] = {
        "key": "usage",
        "label": "Usage",
        "weight": 10,
        "direction": "higher",
        "floor": 0,
        "red": 40,
        "green": 70,
        "ceiling": 100,
        "kind": "leading",
        "objectivity": "objective",
        "measure": "quantitative",
        "max_age_days": 14,
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not _DROP}


_DROP = object()


def _write(tmp_path: Path, data: Any, name: str = "model.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def test_packaged_default_has_the_seven_agreed_indicators() -> None:
    models = load_health_models()
    model = models.default
    assert model.keys == DEFAULT_KEYS
    assert model.total_weight == 100
    assert model.bands == Bands(red_max=50, green_min=76)
    assert models.source.endswith("default.yaml")
    usage = model.indicator("product_usage")
    assert (usage.floor, usage.red, usage.green, usage.ceiling) == (0, 40, 70, 100)
    assert (usage.weight, usage.max_age_days, usage.kind) == (25, 14, "leading")
    tickets = model.indicator("support_tickets")
    assert (tickets.direction, tickets.floor, tickets.red, tickets.green, tickets.ceiling) == (
        "lower",
        20,
        8,
        3,
        0,
    )
    sentiment = model.indicator("csm_sentiment")
    assert (sentiment.objectivity, sentiment.measure) == ("subjective", "qualitative")
    assert {model.indicator(k).kind for k in ("nps", "payment_days_overdue")} == {"lagging"}


def test_indicator_lookup_raises_keyerror_for_unknown_key() -> None:
    with pytest.raises(KeyError):
        load_health_models().default.indicator("nope")


def test_enterprise_example_file_loads_with_the_same_keys() -> None:
    path = Path(__file__).resolve().parents[2] / "domain" / "health_models" / "enterprise.yaml"
    model = load_health_models(path).default
    assert model.name == "enterprise"
    assert set(model.keys) == set(DEFAULT_KEYS)


@pytest.mark.parametrize(
    ("score", "band"),
    [(0, "red"), (50, "red"), (50.1, "amber"), (75.9, "amber"), (76, "green"), (100, "green")],
)
def test_band_edges(score: float, band: str) -> None:
    assert Bands().band(score) == band


def test_inline_segment_is_chosen_case_insensitively_and_inherits_bands(tmp_path: Path) -> None:
    data = {
        "bands": {"red_max": 40, "green_min": 80},
        "indicators": [_ind()],
        "segments": {"Enterprise": {"indicators": [_ind(key="exec", weight=5)]}},
    }
    models = load_health_models(_write(tmp_path, data))
    assert models.default.keys == ("usage",)
    for name in ("enterprise", "ENTERPRISE", " Enterprise "):
        assert models.for_segment(name).keys == ("exec",)
    assert models.for_segment("enterprise").bands == Bands(40, 80)
    assert models.for_segment("enterprise").name == "Enterprise"
    assert models.for_segment("smb") is models.default
    assert models.for_segment(None) is models.default
    assert models.for_segment("") is models.default


def test_segment_from_a_relative_file_with_its_own_bands(tmp_path: Path) -> None:
    sub = tmp_path / "models"
    sub.mkdir()
    _write(sub, {"bands": {"red_max": 55}, "indicators": [_ind(key="seats")]}, "ent.yaml")
    main = _write(sub, {"indicators": [_ind()], "segments": {"enterprise": "ent.yaml"}})
    models = load_health_models(str(main))
    ent = models.for_segment("Enterprise")
    assert ent.keys == ("seats",)
    assert ent.bands == Bands(red_max=55, green_min=76)
    assert models.source == str(main)


def _error(tmp_path: Path, data: Any) -> str:
    path = _write(tmp_path, data)
    with pytest.raises(HealthModelError) as info:
        load_health_models(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    return message


@pytest.mark.parametrize(
    ("override", "indicator", "field", "fragment"),
    [
        ({"green": "high"}, "'usage'", "green", "must be a number, got 'high'"),
        ({"weight": True}, "'usage'", "weight", "must be a number"),
        ({"weight": 0}, "'usage'", "weight", "must be > 0"),
        ({"weight": -3}, "'usage'", "weight", "must be > 0"),
        ({"direction": "up"}, "'usage'", "direction", "must be one of higher, lower"),
        ({"kind": "lagged"}, "'usage'", "kind", "must be one of leading, lagging"),
        ({"objectivity": "gut"}, "'usage'", "objectivity", "objective, subjective"),
        ({"measure": "vibes"}, "'usage'", "measure", "quantitative, qualitative"),
        ({"max_age_days": 0}, "'usage'", "max_age_days", "must be > 0"),
        ({"max_age_days": 1.5}, "'usage'", "max_age_days", "whole number"),
        ({"max_age_days": _DROP}, "'usage'", "max_age_days", "missing"),
        ({"label": 5}, "'usage'", "label", "must be a string"),
        ({"colour": "red"}, "'usage'", "colour", "unknown field"),
        ({"continuous": "no"}, "'usage'", "continuous", "must be true or false"),
        ({"survey": "promoters"}, "'usage'", "survey", "must be one of nps, csat, ces"),
        ({"survey_window_days": 90}, "'usage'", "survey_window_days", "needs 'survey'"),
        (
            {"survey": "nps", "survey_window_days": 0},
            "'usage'",
            "survey_window_days",
            "whole number of days > 0",
        ),
        ({"key": _DROP}, "#1", "key", "missing"),
        ({"red": 80}, "'usage'", "green", "floor < red < green <= ceiling"),
        ({"red": 70}, "'usage'", "green", "floor < red < green <= ceiling"),
        ({"green": 100.5}, "'usage'", "ceiling", "floor < red < green <= ceiling"),
        ({"red": -1}, "'usage'", "red", "floor < red < green <= ceiling"),
        ({"ceiling": 60}, "'usage'", "ceiling", "floor < red < green <= ceiling"),
        # Lower-is-better thresholds written in the higher order.
        (
            {"direction": "lower", "floor": 0, "red": 8, "green": 3, "ceiling": 20},
            "'usage'",
            "red",
            "floor > red > green >= ceiling",
        ),
    ],
)
def test_indicator_errors_name_file_indicator_and_field(
    tmp_path: Path, override: dict[str, Any], indicator: str, field: str, fragment: str
) -> None:
    message = _error(tmp_path, {"indicators": [_ind(**override)]})
    assert f"indicator {indicator}" in message
    assert f"field '{field}'" in message
    assert fragment in message


def test_error_for_second_indicator_names_it(tmp_path: Path) -> None:
    message = _error(tmp_path, {"indicators": [_ind(), _ind(key="nps", green="high")]})
    assert message.endswith("indicator 'nps': field 'green': must be a number, got 'high'")


def test_duplicate_keys_are_rejected(tmp_path: Path) -> None:
    message = _error(tmp_path, {"indicators": [_ind(), _ind(weight=3)]})
    assert "indicator 'usage': field 'key': duplicate key" in message


def test_lower_direction_thresholds_load(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {"indicators": [_ind(direction="lower", floor=20, red=8, green=3, ceiling=0)]},
    )
    ind = load_health_models(path).default.indicator("usage")
    assert (ind.floor, ind.red, ind.green, ind.ceiling) == (20, 8, 3, 0)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"indicators": []}, "field 'indicators': must list at least one indicator"),
        ({"bands": {"red_max": 50}}, "field 'indicators': missing"),
        ({"indicators": {"usage": 1}}, "field 'indicators': must be a list"),
        ({"indicators": [_ind()], "colour": 1}, "field 'colour': unknown field"),
        ({"indicators": [_ind()], "bands": {"red_max": 80}}, "field 'bands'"),
        ({"indicators": [_ind()], "bands": {"amber": 60}}, "field 'bands.amber'"),
        ({"indicators": [_ind()], "bands": {"red_max": "x"}}, "field 'bands.red_max'"),
        ({"indicators": ["usage"]}, "indicator #1: must be a mapping"),
        ("indicators: [\n  - key: a\n bad", "invalid YAML"),
        ("- just\n- a list\n", "must be a mapping"),
    ],
)
def test_model_level_errors_name_file_and_field(tmp_path: Path, data: Any, fragment: str) -> None:
    assert fragment in _error(tmp_path, data)


def test_segment_errors_name_segment_indicator_and_field(tmp_path: Path) -> None:
    data = {
        "indicators": [_ind()],
        "segments": {"enterprise": {"indicators": [_ind(key="exec", kind="sometimes")]}},
    }
    message = _error(tmp_path, data)
    assert "segment 'enterprise': indicator 'exec': field 'kind'" in message


def test_segment_file_errors_name_that_file(tmp_path: Path) -> None:
    _write(tmp_path, {"indicators": [_ind(weight="heavy")]}, "ent.yaml")
    main = _write(tmp_path, {"indicators": [_ind()], "segments": {"enterprise": "ent.yaml"}})
    with pytest.raises(HealthModelError) as info:
        load_health_models(main)
    assert str(info.value).startswith(str(tmp_path / "ent.yaml"))
    assert "indicator 'usage': field 'weight': must be a number" in str(info.value)


def test_missing_segment_file_and_missing_model_file(tmp_path: Path) -> None:
    main = _write(tmp_path, {"indicators": [_ind()], "segments": {"ent": "nope.yaml"}})
    with pytest.raises(HealthModelError, match=r"nope\.yaml: cannot read file"):
        load_health_models(main)
    with pytest.raises(HealthModelError, match="cannot read file"):
        load_health_models(tmp_path / "absent.yaml")


def test_duplicate_segments_differing_in_case(tmp_path: Path) -> None:
    text = textwrap.dedent(
        """
        indicators: [{key: a, label: A, weight: 1, direction: higher, floor: 0, red: 1,
                      green: 2, ceiling: 3, kind: leading, objectivity: objective,
                      measure: quantitative, max_age_days: 5}]
        segments:
          SMB: {bands: {red_max: 40}, indicators: [{key: b, label: B, weight: 1,
                direction: higher, floor: 0, red: 1, green: 2, ceiling: 3, kind: leading,
                objectivity: objective, measure: quantitative, max_age_days: 5}]}
          smb: {bands: {red_max: 40}, indicators: [{key: b, label: B, weight: 1,
                direction: higher, floor: 0, red: 1, green: 2, ceiling: 3, kind: leading,
                objectivity: objective, measure: quantitative, max_age_days: 5}]}
        """
    )
    assert "duplicate segment 'smb'" in _error(tmp_path, text)


def test_indicator_built_in_code_is_validated_too() -> None:
    with pytest.raises(ValueError, match="floor > red > green >= ceiling"):
        Indicator(
            key="t",
            label="T",
            weight=1,
            direction="lower",
            red=3,
            green=8,
            floor=20,
            ceiling=0,
            kind="leading",
            objectivity="objective",
            measure="quantitative",
            max_age_days=7,
        )
    with pytest.raises(ValueError, match="no indicators"):
        HealthModel(name="empty", indicators=(), bands=Bands())


def test_reading_bounds_are_optional_and_validated(tmp_path) -> None:
    from domain.health_model import HealthModelError, load_health_models

    def model(extra: str) -> Path:
        path = tmp_path / "bounds.yaml"
        path.write_text(
            "indicators:\n"
            "  - {key: usage, label: Usage, weight: 1, direction: higher, floor: 0, red: 40,"
            " green: 70, ceiling: 100, kind: leading, objectivity: objective,"
            f" measure: quantitative, max_age_days: 14{extra}}}\n"
        )
        return path

    usage = load_health_models(model(", min: 0, max: 100")).default.indicator("usage")
    assert (
        usage.accepts(0) and usage.accepts(100) and not usage.accepts(-1) and not usage.accepts(101)
    )
    assert load_health_models(model("")).default.indicator("usage").accepts(1e9)
    with pytest.raises(HealthModelError, match="field 'max'"):
        load_health_models(model(", min: 10, max: 5"))
    with pytest.raises(HealthModelError, match="field 'min'"):
        load_health_models(model(", min: low"))


def test_step_like_and_survey_fed_indicators_are_declared_in_the_model() -> None:
    model = load_health_models().default
    # Held by the forecast: a 1/2/3 judgement and a "days since" sawtooth.
    assert not model.indicator("csm_sentiment").continuous
    assert not model.indicator("exec_engagement").continuous
    assert model.indicator("product_usage").continuous
    nps = model.indicator("nps")
    assert (nps.survey, nps.survey_window) == ("nps", 120)
    assert [i.key for i in model.survey_fed] == ["nps"]


def test_survey_window_defaults_to_the_max_age(tmp_path: Path) -> None:
    path = _write(tmp_path, {"indicators": [_ind(key="csat", survey="csat", max_age_days=60)]})
    csat = load_health_models(path).default.indicator("csat")
    assert (csat.survey, csat.survey_window, csat.continuous) == ("csat", 60, True)
