"""Digests: the daily one per CSM (what needs them today) and the weekly one per manager (the team)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import Session, col, select

from domain import metrics
from domain.numbers import round_half_away, shown_score
from handlers import access
from handlers.alerts import alert_lines
from handlers.context import ChatContext
from handlers.errors import NotFound
from handlers.reply import Reply
from handlers.retention import arr_metric_inputs
from storage.models import CSM, QBR, Account, Escalation, HealthSnapshot, Milestone, Renewal
from storage.scheduler_models import Alert

# A score move this big since yesterday is worth a line even without a band change.
CHANGE_POINTS = 5.0
# When a renewal has no likelihood yet, the band stands in for it (forecast GRR/NRR).
LIKELIHOOD_BY_BAND = {"green": 0.95, "amber": 0.75, "red": 0.45, "insufficient": 0.8}
LIST_LIMIT = 10
# The digest's action lists, worst first; each line is one Block Kit block with its button, so
# they share a budget that keeps a full digest within Slack's 50 blocks and ~13k characters.
LINE_BUDGET = 17
GROUP_CAPS = {
    "urgent": 5,
    "alerts": 5,
    "renewals": 3,
    "qbrs": 3,
    "overdue": 3,
    "escalations": 2,
}
DEFAULT_RENEWAL_OFFSETS = (120, 90, 60, 30, 7)
DEFAULT_QBR_OFFSETS = (14, 3)
BAND_RANK = {"red": 0, "amber": 1, "insufficient": 2, "green": 3}


@dataclass(frozen=True)
class Point:
    """The part of a snapshot a digest needs (the JSON columns are left in the database)."""

    day: date
    score: float | None
    band: str


def _snapshots_by_account(
    session: Session, account_ids: list[int], first: date, last: date
) -> dict[int, dict[date, Point]]:
    out: dict[int, dict[date, Point]] = defaultdict(dict)
    if not account_ids:
        return out
    for start in range(0, len(account_ids), 900):
        chunk = account_ids[start : start + 900]
        for aid, day, score, band in session.execute(
            select(
                HealthSnapshot.account_id,
                HealthSnapshot.day,
                HealthSnapshot.score,
                HealthSnapshot.band,
            ).where(
                col(HealthSnapshot.account_id).in_(chunk),
                col(HealthSnapshot.day) >= first,
                col(HealthSnapshot.day) <= last,
            )
        ).all():
            out[aid][day] = Point(day, score, band)
    return out


def _latest_and_before(
    days: dict[date, Point], day: date, back: int = 1
) -> tuple[Point | None, Point | None]:
    """The newest snapshot on or before ``day`` and the newest at least ``back`` days before it."""
    eligible = sorted(d for d in days if d <= day)
    if not eligible:
        return None, None
    latest = days[eligible[-1]]
    cutoff = latest.day - timedelta(days=back)
    earlier = [d for d in eligible if d <= cutoff]
    return latest, days[earlier[-1]] if earlier else None


def _score(s: Point | None) -> float | None:
    return None if s is None else shown_score(s.score)


def daily_digest(
    session: Session,
    *,
    ctx: ChatContext,
    csm_id: int | None = None,
    since: date | None = None,
    alert_ids: Sequence[int] = (),
    renewal_offsets: Sequence[int] = DEFAULT_RENEWAL_OFFSETS,
    qbr_offsets: Sequence[int] = DEFAULT_QBR_OFFSETS,
    qbr_packs: int = 0,
) -> Reply:
    """One CSM's morning: what needs them (urgent alerts that waited, new alerts, renewals and QBRs
    reaching a reminder, overdue milestones, open escalations), then their book (red/amber counts,
    what changed since yesterday, renewals in 30/90 days). Default: the asker's.

    Args:
        since: the first day this digest covers (the day after the previous one; default today):
            renewals and QBRs whose reminder day falls in [since, today] are listed.
        alert_ids: the alerts this digest carries (the scheduler hands each alert to one digest).
        renewal_offsets / qbr_offsets: days before a renewal / QBR that a reminder is due.
        qbr_packs: at most this many QBRs reaching their first notice (the largest offset) get
            their draft deck attached, nearest first; the others have it behind their Prep button.
    """
    access.require(session, ctx, access.Action.READ_PORTFOLIO)
    who = csm_id if csm_id is not None else ctx.actor.csm_id
    csm = session.get(CSM, who) if who is not None else None
    if csm is None:
        raise NotFound("I don't know whose digest to make: that CSM is not in CSM Assistant.")
    today = ctx.today
    accounts = session.exec(
        select(Account)
        .where(Account.owner_id == csm.id, col(Account.churned_on).is_(None))
        .order_by(col(Account.name))
    ).all()
    ids = [a.id or 0 for a in accounts]
    by_id = {a.id: a for a in accounts}
    snaps = _snapshots_by_account(session, ids, today - timedelta(days=8), today)

    counts = {"red": 0, "amber": 0, "green": 0, "insufficient": 0}
    changes: list[dict[str, Any]] = []
    attention: list[dict[str, Any]] = []
    for a in accounts:
        latest, before = _latest_and_before(snaps.get(a.id or 0, {}), today)
        band = latest.band if latest else "insufficient"
        counts[band] = counts.get(band, 0) + 1
        if band in ("red", "amber"):
            attention.append({"name": a.name, "band": band, "score": _score(latest), "arr": a.arr})
        if latest is None or before is None:
            continue
        delta = (
            None
            if latest.score is None or before.score is None
            else round_half_away(latest.score - before.score)
        )
        if latest.band != before.band or (delta is not None and abs(delta) >= CHANGE_POINTS):
            changes.append(
                {
                    "name": a.name,
                    "from_band": before.band,
                    "to_band": latest.band,
                    "score": _score(latest),
                    "delta": delta,
                }
            )
    attention.sort(key=lambda r: (r["band"] != "red", r["score"] if r["score"] is not None else 0))
    changes.sort(key=lambda r: (r["from_band"] == r["to_band"], r["delta"] or 0))

    renewals = (
        session.exec(
            select(Renewal)
            .where(
                col(Renewal.account_id).in_(ids),
                Renewal.status == "open",
                col(Renewal.renewal_date) >= today,
                col(Renewal.renewal_date) <= today + timedelta(days=90),
            )
            .order_by(col(Renewal.renewal_date))
        ).all()
        if ids
        else []
    )
    renewal_rows = [
        {
            "name": by_id[r.account_id].name,
            "date": r.renewal_date.isoformat(),
            "days_left": (r.renewal_date - today).days,
            "arr": r.arr,
        }
        for r in renewals
    ]
    in_30 = [r for r in renewal_rows if r["days_left"] <= 30]

    overdue = (
        session.exec(
            select(Milestone)
            .where(
                col(Milestone.account_id).in_(ids),
                col(Milestone.due_date) < today,
                Milestone.status != "done",
            )
            .order_by(col(Milestone.due_date))
        ).all()
        if ids
        else []
    )
    overdue_rows = [
        {
            "account": by_id[m.account_id].name,
            "account_id": m.account_id,
            "title": m.title,
            "due_date": m.due_date.isoformat() if m.due_date else None,
            "days_late": (today - m.due_date).days if m.due_date else None,
        }
        for m in overdue
    ]
    escalations = (
        session.exec(
            select(Escalation)
            .where(col(Escalation.account_id).in_(ids), Escalation.status != "resolved")
            .order_by(col(Escalation.opened_at))
        ).all()
        if ids
        else []
    )
    escalation_rows = [
        {
            "account": by_id[e.account_id].name,
            "account_id": e.account_id,
            "title": e.title,
            "severity": e.severity,
            "status": e.status,
        }
        for e in escalations
    ]
    start = min(since or today, today)
    groups = _digest_groups(
        session,
        csm=csm,
        today=today,
        since=start,
        by_id=by_id,
        alert_ids=alert_ids,
        renewal_offsets=renewal_offsets,
        qbr_offsets=qbr_offsets,
        qbr_packs=qbr_packs,
        overdue=overdue_rows,
        escalations=escalation_rows,
        bands={a.id or 0: _band_of(snaps.get(a.id or 0, {}), today) for a in accounts},
    )
    context = {
        "csm": {"id": csm.id, "name": csm.name, "timezone": csm.timezone},
        "since": start.isoformat(),
        "groups": groups,
        "day": today.isoformat(),
        "weekday": today.strftime("%A"),
        "total_accounts": len(accounts),
        "counts": counts,
        "attention": attention[:LIST_LIMIT],
        "attention_more": max(0, len(attention) - LIST_LIMIT),
        "changes": changes[:LIST_LIMIT],
        "changes_more": max(0, len(changes) - LIST_LIMIT),
        "renewals_30": in_30[:LIST_LIMIT],
        "renewals_30_more": max(0, len(in_30) - LIST_LIMIT),
        "renewals_30_arr": sum(r["arr"] for r in in_30),
        "renewals_90_count": len(renewal_rows),
        "renewals_90_arr": sum(r["arr"] for r in renewal_rows),
        "overdue": overdue_rows[:LIST_LIMIT],
        "overdue_total": len(overdue_rows),
        "escalations": escalation_rows[:LIST_LIMIT],
        "escalations_total": len(escalation_rows),
    }
    first = csm.name.split()[0]
    needs = _needs_you(groups)
    text = (
        f"Good morning {first}: {needs}{counts['red']} red, {counts['amber']} amber of "
        f"{_plural(len(accounts), 'account')}; {len(changes)} changed since yesterday; "
        f"{_plural(len(in_30), 'renewal')} in 30 days ({len(renewal_rows)} in 90); "
        f"{_plural(len(overdue_rows), 'overdue milestone')}; "
        f"{_plural(len(escalation_rows), 'open escalation')}."
    )
    return _with_qbr_packs(Reply(template="daily_digest", context=context, text=text), groups)


def _with_qbr_packs(reply: Reply, groups: list[dict[str, Any]]) -> Reply:
    """The draft decks of the QBRs marked in the digest follow it as files (as the QBR notice of
    their own did), a few at most: the digest stays one message, not a pile of files."""
    from handlers.qbr_pack import with_pack

    today = date.fromisoformat(reply.context["day"])
    for g in groups:
        for pack in g.get("packs", []):
            prep = Reply(
                template="qbr_prep",
                context={"account": {"id": pack["account_id"], "name": pack["account"]}},
                text="",
            )
            packed = with_pack(prep, variant="executive", today=today)
            reply = replace(reply, attachments=(*reply.attachments, *packed.attachments))
    return reply


def _needs_you(groups: list[dict[str, Any]]) -> str:
    """The digest's first words in a notification: what asks for action today."""
    parts = [
        f"{g['total']} {g['noun'] if g['total'] == 1 else g['nouns']}"
        for g in groups
        if g["key"] in ("urgent", "alerts", "renewals", "qbrs") and g["total"]
    ]
    return ("; ".join(parts) + "; ") if parts else ""


def _band_of(days: dict[date, Point], today: date) -> tuple[str, int | None]:
    latest, _ = _latest_and_before(days, today)
    return (latest.band if latest else "insufficient", _score(latest))


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _allocate(sizes: dict[str, int], budget: int = LINE_BUDGET) -> dict[str, int]:
    """Lines shown per group: one for every group first (none vanishes), then each up to its cap,
    worst group first, then whatever budget is left, in the same order."""
    shown = {k: 0 for k in sizes}
    left = budget
    for cap in (lambda _k: 1, lambda k: GROUP_CAPS.get(k, 3), lambda _k: budget):
        for key, size in sizes.items():
            extra = max(0, min(size, cap(key)) - shown[key])
            extra = min(extra, left)
            shown[key], left = shown[key] + extra, left - extra
    return shown


def _group(
    key: str, title: str, noun: str, lines: list[dict[str, Any]], more_ask: str | None
) -> dict[str, Any]:
    """One list of the digest; ``more_ask`` is what to ask to see all of it (None: no such list)."""
    return {
        "key": key,
        "title": title,
        "noun": noun,
        "nouns": noun + "s",
        "lines": lines,
        "total": len(lines),
        "more": 0,
        "more_ask": more_ask,
    }


def _digest_groups(
    session: Session,
    *,
    csm: CSM,
    today: date,
    since: date,
    by_id: dict[int | None, Account],
    alert_ids: Sequence[int],
    renewal_offsets: Sequence[int],
    qbr_offsets: Sequence[int],
    qbr_packs: int,
    overdue: list[dict[str, Any]],
    escalations: list[dict[str, Any]],
    bands: dict[int, tuple[str, int | None]],
) -> list[dict[str, Any]]:
    """The digest's action lists, worst first, each line with what acts on it, cut to budget."""
    alerts = (
        session.exec(select(Alert).where(col(Alert.id).in_(sorted(set(alert_ids))))).all()
        if alert_ids
        else []
    )
    lines = alert_lines(session, alerts, today)
    for line in lines:
        line["menu"] = {
            "acknowledge": f"ack:{line['alert_id']}",
            "snooze": f"snooze:{line['alert_id']}",
            "open": {"k": "health", "a": line["account"]["id"]},
        }
    urgent = [x for x in lines if x["urgent"]]
    # A milestone that became overdue is a line of the overdue list (marked new), not an alert.
    news = [x for x in lines if not x["urgent"] and x["category"] != "milestone_overdue"]
    ids = [i for i in by_id if i is not None]
    renewals = _renewals_reached(session, ids, by_id, today, since, renewal_offsets, bands)
    qbrs = _qbrs_reached(session, ids, by_id, today, since, qbr_offsets, csm.timezone)
    # The first notice of a QBR (its largest offset) brings the draft deck, nearest first.
    packs = [x for x in qbrs if qbr_offsets and x["offset"] == max(qbr_offsets)][:qbr_packs]
    for x in packs:
        x["pack"] = True
    overdue_lines = [
        {
            **m,
            "new": m["due_date"] is not None
            and date.fromisoformat(m["due_date"]) >= since - timedelta(days=1),
            "open": {"k": "overdue", "a": m["account_id"]},
            "ask": f"overdue milestones for {m['account']}",
        }
        for m in sorted(overdue, key=lambda m: -(m["days_late"] or 0))
    ]
    escalation_lines = [
        {
            **e,
            "open": {"k": "health", "a": e["account_id"]},
            "ask": f"health {e['account']}",
        }
        for e in sorted(escalations, key=lambda e: (e["severity"], e["status"] != "open"))
    ]
    qbr_group = _group("qbrs", "QBRs to prepare", "QBR to prepare", qbrs, None)
    qbr_group["packs"] = [{"account_id": x["account_id"], "account": x["account"]} for x in packs]
    groups = [
        _group("urgent", "Urgent, held for your working hours", "urgent alert", urgent, "risks"),
        _group("alerts", "New alerts", "new alert", news, "risks"),
        _group("renewals", "Renewal reminders", "renewal reminder", renewals, "renewals"),
        qbr_group,
        _group("overdue", "Overdue milestones", "overdue milestone", overdue_lines, "overdue"),
        _group(
            "escalations",
            "Open escalations",
            "open escalation",
            escalation_lines,
            "open escalations",
        ),
    ]
    shown = _allocate({g["key"]: g["total"] for g in groups})
    for g in groups:
        g["lines"] = g["lines"][: shown[g["key"]]]
        g["more"] = g["total"] - len(g["lines"])
    return [g for g in groups if g["total"]]


def _renewals_reached(
    session: Session,
    ids: list[int],
    by_id: dict[int | None, Account],
    today: date,
    since: date,
    offsets: Sequence[int],
    bands: dict[int, tuple[str, int | None]],
) -> list[dict[str, Any]]:
    """Open renewals whose reminder day (renewal date - offset) fell in [since, today]."""
    if not ids or not offsets:
        return []
    rows = session.exec(
        select(Renewal).where(
            col(Renewal.account_id).in_(ids),
            Renewal.status == "open",
            col(Renewal.renewal_date) >= today,
            col(Renewal.renewal_date) <= today + timedelta(days=max(offsets)),
        )
    ).all()
    out = []
    for r in rows:
        reached = [o for o in offsets if since <= r.renewal_date - timedelta(days=o) <= today]
        if not reached:
            continue
        name = by_id[r.account_id].name
        band, score = bands.get(r.account_id, ("insufficient", None))
        out.append(
            {
                "account": name,
                "account_id": r.account_id,
                "date": r.renewal_date.isoformat(),
                "days_left": (r.renewal_date - today).days,
                "offset": min(reached),
                "arr": r.arr,
                "likelihood_pct": None if r.likelihood is None else round(r.likelihood * 100),
                "band": band,
                "score": score,
                "open": {"k": "renewal", "a": r.account_id},
                "ask": f"renewal {name}",
            }
        )
    # Nearest first; at the same distance the riskier and the bigger first.
    out.sort(key=lambda x: (x["days_left"], BAND_RANK.get(x["band"], 2), -x["arr"]))
    return out


def _qbrs_reached(
    session: Session,
    ids: list[int],
    by_id: dict[int | None, Account],
    today: date,
    since: date,
    offsets: Sequence[int],
    timezone: str | None,
) -> list[dict[str, Any]]:
    """Scheduled QBRs whose prep day (meeting day in the CSM's zone - offset) fell in [since, today]."""
    if not ids or not offsets:
        return []
    zone = _zone(timezone)
    first = _midnight(today - timedelta(days=1))
    last = _midnight(today + timedelta(days=max(offsets) + 2))
    rows = session.exec(
        select(QBR).where(
            col(QBR.account_id).in_(ids),
            QBR.status == "scheduled",
            col(QBR.scheduled_for) >= first,
            col(QBR.scheduled_for) < last,
        )
    ).all()
    out = []
    for q in rows:
        when = q.scheduled_for if q.scheduled_for.tzinfo else q.scheduled_for.replace(tzinfo=UTC)
        meeting = when.astimezone(zone).date()
        if meeting < today:
            continue
        reached = [o for o in offsets if since <= meeting - timedelta(days=o) <= today]
        if not reached:
            continue
        name = by_id[q.account_id].name
        out.append(
            {
                "account": name,
                "account_id": q.account_id,
                "date": meeting.isoformat(),
                "weekday": f"{meeting:%a} {meeting.day} {meeting:%b}",
                "days_left": (meeting - today).days,
                "offset": max(reached),
                "pack": False,
                "open": {"k": "qbr", "a": q.account_id},
                "ask": f"qbr prep {name}",
            }
        )
    out.sort(key=lambda x: (x["days_left"], x["account"]))
    return out


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def quarter_bounds(day: date) -> tuple[date, date, str]:
    q = (day.month - 1) // 3
    start = date(day.year, q * 3 + 1, 1)
    end = date(day.year + 1, 1, 1) if q == 3 else date(day.year, q * 3 + 4, 1)
    return start, end - timedelta(days=1), f"Q{q + 1} {day.year}"


def team_of(session: Session, manager: CSM) -> list[CSM]:
    """The manager's reports; an admin (or a manager without reports) sees every CSM."""
    reports = session.exec(
        select(CSM).where(CSM.manager_id == manager.id).order_by(col(CSM.name))
    ).all()
    if reports:
        return list(reports)
    if manager.role in ("admin", "manager"):
        return list(session.exec(select(CSM).where(CSM.role == "csm").order_by(col(CSM.name))))
    return []


def manager_digest(session: Session, *, ctx: ChatContext, manager_id: int | None = None) -> Reply:
    """ARR at risk, the quarter's forecast GRR and NRR, and who moved, for one manager's team."""
    access.require(session, ctx, access.Action.READ_PORTFOLIO)
    who = manager_id if manager_id is not None else ctx.actor.csm_id
    manager = session.get(CSM, who) if who is not None else None
    if manager is None:
        raise NotFound("That manager is not in CSM Assistant.")
    today = ctx.today
    team = team_of(session, manager)
    team_ids = [c.id for c in team]
    accounts = (
        session.exec(select(Account).where(col(Account.owner_id).in_(team_ids))).all()
        if team_ids
        else []
    )
    ids = [a.id or 0 for a in accounts]
    snaps = _snapshots_by_account(session, ids, today - timedelta(days=14), today)
    q_start, q_end, q_label = quarter_bounds(today)

    band_now: dict[int, str] = {}
    per_csm: dict[int, dict[str, Any]] = {
        c.id or 0: {"name": c.name, "accounts": 0, "red": 0, "amber": 0, "arr_at_risk": 0.0}
        for c in team
    }
    movements: list[dict[str, Any]] = []
    arr_at_risk = 0.0
    live = [a for a in accounts if a.churned_on is None or a.churned_on >= q_start]
    current = [a for a in live if a.churned_on is None]
    for a in live:
        if a.churned_on is not None:
            continue
        latest, week_ago = _latest_and_before(snaps.get(a.id or 0, {}), today, back=7)
        band = latest.band if latest else "insufficient"
        band_now[a.id or 0] = band
        row = per_csm.setdefault(
            a.owner_id or 0,
            {"name": "?", "accounts": 0, "red": 0, "amber": 0, "arr_at_risk": 0.0},
        )
        row["accounts"] += 1
        if band in ("red", "amber"):
            row[band] += 1
            row["arr_at_risk"] += a.arr
            arr_at_risk += a.arr
        if latest and week_ago and latest.band != week_ago.band:
            worse = _rank(latest.band) > _rank(week_ago.band)
            movements.append(
                {
                    "name": a.name,
                    "owner": per_csm.get(a.owner_id or 0, {}).get("name"),
                    "from_band": week_ago.band,
                    "to_band": latest.band,
                    "direction": "worse" if worse else "better",
                    "arr": a.arr,
                }
            )
    movements.sort(key=lambda m: (m["direction"] != "worse", -m["arr"]))

    # Forecast retention for the quarter, from ARR history: the base is each account's ARR when
    # the quarter began; what changed since (renewals up or down, churn) counts as it happened;
    # open renewals still due this quarter count their expected loss, ARR now x (1 - likelihood),
    # the band standing in for an unknown likelihood.
    realized = arr_metric_inputs(session, ids, q_start, today)
    in_base = {m.account_id for m in realized.accounts if m.movement != "new"}
    arr_now = {m.account_id: m.arr_end for m in realized.accounts}
    renewals = (
        session.exec(
            select(Renewal).where(
                col(Renewal.account_id).in_(ids),
                Renewal.status == "open",
                col(Renewal.renewal_date) >= today,
                col(Renewal.renewal_date) <= q_end,
            )
        ).all()
        if ids
        else []
    )
    expected = 0.0
    open_in_quarter = 0
    for r in renewals:
        if r.account_id not in in_base or arr_now.get(r.account_id, 0.0) <= 0:
            continue  # new business, or already churned: nothing of the base left to lose
        open_in_quarter += 1
        p = r.likelihood
        if p is None:
            p = LIKELIHOOD_BY_BAND.get(band_now.get(r.account_id, "insufficient"), 0.8)
        expected += arr_now[r.account_id] * (1 - p)
    churned = realized.churned + expected
    grr = metrics.grr(realized.starting_arr, realized.contraction, churned)
    nrr = metrics.nrr(realized.starting_arr, realized.expansion, realized.contraction, churned)
    context = {
        "manager": {"id": manager.id, "name": manager.name},
        "week": f"{today.isocalendar().year}-W{today.isocalendar().week:02d}",
        "day": today.isoformat(),
        "quarter": {
            "label": q_label,
            "start": q_start.isoformat(),
            "end": q_end.isoformat(),
            "start_arr": realized.starting_arr,
        },
        "team_size": len(team),
        # Today's book (what "By CSM" adds up to); the quarter's starting ARR, which still holds
        # the accounts churned since, is the GRR/NRR base.
        "accounts": len(current),
        "arr_total": sum(a.arr for a in current),
        "churned_this_quarter": len(live) - len(current),
        # So far this quarter, from ARR history (the forecast adds the open renewals' risk).
        "retention": {
            "customers_at_start": realized.customers_at_start,
            "customers_lost": realized.customers_lost,
            "expansion": realized.expansion,
            "contraction": realized.contraction,
            "churned": realized.churned,
        },
        "arr_at_risk": arr_at_risk,
        "forecast": {
            # GRR and NRR divide by the quarter's starting ARR: without any (a team whose
            # accounts all started this quarter) there is no rate, and the digest says why.
            "no_base": None if realized.starting_arr > 0 else f"no ARR at the start of {q_label}",
            "grr_pct": None if grr is None else round(grr * 100, 1),
            "nrr_pct": None if nrr is None else round(nrr * 100, 1),
            "open_renewals": open_in_quarter,
            "expected_churn": round(churned),
            "expected_open_renewal_loss": round(expected),
        },
        "csms": sorted(per_csm.values(), key=lambda r: -r["arr_at_risk"])[:LIST_LIMIT],
        "movements": movements[:LIST_LIMIT],
        "movements_more": max(0, len(movements) - LIST_LIMIT),
        "worse": sum(1 for m in movements if m["direction"] == "worse"),
        "better": sum(1 for m in movements if m["direction"] == "better"),
    }
    if grr is None or nrr is None:
        retention_text = f"{q_label} forecast GRR and NRR: none ({context['forecast']['no_base']})"
    else:
        retention_text = f"{q_label} forecast GRR {grr * 100:.1f}%, NRR {nrr * 100:.1f}%"
    text = (
        f"Weekly team digest for {manager.name}: ${arr_at_risk:,.0f} ARR at risk; "
        f"{retention_text}; {_plural(context['worse'], 'account')} worse, "
        f"{context['better']} better this week."
    )
    return Reply(template="manager_digest", context=context, text=text)


def _rank(band: str) -> int:
    return {"green": 0, "insufficient": 1, "amber": 2, "red": 3}.get(band, 1)
