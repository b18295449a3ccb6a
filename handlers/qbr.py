"""QBR prep: value delivered, risks, renewal and expansion, and an agenda that says what each audience gets."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from domain.health_model import HealthModels
from domain.numbers import days_away, shown_score
from handlers.accounts import account_summary, resolve_account
from handlers.alerts import account_briefs
from handlers.context import ChatContext
from handlers.health import health_context
from handlers.reply import Reply
from storage.models import (
    QBR,
    Account,
    Escalation,
    HealthSnapshot,
    KpiReading,
    Milestone,
    Objective,
    Renewal,
    Stakeholder,
    SuccessPlan,
)

# The seeds' rule for a QBR: none of these belong in the room with the decision makers.
LEAVE_OUT = (
    "Troubleshooting open tickets (take them to a support call)",
    "Hard selling or pricing pushes",
    "Product training or feature demos",
    "Financial or contract negotiation",
    "Tables of raw data for executives (show the chart, keep the detail for the appendix)",
)
# Milestones done in this many days count as the value delivered since the last review. Not
# "this quarter": a calendar quarter (design.md) would drop September's wins from a November QBR.
DONE_WINDOW_DAYS = 90
# Weekly points of the health trend chart.
TREND_WEEKS = 12
# What we do about a weak indicator: the action a QBR proposes next to the risk.
INDICATOR_ACTIONS = {
    "product_usage": "Adoption push with the champion: a team-by-team usage review, then enable "
    "the unused seats",
    "feature_adoption": "Enablement on the key features of the success plan, run as separate "
    "sessions after the review",
    "support_tickets": "Ticket review with Support before the QBR; each open ticket gets an "
    "owner and a date",
    "exec_engagement": "Re-engage the executive sponsor: this review, then a monthly check-in",
    "nps": "Close the loop with detractors and show what changed since their feedback",
    "payment_days_overdue": "Finance follows up on the overdue invoice directly (kept out of "
    "the review)",
    "csm_sentiment": "Name the concern openly and agree what the sponsor will do about it",
}


def _kpis(session: Session, account_id: int) -> list[dict[str, Any]]:
    rows = session.exec(
        select(Objective)
        .join(SuccessPlan, col(Objective.plan_id) == col(SuccessPlan.id))
        .where(SuccessPlan.account_id == account_id, col(Objective.kpi).is_not(None))
        .order_by(col(Objective.position))
    ).all()
    measured = dict(
        session.exec(
            select(KpiReading.objective_id, func.max(KpiReading.day))
            .where(col(KpiReading.objective_id).in_([o.id for o in rows]))
            .group_by(col(KpiReading.objective_id))
        ).all()
    )
    kpis = []
    for o in rows:
        progress = None
        if (
            o.kpi_target is not None
            and o.kpi_baseline is not None
            and o.kpi_current is not None
            and o.kpi_target != o.kpi_baseline
        ):
            progress = round(
                100 * (o.kpi_current - o.kpi_baseline) / (o.kpi_target - o.kpi_baseline)
            )
        kpis.append(
            {
                "objective": o.title,
                "kpi": o.kpi,
                "baseline": o.kpi_baseline,
                "target": o.kpi_target,
                "current": o.kpi_current,
                # "52%" but "2.8 reviews": a word unit needs its space.
                "unit": ""
                if not o.kpi_unit
                else (o.kpi_unit if o.kpi_unit == "%" else f" {o.kpi_unit}"),
                "progress_pct": progress,
                "on_track": progress is not None and progress >= 70,
                # The day of the latest KPI reading: where "current" comes from.
                "measured_on": measured[o.id].isoformat() if o.id in measured else None,
            }
        )
    return kpis


def _trend_series(session: Session, account_id: int, today: date) -> list[dict[str, Any]]:
    days = [today - timedelta(weeks=w) for w in range(TREND_WEEKS - 1, -1, -1)]
    snaps = {
        s.day: s
        for s in session.exec(
            select(HealthSnapshot).where(
                HealthSnapshot.account_id == account_id, col(HealthSnapshot.day).in_(days)
            )
        ).all()
    }
    return [
        {
            "day": d.isoformat(),
            "score": None if d not in snaps else shown_score(snaps[d].score),
            "band": snaps[d].band if d in snaps else None,
        }
        for d in days
    ]


def _audiences(session: Session, qbr: QBR | None, account_id: int) -> list[dict[str, str]]:
    people: list[dict[str, str]] = []
    if qbr and qbr.attendees:
        people = [
            {"name": str(a.get("name", "")), "role": str(a.get("role", "user"))}
            for a in qbr.attendees
        ]
    if not people:
        people = [
            {"name": s.name, "role": s.role}
            for s in session.exec(
                select(Stakeholder).where(Stakeholder.account_id == account_id)
            ).all()
        ]
    return people


WIIFM = {
    "decision_maker": "Proof the investment pays: outcomes against the targets they bought for, "
    "in one chart, and what the next quarter will deliver.",
    "sponsor": "Confidence the programme is on track and where their support unblocks it.",
    "champion": "Credit for the wins, a plan for the blockers, and material to sell it inside.",
    "admin": "The adoption picture and the next configuration steps, without a training session.",
    "user": "What changes for their team next quarter and the help they will get.",
}


def qbr_prep(
    session: Session,
    *,
    ctx: ChatContext,
    models: HealthModels,
    query: str | None = None,
    account_id: int | None = None,
) -> Reply:
    """Everything a CSM needs to prepare the next QBR of an account (template ``qbr_prep``)."""
    resolved = resolve_account(
        session, ctx=ctx, intent="qbr_prep", query=query, account_id=account_id
    )
    if isinstance(resolved, Reply):
        return resolved
    account: Account = resolved
    aid = account.id or 0
    today = ctx.today
    start_of_today = datetime.combine(today, datetime.min.time(), tzinfo=UTC)
    qbr = session.exec(
        select(QBR)
        .where(QBR.account_id == aid, col(QBR.scheduled_for) >= start_of_today)
        .order_by(col(QBR.scheduled_for))
        .limit(1)
    ).first()
    summary = account_summary(session, account, today)
    health = health_context(session, account, models=models, today=today)
    brief = account_briefs(session, [aid], today)[aid]

    leading = [i for i in health["indicators"] if i["kind"] == "leading"]
    lagging = [i for i in health["indicators"] if i["kind"] == "lagging"]
    kpis = _kpis(session, aid)
    quarter_ago = today - timedelta(days=DONE_WINDOW_DAYS)
    done = session.exec(
        select(Milestone)
        .where(
            Milestone.account_id == aid,
            Milestone.status == "done",
            col(Milestone.completed_on) >= quarter_ago,
        )
        .order_by(col(Milestone.completed_on).desc())
    ).all()
    nxt = session.exec(
        select(Milestone)
        .where(Milestone.account_id == aid, Milestone.status != "done")
        .order_by(col(Milestone.due_date))
        .limit(5)
    ).all()
    escalations = session.exec(
        select(Escalation).where(Escalation.account_id == aid, Escalation.status != "resolved")
    ).all()
    renewal = session.exec(
        select(Renewal)
        .where(Renewal.account_id == aid, Renewal.status == "open")
        .order_by(col(Renewal.renewal_date))
        .limit(1)
    ).first()

    # Each risk with what we do about it and where it comes from (the pack's notes cite it).
    snapshot_source = f"health snapshot of {health['day']}"
    risk_items: list[dict[str, str]] = []
    if health["band"] in ("red", "amber"):
        risk_items.append(
            {
                "risk": f"Health is {health['band']} ({health['score']}/100)",
                "action": "Agree a recovery plan with the sponsor around the weakest indicators, "
                "reviewed every two weeks until the account is green",
                "source": snapshot_source,
            }
        )
    elif health["score"] is None:
        # No score is itself a risk: the review would have no evidence of value to show.
        risk_items.append(
            {
                "risk": "Not enough health data for a score "
                f"({round(health['coverage'] * 100)}% of the indicator weight has fresh readings)",
                "action": "Collect the missing readings before the review so value can be shown",
                "source": snapshot_source,
            }
        )
    red_in = health["forecast"]["red_in_days"]
    if red_in is not None and red_in > 0 and health["band"] != "red":
        # Only a coming red is a risk; "no clear trend" or "no red in sight" are not.
        risk_items.append(
            {
                "risk": f"Forecast: {health['forecast']['summary']}",
                "action": "Act on the leading indicators now, before the lagging ones move",
                "source": f"{snapshot_source} (forecast from the 28-day robust trend of the "
                "continuous leading indicators)",
            }
        )
    risk_items += [
        {
            "risk": f"Weak: {d['label']} (score {d['score']})",
            "action": INDICATOR_ACTIONS.get(d["key"], "Agree an owner and a date for a fix"),
            "source": snapshot_source,
        }
        for d in health["drivers"]
        if d["score"] < 60
    ]
    risk_items += [
        {
            "risk": f"Overdue milestone: {t}",
            "action": "Re-plan it with its owner and agree the new date in the room",
            "source": "success plan milestones",
        }
        for t in brief["milestones"]["overdue_titles"]
    ]
    risk_items += [
        {
            "risk": f"Open {e.severity} escalation: {e.title}",
            "action": "The escalation owner reports status and the resolution date; the detail "
            "stays out of the review",
            "source": f"escalation #{e.id} opened {e.opened_at.date().isoformat()}",
        }
        for e in escalations
    ]
    lapsed = renewal is not None and renewal.renewal_date < today
    if renewal is not None and lapsed:
        # The contract end passed and nobody closed the renewal: the deck must not count on it.
        # First in the list: the list is cut at eight, and this is the one that cannot wait.
        risk_items.insert(
            0,
            {
                "risk": f"Renewal date passed "
                f"{days_away((renewal.renewal_date - today).days)} and "
                "the renewal is still open on record",
                "action": "Confirm with the account team whether it renewed, then update the "
                "record (renewed or churned) before the review",
                "source": f"renewal record #{renewal.id}",
            },
        )
    risks = [item["risk"] for item in risk_items]

    audiences = _audiences(session, qbr, aid)
    roles = sorted({p["role"] for p in audiences} | {"decision_maker", "champion"})
    wins = [m.title for m in done[:3]]
    agenda = [
        {
            "item": "Goals we agreed and where we stand",
            "minutes": 10,
            "detail": "Objectives and KPIs against target, as a chart"
            if kpis
            else "Agree the goals and the KPIs that show them (no success plan yet)",
        },
        {
            "item": f"Value delivered in the last {DONE_WINDOW_DAYS} days",
            "minutes": 15,
            "detail": ", ".join(wins) if wins else "Milestones completed and their outcomes",
        },
        {
            "item": "Risks and the plan to address them",
            "minutes": 10,
            "detail": "; ".join(risks[:2]) if risks else "No material risks: confirm that view",
        },
        {
            "item": "Next quarter: milestones and owners",
            "minutes": 15,
            "detail": ", ".join(m.title for m in nxt[:3]) or "Agree the next milestones",
        },
    ]
    if health["expansion_signal"]:
        agenda.append(
            {
                "item": "Growth: where the team is outgrowing the plan",
                "minutes": 5,
                "detail": "Usage near the licence limit: agree who to talk to, no pitch in the room",
            }
        )
    if renewal is not None:
        # The deck always has its renewal slide (a separate point from growth): so does the agenda.
        agenda.append(
            {
                "item": "Renewal timeline and success criteria",
                "minutes": 5,
                "detail": (
                    f"Was due {renewal.renewal_date.isoformat()} and is still open on record: "
                    "confirm where it stands"
                    if lapsed
                    else f"Renews {renewal.renewal_date.isoformat()}: agree the criteria, "
                    "not the price"
                ),
            }
        )
    context = {
        "account": summary,
        "qbr": (
            {
                "id": qbr.id,
                "title": qbr.title,
                "scheduled_for": qbr.scheduled_for.isoformat(),
                "date": qbr.scheduled_for.date().isoformat(),
                "days_until": (qbr.scheduled_for.date() - today).days,
            }
            if qbr
            else None
        ),
        "health": {
            "day": health["day"],
            "score": health["score"],
            "band": health["band"],
            "trend": health["trend"],
            "forecast": health["forecast"],
            "series": _trend_series(session, aid, today),
        },
        "kpis": kpis,
        "leading": leading,
        "lagging": lagging,
        "milestones_done": [
            {
                "title": m.title,
                "completed_on": m.completed_on.isoformat() if m.completed_on else None,
            }
            for m in done[:8]
        ],
        "milestones_next": [
            {
                "title": m.title,
                "due_date": m.due_date.isoformat() if m.due_date else None,
                "status": m.status,
                "overdue": bool(m.due_date and m.due_date < today),
            }
            for m in nxt
        ],
        "risks": risks[:8],
        "risk_items": risk_items[:8],
        "renewal": (
            {
                "id": renewal.id,
                "date": renewal.renewal_date.isoformat(),
                "days_left": (renewal.renewal_date - today).days,
                "arr": renewal.arr,
                "likelihood_pct": (
                    None if renewal.likelihood is None else round(renewal.likelihood * 100)
                ),
            }
            if renewal
            else None
        ),
        "expansion_signal": health["expansion_signal"],
        "agenda": agenda,
        "audiences": [
            {
                "role": r,
                "label": r.replace("_", " ").title(),
                "people": [p["name"] for p in audiences if p["role"] == r],
                "wiifm": WIIFM.get(r, WIIFM["user"]),
            }
            for r in roles
        ],
        "leave_out": list(LEAVE_OUT),
    }
    when = f" on {context['qbr']['date']}" if context["qbr"] else ""
    score = "no score" if health["score"] is None else f"{health['score']}/100 {health['band']}"
    text = (
        f"QBR prep for {account.name}{when}: health {score}, {len(kpis)} KPIs, "
        f"{len(done)} milestones done in the last {DONE_WINDOW_DAYS} days, {len(risks)} risks."
    )
    return Reply(template="qbr_prep", context=context, text=text, intent="qbr_prep")


# QBRs "coming up" without a window: the next two weeks (and the answer says so).
UPCOMING_QBR_DAYS = 14


def upcoming_qbrs(session: Session, *, ctx: ChatContext, constraints: Any = None) -> Reply:
    """Scheduled QBRs in a window (default the next 14 days) across the asker's book."""
    from domain.nlu.timewindow import TimeWindow
    from handlers.portfolio import _refuse_in_external, account_facts, book_name, scope_for
    from handlers.understanding import (
        Constraints,
        plural,
        understanding,
        understood,
        window_phrase,
        with_notes,
    )

    c = constraints or Constraints()
    refused = _refuse_in_external(ctx)
    if refused:
        return refused
    scope = scope_for(session, ctx, c.owner)
    default = c.window is None
    if c.window is not None:
        window = c.window
    else:
        window = TimeWindow(
            ctx.today,
            ctx.today + timedelta(days=UPCOMING_QBR_DAYS),
            f"next {UPCOMING_QBR_DAYS} days",
        )
    since = datetime.combine(window.start, datetime.min.time(), tzinfo=UTC)
    until = datetime.combine(window.end, datetime.max.time(), tzinfo=UTC)
    query = (
        select(QBR)
        .join(Account, col(Account.id) == col(QBR.account_id))
        .where(QBR.scheduled_for >= since, QBR.scheduled_for <= until)
        .where(col(Account.churned_on).is_(None))
        .order_by(col(QBR.scheduled_for))
    )
    if scope.owner_ids is not None:
        query = query.where(col(Account.owner_id).in_(sorted(scope.owner_ids) or [-1]))
    qbrs = session.exec(query).all()
    rows = {
        r["id"]: r
        for r in account_facts(
            session, scope, ctx.today, account_ids=sorted({q.account_id for q in qbrs})
        )
    }
    items = []
    for qbr in qbrs:
        row = rows.get(qbr.account_id)
        if row is None:
            continue
        if c.band and row["band"] not in {"at_risk": ("red", "amber")}.get(c.band, (c.band,)):
            continue
        day = qbr.scheduled_for.date()
        items.append(
            {
                "id": qbr.id,
                "account_id": row["id"],
                "account_name": row["name"],
                "day": day.isoformat(),
                "days_left": (day - ctx.today).days,
                "status": qbr.status,
                "score": row["score"],
                "band": row["band"],
                "arr": row["arr"],
                "renewal_date": row["renewal_date"],
                "command": f"qbr {row['name'].lower()}",
            }
        )
    not_applied = c.not_applied({"window", "scope", "band"}, "this lists scheduled reviews")
    result = (
        plural(len(items), "QBR")
        + ": "
        + "; ".join(f"{i['account_name']} {i['day']}" for i in items[:5])
        if items
        else "none scheduled"
    )
    parts = [book_name(scope)] + ([c.phrases()["band"]] if c.band else [])
    line = understood("QBRs", window_phrase(window, default=default), parts, result)
    return Reply(
        template="qbr_list",
        context={
            "scope": book_name(scope),
            "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
            "qbrs": items[:200],
            "total": len(items),
            **understanding(line, not_applied),
        },
        text=with_notes(line, not_applied),
    )
