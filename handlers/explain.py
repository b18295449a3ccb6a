""" "Why did Acme drop?": the indicators ranked by their part in the change of the overall score over a window."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import Session, col, select

from domain.health_model import HealthModels
from domain.nlu.timewindow import TimeWindow
from domain.numbers import format_score, format_signed, round_half_away, shown_score
from handlers.accounts import account_summary, resolve_account, snapshot_on_or_before
from handlers.context import ChatContext
from handlers.reply import Reply
from handlers.understanding import Constraints, understanding, understood, window_phrase, with_notes
from storage.models import HealthSnapshot

# The trend window the health card uses for its longer delta: "why did it drop" looks this far back.
DEFAULT_DAYS = 30


def _value(value: Any, unit: str) -> str:
    if value is None:
        return "—"
    number = float(value)
    text = f"{number:.0f}" if number.is_integer() or abs(number) >= 10 else f"{number:.1f}"
    return f"{text}{unit if unit == '%' else (' ' + unit if unit else '')}"


def contributions(
    then: dict[str, dict[str, Any]], now: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each indicator's part in the change: its weight share today × the change of its score.

    Weight share is the indicator's effective weight over the sum of effective weights in the
    newer snapshot (stale and missing indicators count zero). Largest fall first. Indicators
    without a score at either end are listed after, with no contribution.
    """
    total = sum(float(v.get("effective_weight") or 0) for v in now.values()) or 1.0
    rows: list[dict[str, Any]] = []
    for key, current in now.items():
        before = then.get(key, {})
        s_now, s_then = current.get("score"), before.get("score")
        share = float(current.get("effective_weight") or 0) / total
        change = None if s_now is None or s_then is None else float(s_now) - float(s_then)
        rows.append(
            {
                "key": key,
                "label": current.get("label", key),
                "share": share,
                "score_then": s_then,
                "score_now": s_now,
                "value_then": before.get("value"),
                "value_now": current.get("value"),
                "contribution": None if change is None else share * change,
            }
        )
    rows.sort(key=lambda r: (r["contribution"] is None, r["contribution"] or 0.0, r["label"]))
    return rows


def explain_health(
    session: Session,
    *,
    ctx: ChatContext,
    models: HealthModels,
    account_id: int | None = None,
    query: str | None = None,
    constraints: Constraints | None = None,
) -> Reply:
    """What moved an account's score over the window (default: the last 30 days), and by how much."""
    c = constraints or Constraints()
    found = resolve_account(
        session, ctx=ctx, intent="explain_health", query=query, account_id=account_id
    )
    if isinstance(found, Reply):
        return found
    model = models.for_segment(found.segment)
    units = {i.key: i.unit for i in model.indicators}
    default = c.window is None
    if c.window is not None:
        start, end, label = c.window.start, min(c.window.end, ctx.today), c.window.label
    else:
        start, end = ctx.today - timedelta(days=DEFAULT_DAYS), ctx.today
        label = f"last {DEFAULT_DAYS} days"
    window = TimeWindow(start, end, label)
    now = snapshot_on_or_before(session, found.id or 0, end)
    then = snapshot_on_or_before(session, found.id or 0, start)
    history_from = None
    if now is not None and then is None:
        # The window starts before the first snapshot: compare with the oldest (and say so).
        then = session.exec(
            select(HealthSnapshot)
            .where(HealthSnapshot.account_id == found.id, HealthSnapshot.day < now.day)
            .order_by(col(HealthSnapshot.day))
            .limit(1)
        ).first()
        history_from = then.day.isoformat() if then is not None else None
    applied = {"window", "accounts"}
    not_applied = c.not_applied(applied, "the explanation is about one account's score")
    if len(c.accounts) > 1:
        not_applied = [n for n in not_applied if "not applied" in n]
        not_applied.append(
            f"“{', '.join(c.account_names[1:])}” not applied: one account at a time (shown: "
            f"{found.name})"
        )
    rows: list[dict[str, Any]] = []
    delta = None
    if now is not None and then is not None:
        rows = contributions(then.indicator_scores, now.indicator_scores)
        for row in rows:
            unit = units.get(row["key"], "")
            row["value_then_text"] = _value(row["value_then"], unit)
            row["value_now_text"] = _value(row["value_now"], unit)
            row["contribution_text"] = (
                "—" if row["contribution"] is None else format_signed(row["contribution"])
            )
            row["share_pct"] = round(100 * row["share"])
            row["score_then"] = shown_score(row["score_then"])
            row["score_now"] = shown_score(row["score_now"])
        if now.score is not None and then.score is not None:
            delta = now.score - then.score
    subject = f"Why {found.name}'s score moved"
    if now is None or then is None:
        result = "not enough health history to compare"
    elif delta is None:
        result = "no overall score at one end of the window (insufficient data)"
    else:
        falls = [r for r in rows if (r["contribution"] or 0) < -0.05][:3]
        rises = [r for r in rows if (r["contribution"] or 0) > 0.05]
        movement = (
            f"{format_score(then.score)} → {format_score(now.score)} ({format_signed(delta)})"
        )
        if falls:
            detail = "biggest falls: " + ", ".join(
                f"{r['label']} ({r['contribution_text']})" for r in falls
            )
        elif rises:
            detail = (
                "nothing fell; biggest rise: "
                + f"{rises[-1]['label']} ({rises[-1]['contribution_text']})"
            )
        else:
            detail = "no indicator moved the score"
        if delta > 0.5 and falls:
            detail = "it rose overall; " + detail
        result = f"{movement}; {detail}"
    line = understood(subject, window_phrase(window, default=default), [], result)
    if history_from:
        line += f" (health history starts {history_from})"
    return Reply(
        template="explain_health",
        context={
            "account": account_summary(session, found, ctx.today),
            "window": {"start": start.isoformat(), "end": end.isoformat(), "label": label},
            "then": None
            if then is None
            else {"day": then.day.isoformat(), "score": shown_score(then.score), "band": then.band},
            "now": None
            if now is None
            else {"day": now.day.isoformat(), "score": shown_score(now.score), "band": now.band},
            "delta": None if delta is None else round_half_away(delta),
            "indicators": rows,
            "history_from": history_from,
            **understanding(line, not_applied),
        },
        text=with_notes(line, not_applied),
    )
