"""Through the real Slack notifier against the local fake Slack Web API: 429 then 200, and a dead channel."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sched_factories import account, csm, renewal
from slack_sdk import WebClient
from sqlmodel import select

from scheduler.config import DEFAULT_ROUTES, SchedulerConfig
from scheduler.models import Delivery
from scheduler.runner import run_once

TODAY = date(2026, 11, 23)
AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _fake_slack_module():  # type: ignore[no-untyped-def]
    # The Slack tests' fake lives beside them; load it by path so this folder can run alone.
    if "fake_slack" in sys.modules:
        return sys.modules["fake_slack"]
    path = Path(__file__).resolve().parents[1] / "slack" / "fake_slack.py"
    spec = importlib.util.spec_from_file_location("fake_slack", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["fake_slack"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fake_slack() -> Iterator[object]:
    fake = _fake_slack_module().FakeSlack().start()
    try:
        yield fake
    finally:
        fake.stop()


def _notifier(container, fake):  # type: ignore[no-untyped-def]
    from bot.slack.notifier import SlackNotifier

    return SlackNotifier(container, client=WebClient(token="xoxb-test", base_url=fake.api_url))


def _rows(container) -> list[Delivery]:  # type: ignore[no-untyped-def]
    with container.session() as s:
        return list(s.exec(select(Delivery).order_by(Delivery.id)).all())


def test_a_429_then_200_ends_with_every_post_made_once(small_container, fake_slack) -> None:  # type: ignore[no-untyped-def]
    with small_container.session() as s:
        dana = csm(s, slack_user_id="U0DANA", email="dana@example.com")
        acme = account(s, dana, name="Acme", slack_channel_id="C0ACME")
        renewal(s, acme, TODAY + timedelta(days=30))
    fake_slack.fail("chat.postMessage", status=429, retry_after=2)
    slept: list[float] = []
    report = run_once(
        small_container,
        AT,
        # Reminders posted on their own as well (opt-in), so three posts share the two channels.
        config=SchedulerConfig(
            platforms=("slack",),
            routes={**DEFAULT_ROUTES, "renewal_reminder": ("account_channel", "csm_dm")},
        ),
        notifiers={"slack": _notifier(small_container, fake_slack)},
        sleep=slept.append,
        recompute=False,
    )
    rows = _rows(small_container)
    assert sorted((r.kind, r.target) for r in rows) == [
        ("daily_digest", "csm:1"),
        ("renewal_reminder", "C0ACME"),
        ("renewal_reminder", "csm:1"),
    ]
    assert all(r.status == "sent" and r.message_id for r in rows)
    assert report.dispatch.rate_limited == 1 and report.dispatch.sent == 3
    posts = fake_slack.calls_to("chat.postMessage")
    assert len(posts) == 4  # one refused with 429, then each delivery exactly once
    assert Counter(p.args["channel"] for p in posts[1:]) == {"C0ACME": 1, "U0DANA": 2}
    assert sum(slept) >= 2  # waited out Retry-After before posting to C0ACME again
    blocks = [p.args.get("blocks") for p in posts[1:]]
    assert all(blocks)


def test_a_channel_that_is_gone_fails_and_is_reported_to_admins(
    small_container, fake_slack
) -> None:  # type: ignore[no-untyped-def]
    with small_container.session() as s:
        owner = csm(s, slack_user_id="U0OWN")
        gone = account(s, owner, name="Globex", slack_channel_id="C0GONE")
        renewal(s, gone, TODAY + timedelta(days=30))
    fake_slack.fail("chat.postMessage", error="channel_not_found")
    config = SchedulerConfig(
        platforms=("slack",),
        routes={"renewal_reminder": ("account_channel",), "daily_digest": ()},
        admin_channel={"slack": "C0ADMIN"},
    )
    report = run_once(
        small_container,
        AT,
        config=config,
        notifiers={"slack": _notifier(small_container, fake_slack)},
        sleep=lambda _s: None,
        recompute=False,
    )
    assert report.dispatch.failed == 1
    rows = {r.target: r for r in _rows(small_container)}
    assert set(rows) == {"C0GONE", "C0ADMIN"}  # daily digests are routed nowhere: off
    assert rows["C0GONE"].status == "failed" and rows["C0GONE"].error == "channel_not_found"
    assert rows["C0ADMIN"].kind == "delivery_failed" and rows["C0ADMIN"].status == "sent"
    admin_posts = [
        p for p in fake_slack.calls_to("chat.postMessage") if p.args["channel"] == "C0ADMIN"
    ]
    assert len(admin_posts) == 1 and "channel_not_found" in admin_posts[0].args["text"]
