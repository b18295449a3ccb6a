"""The account health card (score, band, trend, drivers, forecast, sentiment) and what changed lately."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from domain.forecast import fits_trend
from domain.health import OLDEST_READING_DAYS, trend
from domain.health_model import HealthModel, HealthModels
from domain.numbers import format_score, format_signed, shown_score
from domain.signals import expansion_signal, forecast_summary
from handlers import access
from handlers.accounts import (
    OwnerFacts,
    account_row,
    account_summary,
    owner_from_row,
    resolve_account,
    resolve_loaded,
    snapshot_on_or_before,
)
from handlers.context import ChatContext
from handlers.name_index import pending_flushed
from handlers.permissions import can_change
from handlers.reply import Reply
from storage.models import (
    Account,
    Escalation,
    HealthSnapshot,
    IndicatorReading,
    Milestone,
    MilestoneEvent,
    SurveyResponse,
)

SENTIMENT_KEY = "csm_sentiment"
SENTIMENT_VALUES = {"red": 1.0, "amber": 2.0, "green": 3.0}
SENTIMENT_NAMES = {v: k for k, v in SENTIMENT_VALUES.items()}
# "unknown": no score 7 or 30 days back to compare with (a new account, a first import).
TREND_ARROWS = {"up": "↑", "down": "↓", "flat": "→", "unknown": "· no trend yet"}


# The health card's reads, built once (composing a statement costs more than SQLite takes to
# answer it) and run as Core statements: the card only reads, so ORM objects would be waste.
_SNAP = HealthSnapshot.__table__
_READING = IndicatorReading.__table__
# The recent score history: enough rows to reach 30 days back even with daily snapshots.
_HISTORY = (
    select(_SNAP.c.day, _SNAP.c.score)  # type: ignore[call-overload]
    .where(_SNAP.c.account_id == bindparam("account_id"), _SNAP.c.day <= bindparam("today"))
    .order_by(_SNAP.c.day.desc())
    .limit(40)
)
_SNAPSHOT_ON = select(_SNAP).where(  # type: ignore[call-overload]
    _SNAP.c.account_id == bindparam("account_id"), _SNAP.c.day == bindparam("day")
)
_SENTIMENT = (
    select(_READING.c.value, _READING.c.note, _READING.c.source, _READING.c.day)  # type: ignore[call-overload]
    .where(
        _READING.c.account_id == bindparam("account_id"),
        _READING.c.indicator_key == SENTIMENT_KEY,
        _READING.c.day <= bindparam("today"),
    )
    .order_by(_READING.c.day.desc())
    .limit(1)
)


def band_of_score(model: HealthModel, score: float | None) -> str:
    """The band of a score as shown (one decimal), so a number and its colour always agree."""
    shown = shown_score(score)
    return "insufficient" if shown is None else model.bands.band(shown)


def _account_inputs(
    session: Session, account_id: int, today: date
) -> tuple[dict[str, list[tuple[date, float]]], dict[str, list[tuple[date, int]]]]:
    """One account's readings (newest OLDEST_READING_DAYS days) and survey answers, by day."""
    rows = session.exec(
        select(IndicatorReading.indicator_key, IndicatorReading.day, IndicatorReading.value)
        .where(IndicatorReading.account_id == account_id, IndicatorReading.day <= today)
        .where(IndicatorReading.day > today - timedelta(days=OLDEST_READING_DAYS))
        .order_by(col(IndicatorReading.day))
    ).all()
    series: dict[str, list[tuple[date, float]]] = {}
    for key, day, value in rows:
        series.setdefault(key, []).append((day, value))
    answers: dict[str, list[tuple[date, int]]] = {}
    for kind, day, score in session.exec(
        select(SurveyResponse.kind, SurveyResponse.responded_on, SurveyResponse.score)
        .where(SurveyResponse.account_id == account_id, SurveyResponse.responded_on <= today)
        .order_by(col(SurveyResponse.responded_on))
    ).all():
        answers.setdefault(kind, []).append((day, score))
    return series, answers


def live_snapshot(
    session: Session, account: Account, model: HealthModel, today: date
) -> HealthSnapshot:
    """Score and forecast from the readings when no snapshot exists yet (fresh import); not
    stored. The same computation as the nightly recompute."""
    # Imported here: the card usually reads a stored snapshot and never needs the recompute.
    from handlers.recompute import score_day

    series, answers = _account_inputs(session, account.id or 0, today)
    fitted = frozenset(i.key for i in model.indicators if fits_trend(i))
    result, forecast = score_day(model, series, answers, today, fitted)
    return HealthSnapshot(
        account_id=account.id or 0,
        day=today,
        score=result.score,
        band=result.band,
        coverage=result.coverage,
        model_name=model.name,
        indicator_scores=result.indicator_scores_json(),
        drivers=result.drivers_json(),
        forecast_red_in_days=forecast.red_in_days,
        forecast_red_earliest=forecast.red_in_days_earliest,
        forecast_red_latest=forecast.red_in_days_latest,
        forecast_status=forecast.status,
    )


def rescore_today(session: Session, account: Account, *, models: HealthModels, today: date) -> None:
    """Replace today's snapshot (score and forecast) after a chat change."""
    model = models.for_segment(account.segment)
    fresh = live_snapshot(session, account, model, today)
    stored = session.exec(
        select(HealthSnapshot).where(
            HealthSnapshot.account_id == account.id, HealthSnapshot.day == today
        )
    ).first()
    if stored is None:
        session.add(fresh)
    else:
        stored.score, stored.band, stored.coverage = fresh.score, fresh.band, fresh.coverage
        stored.indicator_scores, stored.drivers = fresh.indicator_scores, fresh.drivers
        # The forecast starts from today's readings, so a changed reading changes it too.
        stored.forecast_red_in_days = fresh.forecast_red_in_days
        stored.forecast_red_earliest = fresh.forecast_red_earliest
        stored.forecast_red_latest = fresh.forecast_red_latest
        stored.forecast_status = fresh.forecast_status
        session.add(stored)
    session.flush()


def _score_on_or_before(history: Sequence[Any], day: date) -> float | None:
    """The score of the newest (day, score) row on or before ``day``; history is newest first."""
    for row_day, score in history:
        if row_day <= day:
            return score
    return None


def health_context(
    session: Session, account: Account, *, models: HealthModels, today: date
) -> dict[str, Any]:
    """Everything the health card shows, as plain data."""
    model = models.for_segment(account.segment)
    # A churned customer has no health from its churn day on (recompute stops there): its card
    # shows the last day it was a customer, never a score made up from what came after.
    last_day = today
    churned_on = getattr(account, "churned_on", None)
    if churned_on is not None and churned_on <= today:
        last_day = churned_on - timedelta(days=1)
    # One light query for the recent score history, then the full snapshot of the newest day only.
    pending_flushed(session)
    conn = session.connection()
    history = conn.execute(_HISTORY, {"account_id": account.id, "today": last_day}).all()
    snapshot: Any = None
    if history:
        snapshot = conn.execute(
            _SNAPSHOT_ON, {"account_id": account.id, "day": history[0][0]}
        ).first()
    if snapshot is None:
        snapshot = live_snapshot(session, account, model, last_day)
    moved = trend(
        snapshot.score,
        _score_on_or_before(history, snapshot.day - timedelta(days=7)),
        _score_on_or_before(history, snapshot.day - timedelta(days=30)),
    )
    direction = moved.direction
    indicators = [_indicator_row(model, indicator, snapshot) for indicator in model.indicators]
    drivers = [
        {
            "key": d["key"],
            "label": d["label"],
            "score": shown_score(d["score"]),
            "impact": shown_score(d["impact"]),
        }
        for d in (snapshot.drivers or [])[:3]
    ]
    usage = snapshot.indicator_scores.get("product_usage", {}).get("value")
    status = getattr(snapshot, "forecast_status", None)
    earliest = getattr(snapshot, "forecast_red_earliest", None)
    latest = getattr(snapshot, "forecast_red_latest", None)
    return {
        "day": snapshot.day.isoformat(),
        # A card from an older snapshot (the nightly recompute has not run) says so.
        "as_of": snapshot.day.isoformat() if snapshot.day < today else None,
        "score": shown_score(snapshot.score),
        "band": snapshot.band,
        "coverage": round(snapshot.coverage, 2),
        "trend": {
            "delta_7d": moved.delta_7d,
            "delta_30d": moved.delta_30d,
            "direction": direction,
            "basis": moved.basis,
            "arrow": TREND_ARROWS[direction],
        },
        "forecast": {
            "red_in_days": snapshot.forecast_red_in_days,
            "red_in_days_earliest": earliest,
            "red_in_days_latest": latest,
            "status": status,
            "summary": forecast_summary(snapshot.forecast_red_in_days, earliest, latest, status),
        },
        "indicators": indicators,
        "drivers": drivers,
        "expansion_signal": expansion_signal(usage, account.licensed_seats),
    }


def _indicator_row(model: HealthModel, indicator: Any, snapshot: Any) -> dict[str, Any]:
    """One indicator line of the card: value, score and band as shown, and how fresh it is."""
    stored = snapshot.indicator_scores.get(indicator.key, {})
    score = shown_score(stored.get("score"))
    status = stored.get("status", "missing")
    age = stored.get("age_days")
    responses = stored.get("responses")
    survey = None
    if responses is not None and indicator.survey:
        survey = {
            "kind": indicator.survey,
            "responses": responses,
            "window_days": indicator.survey_window,
        }
    return {
        "key": indicator.key,
        "label": indicator.label,
        "kind": indicator.kind,
        "unit": indicator.unit,
        "value": stored.get("value"),
        "score": score,
        "status": status,
        "band": band_of_score(model, score),
        "day": stored.get("day"),
        "age_days": age,
        # "stale, 31 days old": a reading too old to count, shown with its age, never as missing.
        "freshness": _freshness(status, age),
        "survey": survey,
    }


def _freshness(status: str, age: int | None) -> str:
    if status == "stale" and age is not None:
        return f"stale, {age} {'day' if age == 1 else 'days'} old"
    return "no reading" if status == "missing" else status


def sentiment_context(session: Session, account_id: int, today: date) -> dict[str, Any] | None:
    pending_flushed(session)
    reading = (
        session.connection().execute(_SENTIMENT, {"account_id": account_id, "today": today}).first()
    )
    if reading is None:
        return None
    return {
        "value": SENTIMENT_NAMES.get(round(reading.value), "amber"),
        "reason": reading.note,
        "set_by": reading.source,
        "day": reading.day.isoformat(),
    }


def health_card(
    session: Session,
    account: Account,
    *,
    ctx: ChatContext,
    models: HealthModels,
    owner: OwnerFacts | None = None,
) -> Reply:
    """The card for an Account (or an accounts.account_row() row); owner when already known."""
    summary = account_summary(session, account, ctx.today, owner=owner)
    # A churned customer keeps its last score; the card must not read like a live account.
    summary["churned_on"] = account.churned_on.isoformat() if account.churned_on else None
    health = health_context(session, account, models=models, today=ctx.today)
    context = {
        "account": summary,
        "health": health,
        "sentiment": sentiment_context(session, account.id or 0, ctx.today),
        "expansion_signal": health["expansion_signal"],
        "can_edit": can_change(session, ctx.actor, account, owner=owner),
    }
    return Reply(template="health_card", context=context, text=health_text(summary, health))


def health_text(account: dict[str, Any], health: dict[str, Any]) -> str:
    """One line a notification or screen reader can use."""
    if health["score"] is None:
        head = f"{account['name']}: insufficient data for a health score"
    else:
        head = f"{account['name']}: {format_score(health['score'])}/100 {health['band']}"
    if account.get("churned_on"):
        return f"{head} (churned on {account['churned_on']}; last scored {health['day']})"
    if health.get("as_of"):
        head += f" (as of {health['as_of']})"
    delta = health["trend"]["delta_7d"]
    if delta is not None:
        head += f", {format_signed(delta)} in 7 days"
    delta_30 = health["trend"]["delta_30d"]
    if delta_30 is not None:
        head += f", {format_signed(delta_30)} in 30 days"
    if health["forecast"]["summary"] and health["band"] != "red":
        head += f", {health['forecast']['summary']}"
    if health["drivers"]:
        head += ". Main driver: " + health["drivers"][0]["label"]
    return head


def account_health(
    session: Session,
    *,
    ctx: ChatContext,
    models: HealthModels,
    query: str | None = None,
    account_id: int | None = None,
) -> Reply:
    """`/health acme`: the account's health card (read-only: the account is a row, not an Account)."""
    found = resolve_loaded(
        session,
        lambda found_id: account_row(session, found_id),
        ctx=ctx,
        intent="account_health",
        query=query,
        account_id=account_id,
    )
    if isinstance(found, Reply):
        return found
    return health_card(session, found, ctx=ctx, models=models, owner=owner_from_row(found))


def account_changes(
    session: Session,
    *,
    ctx: ChatContext,
    models: HealthModels,
    query: str | None = None,
    account_id: int | None = None,
    days: int = 7,
) -> Reply:
    """What changed for an account lately: score and band, indicators that moved, milestones, escalations."""
    found = resolve_account(
        session, ctx=ctx, intent="account_changes", query=query, account_id=account_id
    )
    if isinstance(found, Reply):
        return found
    account = found
    since = ctx.today - timedelta(days=days)
    now = snapshot_on_or_before(session, account.id or 0, ctx.today)
    then = snapshot_on_or_before(session, account.id or 0, since)
    history_from: str | None = None
    if then is None and now is not None:
        # The window reaches back before the first snapshot: compare with the oldest one we have
        # (and say so) rather than silently leaving the score out.
        then = session.exec(
            select(HealthSnapshot)
            .where(HealthSnapshot.account_id == account.id, HealthSnapshot.day > since)
            .where(HealthSnapshot.day < now.day)
            .order_by(col(HealthSnapshot.day))
            .limit(1)
        ).first()
        history_from = then.day.isoformat() if then is not None else None
    changes: list[dict[str, Any]] = []
    if now is not None and then is not None:
        if now.band != then.band:
            changes.append({"kind": "band", "text": f"Band moved from {then.band} to {now.band}"})
        if now.score is not None and then.score is not None and abs(now.score - then.score) >= 1:
            changes.append(
                {
                    "kind": "score",
                    "text": f"Score {format_score(then.score)} → {format_score(now.score)} "
                    f"({format_signed(now.score - then.score)})",
                }
            )
        for key, current in now.indicator_scores.items():
            before = then.indicator_scores.get(key, {})
            s_now, s_then = current.get("score"), before.get("score")
            if s_now is not None and s_then is not None and abs(s_now - s_then) >= 5:
                changes.append(
                    {
                        "kind": "indicator",
                        "text": f"{current.get('label', key)}: {_fmt(before.get('value'))} → "
                        f"{_fmt(current.get('value'))} "
                        f"(score {format_score(s_then)} → {format_score(s_now)})",
                    }
                )
    events = session.exec(
        select(MilestoneEvent, Milestone)
        .join(Milestone, Milestone.id == MilestoneEvent.milestone_id)
        .where(Milestone.account_id == account.id)
        .where(MilestoneEvent.at >= _midnight(since))
        .order_by(col(MilestoneEvent.at))
    ).all()
    for event, milestone in events:
        changes.append(
            {
                "kind": "milestone",
                "text": f"Milestone “{milestone.title}”: {event.field} {event.from_value or '—'} → "
                f"{event.to_value or '—'} by {event.actor_label or 'someone'}",
            }
        )
    escalations = session.exec(
        select(Escalation).where(
            Escalation.account_id == account.id, Escalation.opened_at >= _midnight(since)
        )
    ).all()
    if not access.escalations_shown_here(ctx):
        escalations = []  # internal: not in a channel shared with another organisation
    for escalation in escalations:
        changes.append(
            {
                "kind": "escalation",
                "text": f"Escalation opened ({escalation.severity}): {escalation.title} — {escalation.status}",
            }
        )
    summary = account_summary(session, account, ctx.today)
    scores_from = f" (health history starts {history_from})" if history_from else ""
    text = f"{account.name} since {since.isoformat()}{scores_from}: " + (
        "; ".join(c["text"] for c in changes) if changes else "nothing notable changed"
    )
    return Reply(
        template="account_changes",
        context={
            "account": summary,
            "since": since.isoformat(),
            "days": days,
            "history_from": history_from,
            "changes": changes,
        },
        text=text,
    )


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() or abs(value) >= 10 else f"{value:.1f}"
    return str(value)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
