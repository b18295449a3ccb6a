"""The demo portfolio through a day of runs: every kind once, nothing twice through crashes and 429s."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk.models.blocks import Block
from sqlmodel import select

from bot.render import render_json, render_text
from bot.slack.messages import message as slack_message
from bot.teams.cards import message_for as teams_message
from handlers.context import Actor, ChatContext
from handlers.qbr import qbr_prep
from handlers.reply import Reply
from scheduler.clock import SimulatedClock, system_clock
from scheduler.config import DEFAULT_ROUTES, SchedulerConfig
from scheduler.models import Alert, Delivery
from scheduler.notifier import DeliveryError, RecordingNotifier
from scheduler.runner import run_once
from storage.models import CSM, Account

MORNING = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
EVENING = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)
CONFIG = SchedulerConfig(platforms=("console",), admin_channel={"console": "admin"})
# Every kind also posted on its own (the opt-in routes): the most a day can post, for the tests of
# delivery mechanics and of every template.
FIREHOSE = SchedulerConfig(
    platforms=("console",),
    admin_channel={"console": "admin"},
    routes={
        **DEFAULT_ROUTES,
        "risk_alert": ("account_channel", "csm_dm", "risk_channel"),
        "renewal_reminder": ("account_channel", "csm_dm"),
        "qbr_prep": ("csm_dm",),
    },
)


class Crash(BaseException):
    """The process dying mid-dispatch."""


def go(container, when: datetime, rec: RecordingNotifier, config=FIREHOSE, **kw):  # type: ignore[no-untyped-def]
    kw.setdefault("sleep", lambda _s: None)
    return run_once(container, when, config=config, notifiers={"console": rec}, **kw)


def all_rows(container) -> list[Delivery]:  # type: ignore[no-untyped-def]
    with container.session() as s:
        return list(s.exec(select(Delivery).order_by(Delivery.id)).all())


def test_a_day_on_the_demo_posts_every_kind_once(demo_container) -> None:  # type: ignore[no-untyped-def]
    rec = RecordingNotifier()
    # The background scheduler ticks every minute; every two hours is enough to meet every
    # digest time (each has six hours of grace).
    for hour in range(0, 24, 2):
        go(demo_container, datetime(2026, 11, 23, hour, 0, tzinfo=UTC), rec, config=CONFIG)
    rows = all_rows(demo_container)
    kinds = Counter(r.kind for r in rows)
    # A digest, not a firehose: alerts, reminders and QBR prep ride in the digests; urgent
    # alerts come in batches, the risk channel gets one summary per run.
    assert (
        {"risk_summary", "daily_digest", "manager_digest"}
        <= set(kinds)
        <= {"risk_summary", "urgent_alerts", "daily_digest", "manager_digest"}
    )
    assert all(r.status == "sent" for r in rows)
    assert len(rec.sent) == len(rows)
    with demo_container.session() as s:
        csms = s.exec(select(CSM).where(CSM.role == "csm")).all()
        dana = s.exec(select(CSM).where(CSM.email == "dana@example.com")).one()
        acme = s.exec(select(Account).where(Account.name == "Acme Corp")).one()
        acme_alerts = s.exec(select(Alert).where(Alert.account_id == acme.id)).all()
        fired = s.exec(select(Alert).where(Alert.status != "suppressed")).all()
    # Every CSM has exactly one digest for the day (Monday, in every zone of the demo).
    digests = Counter((r.subject, r.period) for r in rows if r.kind == "daily_digest")
    assert set(digests.values()) == {1}
    assert {s for s, p in digests if p == "2026-11-23"} >= {f"csm:{c.id}" for c in csms}
    assert (f"csm:{dana.id}", "2026-11-23") in digests
    # Acme's open escalation is past its acknowledgement SLA: urgent, raised at 19:00 on Sunday in
    # New York, so it waited for Dana's Monday digest and leads it.
    assert "escalation_sla" in {a.kind for a in acme_alerts}
    (dana_digest,) = [s.reply for s in rec.sent if s.target == f"csm:{dana.id}"]
    first = dana_digest.context["groups"][0]
    assert first["key"] == "urgent"
    assert "Acme Corp" in {x["account"]["name"] for x in first["lines"]}
    # Every alert reached its owner once: in one urgent batch or one digest, never both.
    carried = Counter(
        alert_id
        for sent in rec.sent
        if sent.reply.template == "urgent_alerts"
        for alert_id in (x["alert_id"] for x in sent.reply.context["alerts"])
    )
    for sent in rec.sent:
        if sent.reply.template == "daily_digest":
            for group in sent.reply.context["groups"]:
                if group["key"] in ("urgent", "alerts"):
                    carried.update(x["alert_id"] for x in group["lines"])
    assert fired and all(a.delivered_in for a in fired if a.delivery in ("urgent", "digest"))
    assert set(carried.values()) == {1}
    # Running again changes nothing and posts nothing.
    before = len(rec.sent)
    report = go(demo_container, EVENING, rec, config=CONFIG)
    assert sum(report.enqueued.values()) == 0 and report.alerts_fired == 0
    assert len(all_rows(demo_container)) == len(rows) and len(rec.sent) == before


def test_a_run_interrupted_mid_dispatch_resumes_without_posting_twice(demo_container) -> None:  # type: ignore[no-untyped-def]
    rec = RecordingNotifier()
    with demo_container.session() as s:
        dana = s.exec(select(CSM).where(CSM.email == "dana@example.com")).one()
    rec.failures[f"csm:{dana.id}"] = [Crash()]

    # The outbox runs on the wall clock; "ten minutes later" lets the dead process's leases lapse.
    def at(when: datetime) -> dict[str, object]:
        later = SimulatedClock(system_clock() + (when - MORNING))
        return {"clock": later.now, "sleep": later.sleep}

    with pytest.raises(Crash):
        go(demo_container, MORNING, rec, **at(MORNING))
    assert 0 < len(rec.sent) < len(all_rows(demo_container))
    # Restarted ten minutes later (the dead process's leases have run out), and once more.
    go(demo_container, MORNING + timedelta(minutes=10), rec, **at(MORNING + timedelta(minutes=10)))
    go(demo_container, MORNING + timedelta(minutes=20), rec, **at(MORNING + timedelta(minutes=20)))
    rows = all_rows(demo_container)
    assert all(r.status == "sent" for r in rows)
    posted = Counter((s.target, s.reply.template, s.reply.text) for s in rec.sent)
    assert len(rec.sent) == len(rows) and set(posted.values()) == {1}


def test_rate_limits_and_a_dead_channel_end_delivered_or_reported(demo_container) -> None:  # type: ignore[no-untyped-def]
    rec = RecordingNotifier()
    with demo_container.session() as s:
        dana = s.exec(select(CSM).where(CSM.email == "dana@example.com")).one()
    rec.failures[f"csm:{dana.id}"] = [
        DeliveryError("ratelimited", retry_after=3),
        DeliveryError("http_503"),
    ]
    rec.failures["risk"] = [DeliveryError("channel_not_found", permanent=True)]
    report = go(demo_container, MORNING, rec)
    assert report.dispatch.rate_limited >= 1 and report.dispatch.failed == 1
    rows = all_rows(demo_container)
    failed = [r for r in rows if r.status == "failed"]
    assert [(r.target, r.error) for r in failed] == [("risk", "channel_not_found")]
    reports = [r for r in rows if r.kind == "delivery_failed"]
    assert [(r.target, r.status) for r in reports] == [("admin", "sent")]
    assert {r.status for r in rows if r not in failed} == {"sent"}
    assert len(rec.to(f"csm:{dana.id}")) == len([r for r in rows if r.target == f"csm:{dana.id}"])


def _mrkdwn_texts(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["text"]] if node.get("type") == "mrkdwn" else []
        return found + [t for v in node.values() for t in _mrkdwn_texts(v)]
    if isinstance(node, list):
        return [t for v in node for t in _mrkdwn_texts(v)]
    return []


def test_every_scheduled_reply_renders_within_platform_limits(demo_container) -> None:  # type: ignore[no-untyped-def]
    with demo_container.session() as s:
        acme = s.exec(select(Account).where(Account.name == "Acme Corp")).one()
        acme.name = "Acme <!channel> & <https://evil|click>"
        s.add(acme)
    rec = RecordingNotifier()
    go(demo_container, EVENING, rec)
    seen: set[str] = set()
    for sent in rec.sent:
        reply = sent.reply
        text = render_text(reply)
        assert text.strip()
        slack = render_json("slack", reply.template, reply.context)
        assert 0 < len(slack["blocks"]) <= 50
        for block in slack["blocks"]:
            assert Block.parse(block) is not None
            Block.parse(block).validate_json()  # type: ignore[union-attr]
        # Slack parses mrkdwn (and the fallback text) for mentions and links; plain_text it does not.
        for mrkdwn in [slack["text"], *_mrkdwn_texts(slack["blocks"])]:
            assert "<!channel>" not in mrkdwn and "<https://evil" not in mrkdwn
        teams = render_json("teams", reply.template, reply.context)
        assert teams["type"] == "AdaptiveCard" and teams["version"] == "1.5"
        assert len(json.dumps(teams).encode("utf-16-le")) < 80_000
        # And through each platform's own adapter, as the notifiers post them.
        assert slack_message(reply)["blocks"]
        assert teams_message(reply).attachments[0].content["version"] == "1.5"
        seen.add(reply.template)
    assert {
        "risk_alert",
        "renewal_reminder",
        "qbr_prep",
        "daily_digest",
        "manager_digest",
        "risk_summary",
        "urgent_alerts",
    } <= seen
    alert = next(s.reply for s in rec.sent if s.reply.template == "risk_alert")
    slack = render_json("slack", alert.template, alert.context)
    buttons = [e for b in slack["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [(b["action_id"], b["value"]) for b in buttons] == [
        ("alert_acknowledge", str(alert.context["alert"]["id"])),
        ("alert_snooze", str(alert.context["alert"]["id"])),
    ]
    teams = render_json("teams", alert.template, alert.context)
    assert [a["verb"] for a in teams["actions"]] == ["alert.acknowledge", "alert.snooze"]


def test_qbr_prep_answers_in_chat_too(demo_container) -> None:  # type: ignore[no-untyped-def]
    with demo_container.session() as s:
        dana = s.exec(select(CSM).where(CSM.email == "dana@example.com")).one()
        ctx = ChatContext("console", Actor(dana.id, dana.name, dana.email), demo_container.today())
        reply = qbr_prep(s, ctx=ctx, models=demo_container.health_models, query="acme")
        missing = qbr_prep(s, ctx=ctx, models=demo_container.health_models, query="zzzzqqq")
    assert isinstance(reply, Reply) and reply.template == "qbr_prep"
    c = reply.context
    assert c["account"]["name"] == "Acme Corp"
    assert len(c["health"]["series"]) == 12 and c["leading"] and c["lagging"]
    assert any("Troubleshooting" in x for x in c["leave_out"])
    assert {a["role"] for a in c["audiences"]} >= {"decision_maker", "champion"}
    assert all(a["wiifm"] for a in c["audiences"]) and len(c["agenda"]) >= 4
    assert "QBR prep" in render_text(reply)
    assert missing.template in ("account_not_found", "account_choices")
