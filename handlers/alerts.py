"""Scheduled-notice replies (risk alert, renewal reminder, delivery failure) and the alert buttons."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from domain import notify_policy as policy
from domain.numbers import format_score, round_half_away, shown_score
from domain.signals import forecast_summary
from handlers import access
from handlers.accounts import csms_by_id
from handlers.audit import record
from handlers.context import ChatContext
from handlers.errors import NotFound, PermissionDenied
from handlers.permissions import can_change, require_change, who_may_change
from handlers.reply import Reply
from storage.models import CSM, Account, Escalation, HealthSnapshot, Milestone, Renewal
from storage.scheduler_models import Alert, Delivery

ACK_ACTION_ID = "alert_acknowledge"
SNOOZE_ACTION_ID = "alert_snooze"
# The per-line menu of alerts listed in a digest, an urgent batch or the risk summary: its answer
# is a private note, so the list the click came from stays as it was.
LINE_MENU_ACTION_ID = "alert_menu"
# Lines shown in one urgent-alerts message / one risk-channel summary before "and N more".
URGENT_LIMIT = 10
SUMMARY_LIMIT = 30
SNOOZE_DAYS = 7
SEVERITY_LABELS = {1: "notice", 2: "warning", 3: "critical"}
KIND_LABELS = {
    "band_change": "Health band",
    "score_drop": "Health drop",
    "forecast_red": "Forecast",
    "nps_detractor": "NPS detractor",
    "milestone_overdue": "Milestone overdue",
    "escalation_sla": "Escalation SLA",
    "escalation_opened": "Escalation",
}


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class _Snap:
    day: date
    score: float | None
    band: str
    forecast_red_in_days: int | None
    drivers: list[dict[str, Any]]
    forecast_red_earliest: int | None = None
    forecast_red_latest: int | None = None
    forecast_status: str | None = None


def account_briefs(
    session: Session, account_ids: Iterable[int], today: date
) -> dict[int, dict[str, Any]]:
    """Health, milestones, risks and owner of many accounts in a handful of queries (plain data)."""
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    accounts = session.exec(select(Account).where(col(Account.id).in_(ids))).all()
    owners = csms_by_id(session, (a.owner_id for a in accounts))
    window = [today - timedelta(days=n) for n in range(0, 10)]
    # Columns, not rows: the per-indicator JSON is large and no brief shows it.
    snaps: dict[int, dict[date, _Snap]] = defaultdict(dict)
    for aid, day, score, band, forecast, drivers, earliest, latest, status in session.execute(
        select(
            HealthSnapshot.account_id,
            HealthSnapshot.day,
            HealthSnapshot.score,
            HealthSnapshot.band,
            HealthSnapshot.forecast_red_in_days,
            HealthSnapshot.drivers,
            HealthSnapshot.forecast_red_earliest,
            HealthSnapshot.forecast_red_latest,
            HealthSnapshot.forecast_status,
        ).where(col(HealthSnapshot.account_id).in_(ids), col(HealthSnapshot.day).in_(window))
    ).all():
        snaps[aid][day] = _Snap(day, score, band, forecast, drivers or [], earliest, latest, status)
    milestones: dict[int, list[Milestone]] = defaultdict(list)
    for m in session.exec(select(Milestone).where(col(Milestone.account_id).in_(ids))).all():
        milestones[m.account_id].append(m)
    escalations: dict[int, int] = defaultdict(int)
    for e in session.exec(
        select(Escalation).where(
            col(Escalation.account_id).in_(ids), Escalation.status != "resolved"
        )
    ).all():
        escalations[e.account_id] += 1
    since = datetime.combine(today - timedelta(days=30), datetime.min.time(), tzinfo=UTC)
    risks: dict[int, list[str]] = defaultdict(list)
    for a in session.exec(
        select(Alert)
        .where(
            col(Alert.account_id).in_(ids),
            col(Alert.fired_at) >= since,
            Alert.status != "suppressed",
        )
        .order_by(col(Alert.fired_at).desc())
    ).all():
        risks[a.account_id].append(a.title)
    briefs: dict[int, dict[str, Any]] = {}
    for a in accounts:
        aid = a.id or 0
        days = snaps.get(aid, {})
        latest = max(days) if days else None
        snap = days[latest] if latest else None
        week_ago = days.get(latest - timedelta(days=7)) if latest else None
        ms = milestones.get(aid, [])
        overdue = [m for m in ms if m.due_date and m.due_date < today and m.status != "done"]
        upcoming = sorted(
            (m for m in ms if m.status != "done" and m.due_date and m.due_date >= today),
            key=lambda m: m.due_date or today,
        )
        owner = owners.get(a.owner_id) if a.owner_id else None
        drivers = (snap.drivers or [])[:3] if snap else []
        briefs[aid] = {
            "id": aid,
            "name": a.name,
            "arr": a.arr,
            "segment": a.segment,
            "lifecycle_stage": a.lifecycle_stage,
            "owner": {"id": owner.id, "name": owner.name} if owner else None,
            "health": {
                "day": snap.day.isoformat() if snap else None,
                "score": None if not snap else shown_score(snap.score),
                "band": snap.band if snap else "insufficient",
                "delta_7d": (
                    round_half_away(snap.score - week_ago.score)
                    if snap and week_ago and snap.score is not None and week_ago.score is not None
                    else None
                ),
                "forecast_red_in_days": snap.forecast_red_in_days if snap else None,
                "forecast": (
                    forecast_summary(
                        snap.forecast_red_in_days,
                        snap.forecast_red_earliest,
                        snap.forecast_red_latest,
                        snap.forecast_status,
                    )
                    if snap
                    else None
                ),
                "drivers": [
                    {"label": d.get("label"), "score": shown_score(d.get("score") or 0.0)}
                    for d in drivers
                ],
            },
            "milestones": {
                "total": len(ms),
                "done": sum(1 for m in ms if m.status == "done"),
                "overdue": len(overdue),
                "overdue_titles": [m.title for m in overdue[:5]],
                "next": [
                    {"title": m.title, "due_date": m.due_date.isoformat() if m.due_date else None}
                    for m in upcoming[:3]
                ],
            },
            "open_escalations": escalations.get(aid, 0),
            "risks": risks.get(aid, [])[:5],
        }
    return briefs


def _actions(alert_id: int) -> dict[str, Any]:
    value = str(alert_id)
    return {
        "acknowledge": {"action_id": ACK_ACTION_ID, "value": value, "label": "Acknowledge"},
        "snooze": {
            "action_id": SNOOZE_ACTION_ID,
            "value": value,
            "label": f"Snooze {SNOOZE_DAYS} days",
        },
    }


def _alert_dict(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "kind": alert.kind,
        "kind_label": KIND_LABELS.get(alert.kind, alert.kind),
        "title": alert.title,
        "severity": alert.severity,
        "severity_label": SEVERITY_LABELS.get(alert.severity, "notice"),
        "details": alert.details,
        "status": alert.status,
        "fired_at": _aware(alert.fired_at).isoformat() if alert.fired_at else None,
        "acknowledged_at": (
            _aware(alert.acknowledged_at).isoformat() if alert.acknowledged_at else None
        ),
        "snoozed_until": (
            _aware(alert.snoozed_until).date().isoformat() if alert.snoozed_until else None
        ),
    }


def risk_alert_reply(
    alert: Alert,
    brief: dict[str, Any],
    *,
    note: str | None = None,
    viewer: dict[str, Any] | None = None,
) -> Reply:
    """The card posted for a fired alert: what happened, the health behind it, and two buttons.

    ``viewer`` (name, can_change, who) makes it one person's view of the card; without it the
    card is the one everybody in the conversation sees.
    """
    context = {
        "alert": _alert_dict(alert),
        "account": brief,
        "actions": _actions(alert.id or 0),
        "note": note,
        "viewer": viewer,
    }
    h = brief["health"]
    score = "no score" if h["score"] is None else f"{format_score(h['score'])}/100 {h['band']}"
    text = f"⚠ {brief['name']}: {alert.title} ({score})"
    return Reply(template="risk_alert", context=context, text=text, visibility="channel")


def risk_alert(session: Session, *, ctx: ChatContext, alert_id: int) -> Reply:
    access.require(session, ctx, access.Action.READ_ACCOUNT)
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"There is no alert {alert_id}.")
    brief = account_briefs(session, [alert.account_id], ctx.today)[alert.account_id]
    return risk_alert_reply(alert, brief)


def _viewer(session: Session, ctx: ChatContext, account: Account) -> dict[str, Any]:
    return {
        "name": ctx.actor.name,
        "can_change": can_change(session, ctx.actor, account),
        "who": who_may_change(session, account),
    }


def _state_note(session: Session, alert: Alert) -> str | None:
    """What already happened to the alert, in the words its card uses (None while it is open)."""
    if alert.status == "acknowledged":
        by = session.get(CSM, alert.acknowledged_by_id) if alert.acknowledged_by_id else None
        return f"Acknowledged by {by.name if by else 'someone'}"
    if alert.status == "snoozed" and alert.snoozed_until is not None:
        by = session.get(CSM, alert.snoozed_by_id) if alert.snoozed_by_id else None
        until = _aware(alert.snoozed_until).date().isoformat()  # type: ignore[union-attr]
        return f"Snoozed by {by.name if by else 'someone'} until {until}"
    return None


def alert_view(session: Session, *, ctx: ChatContext, alert_id: int) -> Reply:
    """The alert card as it is now, for this viewer: buttons only for those who may use them."""
    alert, account = _alert_and_account(session, alert_id)
    if ctx.actor.csm_id is None or (ctx.external and account.id not in ctx.allowed_account_ids):
        # A refresh can be asked for any id: only people we know, where the account may be shown.
        raise PermissionDenied("I can't show this alert here.")
    brief = account_briefs(session, [account.id or 0], ctx.today)[account.id or 0]
    return risk_alert_reply(
        alert, brief, note=_state_note(session, alert), viewer=_viewer(session, ctx, account)
    )


def posted_cards(session: Session, *, kind: str, subject: str, platform: str) -> list[Delivery]:
    """Every copy of a scheduled card that went out on a platform (its target and message id)."""
    return list(
        session.exec(
            select(Delivery).where(
                Delivery.kind == kind,
                Delivery.subject == subject,
                Delivery.platform == platform,
                Delivery.status == "sent",
                col(Delivery.message_id).is_not(None),
            )
        ).all()
    )


def renewal_reminder_reply(
    renewal: Renewal, brief: dict[str, Any], *, today: date, offset: int
) -> Reply:
    days_left = (renewal.renewal_date - today).days
    context = {
        "account": brief,
        "renewal": {
            "id": renewal.id,
            "date": renewal.renewal_date.isoformat(),
            "days_left": days_left,
            "offset": offset,
            "arr": renewal.arr,
            "likelihood_pct": (
                None if renewal.likelihood is None else round(renewal.likelihood * 100)
            ),
        },
    }
    h = brief["health"]
    score = "no score" if h["score"] is None else f"health {format_score(h['score'])} {h['band']}"
    text = (
        f"Renewal in {days_left} days: {brief['name']} on {renewal.renewal_date.isoformat()}, "
        f"ARR ${renewal.arr:,.0f}, {score}"
    )
    return Reply(template="renewal_reminder", context=context, text=text, visibility="channel")


def renewal_reminder(
    session: Session, *, ctx: ChatContext, renewal_id: int, offset: int | None = None
) -> Reply:
    renewal = session.get(Renewal, renewal_id)
    if renewal is None:
        raise NotFound(f"There is no renewal {renewal_id}.")
    brief = account_briefs(session, [renewal.account_id], ctx.today)[renewal.account_id]
    days_left = (renewal.renewal_date - ctx.today).days
    return renewal_reminder_reply(
        renewal, brief, today=ctx.today, offset=offset if offset is not None else days_left
    )


def _alert_and_account(session: Session, alert_id: int) -> tuple[Alert, Account]:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"There is no alert {alert_id}.")
    account = session.get(Account, alert.account_id)
    if account is None:
        raise NotFound(f"The account of alert {alert_id} no longer exists.")
    return alert, account


def acknowledge_alert(
    session: Session, *, ctx: ChatContext, alert_id: int, now: datetime | None = None
) -> Reply:
    """The Acknowledge button: owner, manager or admin only; quiets repeats of this kind; audited."""
    alert, account = _alert_and_account(session, alert_id)
    require_change(session, ctx.actor, account, "this alert")
    brief = account_briefs(session, [account.id or 0], ctx.today)[account.id or 0]
    viewer = _viewer(session, ctx, account)
    if alert.status == "acknowledged":
        # A second click (a stale card, two people at once): say who did it; change nothing.
        return risk_alert_reply(alert, brief, note=_state_note(session, alert), viewer=viewer)
    before = {"status": alert.status}
    if alert.acknowledged_at is None:
        alert.acknowledged_at = now or _now()
        alert.acknowledged_by_id = ctx.actor.csm_id
    alert.status = "acknowledged"
    session.add(alert)
    after = {"status": alert.status}
    _audit_alert(session, ctx, "alert.acknowledge", alert_id, before=before, after=after, now=now)
    return risk_alert_reply(alert, brief, note=f"Acknowledged by {ctx.actor.name}", viewer=viewer)


def _audit_alert(
    session: Session,
    ctx: ChatContext,
    action: str,
    alert_id: int,
    *,
    before: dict[str, Any],
    after: dict[str, Any],
    now: datetime | None,
) -> None:
    """The audit entry of a change to an alert, flushed with the change."""
    entry = record(
        session,
        ctx=ctx,
        action=action,
        entity="alert",
        entity_id=alert_id,
        before=before,
        after=after,
    )
    # Stamped here (aware UTC, the injected instant when given) rather than by the column default.
    entry.at = now or _now()
    session.flush()


def snooze_alert(
    session: Session,
    *,
    ctx: ChatContext,
    alert_id: int,
    days: int = SNOOZE_DAYS,
    now: datetime | None = None,
) -> Reply:
    """The Snooze button: no alert of this kind for this account for ``days`` days; audited."""
    alert, account = _alert_and_account(session, alert_id)
    require_change(session, ctx.actor, account, "this alert")
    if not 1 <= days <= 90:
        from handlers.errors import ValidationFailed

        raise ValidationFailed({"days": "Snooze for 1 to 90 days."})
    before = {"status": alert.status, "snoozed_until": None}
    if alert.snoozed_until is not None:
        before["snoozed_until"] = _aware(alert.snoozed_until).isoformat()  # type: ignore[union-attr]
    until = (now or _now()) + timedelta(days=days)
    alert.snoozed_until = until
    alert.snoozed_by_id = ctx.actor.csm_id
    alert.status = "snoozed"
    session.add(alert)
    after = {"status": "snoozed", "snoozed_until": until.isoformat()}
    _audit_alert(session, ctx, "alert.snooze", alert_id, before=before, after=after, now=now)
    brief = account_briefs(session, [account.id or 0], ctx.today)[account.id or 0]
    return risk_alert_reply(
        alert,
        brief,
        note=f"Snoozed for {days} days by {ctx.actor.name} (until {until.date().isoformat()})",
        viewer=_viewer(session, ctx, account),
    )


# -- alerts as lines (digest, urgent batch, risk summary) --------------------------------------


def alert_lines(session: Session, alerts: Iterable[Alert], today: date) -> list[dict[str, Any]]:
    """Alerts as list lines, worst first: class order (domain.notify_policy), severity, ARR.

    Each line carries what acts on it: the alert id for the Acknowledge / Snooze menu and the
    chat command that opens the account.
    """
    alerts = list(alerts)
    if not alerts:
        return []
    ids = sorted({a.account_id for a in alerts})
    accounts = {a.id: a for a in session.exec(select(Account).where(col(Account.id).in_(ids)))}
    owners = csms_by_id(session, (a.owner_id for a in accounts.values()))
    health: dict[int, tuple[date, float | None, str]] = {}
    for aid, day, score, band in session.execute(
        select(
            HealthSnapshot.account_id, HealthSnapshot.day, HealthSnapshot.score, HealthSnapshot.band
        ).where(
            col(HealthSnapshot.account_id).in_(ids),
            col(HealthSnapshot.day) <= today,
            col(HealthSnapshot.day) >= today - timedelta(days=9),
        )
    ).all():
        if aid not in health or day > health[aid][0]:
            health[aid] = (day, score, band)
    lines = []
    for a in alerts:
        account = accounts.get(a.account_id)
        if account is None:
            continue
        owner = owners.get(account.owner_id) if account.owner_id else None
        _, score, band = health.get(a.account_id, (today, None, "insufficient"))
        category = a.category or policy.classify(a.kind, a.details or {})
        lines.append(
            {
                "alert_id": a.id,
                "category": category,
                "category_label": policy.CLASS_LABELS.get(
                    category, KIND_LABELS.get(a.kind, a.kind)
                ),
                "urgent": a.delivery == "urgent",
                "severity": a.severity,
                "severity_label": SEVERITY_LABELS.get(a.severity, "notice"),
                "title": a.title,
                "status": a.status,
                "account": {"id": account.id, "name": account.name, "arr": account.arr},
                "owner": owner.name if owner else None,
                "score": shown_score(score),
                "band": band,
                "command": f"/health {account.name}",
                "ask": f"health {account.name}",
            }
        )
    lines.sort(
        key=lambda x: (
            policy.CLASS_RANK.get(x["category"], len(policy.CLASS_RANK)),
            -x["severity"],
            -(x["account"]["arr"] or 0),
            x["alert_id"] or 0,
        )
    )
    return lines


def _line_menu(line: dict[str, Any]) -> dict[str, Any]:
    return {
        "action_id": LINE_MENU_ACTION_ID,
        "acknowledge": f"ack:{line['alert_id']}",
        "snooze": f"snooze:{line['alert_id']}",
        "snooze_label": f"Snooze {SNOOZE_DAYS} days",
    }


def _with_menus(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**line, "menu": _line_menu(line)} for line in lines]


def _count_by_class(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    counts: dict[str, int] = defaultdict(int)
    for line in lines:
        counts[line["category_label"]] += 1
    return [{"label": label, "count": n} for label, n in counts.items()]


def urgent_alerts_reply(lines: list[dict[str, Any]]) -> Reply:
    """The one message of an hour that interrupts a CSM: every urgent alert since the last one."""
    shown = _with_menus(lines[:URGENT_LIMIT])
    context = {
        "alerts": shown,
        "total": len(lines),
        "more": max(0, len(lines) - len(shown)),
        "counts": _count_by_class(lines),
    }
    if len(lines) == 1:
        a = lines[0]
        text = f"Urgent: {a['account']['name']}: {a['title']}"
    else:
        names = ", ".join(x["account"]["name"] for x in lines[:3])
        rest = f" and {len(lines) - 3} more" if len(lines) > 3 else ""
        text = f"{len(lines)} urgent alerts: {names}{rest}"
    return Reply(template="urgent_alerts", context=context, text=text, visibility="channel")


def risk_summary_reply(
    lines: list[dict[str, Any]], *, at: datetime, unowned: bool = False
) -> Reply:
    """The risk channel's one post for a scheduler run: what it raised, worst first (``unowned``:
    the same for whoever picks up accounts nobody owns, about just those)."""
    shown = _with_menus(lines[:SUMMARY_LIMIT])
    counts = _count_by_class(lines)
    context = {
        "at": at.isoformat(),
        "alerts": shown,
        "total": len(lines),
        "more": max(0, len(lines) - len(shown)),
        "counts": counts,
        "unowned": unowned,
    }
    breakdown = ", ".join(f"{c['count']} {c['label'].lower()}" for c in counts)
    noun = "alert" if len(lines) == 1 else "alerts"
    title = "Accounts without an owner" if unowned else "Risk summary"
    text = f"{title}: {len(lines)} new {noun} ({breakdown})"
    return Reply(template="risk_summary", context=context, text=text, visibility="channel")


def alert_line_action(
    session: Session, *, ctx: ChatContext, value: str, now: datetime | None = None
) -> Reply:
    """A choice in an alert line's menu ("ack:12", "snooze:12"): the change, told privately.

    The same permissions, audit and quieting as the alert card's buttons.
    """
    verb, _, raw = value.partition(":")
    if verb not in ("ack", "snooze") or not raw.isdigit():
        from handlers.errors import ValidationFailed

        raise ValidationFailed({"alert": "That alert menu choice is not one I know."})
    alert_id = int(raw)
    if verb == "ack":
        card = acknowledge_alert(session, ctx=ctx, alert_id=alert_id, now=now)
    else:
        card = snooze_alert(session, ctx=ctx, alert_id=alert_id, now=now)
    account = card.context["account"]["name"]
    title = card.context["alert"]["title"]
    text = f"{card.context['note']}: {account}: {title}."
    return Reply(template="notice", context={"text": text}, text=text)
