"""run_once at chosen instants: each kind fires when it should, not when it shouldn't, and once."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from sched_factories import account, csm, escalation, milestone, qbr, renewal, snapshot, survey
from sqlmodel import select

from handlers.alerts import acknowledge_alert, snooze_alert
from handlers.context import Actor, ChatContext
from handlers.errors import PermissionDenied
from scheduler.config import DEFAULT_ROUTES, SchedulerConfig
from scheduler.models import Alert, Delivery
from scheduler.notifier import RecordingNotifier
from scheduler.runner import run_once
from storage.models import AuditLog

TODAY = date(2026, 11, 23)  # a Monday


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=UTC)


def run(
    container, when: datetime, config: SchedulerConfig, notifier: RecordingNotifier | None = None
):  # type: ignore[no-untyped-def]
    return run_once(
        container,
        when,
        config=config,
        notifiers={"console": notifier or RecordingNotifier()},
        recompute=False,
        sleep=lambda _s: None,
    )


def deliveries(container, kind: str | None = None) -> list[Delivery]:  # type: ignore[no-untyped-def]
    with container.session() as s:
        stmt = select(Delivery).order_by(Delivery.id)
        if kind:
            stmt = stmt.where(Delivery.kind == kind)
        return list(s.exec(stmt).all())


def test_daily_digest_goes_out_at_each_csms_local_time_once(small_container, config) -> None:  # type: ignore[no-untyped-def]
    with small_container.session() as s:
        berlin = csm(s, timezone="Europe/Berlin")
        new_york = csm(s, timezone="America/New_York", digest_time="08:00")
        tokyo = csm(s, timezone="Asia/Tokyo", digest_weekends=True)
        ids = {"berlin": berlin.id, "ny": new_york.id, "tokyo": tokyo.id}
    rec = RecordingNotifier()
    run(small_container, at(TODAY, 7, 29), config, rec)  # 08:29 in Berlin
    assert deliveries(small_container, "daily_digest") == []
    run(small_container, at(TODAY, 7, 30), config, rec)  # 08:30 in Berlin
    assert [d.target for d in deliveries(small_container, "daily_digest")] == [
        f"csm:{ids['berlin']}"
    ]
    run(small_container, at(TODAY, 7, 45), config, rec)  # repeated: nothing new
    run(small_container, at(TODAY, 13, 0), config, rec)  # 08:00 in New York (EST)
    assert [d.target for d in deliveries(small_container, "daily_digest")] == [
        f"csm:{ids['berlin']}",
        f"csm:{ids['ny']}",
    ]
    assert [d.period for d in deliveries(small_container, "daily_digest")] == ["2026-11-23"] * 2
    # 08:30 on Tuesday in Tokyo is 23:30 UTC on Monday.
    run(small_container, at(TODAY, 23, 30), config, rec)
    tokyo_rows = [
        d for d in deliveries(small_container, "daily_digest") if d.target == f"csm:{ids['tokyo']}"
    ]
    assert [d.period for d in tokyo_rows] == ["2026-11-24"]
    assert len(rec.sent) == 3 and rec.templates() == ["daily_digest"] * 3


def test_weekends_are_quiet_unless_the_csm_asked(small_container, config) -> None:  # type: ignore[no-untyped-def]
    saturday = TODAY + timedelta(days=5)
    with small_container.session() as s:
        weekday_only = csm(s)
        weekends = csm(s, digest_weekends=True)
        ids = (weekday_only.id, weekends.id)
    run(small_container, at(saturday, 9), config)
    assert [d.target for d in deliveries(small_container, "daily_digest")] == [f"csm:{ids[1]}"]


def test_renewal_reminders_fire_at_each_offset_once_and_catch_up_briefly(small_container) -> None:  # type: ignore[no-untyped-def]
    # Posted on their own too (opt-in; by default the digest carries them).
    config = SchedulerConfig(
        platforms=("console",),
        routes={**DEFAULT_ROUTES, "renewal_reminder": ("account_channel", "csm_dm")},
    )
    with small_container.session() as s:
        owner = csm(s)
        acme = account(s, owner, name="Acme")
        snapshot(s, acme, TODAY, 62, "amber", forecast=20)
        milestone(s, acme, TODAY - timedelta(days=5))
        in_30 = renewal(s, acme, TODAY + timedelta(days=30), likelihood=0.6).id
        in_29 = renewal(s, account(s, owner), TODAY + timedelta(days=29)).id  # missed yesterday
        renewal(s, account(s, owner), TODAY + timedelta(days=27))  # missed 3 days ago: too old
        renewal(s, account(s, owner), TODAY + timedelta(days=45))  # no offset today
        owner_id, acme_id = owner.id, acme.id
    run(small_container, at(TODAY, 8, 59), config)
    # Before 09:00 only yesterday's missed reminder goes out (catch-up), not today's.
    assert {d.subject for d in deliveries(small_container, "renewal_reminder")} == {
        f"renewal:{in_29}"
    }
    rec = RecordingNotifier()
    run(small_container, at(TODAY, 9, 0), config, rec)
    rows = deliveries(small_container, "renewal_reminder")
    assert {(d.subject, d.period) for d in rows} == {
        (f"renewal:{in_29}", "30d"),
        (f"renewal:{in_30}", "30d"),
    }
    acme_rows = [d for d in rows if d.subject == f"renewal:{in_30}"]
    assert sorted(d.target for d in acme_rows) == [f"account:{acme_id}", f"csm:{owner_id}"]
    reminder = rec.to(f"account:{acme_id}")[0]
    ctx = reminder.context
    assert ctx["renewal"]["days_left"] == 30 and ctx["renewal"]["arr"] == 100_000
    assert ctx["account"]["health"]["score"] == 62 and ctx["account"]["health"]["band"] == "amber"
    assert ctx["account"]["milestones"] == {
        "total": 1,
        "done": 0,
        "overdue": 1,
        "overdue_titles": ["Milestone due 2026-11-18"],
        "next": [],
    }
    # The next day brings nothing new: 29 days is not an offset and 30d was sent.
    run(small_container, at(TODAY + timedelta(days=1), 9, 0), config)
    assert len(deliveries(small_container, "renewal_reminder")) == 4
    # Seven days before, the 7-day reminder.
    run(small_container, at(TODAY + timedelta(days=23), 9, 0), config)
    periods = Counter(
        d.period
        for d in deliveries(small_container, "renewal_reminder")
        if d.subject == f"renewal:{in_30}"
    )
    assert periods == {"30d": 2, "7d": 2}


def test_qbr_prep_goes_out_fourteen_and_three_days_before(small_container) -> None:  # type: ignore[no-untyped-def]
    # Posted on its own too (opt-in; by default the digest lists it with a Prep button).
    config = SchedulerConfig(
        platforms=("console",), routes={**DEFAULT_ROUTES, "qbr_prep": ("csm_dm",)}
    )
    with small_container.session() as s:
        owner = csm(s, timezone="Europe/London")
        acct = account(s, owner, name="Globex")
        snapshot(s, acct, TODAY, 80, "green")
        in_14 = qbr(s, acct, at(TODAY + timedelta(days=14), 15)).id
        in_3 = qbr(s, acct, at(TODAY + timedelta(days=3), 15)).id
        qbr(s, acct, at(TODAY + timedelta(days=10), 15))
        owner_id = owner.id
    rec = RecordingNotifier()
    run(small_container, at(TODAY, 9), config, rec)
    rows = deliveries(small_container, "qbr_prep")
    assert sorted((d.subject, d.period, d.target) for d in rows) == sorted(
        [(f"qbr:{in_14}", "14d", f"csm:{owner_id}"), (f"qbr:{in_3}", "3d", f"csm:{owner_id}")]
    )
    prep = rec.to(f"csm:{owner_id}")[0].context
    assert {
        "agenda",
        "audiences",
        "leave_out",
        "kpis",
        "risks",
        "renewal",
        "leading",
        "lagging",
    } <= set(prep)
    run(small_container, at(TODAY, 10), config, rec)
    assert len(deliveries(small_container, "qbr_prep")) == 2
    assert rec.templates().count("qbr_prep") == 2


def test_a_band_transition_reaches_its_owner_once_and_the_risk_channel_once(
    small_container, config
) -> None:  # type: ignore[no-untyped-def]
    with small_container.session() as s:
        owner = csm(s)
        acct = account(s, owner, name="Initech", slack_channel_id=None)
        steady = account(s, owner, name="Steady")
        snapshot(s, acct, TODAY - timedelta(days=1), 80, "green")
        snapshot(s, acct, TODAY, 70, "amber")
        snapshot(s, steady, TODAY - timedelta(days=1), 60, "amber")
        snapshot(s, steady, TODAY, 60, "amber")
        acct_id, owner_id = acct.id, owner.id
    rec = RecordingNotifier()
    report = run(small_container, at(TODAY, 7), config, rec)  # 07:00 UTC, the owner's zone
    assert report.alerts_fired == 1
    # Amber is not urgent: no post to the owner now, none in the account channel, and one
    # summary line in the risk channel.
    assert rec.to(f"csm:{owner_id}") == []
    assert deliveries(small_container, "risk_alert") == []
    assert deliveries(small_container, "urgent_alerts") == []
    assert rec.to(f"account:{acct_id}") == []
    (summary,) = rec.to("risk")
    assert summary.template == "risk_summary" and summary.context["total"] == 1
    line = summary.context["alerts"][0]
    assert line["account"]["name"] == "Initech" and line["category"] == "amber"
    # Its owner reads it in their digest at 08:30, with the menu that acknowledges it.
    run(small_container, at(TODAY, 8, 30), config, rec)
    (digest,) = rec.to(f"csm:{owner_id}")
    (alerts,) = [g for g in digest.context["groups"] if g["key"] == "alerts"]
    assert [x["title"] for x in alerts["lines"]] == ["Health turned amber"]
    assert alerts["lines"][0]["menu"]["acknowledge"] == f"ack:{line['alert_id']}"
    # Recalculating all day long changes nothing.
    for hour in (10, 11, 15):
        run(small_container, at(TODAY, hour), config, rec)
    assert len(rec.to("risk")) == 1 and len(rec.to(f"csm:{owner_id}")) == 1
    # The next day it turns red: more severe (despite the band cooldown) and urgent: one message
    # to the owner at once (a Tuesday, 10:00 in their working hours), one more summary.
    with small_container.session() as s:
        from storage.models import Account

        snapshot(s, s.get(Account, acct_id), TODAY + timedelta(days=1), 45, "red")  # type: ignore[arg-type]
    report = run(small_container, at(TODAY + timedelta(days=1), 16), config, rec)
    assert report.alerts_fired == 1
    urgent = rec.to(f"csm:{owner_id}")[-1]
    assert urgent.template == "urgent_alerts"
    assert [x["title"] for x in urgent.context["alerts"]] == ["Health turned red"]
    assert [r.template for r in rec.to("risk")] == ["risk_summary", "risk_summary"]
    assert rec.to(f"account:{acct_id}") == []


def test_snooze_and_acknowledge_quiet_the_next_alerts(small_container, config) -> None:  # type: ignore[no-untyped-def]
    with small_container.session() as s:
        owner = csm(s, name="Olive Owner")
        other = csm(s, name="Otto Other")
        acct = account(s, owner)
        survey(s, acct, TODAY, 2)
        ctx_owner = ChatContext("slack", Actor(owner.id, owner.name, owner.email), TODAY)
        ctx_other = ChatContext("slack", Actor(other.id, other.name, other.email), TODAY)
        acct_id = acct.id
    run(small_container, at(TODAY, 9), config)
    with small_container.session() as s:
        alert = s.exec(select(Alert)).one()
        with pytest.raises(PermissionDenied):
            snooze_alert(s, ctx=ctx_other, alert_id=alert.id or 0)
    with small_container.session() as s:
        reply = snooze_alert(s, ctx=ctx_owner, alert_id=alert.id or 0, now=at(TODAY, 9, 5))
        assert (
            reply.context["alert"]["status"] == "snoozed"
            and "Snoozed for 7 days" in reply.context["note"]
        )
        assert (
            s.exec(select(AuditLog).where(AuditLog.action == "alert.snooze")).one().actor_id
            == ctx_owner.actor.csm_id
        )
    # Another detractor two days later: snoozed, so recorded but not posted.
    with small_container.session() as s:
        from storage.models import Account

        survey(s, s.get(Account, acct_id), TODAY + timedelta(days=2), 1)  # type: ignore[arg-type]
    rec = RecordingNotifier()
    report = run(small_container, at(TODAY + timedelta(days=2), 9), config, rec)
    assert report.alerts_suppressed == 1 and report.alerts_fired == 0
    assert "risk_alert" not in rec.templates()
    with small_container.session() as s:
        reasons = [a.suppressed_reason for a in s.exec(select(Alert).order_by(Alert.id)).all()]
        assert reasons == [None, "snoozed"]
        reply = acknowledge_alert(s, ctx=ctx_owner, alert_id=alert.id or 0)
        assert reply.context["alert"]["status"] == "acknowledged"


def test_overdue_milestones_escalation_sla_and_detractors_alert(small_container, config) -> None:  # type: ignore[no-untyped-def]
    with small_container.session() as s:
        owner = csm(s)
        acct = account(s, owner)
        milestone(s, acct, TODAY - timedelta(days=1))
        milestone(s, acct, TODAY)  # due today: not overdue yet
        survey(s, acct, TODAY, 9)  # a promoter
        escalation(
            s, acct, ack_due_at=at(TODAY, 8), resolve_due_at=at(TODAY + timedelta(days=2), 8)
        )
    run(small_container, at(TODAY, 9), config)
    with small_container.session() as s:
        kinds = sorted(a.kind for a in s.exec(select(Alert)).all())
    assert kinds == ["escalation_sla", "milestone_overdue"]


def test_manager_digest_is_weekly(small_container, config) -> None:  # type: ignore[no-untyped-def]
    with small_container.session() as s:
        boss = csm(s, role="manager", timezone="America/New_York")
        report_to = csm(s, manager_id=boss.id)
        acct = account(s, report_to)
        snapshot(s, acct, TODAY, 40, "red")
        renewal(s, acct, TODAY + timedelta(days=20), likelihood=0.5)
        boss_id = boss.id
    rec = RecordingNotifier()
    run(small_container, at(TODAY, 13, 29), config, rec)  # 08:29 in New York
    assert deliveries(small_container, "manager_digest") == []
    run(small_container, at(TODAY, 13, 30), config, rec)
    run(small_container, at(TODAY + timedelta(days=1), 13, 30), config, rec)
    (row,) = deliveries(small_container, "manager_digest")
    assert (row.target, row.period) == (f"csm:{boss_id}", "2026-W48")
    digest = next(x.reply for x in rec.sent if x.reply.template == "manager_digest").context
    assert digest["arr_at_risk"] == 100_000
    # Half of a $100k renewal expected to churn out of a $100k book: GRR and NRR 50 %.
    assert digest["forecast"]["grr_pct"] == 50.0 and digest["forecast"]["nrr_pct"] == 50.0
    run(small_container, at(TODAY + timedelta(days=7), 13, 30), config, rec)
    assert [d.period for d in deliveries(small_container, "manager_digest")] == [
        "2026-W48",
        "2026-W49",
    ]


def test_empty_digests_and_a_bare_qbr_render_on_every_platform(small_container) -> None:  # type: ignore[no-untyped-def]
    from bot.render import render_json, render_text
    from domain.health_model import load_health_models
    from handlers.digests import daily_digest, manager_digest
    from handlers.qbr import qbr_prep

    with small_container.session() as s:
        lonely = csm(s, role="manager")
        bare = account(s, lonely, name="Bare Co")
        ctx = ChatContext("scheduler", Actor(lonely.id, lonely.name, lonely.email), TODAY)
        replies = [
            daily_digest(s, ctx=ctx, csm_id=lonely.id),
            manager_digest(s, ctx=ctx, manager_id=lonely.id),
            qbr_prep(s, ctx=ctx, models=load_health_models(None), account_id=bare.id),
        ]
    for reply in replies:
        assert render_text(reply).strip()
        assert render_json("slack", reply.template, reply.context)["blocks"]
        assert render_json("teams", reply.template, reply.context)["version"] == "1.5"
    assert (
        replies[0].context["total_accounts"] == 1
        and replies[0].context["counts"]["insufficient"] == 1
    )
    assert replies[2].context["qbr"] is None and replies[2].context["renewal"] is None
