"""Chart data from the database: each function reads what one chart shows and returns its plain spec.

The drawing lives in charts/ (pure); the platforms send the PNGs after the text answer. Every spec
names its source (tables, ids, days), so a deck's speaker notes can say where a number came from.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from charts.specs import (
    ChartEvent,
    ChartSpec,
    ForecastPath,
    HealthMapSpec,
    HealthTrendSpec,
    IndicatorBar,
    IndicatorsSpec,
    MapPoint,
    MilestonePlanSpec,
    PlannedPoint,
    RenewalMark,
    RenewalsSpec,
    spec_from_dict,
)
from domain.forecast import HORIZON_DAYS, describe
from domain.health import SCORE_AT_GREEN, SCORE_AT_RED
from domain.health_map import QUADRANTS, arr_split, quadrant
from domain.health_model import HealthModel, HealthModels
from handlers.access import escalations_shown_here
from handlers.context import ChatContext
from handlers.reply import Attachment, Reply
from storage.models import (
    QBR,
    Account,
    Escalation,
    HealthSnapshot,
    KpiReading,
    Milestone,
    Objective,
    SuccessPlan,
)

logger = logging.getLogger(__name__)

TREND_DAYS = 90
# Plan charts per answer: an account rarely has more objectives worth a chart in chat.
MAX_PLAN_CHARTS = 3


def attachment(spec: ChartSpec) -> Attachment:
    return Attachment(kind="chart", title=spec.title, data=spec.to_dict())


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# -- health over time ------------------------------------------------------------------------


def forecast_path(
    model: HealthModel,
    *,
    day: date,
    score: float | None,
    band: str | None,
    red_in_days: int | None,
    earliest: int | None = None,
    latest: int | None = None,
    status: str | None = None,
) -> ForecastPath | None:
    """The stored forecast as a path: from today's score to the red line on the day it says.

    The forecast names a day, not a curve, so the path is the straight line to that day; when the
    forecast also gives a range (earliest and latest red day), ``ForecastPath.low``/``high`` are
    the lines to those days (to the horizon when the latest is beyond it) and the chart shades
    between them. No red within the horizon, already red or no score: no path is drawn.
    """
    if score is None or band == "red" or red_in_days is None or red_in_days <= 0:
        return None
    red = model.bands.red_max
    # "Forecast: red in ~14 days", "Forecast: red in 12–20 days": the card's phrase.
    label = "Forecast: " + describe(status, red_in_days, earliest, latest).removeprefix(
        "likely to turn "
    )
    low: tuple[tuple[date, float], ...] = ()
    high: tuple[tuple[date, float], ...] = ()
    if earliest is not None and earliest > 0 and earliest != latest:
        end = latest if latest is not None else max(HORIZON_DAYS, red_in_days)

        def line(reach: int) -> Callable[[int], float]:
            return lambda k: max(0.0, float(score) + (red - float(score)) * k / reach)

        to_low, to_high = line(earliest), line(end)
        marks = sorted({0, earliest, red_in_days, end})
        low = tuple((day + timedelta(days=k), to_low(k)) for k in marks)
        high = tuple((day + timedelta(days=k), to_high(k)) for k in marks)
    return ForecastPath(
        points=((day, float(score)), (day + timedelta(days=red_in_days), red)),
        label=label,
        low=low,
        high=high,
    )


def health_trend_spec(
    session: Session,
    account: Account,
    *,
    models: HealthModels,
    today: date,
    days: int = TREND_DAYS,
    escalations: bool = True,
) -> HealthTrendSpec:
    """The account's daily scores over ``days``, its forecast and its events (milestones done,
    escalations opened, QBRs held or coming). ``escalations`` False leaves them out (a channel
    shared with the customer: escalations are internal)."""
    model = models.for_segment(account.segment)
    aid = account.id or 0
    start = today - timedelta(days=days - 1)  # "last 90 days" is 90 days, today included
    rows = session.exec(
        select(
            HealthSnapshot.day,
            HealthSnapshot.score,
            HealthSnapshot.band,
            HealthSnapshot.forecast_red_in_days,
            HealthSnapshot.forecast_red_earliest,
            HealthSnapshot.forecast_red_latest,
            HealthSnapshot.forecast_status,
        )
        .where(HealthSnapshot.account_id == aid, HealthSnapshot.day >= start)
        .where(HealthSnapshot.day <= today)
        .order_by(col(HealthSnapshot.day))
    ).all()
    history = tuple((row[0], float(row[1])) for row in rows if row[1] is not None)
    forecast = None
    if rows:
        day, score, band, red_in, earliest, latest, status = rows[-1]
        forecast = forecast_path(
            model,
            day=day,
            score=score,
            band=band,
            red_in_days=red_in,
            earliest=earliest,
            latest=latest,
            status=status,
        )
    horizon = today + timedelta(days=max(30, forecast_days(forecast)))
    events: list[ChartEvent] = []
    for title, done in session.exec(
        select(Milestone.title, Milestone.completed_on)
        .where(Milestone.account_id == aid, Milestone.status == "done")
        .where(col(Milestone.completed_on) >= start, col(Milestone.completed_on) <= today)
    ).all():
        events.append(ChartEvent(done, "milestone", title))
    opened_escalations = (
        session.exec(
            select(Escalation.title, Escalation.opened_at)
            .where(Escalation.account_id == aid)
            .where(col(Escalation.opened_at) >= _midnight(start))
            .where(col(Escalation.opened_at) < _midnight(today + timedelta(days=1)))
        ).all()
        if escalations
        else []
    )
    for title, opened in opened_escalations:
        events.append(ChartEvent(opened.date(), "escalation", title))
    for title, when in session.exec(
        select(QBR.title, QBR.scheduled_for)
        .where(QBR.account_id == aid)
        .where(col(QBR.scheduled_for) >= _midnight(start))
        .where(col(QBR.scheduled_for) < _midnight(horizon))
    ).all():
        events.append(ChartEvent(when.date(), "qbr", title))
    events.sort(key=lambda e: (e.day, e.kind))
    first = history[0][0].isoformat() if history else start.isoformat()
    # Say the days the data covers, both ends counted: a young account has fewer than the window.
    shown = (today - history[0][0]).days + 1 if history else days
    period = " today (no history yet)" if shown == 1 else f", last {min(shown, days)} days"
    return HealthTrendSpec(
        title=f"{account.name} — health{period}",
        account=account.name,
        today=today,
        red_max=model.bands.red_max,
        green_min=model.bands.green_min,
        history=history,
        forecast=forecast,
        events=tuple(events),
        source=(
            f"health snapshots of account #{aid}, {first} to {today.isoformat()} "
            f"({len(history)} scored days, model {model.name}); milestones, escalations and QBRs "
            "of the same account"
        ),
    )


def forecast_days(forecast: ForecastPath | None) -> int:
    if forecast is None or not forecast.points:
        return 0
    return (forecast.points[-1][0] - forecast.points[0][0]).days


# -- indicators behind the score -------------------------------------------------------------


def indicators_spec(
    account: dict[str, Any], health: dict[str, Any], model: HealthModel
) -> IndicatorsSpec:
    """The indicators of a health card's data (handlers.health.health_context), with thresholds."""
    bars = []
    for row in health["indicators"]:
        try:
            indicator = model.indicator(row["key"])
        except KeyError:
            continue
        bars.append(
            IndicatorBar(
                key=indicator.key,
                label=indicator.label,
                kind=indicator.kind,
                score=None if row["score"] is None else float(row["score"]),
                value=None if row["value"] is None else float(row["value"]),
                unit=indicator.unit,
                red=indicator.red,
                green=indicator.green,
                direction=indicator.direction,
                status=str(row["status"]),
            )
        )
    return IndicatorsSpec(
        title=f"{account['name']} — the indicators behind the score",
        account=str(account["name"]),
        day=date.fromisoformat(health["day"]),
        bars=tuple(bars),
        red_score=SCORE_AT_RED,
        green_score=SCORE_AT_GREEN,
        source=(
            f"health snapshot of account #{account['id']} on {health['day']} "
            f"(indicator readings and thresholds of model {model.name})"
        ),
    )


# -- the client health map -------------------------------------------------------------------


def health_map_spec(
    rows: Sequence[dict[str, Any]], *, scope: str, today: date, health_split: float
) -> HealthMapSpec:
    """A portfolio's rows (handlers.portfolio) on the map; unscored accounts are counted, not drawn."""
    scored = [r for r in rows if r["score"] is not None]
    split = arr_split([float(r["arr"] or 0) for r in scored])
    points = tuple(
        MapPoint(
            name=str(r["name"]),
            health=float(r["score"]),
            arr=float(r["arr"] or 0),
            days_to_renewal=r["days_to_renewal"],
            band=str(r["band"]),
            quadrant=quadrant(
                float(r["score"]), float(r["arr"] or 0), health_split=health_split, arr_split=split
            ),
        )
        for r in scored
    )
    return HealthMapSpec(
        title=f"Health map — {scope}",
        scope=scope,
        today=today,
        health_split=health_split,
        arr_split=split,
        points=points,
        unscored=len(rows) - len(scored),
        source=(
            f"latest health snapshots on or before {today.isoformat()} and account ARR and renewal "
            f"dates of {len(rows)} accounts ({scope})"
        ),
    )


def health_map(
    session: Session, *, ctx: ChatContext, models: HealthModels, owner: str | None = None
) -> Reply:
    """ "health map", "show my portfolio map": the book (or team) as health against ARR."""
    from handlers.portfolio import portfolio_rows

    found = portfolio_rows(session, ctx=ctx, owner=owner)
    if isinstance(found, Reply):
        return found
    scope, rows = found
    # Healthy means green: the default model's green floor (segment models share the bands
    # unless they say otherwise, and one map needs one line).
    spec = health_map_spec(
        rows, scope=scope, today=ctx.today, health_split=models.default.bands.green_min
    )
    by_quadrant: dict[str, list[MapPoint]] = {q: [] for q in QUADRANTS}
    for point in sorted(spec.points, key=lambda p: -p.arr):
        by_quadrant[point.quadrant].append(point)
    quadrants = [
        {
            "key": key,
            "label": key.title(),
            "meaning": meaning,
            "count": len(by_quadrant[key]),
            "accounts": [p.name for p in by_quadrant[key][:5]],
            "more": max(0, len(by_quadrant[key]) - 5),
        }
        for key, meaning in QUADRANTS.items()
    ]
    counts = spec.counts()
    if spec.points:
        text = (
            f"Health map of {scope} ({len(spec.points)} scored): {counts['fix']} to fix, "
            f"{counts['watch']} to watch, {counts['protect']} to protect, {counts['grow']} to grow. "
            f"Split at health {spec.health_split:g} and ARR ${spec.arr_split:,.0f} (the median)."
        )
    else:
        text = f"No scored accounts in {scope} to put on a health map."
    if spec.unscored:
        text += f" {spec.unscored} without a health score are not on the map."
    reply = Reply(
        template="health_map",
        context={
            "scope": scope,
            "total": len(spec.points),
            "unscored": spec.unscored,
            "health_split": spec.health_split,
            "arr_split": spec.arr_split,
            "quadrants": quadrants,
        },
        text=text,
    )
    return replace(reply, attachments=(attachment(spec),) if spec.points else ())


# -- a milestone plan against its KPI target -------------------------------------------------


def milestone_plan_specs(
    session: Session, account: Account, *, today: date, limit: int = MAX_PLAN_CHARTS
) -> list[MilestonePlanSpec]:
    """One hurdler chart per objective with a KPI baseline and target (at most ``limit``)."""
    objectives = session.exec(
        select(Objective, SuccessPlan.created_at)
        .join(SuccessPlan, col(Objective.plan_id) == col(SuccessPlan.id))
        .where(SuccessPlan.account_id == account.id, col(Objective.kpi).is_not(None))
        .where(col(Objective.kpi_baseline).is_not(None), col(Objective.kpi_target).is_not(None))
        .order_by(col(Objective.position), col(Objective.id))
        .limit(limit)
    ).all()
    return [
        milestone_plan_spec(session, account, o, created.date(), today=today)
        for o, created in objectives
    ]


def milestone_plan_spec(
    session: Session, account: Account, objective: Objective, plan_created: date, *, today: date
) -> MilestonePlanSpec:
    """Planned KPI points (each milestone's KPI target by its due date) against the KPI readings."""
    milestones = session.exec(
        select(Milestone)
        .where(Milestone.objective_id == objective.id, col(Milestone.due_date).is_not(None))
        .order_by(col(Milestone.due_date), col(Milestone.position))
    ).all()
    readings = session.exec(
        select(KpiReading.day, KpiReading.value)
        .where(KpiReading.objective_id == objective.id, KpiReading.day <= today)
        .order_by(col(KpiReading.day))
    ).all()
    planned = [
        PlannedPoint(m.due_date, float(m.kpi_target), m.title, m.status)  # type: ignore[arg-type]
        for m in milestones
        if m.kpi_target is not None
    ]
    if not planned and milestones:
        # No hurdle values set: the plan is to reach the target by the last milestone.
        last = milestones[-1]
        planned = [
            PlannedPoint(last.due_date, float(objective.kpi_target or 0), last.title, last.status)
        ]  # type: ignore[arg-type]
    start = readings[0][0] if readings else min([plan_created, *(p.day for p in planned)])
    unit = objective.kpi_unit or ""
    first, last_day = (readings[0][0], readings[-1][0]) if readings else (None, None)
    measured = (
        f"{len(readings)} KPI readings {first.isoformat()} to {last_day.isoformat()}"
        if first and last_day
        else "no KPI readings"
    )
    return MilestonePlanSpec(
        title=f"{account.name} — {objective.kpi}: plan vs actual",
        account=account.name,
        objective=objective.title,
        kpi=str(objective.kpi),
        unit=unit,
        start=start,
        today=today,
        baseline=float(objective.kpi_baseline or 0),
        target=float(objective.kpi_target or 0),
        planned=tuple(planned),
        actual=tuple((d, float(v)) for d, v in readings),
        source=(
            f"objective #{objective.id} “{objective.title}” (baseline, target), KPI targets of its "
            f"{len(milestones)} milestones, {measured}"
        ),
    )


# -- renewals ahead --------------------------------------------------------------------------


def renewals_spec(context: dict[str, Any], *, today: date) -> RenewalsSpec:
    """The open renewals of a renewals answer (handlers.portfolio.upcoming_renewals) on a timeline."""
    window = context["window"]
    marks = tuple(
        RenewalMark(
            name=str(r["account_name"]),
            day=date.fromisoformat(r["renewal_date"]),
            arr=float(r["arr"] or 0),
            band=str(r["band"]),
        )
        for r in context["renewals"]
        if r["status"] == "open"
    )
    return RenewalsSpec(
        title=f"Renewals {window['phrase']} — {context['scope']}",
        start=date.fromisoformat(window["start"]),
        end=date.fromisoformat(window["end"]),
        today=today,
        renewals=marks,
        source=(
            f"open renewals {window['start']} to {window['end']} ({context['scope']}), with each "
            f"account's latest health band on or before {today.isoformat()}"
        ),
    )


# -- charts for an answer --------------------------------------------------------------------


def asks_for_chart(text: str) -> bool:
    """Whether a command's text asks for a drawing ("/health acme chart", "/plan acme graph")."""
    from domain.nlu.lexicon import CHART_WORDS, MAP_WORDS

    words = {w.strip(".,!?;:'’").lower() for w in (text or "").split()}
    return bool(words & (CHART_WORDS | MAP_WORDS))


CHARTED = ("health_card", "success_plan", "renewals", "risks", "my_accounts", "health_map")


def with_charts(
    session: Session,
    reply: Reply,
    *,
    ctx: ChatContext,
    models: HealthModels,
    owner: str | None = None,
) -> Reply:
    """The reply with the charts that show it attached; the text says when there is none."""
    specs: list[ChartSpec] = []
    account_id = (reply.context.get("account") or {}).get("id")
    if reply.template == "health_card" and account_id:
        account = session.get(Account, account_id)
        if account is not None:
            specs.append(
                health_trend_spec(
                    session,
                    account,
                    models=models,
                    today=ctx.today,
                    escalations=escalations_shown_here(ctx),
                )
            )
            model = models.for_segment(account.segment)
            specs.append(indicators_spec(reply.context["account"], reply.context["health"], model))
    elif reply.template == "success_plan" and account_id:
        account = session.get(Account, account_id)
        if account is not None:
            specs += milestone_plan_specs(session, account, today=ctx.today)
    elif reply.template == "renewals":
        specs.append(renewals_spec(reply.context, today=ctx.today))
    elif reply.template in ("risks", "my_accounts"):
        # The list stays the answer; the map of the same book follows it.
        mapped = health_map(session, ctx=ctx, models=models, owner=owner)
        specs += [spec_from_dict(a.data) for a in mapped.attachments]
    if not specs:
        if reply.template in ("account_not_found", "account_choices", "not_here", "error"):
            return reply  # nothing was answered yet: the chart request waits for the account
        note = "There is no chart for this answer yet."
        return replace(reply, text=f"{reply.text} ({note})")
    return replace(reply, attachments=reply.attachments + tuple(attachment(s) for s in specs))
