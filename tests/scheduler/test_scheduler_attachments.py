"""Scheduled posts with files: the 14-day QBR notice carries the draft deck (in the daily digest, or
on the QBR prep's own post where that route is on), the weekly digest the map."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from pptx import Presentation
from slack_sdk import WebClient
from sqlmodel import select
from test_scheduler_slack import _fake_slack_module

from charts.specs import HealthMapSpec
from scheduler.builders import build_reply
from scheduler.config import DEFAULT_ROUTES, SchedulerConfig
from scheduler.notifier import RecordingNotifier
from scheduler.runner import run_once
from storage.models import CSM, Account

CONFIG = SchedulerConfig(platforms=("console",), admin_channel={"console": "admin"})
# QBR prep posted on its own too (opt-in): each prep post carries its deck.
PREP_POSTS = SchedulerConfig(
    platforms=("console",),
    admin_channel={"console": "admin"},
    routes={**DEFAULT_ROUTES, "qbr_prep": ("csm_dm",)},
)


def test_the_first_qbr_notice_in_the_digest_brings_the_deck(demo_container) -> None:  # type: ignore[no-untyped-def]
    rec = RecordingNotifier()
    for hour in range(0, 24, 2):
        run_once(
            demo_container,
            datetime(2026, 11, 23, hour, 0, tzinfo=UTC),
            config=CONFIG,
            notifiers={"console": rec},
            sleep=lambda _s: None,
        )
    assert "qbr_prep" not in {s.reply.template for s in rec.sent}
    with demo_container.session() as session:
        dana = session.exec(select(CSM).where(CSM.email == "dana@example.com")).one()
    (digest,) = [s.reply for s in rec.sent if s.target == f"csm:{dana.id}"]
    (qbrs,) = [g for g in digest.context["groups"] if g["key"] == "qbrs"]
    lines = {x["account"]: x for x in qbrs["lines"]}
    # Globex's QBR is 14 days out (the first notice: the deck), Acme's 3 days out (a reminder).
    assert lines["Globex"]["pack"] is True and lines["Acme Corp"]["pack"] is False
    (pack,) = [
        a for a in digest.attachments if a.data["account_id"] == lines["Globex"]["account_id"]
    ]
    assert pack.kind == "qbr_pack"
    assert pack.data["variant"] == "executive" and pack.data["today"] == "2026-11-23"
    assert len(digest.attachments) <= 3


def test_the_first_qbr_notice_attaches_the_deck_and_the_manager_digest_the_team_map(
    demo_container,  # type: ignore[no-untyped-def]
) -> None:
    rec = RecordingNotifier()
    for hour in range(0, 24, 2):
        run_once(
            demo_container,
            datetime(2026, 11, 23, hour, 0, tzinfo=UTC),
            config=PREP_POSTS,
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
    # Other posts carry no files: the digests leave the decks to the prep posts.
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
