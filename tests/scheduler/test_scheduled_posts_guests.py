"""An account channel with a guest in it gets what a Slack Connect channel gets from the scheduler.

Customers are often invited as single-channel guests; through the real Slack notifier against the
fake Web API (docs/access.md, "Shared channels").
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sched_factories import account, csm, renewal, snapshot
from test_scheduler_slack import AT, TODAY, _notifier, _rows, fake_slack  # noqa: F401

from scheduler.config import DEFAULT_ROUTES, SchedulerConfig
from scheduler.runner import run_once

CHANNEL = "C0ACME"
CONFIG = SchedulerConfig(
    platforms=("slack",),
    routes={
        **DEFAULT_ROUTES,
        "risk_alert": ("account_channel", "csm_dm"),
        "renewal_reminder": ("account_channel",),
    },
)


def _acme_turns_red_before_its_renewal(container) -> None:  # type: ignore[no-untyped-def]
    with container.session() as s:
        dana = csm(s, slack_user_id="U0DANA", email="dana@example.com")
        acme = account(s, dana, name="Acme", slack_channel_id=CHANNEL)
        snapshot(s, acme, TODAY - timedelta(days=1), 80, "green")
        snapshot(s, acme, TODAY, 40, "red")
        renewal(s, acme, TODAY + timedelta(days=30))


def _run(container, fake) -> None:  # type: ignore[no-untyped-def]
    run_once(
        container,
        AT,
        config=CONFIG,
        notifiers={"slack": _notifier(container, fake)},
        sleep=lambda _: None,
        recompute=False,
    )


def _channel_posts(fake) -> list[str]:  # type: ignore[no-untyped-def]
    return [
        str(p.args.get("text"))
        for p in fake.calls_to("chat.postMessage")
        if p.args.get("channel") == CHANNEL
    ]


@pytest.mark.parametrize("answers_allowed", [False, True])
@pytest.mark.parametrize("channel", ["single_channel_guest", "multi_channel_guest", "ext_shared"])
def test_an_account_channel_with_a_guest_is_a_shared_channel(  # type: ignore[no-untyped-def]
    small_container,
    fake_slack,  # noqa: F811
    channel: str,
    answers_allowed: bool,
) -> None:
    small_container.settings.shared_channel_answers = answers_allowed
    fake_slack.add_user("U0DANA", "dana@example.com", "Dana")
    if channel == "ext_shared":
        fake_slack.add_channel(CHANNEL, ext_shared=True)
    else:
        fake_slack.add_guest(
            "U0GUEST", "pat@acme.example", "Pat (Acme)", single=channel == "single_channel_guest"
        )
        fake_slack.set_members(CHANNEL, ["U0DANA", "U0GUEST"])
    _acme_turns_red_before_its_renewal(small_container)

    _run(small_container, fake_slack)

    rows = {(r.kind, r.target): r for r in _rows(small_container)}
    alert, reminder = rows[("risk_alert", CHANNEL)], rows[("renewal_reminder", CHANNEL)]
    if not answers_allowed:
        # By default the customer's channel gets nothing, as a Slack Connect channel does: each
        # post is recorded as failed, with the reason (csm-bot outbox --status shows it).
        assert _channel_posts(fake_slack) == []
        for row in (alert, reminder):
            assert row.status == "failed" and "has guests" in str(row.error), row.error
    else:
        # The admins allowed the mapped account's own posts there: those two go, nothing else.
        assert alert.status == reminder.status == "sent"
        assert len(_channel_posts(fake_slack)) == 2
    # The CSM's own alert reaches their DM either way.
    assert rows[("risk_alert", "csm:1")].status == "sent"


def test_an_account_channel_of_internal_members_still_gets_its_posts(  # type: ignore[no-untyped-def]
    small_container,
    fake_slack,  # noqa: F811
) -> None:
    fake_slack.add_user("U0DANA", "dana@example.com", "Dana")
    fake_slack.add_user("U0SAM", "sam@example.com", "Sam")
    fake_slack.set_members(CHANNEL, ["U0DANA", "U0SAM"])
    _acme_turns_red_before_its_renewal(small_container)

    _run(small_container, fake_slack)

    assert [r.status for r in _rows(small_container) if r.target == CHANNEL] == ["sent", "sent"]
    assert len(_channel_posts(fake_slack)) == 2
    # Asked once for the channel (the second post read the cached answer), once per member.
    assert len(fake_slack.calls_to("conversations.members")) == 1
    assert sorted(c.args["user"] for c in fake_slack.calls_to("users.info")) == [
        "U0DANA",
        "U0SAM",
    ]
