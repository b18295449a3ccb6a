"""Scheduled posts with files: the 14-day QBR prep carries the draft deck, the weekly digest the map."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from pptx import Presentation
from slack_sdk import WebClient
from sqlmodel import select
from test_scheduler_slack import _fake_slack_module

from charts.specs import HealthMapSpec
from scheduler.builders import build_reply
from scheduler.config import SchedulerConfig
from scheduler.notifier import RecordingNotifier
from scheduler.runner import run_once
from storage.models import CSM, Account

CONFIG = SchedulerConfig(platforms=("console",), admin_channel={"console": "admin"})


def test_the_first_qbr_notice_attaches_the_deck_and_the_manager_digest_the_team_map(
    demo_container,  # type: ignore[no-untyped-def]
) -> None:
    rec = RecordingNotifier()
    for hour in range(0, 24, 2):
        run_once(
            demo_container,
            datetime(2026, 11, 23, hour, 0, tzinfo=UTC),
            config=CONFIG,
            notifiers={"console": rec},
            sleep=lambda _s: None,
        )
    replies = [s.reply for s in rec.sent]
    preps = {r.context["account"]["name"]: r for r in replies if r.template == "qbr_prep"}
    # The demo has Globex's QBR 14 days out (first notice) and Acme's 3 days out (reminder).
    (pack,) = preps["Globex"].attachments
    assert pack.kind == "qbr_pack"
    assert pack.data["variant"] == "executive" and pack.data["today"] == "2026-11-23"
    assert pack.data["account_id"] == preps["Globex"].context["account"]["id"]
    assert preps["Acme Corp"].attachments == ()

    digests = [s.reply for s in rec.sent if s.reply.template == "manager_digest"]
    assert digests
    with demo_container.session() as session:
        alex = session.exec(select(CSM).where(CSM.email == "alex@example.com")).one()
        team = session.exec(select(CSM.id).where(CSM.manager_id == alex.id)).all()
        team_accounts = session.exec(
            select(Account.name).where(
                Account.owner_id.in_([alex.id, *team]), Account.churned_on.is_(None)
            )
        ).all()
    (chart,) = digests[0].attachments
    spec = HealthMapSpec.from_dict(chart.data)
    assert spec.scope == "your team's accounts"
    assert {p.name for p in spec.points} <= set(team_accounts)
    assert len(spec.points) + spec.unscored == len(team_accounts)
    # Other posts carry no files.
    assert all(not s.reply.attachments for s in rec.sent if s.reply.template == "daily_digest")


def test_the_slack_notifier_puts_the_deck_in_the_thread_of_the_dm_post(demo_container) -> None:  # type: ignore[no-untyped-def]
    from bot.slack.notifier import SlackNotifier

    fake = _fake_slack_module().FakeSlack().start()
    try:
        fake.add_user("UDANA", "dana@example.com", "Dana Whitfield")
        with demo_container.session() as session:
            dana = session.exec(select(CSM).where(CSM.email == "dana@example.com")).one()
            acme = session.exec(select(Account).where(Account.name == "Acme Corp")).one()
            spec = {
                "kind": "qbr_prep",
                "account_id": acme.id,
                "csm_id": dana.id,
                "today": "2026-11-23",
                "attach": "qbr_pack",
            }
        reply = build_reply(demo_container.engine, demo_container.health_models, spec)
        notifier = SlackNotifier(
            demo_container, client=WebClient(token="xoxb-test", base_url=fake.api_url)
        )
        ts = notifier.send(f"csm:{dana.id}", reply)
        (deck,) = fake.uploaded()
        assert deck.channel_id == "DUDANA" and deck.thread_ts == ts
        slides = Presentation(io.BytesIO(deck.content or b"")).slides
        assert slides[0].shapes.title.text == "Acme Corp: Executive business review"

        # The same post to a channel (it may be shared with the customer): no deck.
        fake.reset()
        notifier.send("C0ACME", reply)
        assert fake.calls_to("chat.postMessage") and fake.uploaded() == []
    finally:
        fake.stop()
