"""A digest, not a firehose: each alert reaches its owner once, urgent ones hourly in working hours,
the rest (with reminders, QBR prep and overdue milestones) in the daily digest; one risk summary."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sched_factories import account, csm, escalation, milestone, qbr, renewal, snapshot, survey
from sqlmodel import select

from bot.render import render_json, render_text
from scheduler.config import SchedulerConfig
from scheduler.models import Alert
from scheduler.notifier import RecordingNotifier, Sent
from scheduler.runner import run_once

TODAY = date(2026, 11, 23)  # a Monday
ROME = ZoneInfo("Europe/Rome")  # UTC+1 in November: the digest at 08:30 is 07:30 UTC


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=UTC)


def tick(container, when: datetime, rec: RecordingNotifier, config: SchedulerConfig | None = None):  # type: ignore[no-untyped-def]
    return run_once(
        container,
        when,
        config=config or SchedulerConfig(platforms=("console",)),
        notifiers={"console": rec},
        recompute=False,
        sleep=lambda _s: None,
    )


def ticks(
    container, start: datetime, end: datetime, step: timedelta, rec: RecordingNotifier
) -> None:  # type: ignore[no-untyped-def]
    when = start
    while when <= end:
        n = len(rec.sent)
        tick(container, when, rec)
        for sent in rec.sent[n:]:
            sent.at = when  # type: ignore[attr-defined]
        when += step


def dms(rec: RecordingNotifier, csm_id: int) -> list[Sent]:
    return [s for s in rec.sent if s.target == f"csm:{csm_id}"]


def group(digest_context: dict, key: str) -> dict:  # type: ignore[type-arg]
    (found,) = [g for g in digest_context["groups"] if g["key"] == key]
    return found


def test_reminders_qbr_prep_overdue_milestones_and_quiet_alerts_fold_into_one_digest(
    small_container,
) -> None:  # type: ignore[no-untyped-def]
    with small_container.session() as s:
        marco = csm(s, name="Marco Rossi", timezone="Europe/Rome")
        acme = account(s, marco, name="Acme", slack_channel_id="C0ACME")
        snapshot(s, acme, TODAY, 62, "amber")
        renewal(s, acme, TODAY + timedelta(days=30), likelihood=0.6)
        globex = account(s, marco, name="Globex")
        qbr(s, globex, at(TODAY + timedelta(days=14), 15))
        initech = account(s, marco, name="Initech")
        late = milestone(s, initech, TODAY - timedelta(days=1))
        hooli = account(s, marco, name="Hooli")
        survey(s, hooli, TODAY - timedelta(days=1), 3)  # a detractor; Hooli renews next year
        umbrella = account(s, marco, name="Umbrella")
        snapshot(s, umbrella, TODAY - timedelta(days=1), 80, "green")
        snapshot(s, umbrella, TODAY, 70, "amber")
        ids = {a.name: a.id for a in (acme, globex, initech, hooli, umbrella)}
        marco_id, late_title = marco.id or 0, late.title
    rec = RecordingNotifier()
    ticks(small_container, at(TODAY, 0), at(TODAY, 23), timedelta(hours=1), rec)

    # One message for Marco all day: the digest, at the first tick after 08:30 in Rome. Nothing in
    # account channels.
    (digest,) = dms(rec, marco_id)
    assert digest.reply.template == "daily_digest"
    assert digest.at.astimezone(ROME).strftime("%H:%M") == "09:00"  # type: ignore[attr-defined]
    assert [s for s in rec.sent if s.target.startswith("account:") or s.target == "C0ACME"] == []
    context = digest.reply.context
    # Worst first: alerts, then renewals, QBRs and overdue milestones, each line with its button.
    assert [g["key"] for g in context["groups"]] == ["alerts", "renewals", "qbrs", "overdue"]
    alerts = group(context, "alerts")["lines"]
    assert [(x["account"]["name"], x["category"]) for x in alerts] == [
        ("Umbrella", "amber"),
        ("Hooli", "detractor"),
    ]
    assert alerts[1]["menu"]["acknowledge"] == f"ack:{alerts[1]['alert_id']}"
    (renewal_line,) = group(context, "renewals")["lines"]
    assert (renewal_line["account"], renewal_line["days_left"], renewal_line["offset"]) == (
        "Acme",
        30,
        30,
    )
    assert renewal_line["open"] == {"k": "renewal", "a": ids["Acme"]}
    (qbr_line,) = group(context, "qbrs")["lines"]
    assert (qbr_line["account"], qbr_line["days_left"], qbr_line["open"]) == (
        "Globex",
        14,
        {"k": "qbr", "a": ids["Globex"]},
    )
    (overdue_line,) = group(context, "overdue")["lines"]
    assert overdue_line["title"] == late_title and overdue_line["new"] is True
    # Rendered, every line carries what acts on it: a menu or a button (Slack), a command (text).
    slack = render_json("slack", "daily_digest", context)
    values = [
        b["accessory"].get("value")
        for b in slack["blocks"]
        if b.get("accessory", {}).get("action_id") == "digest_open"
    ]
    assert [json.loads(v) for v in values] == [
        {"k": "renewal", "a": ids["Acme"]},
        {"k": "qbr", "a": ids["Globex"]},
        {"k": "overdue", "a": ids["Initech"]},
    ]
    menus = [
        b["accessory"] for b in slack["blocks"] if b.get("accessory", {}).get("type") == "overflow"
    ]
    assert [m["options"][0]["value"] for m in menus] == [f"ack:{x['alert_id']}" for x in alerts]
    text = render_text(digest.reply)
    assert "“renewal Acme”" in text and "“qbr prep Globex”" in text
    # And the team's risk channel had one summary of the two alerts, not two posts.
    assert [s.reply.template for s in rec.sent if s.target == "risk"] == ["risk_summary"]


def test_a_red_alert_reaches_its_owner_once_not_three_times(small_container) -> None:  # type: ignore[no-untyped-def]
    with small_container.session() as s:
        marco = csm(s, timezone="Europe/Rome")
        acme = account(s, marco, name="Acme")
        snapshot(s, acme, TODAY - timedelta(days=1), 60, "amber")
        snapshot(s, acme, TODAY, 44, "red")
        marco_id, acme_id = marco.id or 0, acme.id
    rec = RecordingNotifier()
    tick(small_container, at(TODAY, 14), rec)  # 15:00 in Rome, a Monday: working hours
    # Posts to different channels go out in parallel: their order is not part of the promise.
    assert sorted((s.target, s.reply.template) for s in rec.sent) == sorted(
        [("risk", "risk_summary"), (f"csm:{marco_id}", "urgent_alerts")]
    )
    (urgent,) = dms(rec, marco_id)
    assert [(x["account"]["name"], x["title"]) for x in urgent.reply.context["alerts"]] == [
        ("Acme", "Health turned red")
    ]
    assert rec.to(f"account:{acme_id}") == []
    # The digest that follows does not repeat it.
    tick(small_container, at(TODAY + timedelta(days=1), 7, 30), rec)
    digest = dms(rec, marco_id)[-1].reply
    assert digest.template == "daily_digest"
    assert {g["key"] for g in digest.context["groups"]}.isdisjoint({"urgent", "alerts"})


def test_urgent_alerts_come_at_most_once_an_hour_each_exactly_once(small_container) -> None:  # type: ignore[no-untyped-def]
    due = [(10, 5), (10, 20), (10, 40), (11, 10), (11, 30)]
    with small_container.session() as s:
        marco = csm(s, timezone="Europe/Rome")
        for n, (hh, mm) in enumerate(due):
            escalation(
                s,
                account(s, marco, name=f"Account {n}"),
                severity="sev1",
                opened_at=at(TODAY - timedelta(days=4), 9),
                ack_due_at=at(TODAY, hh, mm),
            )
        marco_id = marco.id or 0
    rec = RecordingNotifier()
    ticks(small_container, at(TODAY, 10), at(TODAY, 13), timedelta(minutes=5), rec)
    batches = [s for s in dms(rec, marco_id) if s.reply.template == "urgent_alerts"]
    times = [s.at for s in batches]  # type: ignore[attr-defined]
    # The first at once (found at the first tick after its SLA lapsed), the others in the next
    # free slot an hour later, together.
    assert times == [at(TODAY, 10, 10), at(TODAY, 11, 10), at(TODAY, 12, 10)]
    carried = [[x["account"]["name"] for x in s.reply.context["alerts"]] for s in batches]
    assert carried == [["Account 0"], ["Account 1", "Account 2"], ["Account 3", "Account 4"]]
    # Running the same instants again queues nothing new.
    before = len(rec.sent)
    ticks(small_container, at(TODAY, 10), at(TODAY, 13), timedelta(minutes=30), rec)
    assert len(rec.sent) == before


def test_nothing_posts_at_night_in_the_csms_zone(small_container) -> None:  # type: ignore[no-untyped-def]
    with small_container.session() as s:
        marco = csm(s, name="Marco Rossi", timezone="Europe/Rome")
        acme = account(s, marco, name="Acme")
        snapshot(s, acme, TODAY - timedelta(days=1), 60, "amber")
        snapshot(s, acme, TODAY, 44, "red")
        # A sev1 past its acknowledgement SLA at 02:00 in Rome.
        escalation(
            s,
            account(s, marco, name="Globex"),
            severity="sev1",
            opened_at=at(TODAY - timedelta(days=4), 9),
            ack_due_at=at(TODAY, 1),
        )
        marco_id = marco.id or 0
    rec = RecordingNotifier()
    # Sunday evening to Monday evening, hour by hour (the alerts are found at 00:00 UTC).
    ticks(
        small_container, at(TODAY, 0) - timedelta(hours=6), at(TODAY, 18), timedelta(hours=1), rec
    )
    mine = dms(rec, marco_id)
    local_hours = [s.at.astimezone(ROME).hour for s in mine]  # type: ignore[attr-defined]
    assert mine and all(8 <= h < 21 for h in local_hours), local_hours
    # The urgent alerts of the night waited, and led the morning digest (it came first).
    assert [s.reply.template for s in mine] == ["daily_digest"]
    urgent = group(mine[0].reply.context, "urgent")
    assert sorted(x["account"]["name"] for x in urgent["lines"]) == ["Acme", "Globex"]


def test_an_urgent_alert_of_the_night_waits_for_working_hours_when_the_digest_is_later(
    small_container,
) -> None:  # type: ignore[no-untyped-def]
    with small_container.session() as s:
        early = csm(s, timezone="Europe/Rome", work_start="07:30", digest_time="10:00")
        acme = account(s, early, name="Acme")
        snapshot(s, acme, TODAY - timedelta(days=1), 60, "amber")
        snapshot(s, acme, TODAY, 44, "red")
        early_id = early.id or 0
    rec = RecordingNotifier()
    ticks(small_container, at(TODAY, 0), at(TODAY, 12), timedelta(minutes=30), rec)
    mine = dms(rec, early_id)
    assert [(s.reply.template, s.at.astimezone(ROME).strftime("%H:%M")) for s in mine] == [  # type: ignore[attr-defined]
        ("urgent_alerts", "07:30"),
        ("daily_digest", "10:00"),
    ]
    assert {g["key"] for g in mine[1].reply.context["groups"]}.isdisjoint({"urgent", "alerts"})


def test_the_risk_channel_gets_one_summary_per_run(small_container) -> None:  # type: ignore[no-untyped-def]
    with small_container.session() as s:
        owner = csm(s, name="Olive Owner")
        for n in range(12):
            acct = account(s, owner, name=f"Account {n:02d}", arr=1_000 * (n + 1))
            snapshot(s, acct, TODAY - timedelta(days=1), 80, "green")
            snapshot(s, acct, TODAY, 40 if n % 3 == 0 else 70, "red" if n % 3 == 0 else "amber")
    rec = RecordingNotifier()
    report = tick(small_container, at(TODAY, 6), rec)
    assert report.alerts_fired == 12
    (summary,) = rec.to("risk")
    lines = summary.context["alerts"]
    assert summary.context["total"] == 12 and len(lines) == 12
    # Worst first: the reds (bigger ARR first), then the ambers; each line names the owner.
    assert [x["category"] for x in lines] == ["red"] * 4 + ["amber"] * 8
    assert [x["account"]["name"] for x in lines[:4]] == [
        "Account 09",
        "Account 06",
        "Account 03",
        "Account 00",
    ]
    assert {x["owner"] for x in lines} == {"Olive Owner"}
    assert summary.context["counts"] == [
        {"label": "Health turned red", "count": 4},
        {"label": "Health turned amber", "count": 8},
    ]


def test_each_person_chooses_what_interrupts_them_and_when(small_container) -> None:  # type: ignore[no-untyped-def]
    with small_container.session() as s:
        # Never interrupted for red; interrupted for amber; works nights in Rome.
        night = csm(
            s,
            timezone="Europe/Rome",
            interrupts=["amber", "sev1"],
            work_start="22:00",
            work_end="06:00",
            digest_time="23:30",
        )
        red = account(s, night, name="Red Co")
        snapshot(s, red, TODAY - timedelta(days=1), 60, "amber")
        snapshot(s, red, TODAY, 44, "red")
        amber = account(s, night, name="Amber Co")
        snapshot(s, amber, TODAY - timedelta(days=1), 80, "green")
        snapshot(s, amber, TODAY, 70, "amber")
        night_id = night.id or 0
    rec = RecordingNotifier()
    tick(small_container, at(TODAY, 10), rec)  # 11:00 in Rome: outside their hours
    assert dms(rec, night_id) == []
    tick(small_container, at(TODAY, 22), rec)  # 23:00 in Rome: their working hours
    (urgent,) = dms(rec, night_id)
    assert [x["account"]["name"] for x in urgent.reply.context["alerts"]] == ["Amber Co"]
    with small_container.session() as s:
        red_alert = s.exec(select(Alert).where(Alert.category == "red")).one()
        assert red_alert.delivery == "digest" and red_alert.delivered_in is None


def test_a_full_digest_stays_within_block_kit_and_adaptive_card_limits(small_container) -> None:  # type: ignore[no-untyped-def]
    from bot.slack.messages import message
    from handlers.alerts import alert_lines, risk_summary_reply, urgent_alerts_reply
    from handlers.context import Actor, ChatContext
    from handlers.digests import daily_digest
    from tests.slack.conftest import assert_valid_blocks

    long = "Ünïcødé & <!channel> " + "Very Long Company Name " * 3
    with small_container.session() as s:
        owner = csm(s, name="Olive Owner")
        alert_ids = []
        for n in range(60):
            acct = account(s, owner, name=f"{long}{n:02d}")
            snapshot(s, acct, TODAY, 40 + n % 40, "red" if n % 3 == 0 else "amber")
            renewal(s, acct, TODAY + timedelta(days=30))
            if n < 25:
                qbr(s, acct, at(TODAY + timedelta(days=14), 15))
            milestone(s, acct, TODAY - timedelta(days=n + 1))
            alert = Alert(
                account_id=acct.id or 0,
                kind="band_change",
                event_key=f"full:{n}",
                severity=3,
                title="Health turned red: " + "x" * 200,
                category="red" if n % 2 else "amber",
                delivery="urgent" if n % 4 == 0 else "digest",
            )
            s.add(alert)
            s.flush()
            alert_ids.append(alert.id or 0)
        ctx = ChatContext("scheduler", Actor(owner.id, owner.name, owner.email), TODAY)
        reply = daily_digest(
            s, ctx=ctx, csm_id=owner.id, since=TODAY - timedelta(days=2), alert_ids=alert_ids
        )
        lines = alert_lines(s, s.exec(select(Alert)).all(), TODAY)
    # The urgent batch and the risk summary of the same sixty alerts fit too.
    for other in (urgent_alerts_reply(lines), risk_summary_reply(lines, at=at(TODAY, 6))):
        blocks = render_json("slack", other.template, other.context)["blocks"]
        assert_valid_blocks(blocks)
        assert len(json.dumps(blocks, ensure_ascii=False)) < 12_000
        assert "<!channel>" not in json.dumps(blocks)
        card = render_json("teams", other.template, other.context)
        assert len(json.dumps(card).encode("utf-16-le")) < 80_000
        assert "and 50 more" in render_text(other) or "and 30 more" in render_text(other)
    totals = {g["key"]: (g["total"], len(g["lines"])) for g in reply.context["groups"]}
    # Worst first within one budget of lines; no group left without a line.
    assert totals == {
        "urgent": (15, 5),
        "alerts": (45, 5),
        "renewals": (60, 3),
        "qbrs": (25, 3),
        "overdue": (60, 1),
    }
    slack = render_json("slack", reply.template, reply.context)
    assert_valid_blocks(slack["blocks"])
    assert len(json.dumps(slack["blocks"], ensure_ascii=False)) < 12_000
    assert message(reply)["blocks"] == slack["blocks"]  # the backstop cut nothing
    assert "<!channel>" not in json.dumps(slack)
    teams = render_json("teams", reply.template, reply.context)
    assert len(json.dumps(teams).encode("utf-16-le")) < 80_000
    text = render_text(reply)
    assert "… and 59 more → “overdue”" in text and "… and 57 more → “renewals”" in text
