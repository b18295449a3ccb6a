"""The account health card (score, band, trend, drivers, forecast, sentiment) and what changed lately."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from domain.health import score_health, trend
from domain.health_model import HealthModel, HealthModels
from domain.signals import expansion_signal, forecast_summary
from handlers.accounts import (
    OwnerFacts,
    account_row,
    account_summary,
    owner_from_row,
    pending_flushed,
    resolve_account,
    resolve_loaded,
    snapshot_on_or_before,
)
from handlers.context import ChatContext
from handlers.permissions import can_change
from handlers.reply import Reply
from storage.models import (
    Account,
    Escalation,
    HealthSnapshot,
    IndicatorReading,
    Milestone,
    MilestoneEvent,
)

SENTIMENT_KEY = "csm_sentiment"
SENTIMENT_VALUES = {"red": 1.0, "amber": 2.0, "green": 3.0}
SENTIMENT_NAMES = {v: k for k, v in SENTIMENT_VALUES.items()}
TREND_ARROWS = {"up": "↑", "down": "↓", "flat": "→", "unknown": "·"}


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
    return "insufficient" if score is None else model.bands.band(score)


def _latest_readings(session: Session, account_id: int, today: date) -> dict[str, IndicatorReading]:
    rows = session.exec(
        select(IndicatorReading)
        .where(IndicatorReading.account_id == account_id, IndicatorReading.day <= today)
        .where(IndicatorReading.day > today - timedelta(days=400))
        .order_by(col(IndicatorReading.day))
    ).all()
    latest: dict[str, IndicatorReading] = {}
    for row in rows:
        latest[row.indicator_key] = row
    return latest


def live_snapshot(
    session: Session, account: Account, model: HealthModel, today: date
) -> HealthSnapshot:
    """Score from the readings when no snapshot exists yet (fresh import); not stored."""
    latest = _latest_readings(session, account.id or 0, today)
    result = score_health(model, {k: (r.day, r.value) for k, r in latest.items()}, today)
    return HealthSnapshot(
        account_id=account.id or 0,
        day=today,
        score=result.score,
        band=result.band,
        coverage=result.coverage,
        model_name=model.name,
        indicator_scores=result.indicator_scores_json(),
        drivers=result.drivers_json(),
    )


def rescore_today(session: Session, account: Account, *, models: HealthModels, today: date) -> None:
    """Replace today's snapshot score after a chat change, keeping the stored forecast."""
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
    # One light query for the recent score history, then the full snapshot of the newest day only.
    pending_flushed(session)
    conn = session.connection()
    history = conn.execute(_HISTORY, {"account_id": account.id, "today": today}).all()
    snapshot: Any = None
    if history:
        snapshot = conn.execute(
            _SNAPSHOT_ON, {"account_id": account.id, "day": history[0][0]}
        ).first()
    if snapshot is None:
        snapshot = live_snapshot(session, account, model, today)
    moved = trend(
        snapshot.score,
        _score_on_or_before(history, snapshot.day - timedelta(days=7)),
        _score_on_or_before(history, snapshot.day - timedelta(days=30)),
    )
    delta_7 = None if moved.delta_7d is None else round(moved.delta_7d, 1)
    delta_30 = None if moved.delta_30d is None else round(moved.delta_30d, 1)
    direction = moved.direction
    indicators = []
    for indicator in model.indicators:
        stored = snapshot.indicator_scores.get(indicator.key, {})
        score = stored.get("score")
        indicators.append(
            {
                "key": indicator.key,
                "label": indicator.label,
                "kind": indicator.kind,
                "unit": indicator.unit,
                "value": stored.get("value"),
                "score": None if score is None else round(score),
                "status": stored.get("status", "missing"),
                "band": band_of_score(model, score),
            }
        )
    drivers = [
        {
            "key": d["key"],
            "label": d["label"],
            "score": round(d["score"]),
            "impact": round(d["impact"]),
        }
        for d in (snapshot.drivers or [])[:3]
    ]
    usage = snapshot.indicator_scores.get("product_usage", {}).get("value")
    return {
        "day": snapshot.day.isoformat(),
        "score": None if snapshot.score is None else round(snapshot.score),
        "band": snapshot.band,
        "coverage": round(snapshot.coverage, 2),
        "trend": {
            "delta_7d": delta_7,
            "delta_30d": delta_30,
            "direction": direction,
            "arrow": TREND_ARROWS[direction],
        },
        "forecast": {
            "red_in_days": snapshot.forecast_red_in_days,
            "summary": forecast_summary(snapshot.forecast_red_in_days),
        },
        "indicators": indicators,
        "drivers": drivers,
        "expansion_signal": expansion_signal(usage, account.licensed_seats),
    }


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
        head = f"{account['name']}: {health['score']}/100 {health['band']}"
    if account.get("churned_on"):
        return f"{head} (churned on {account['churned_on']}; last scored {health['day']})"
    delta = health["trend"]["delta_7d"]
    if delta is not None:
        head += f", {_signed(delta)} in 7 days"
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
                    "text": f"Score {then.score:.0f} → {now.score:.0f} "
                    f"({_signed(now.score - then.score)})",
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
                        f"{_fmt(current.get('value'))} (score {s_then:.0f} → {s_now:.0f})",
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


def _signed(value: float) -> str:
    """A score change as the cards print it: +3, −8 (a real minus sign), ±0."""
    rounded = round(value)
    return "±0" if rounded == 0 else f"{rounded:+d}".replace("-", "−")


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() or abs(value) >= 10 else f"{value:.1f}"
    return str(value)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
