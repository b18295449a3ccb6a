"""Each chart's data, checked against the demo database: what the drawing function receives."""

from __future__ import annotations

from datetime import date, timedelta
from statistics import median

from sqlmodel import Session, col, select

from bot.console import ConsoleChat
from charts.specs import (
    HealthMapSpec,
    HealthTrendSpec,
    IndicatorsSpec,
    MilestonePlanSpec,
    RenewalsSpec,
    spec_from_dict,
)
from domain.health_map import quadrant
from domain.nlu import parse
from domain.numbers import shown_score
from handlers.name_index import account_index
from storage.models import (
    CSM,
    QBR,
    Account,
    Escalation,
    HealthSnapshot,
    KpiReading,
    Milestone,
    Objective,
    Renewal,
    SuccessPlan,
)

TODAY = date(2026, 11, 23)


def specs(container, text: str, as_email: str = "dana@example.com") -> list:  # type: ignore[no-untyped-def]
    reply = ConsoleChat(container, as_email).reply(text)
    return [spec_from_dict(a.data) for a in reply.attachments if a.kind == "chart"]


def acme(session: Session) -> Account:
    return session.exec(select(Account).where(Account.name == "Acme Corp")).one()


def test_the_parser_flags_chart_and_map_requests(demo_container) -> None:  # type: ignore[no-untyped-def]
    with Session(demo_container.engine) as session:
        index = account_index(session)
    trend = parse("show me acme's trend", index=index, today=TODAY)
    assert (trend.intent, trend.chart, trend.account.name) == (
        "account_health",
        "chart",
        "Acme Corp",
    )
    command = parse("/health acme chart", index=index, today=TODAY)
    assert (command.intent, command.chart, command.account.name) == (
        "account_health",
        "chart",
        "Acme Corp",
    )
    for text in ("health map", "show my portfolio map"):
        mapped = parse(text, index=index, today=TODAY)
        assert (mapped.intent, mapped.chart, mapped.account) == ("my_accounts", "map", None)
    assert parse("/health acme", index=index, today=TODAY).chart is None


def test_a_csm_asks_for_the_trend_in_their_own_words(demo_container) -> None:  # type: ignore[no-untyped-def]
    with Session(demo_container.engine) as session:
        index = account_index(session)
    for text in (
        "how has acme been trending?",
        "acme's health history",
        "how has acme's health changed over time",
        "draw acme's health",
        "show me acme's health curve",
        "plot acme's health over time",
        "can you show acme's health trend?",
        "graph of acme health",
        "visualise acme health",
        "show me a chart of acme",
    ):
        parsed = parse(text, index=index, today=TODAY)
        assert (parsed.intent, parsed.chart, parsed.account.name) == (
            "account_health",
            "chart",
            "Acme Corp",
        ), text
    for text in ("how is acme doing?", "when does acme renew?", "what's the history with acme?"):
        assert parse(text, index=index, today=TODAY).intent != "unknown", text
    assert parse("how is acme doing?", index=index, today=TODAY).chart is None


def test_health_trend_is_the_snapshots_the_forecast_and_the_events(demo_container) -> None:  # type: ignore[no-untyped-def]
    trend, indicators = specs(demo_container, "/health acme chart")
    assert isinstance(trend, HealthTrendSpec) and isinstance(indicators, IndicatorsSpec)
    with Session(demo_container.engine) as session:
        account = acme(session)
        snaps = session.exec(
            select(HealthSnapshot)
            .where(HealthSnapshot.account_id == account.id)
            .where(HealthSnapshot.day > TODAY - timedelta(days=90))
            .order_by(col(HealthSnapshot.day))
        ).all()
        escalation = session.exec(
            select(Escalation).where(Escalation.account_id == account.id)
        ).one()
        qbr = session.exec(
            select(QBR).where(QBR.account_id == account.id, QBR.status == "scheduled")
        ).one()
        done = session.exec(
            select(Milestone).where(Milestone.account_id == account.id, Milestone.status == "done")
        ).all()
    assert trend.history == tuple((s.day, s.score) for s in snaps if s.score is not None)
    assert (trend.red_max, trend.green_min) == (50, 76)
    last = snaps[-1]
    assert last.forecast_red_in_days and last.band == "amber"
    assert trend.forecast is not None
    assert trend.forecast.points == (
        (last.day, last.score),
        (last.day + timedelta(days=last.forecast_red_in_days), 50),
    )
    # The stored range is shaded: edges reaching red on its earliest and latest days.
    earliest, latest = last.forecast_red_earliest, last.forecast_red_latest
    assert earliest is not None and earliest <= last.forecast_red_in_days
    if earliest == latest:
        assert trend.forecast.low == trend.forecast.high == ()
    else:
        assert dict(trend.forecast.low)[last.day + timedelta(days=earliest)] == 50
        if latest is not None:
            assert dict(trend.forecast.high)[last.day + timedelta(days=latest)] == 50
    events = {(e.kind, e.day, e.label) for e in trend.events}
    assert ("escalation", escalation.opened_at.date(), escalation.title) in events
    assert ("qbr", qbr.scheduled_for.date(), qbr.title) in events
    recent_done = {
        ("milestone", m.completed_on, m.title)
        for m in done
        if m.completed_on and m.completed_on >= TODAY - timedelta(days=90)
    }
    assert recent_done and recent_done <= events
    assert f"#{account.id}" in trend.source and TODAY.isoformat() in trend.source


def test_indicators_are_the_snapshot_values_against_the_model_thresholds(demo_container) -> None:  # type: ignore[no-untyped-def]
    _, indicators = specs(demo_container, "acme chart")
    model = demo_container.health_models.default
    with Session(demo_container.engine) as session:
        snapshot = session.exec(
            select(HealthSnapshot).where(
                HealthSnapshot.account_id == acme(session).id, HealthSnapshot.day == TODAY
            )
        ).one()
    assert [b.key for b in indicators.bars] == list(model.keys)
    assert [b.key for b in indicators.leading()] == [
        i.key for i in model.indicators if i.kind == "leading"
    ]
    assert {b.key for b in indicators.lagging()} == {"nps", "payment_days_overdue"}
    for bar in indicators.bars:
        indicator = model.indicator(bar.key)
        stored = snapshot.indicator_scores[bar.key]
        assert (bar.red, bar.green, bar.direction) == (
            indicator.red,
            indicator.green,
            indicator.direction,
        )
        assert bar.value == stored["value"]
        assert bar.score == shown_score(stored["score"])  # one decimal, as the card shows
    assert (indicators.red_score, indicators.green_score) == (50, 76)


def test_health_map_places_the_book_by_health_and_arr(demo_container) -> None:  # type: ignore[no-untyped-def]
    (spec,) = specs(demo_container, "show my portfolio map")
    assert isinstance(spec, HealthMapSpec)
    with Session(demo_container.engine) as session:
        dana = session.exec(select(CSM).where(CSM.email == "dana@example.com")).one()
        book = session.exec(
            select(Account).where(Account.owner_id == dana.id, col(Account.churned_on).is_(None))
        ).all()
    by_name = {a.name: a for a in book}
    assert {p.name for p in spec.points} == set(by_name)  # every account has a score
    assert spec.arr_split == median(a.arr for a in book)
    assert spec.health_split == 76
    for point in spec.points:
        account = by_name[point.name]
        assert point.arr == account.arr
        assert point.days_to_renewal == (account.renewal_date - TODAY).days
        assert point.quadrant == quadrant(
            point.health, point.arr, health_split=76, arr_split=spec.arr_split
        )
    acme_point = next(p for p in spec.points if p.name == "Acme Corp")
    assert acme_point.quadrant == "fix"  # amber and above the median ARR


def test_a_managers_map_is_the_team(demo_container) -> None:  # type: ignore[no-untyped-def]
    (spec,) = specs(demo_container, "health map", as_email="alex@example.com")
    with Session(demo_container.engine) as session:
        alex = session.exec(select(CSM).where(CSM.email == "alex@example.com")).one()
        team = [alex.id, *session.exec(select(CSM.id).where(CSM.manager_id == alex.id)).all()]
        names = set(
            session.exec(
                select(Account.name).where(
                    col(Account.owner_id).in_(team), col(Account.churned_on).is_(None)
                )
            ).all()
        )
    assert spec.scope == "your team's accounts"
    assert {p.name for p in spec.points} <= names
    assert len(spec.points) + spec.unscored == len(names)


def test_milestone_plan_is_the_hurdles_against_the_kpi_readings(demo_container) -> None:  # type: ignore[no-untyped-def]
    plans = specs(demo_container, "plan acme chart")
    assert plans and all(isinstance(p, MilestonePlanSpec) for p in plans)
    first = plans[0]
    with Session(demo_container.engine) as session:
        account = acme(session)
        objective = session.exec(
            select(Objective)
            .join(SuccessPlan, col(Objective.plan_id) == col(SuccessPlan.id))
            .where(SuccessPlan.account_id == account.id)
            .order_by(col(Objective.position))
        ).first()
        milestones = session.exec(
            select(Milestone)
            .where(Milestone.objective_id == objective.id)
            .order_by(col(Milestone.due_date))
        ).all()
        readings = session.exec(
            select(KpiReading)
            .where(KpiReading.objective_id == objective.id)
            .order_by(col(KpiReading.day))
        ).all()
    assert first.objective == objective.title and first.kpi == objective.kpi
    assert (first.baseline, first.target) == (objective.kpi_baseline, objective.kpi_target)
    assert [(p.day, p.value, p.label) for p in first.planned] == [
        (m.due_date, m.kpi_target, m.title) for m in milestones
    ]
    # The hurdles climb to the target; the last one reaches it.
    values = [p.value for p in first.planned]
    assert values == sorted(values) and values[-1] == objective.kpi_target
    assert first.actual == tuple((r.day, r.value) for r in readings)
    assert first.actual[-1] == (TODAY, objective.kpi_current)
    assert first.start == readings[0].day


def test_renewals_timeline_is_the_open_renewals_of_the_answer(demo_container) -> None:  # type: ignore[no-untyped-def]
    (spec,) = specs(demo_container, "renewals next 90 days chart")
    assert isinstance(spec, RenewalsSpec)
    assert (spec.start, spec.end) == (TODAY, TODAY + timedelta(days=90))
    with Session(demo_container.engine) as session:
        dana = session.exec(select(CSM).where(CSM.email == "dana@example.com")).one()
        rows = session.exec(
            select(Renewal, Account)
            .join(Account, col(Account.id) == col(Renewal.account_id))
            .where(Account.owner_id == dana.id, Renewal.status == "open")
            .where(Renewal.renewal_date >= spec.start, Renewal.renewal_date <= spec.end)
        ).all()
    assert sorted((m.name, m.day, m.arr) for m in spec.renewals) == sorted(
        (a.name, r.renewal_date, r.arr) for r, a in rows
    )
    assert all(m.band in ("red", "amber", "green", "insufficient") for m in spec.renewals)


def test_specs_round_trip_and_say_what_they_show(demo_container) -> None:  # type: ignore[no-untyped-def]
    for text in ("/health acme chart", "plan acme chart", "health map", "renewals chart"):
        for spec in specs(demo_container, text):
            assert spec_from_dict(spec.to_dict()) == spec
            assert spec.summary() and spec.source


def test_no_chart_is_promised_where_there_is_none(demo_container) -> None:  # type: ignore[no-untyped-def]
    reply = ConsoleChat(demo_container).reply("overdue milestones for initech chart")
    assert reply.attachments == ()
    assert "no chart for this answer" in reply.text


def test_the_trend_title_counts_the_days_it_shows(demo_container) -> None:  # type: ignore[no-untyped-def]
    from handlers.charts import health_trend_spec

    with Session(demo_container.engine) as session:
        account = acme(session)
        first = session.exec(
            select(HealthSnapshot.day)
            .where(HealthSnapshot.account_id == account.id)
            .order_by(col(HealthSnapshot.day))
        ).first()
        assert first is not None
        models = demo_container.health_models
        trend = health_trend_spec(session, account, models=models, today=TODAY)
        shown = (TODAY - first).days + 1  # both ends: every day from the first snapshot to today
        assert trend.title == f"Acme Corp — health, last {shown} days"
        assert trend.summary().startswith(f"Acme Corp health, {shown} days: ")
        # A new team's first import: one snapshot, today's. Not "last 0 days".
        session.exec(  # type: ignore[call-overload]
            HealthSnapshot.__table__.delete().where(  # type: ignore[attr-defined]
                HealthSnapshot.account_id == account.id, HealthSnapshot.day < TODAY
            )
        )
        today_only = health_trend_spec(session, account, models=models, today=TODAY)
        session.rollback()
    assert today_only.title == "Acme Corp — health today (no history yet)"
    assert today_only.summary().startswith("Acme Corp health today: ")


def test_a_chart_in_a_shared_channel_leaves_escalations_out(demo_container) -> None:  # type: ignore[no-untyped-def]
    """Escalations are internal: in a channel the customer reads (the mapped account, answers
    allowed there), the health chart shows no escalation marker or title."""
    from handlers.charts import with_charts
    from handlers.context import ChatContext
    from handlers.health import account_health
    from handlers.identity import actor_by_email

    with Session(demo_container.engine) as session:
        account = acme(session)
        assert session.exec(select(Escalation).where(Escalation.account_id == account.id)).all()
        actor = actor_by_email(session, "dana@example.com")
        assert actor is not None
        for external in (False, True):
            ctx = ChatContext(
                platform="slack",
                actor=actor,
                today=TODAY,
                external=external,
                allowed_account_ids=frozenset({account.id or 0}),
            )
            reply = account_health(
                session, ctx=ctx, models=demo_container.health_models, query="acme"
            )
            charted = with_charts(session, reply, ctx=ctx, models=demo_container.health_models)
            trend = spec_from_dict(charted.attachments[0].data)
            kinds = {event.kind for event in trend.events}
            assert ("escalation" in kinds) is not external, kinds
