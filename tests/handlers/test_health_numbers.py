"""Health numbers that hold up, through the real chat path: the band of the number shown, stale
readings with their age, the "as of" of an old snapshot, a trend that reads the month, survey-fed
NPS, and a sweep of every account and day of the demo history for score/band contradictions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import col, select

from bot.config import Settings
from bot.console import ConsoleChat
from bot.container import Container
from bot.render import render_json
from domain import metrics
from domain.numbers import format_score, round_half_away
from handlers.alerts import account_briefs
from handlers.context import ChatContext
from handlers.digests import daily_digest
from handlers.health import health_context, health_text
from handlers.identity import actor_by_email
from handlers.portfolio import my_accounts
from handlers.recompute import recompute_health
from storage.bulk import insert_dicts, table
from storage.models import CSM, Account, HealthSnapshot, SurveyResponse
from tests.conftest import DEMO_TODAY

# Every default-model indicator on its green threshold scores 76.0 (weights sum to 100).
ON_GREEN = {
    "product_usage": 70.0,
    "feature_adoption": 60.0,
    "support_tickets": 3.0,
    "exec_engagement": 30.0,
    "nps": 30.0,
    "payment_days_overdue": 5.0,
    "csm_sentiment": 2.5,
}


def add_account(
    container: Container, name: str, readings: dict[str, list[tuple[date, float]]]
) -> int:
    """A new account of Dana's with these readings, scored for DEMO_TODAY by the recompute."""
    stamp = datetime.now(UTC)
    with container.engine.begin() as conn:
        insert_dicts(
            conn,
            table("account"),
            [
                {
                    "external_id": f"T-{name}",
                    "name": name,
                    "aliases": [],
                    "owner_id": 1,
                    "segment": "mid-market",
                    "arr": 50_000.0,
                    "created_at": stamp,
                    "updated_at": stamp,
                }
            ],
        )
        account_id = conn.execute(
            select(table("account").c.id).where(table("account").c.name == name)
        ).scalar_one()
        insert_dicts(
            conn,
            table("indicator_reading"),
            [
                {
                    "account_id": account_id,
                    "indicator_key": key,
                    "day": day,
                    "value": value,
                    "source": "test",
                }
                for key, series in readings.items()
                for day, value in series
            ],
        )
    recompute_health(
        container.engine,
        as_of=DEMO_TODAY,
        models=container.health_models,
        account_ids=[account_id],
    )
    return account_id


def _score_columns(card: dict) -> list[dict]:
    """The Teams card's score and band columns."""
    return next(b for b in card["body"] if b.get("type") == "ColumnSet")["columns"]


def today_only(values: dict[str, float], age: int = 0) -> dict[str, list[tuple[date, float]]]:
    return {key: [(DEMO_TODAY - timedelta(days=age), v)] for key, v in values.items()}


@pytest.mark.parametrize(
    ("usage", "shown", "band"),
    [
        # usage 69.5 scores 75.57; (25 x 75.57 + 75 x 76) / 100 = 75.89: shown 75.9, amber. The
        # old card printed "76/100 AMBER".
        (69.5, "75.9", "amber"),
        # usage 40.3 scores 50.26; (25 x 50.26 + 75 x 76) / 100 = 69.6 - nowhere near a band edge,
        # but its indicator row is: 50.3 is amber (the old card printed "50 amber").
        (40.3, "69.6", "amber"),
    ],
)
def test_the_band_is_the_band_of_the_number_shown(
    demo_container: Container, usage: float, shown: str, band: str
) -> None:
    add_account(demo_container, "Edge Case Ltd", today_only({**ON_GREEN, "product_usage": usage}))
    out = ConsoleChat(demo_container).ask_json("health edge case ltd")
    ctx = out["reply"]["context"]
    assert out["rendered"].splitlines()[0].startswith(f"Edge Case Ltd — {shown}/100 {band.upper()}")
    assert out["reply"]["text"].startswith(f"Edge Case Ltd: {shown}/100 {band}")
    slack = render_json("slack", "health_card", ctx)
    assert slack["blocks"][0]["text"]["text"] == f"Edge Case Ltd — {shown}/100"
    assert slack["blocks"][1]["fields"][0]["text"].endswith(f" {band}")
    teams = render_json("teams", "health_card", ctx)
    columns = _score_columns(teams)
    assert columns[0]["items"][0]["text"] == shown
    assert columns[1]["items"][0]["text"] == band.upper()
    row = next(i for i in ctx["health"]["indicators"] if i["key"] == "product_usage")
    # The indicator's own number and colour agree too (the old card banded the unrounded score).
    assert row["band"] == demo_container.health_models.default.bands.band(row["score"])
    assert f"{usage:5} → {row['score']} {row['band']}" in out["rendered"]


def test_a_stale_reading_shows_its_age_and_does_not_count(demo_container: Container) -> None:
    readings = today_only({k: v for k, v in ON_GREEN.items() if k != "exec_engagement"})
    # The last executive touchpoint reading is 31 days old (max age 30): stale, not missing.
    readings["exec_engagement"] = [(DEMO_TODAY - timedelta(days=31), 12.0)]
    add_account(demo_container, "Quiet Sponsor Inc", readings)
    out = ConsoleChat(demo_container).ask_json("health quiet sponsor inc")
    row = next(
        i for i in out["reply"]["context"]["health"]["indicators"] if i["key"] == "exec_engagement"
    )
    assert (row["status"], row["age_days"], row["freshness"]) == ("stale", 31, "stale, 31 days old")
    assert row["value"] == 12.0
    line = next(x for x in out["rendered"].splitlines() if "executive touchpoint" in x)
    assert "stale, 31 days old (not counted)" in line
    slack = render_json("slack", "health_card", out["reply"]["context"])
    assert "stale, 31 days old" in str(slack["blocks"])
    teams = render_json("teams", "health_card", out["reply"]["context"])
    assert "stale, 31 days old" in str(teams["body"])
    # Stale weight is redistributed: every fresh indicator on green still gives 76.0.
    assert out["reply"]["context"]["health"]["score"] == 76.0
    assert out["reply"]["context"]["health"]["coverage"] == 0.9


def test_a_card_from_an_older_snapshot_says_as_of(demo_url: str, monkeypatch) -> None:
    later = DEMO_TODAY + timedelta(days=3)  # the nightly recompute has not run since
    monkeypatch.setenv("CSM_DATABASE_URL", demo_url)
    container = Container(settings=Settings(database_url=demo_url, today=later.isoformat()))
    try:
        out = ConsoleChat(container).ask_json("health acme")
    finally:
        container.engine.dispose()
    health = out["reply"]["context"]["health"]
    assert health["as_of"] == DEMO_TODAY.isoformat()
    assert "(as of 2026-11-23)" in out["rendered"].splitlines()[0]
    assert "(as of 2026-11-23)" in out["reply"]["text"]
    assert (
        "(as of 2026-11-23)"
        in render_json("slack", "health_card", out["reply"]["context"])["blocks"][0]["text"]["text"]
    )
    assert "as of 2026-11-23" in str(render_json("teams", "health_card", out["reply"]["context"]))
    # Today's card (a snapshot of today) has no "as of".
    today = Container(settings=Settings(database_url=demo_url, today=DEMO_TODAY.isoformat()))
    try:
        fresh = ConsoleChat(today).ask_json("health acme")
    finally:
        today.engine.dispose()
    assert fresh["reply"]["context"]["health"]["as_of"] is None
    assert "as of" not in fresh["rendered"]


def test_acme_slides_down_not_flat(demo_container: Container) -> None:
    out = ConsoleChat(demo_container).ask_json("health acme")
    trend = out["reply"]["context"]["health"]["trend"]
    # Within the week's noise, but a clear slide over the month: the arrow says so.
    assert abs(trend["delta_7d"]) <= 2 < -trend["delta_30d"] - 5
    assert (trend["direction"], trend["arrow"], trend["basis"]) == ("down", "↓", "30d")
    first = out["rendered"].splitlines()[0]
    assert re.search(r"↓ −\d+\.\d in 7d, −\d+\.\d in 30d$", first), first
    assert f"{trend['delta_30d']:.1f}".replace("-", "−") + " in 30 days" in out["reply"]["text"]


def test_survey_answers_are_the_account_nps(demo_container: Container) -> None:
    out = ConsoleChat(demo_container).ask_json("health acme")
    row = next(i for i in out["reply"]["context"]["health"]["indicators"] if i["key"] == "nps")
    with demo_container.session() as session:
        acme = session.exec(select(Account).where(Account.name == "Acme Corp")).one()
        answers = session.exec(
            select(SurveyResponse.score).where(
                SurveyResponse.account_id == acme.id,
                SurveyResponse.kind == "nps",
                col(SurveyResponse.responded_on) > DEMO_TODAY - timedelta(days=120),
                col(SurveyResponse.responded_on) <= DEMO_TODAY,
            )
        ).all()
    # The card's NPS is the survey NPS over the model's window, and says how many answers.
    assert answers
    assert row["value"] == pytest.approx(metrics.nps(answers))
    assert row["survey"] == {"kind": "nps", "responses": len(answers), "window_days": 120}
    line = next(x for x in out["rendered"].splitlines() if "Account NPS" in x)
    assert f"({len(answers)} NPS responses, last 120 days)" in line
    slack = render_json("slack", "health_card", out["reply"]["context"])
    assert f"{len(answers)} NPS responses, last 120 days" in str(slack["blocks"])


def test_a_survey_changes_the_indicator_on_the_next_recompute(demo_container: Container) -> None:
    readings = today_only(ON_GREEN)
    account_id = add_account(demo_container, "Detractor Co", readings)
    with demo_container.engine.begin() as conn:
        insert_dicts(
            conn,
            table("survey_response"),
            [
                {
                    "account_id": account_id,
                    "kind": "nps",
                    "score": s,
                    "responded_on": DEMO_TODAY - timedelta(days=d),
                }
                for s, d in ((2, 5), (4, 40), (9, 100), (10, 200))  # the last one is too old
            ],
        )
    recompute_health(
        demo_container.engine,
        as_of=DEMO_TODAY,
        models=demo_container.health_models,
        account_ids=[account_id],
    )
    out = ConsoleChat(demo_container).ask_json("health detractor co")
    row = next(i for i in out["reply"]["context"]["health"]["indicators"] if i["key"] == "nps")
    # 1 promoter, 2 detractors of 3 in the last 120 days: NPS -33.3 (the imported 30 is ignored).
    assert row["value"] == pytest.approx(-100 / 3)
    assert row["survey"]["responses"] == 3


def _bands(container: Container) -> dict[int, object]:
    models = container.health_models
    with container.session() as session:
        return {
            a.id: models.for_segment(a.segment).bands for a in session.exec(select(Account)).all()
        }


def test_no_score_and_band_contradict_anywhere_in_the_demo_history(
    demo_container: Container,
) -> None:
    """Every account on every day of the demo history: the card (context, text and the three
    renderings for a sample), lists, digests and alert briefs show a one-decimal score whose band
    is the band shown."""
    models = demo_container.health_models
    bands = _bands(demo_container)
    checked = 0
    with demo_container.session() as session:
        days = sorted(set(session.exec(select(HealthSnapshot.day)).all()))
        accounts = session.exec(select(Account).order_by(col(Account.id))).all()
        admin = actor_by_email(session, "admin@example.com")
        assert admin is not None and admin.role == "admin"
        csm_ids = [c.id for c in session.exec(select(CSM).where(CSM.role == "csm")).all()]
        for day in days:
            for account in accounts:
                health = health_context(session, account, models=models, today=day)
                if health["day"] != day.isoformat():
                    continue  # no snapshot that day (churned): nothing shown for it
                checked += 1
                _agrees(bands[account.id], health["score"], health["band"])
                for row in health["indicators"]:
                    if row["score"] is not None:
                        _agrees(
                            models.for_segment(account.segment).bands, row["score"], row["band"]
                        )
                summary = {"name": account.name, "churned_on": None}
                if health["score"] is not None:
                    assert f"{format_score(health['score'])}/100 {health['band']}" in health_text(
                        summary, health
                    )
            ctx = ChatContext(platform="console", actor=admin, today=day)
            for row in my_accounts(session, ctx=ctx).context["accounts"]:  # an admin's: all
                _agrees(bands[row["id"]], row["score"], row["band"])
            for csm_id in csm_ids:
                digest = daily_digest(session, ctx=ctx, csm_id=csm_id).context
                for row in digest["attention"]:
                    assert row["band"] in ("red", "amber")
                    assert row["score"] is None or row["score"] == round_half_away(row["score"])
            for aid, brief in account_briefs(session, [a.id for a in accounts], day).items():
                if brief["health"]["day"] == day.isoformat():
                    _agrees(bands[aid], brief["health"]["score"], brief["health"]["band"])
    assert len(days) == 45 and checked > 2_500


def _agrees(bands, score: float | None, band: str) -> None:  # type: ignore[no-untyped-def]
    if score is None:
        assert band == "insufficient"
        return
    assert score == round_half_away(score), score  # one decimal, as printed
    assert bands.band(score) == band, (score, band)


@pytest.fixture
def rendered_sample(demo_container: Container) -> Iterator[list[dict]]:
    """Cards of the accounts nearest a band edge, for the rendering check."""
    with demo_container.session() as session:
        snaps = session.exec(
            select(HealthSnapshot).where(
                HealthSnapshot.day == DEMO_TODAY, col(HealthSnapshot.score).is_not(None)
            )
        ).all()
        near = sorted(snaps, key=lambda s: min(abs(s.score - 50), abs(s.score - 76)))[:6]
        names = [session.get(Account, s.account_id).name for s in near]
    chat = ConsoleChat(demo_container, "alex@example.com")
    yield [chat.ask_json(f"health {name}") for name in names]


def test_cards_near_a_band_edge_render_the_same_number_and_band(
    rendered_sample: list[dict],
) -> None:
    for out in rendered_sample:
        ctx = out["reply"]["context"]
        h = ctx["health"]
        if h["score"] is None:
            continue
        shown = format_score(h["score"])
        assert f"{shown}/100 {h['band'].upper()}" in out["rendered"].splitlines()[0]
        slack = render_json("slack", "health_card", ctx)
        assert slack["blocks"][0]["text"]["text"].endswith(f"{shown}/100")
        teams = render_json("teams", "health_card", ctx)
        assert _score_columns(teams)[0]["items"][0]["text"] == shown


def test_the_health_chart_draws_the_forecast_range() -> None:
    """The chart shades the stored range and says what the card says."""
    from domain.health_model import load_health_models
    from handlers.charts import forecast_path

    model = load_health_models().default
    path = forecast_path(
        model,
        day=DEMO_TODAY,
        score=65.8,
        band="amber",
        red_in_days=34,
        earliest=28,
        latest=42,
        status="red",
    )
    assert path is not None
    assert path.label == "Forecast: red in 28–42 days"
    assert path.points[-1] == (DEMO_TODAY + timedelta(days=34), 50.0)
    # Both edges on the same days (what fill_between needs), reaching red on the range's days.
    assert [d for d, _ in path.low] == [d for d, _ in path.high]
    assert dict(path.low)[DEMO_TODAY + timedelta(days=28)] == 50.0
    assert dict(path.high)[DEMO_TODAY + timedelta(days=42)] == 50.0
    narrow = forecast_path(model, day=DEMO_TODAY, score=65.8, band="amber", red_in_days=34)
    assert narrow is not None and (narrow.low, narrow.label) == ((), "Forecast: red in ~34 days")
