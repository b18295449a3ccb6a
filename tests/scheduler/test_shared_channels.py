"""Scheduled posts and channels shared with another organisation (Slack Connect), through the real
Slack notifier against the fake Web API: a summary naming many customers never goes there; the
account mapped to the channel gets its own alert only when the admins allowed answers there
(CSM_SHARED_CHANNEL_ANSWERS; docs/access.md, "Shared channels")."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sched_factories import account, csm, snapshot
from test_scheduler_slack import AT, TODAY, _notifier, _rows, fake_slack  # noqa: F401

from scheduler.config import DEFAULT_ROUTES, SchedulerConfig
from scheduler.runner import run_once


@pytest.mark.parametrize("answers_allowed", [False, True])
def test_a_risk_summary_never_reaches_a_slack_connect_channel(  # type: ignore[no-untyped-def]
    small_container,
    fake_slack,  # noqa: F811
    answers_allowed: bool,
) -> None:
    small_container.settings.shared_channel_answers = answers_allowed
    fake_slack.add_channel("CRISKEXT", ext_shared=True)  # the risk channel, shared by mistake
    fake_slack.add_channel("CACMEEXT", ext_shared=True)  # Acme's channel with Acme's people
    with small_container.session() as s:
        dana = csm(s, slack_user_id="U0DANA", email="dana@example.com")
        acme = account(s, dana, name="Acme", slack_channel_id="CACMEEXT")
        globex = account(s, dana, name="Globex")
        for each in (acme, globex):
            snapshot(s, each, TODAY - timedelta(days=1), 80, "green")
            snapshot(s, each, TODAY, 40, "red")
    config = SchedulerConfig(
        platforms=("slack",),
        risk_channel={"slack": "CRISKEXT"},
        routes={**DEFAULT_ROUTES, "risk_alert": ("account_channel",)},
    )
    run_once(
        small_container,
        AT,
        config=config,
        notifiers={"slack": _notifier(small_container, fake_slack)},
        sleep=lambda _: None,
        recompute=False,
    )

    posts = fake_slack.calls_to("chat.postMessage")
    # Nothing naming Globex (or any list) went to either Slack Connect channel.
    shared = [p for p in posts if p.args.get("channel") in ("CRISKEXT", "CACMEEXT")]
    if not answers_allowed:
        # By default the customer's channel gets nothing at all, not even its own account.
        assert shared == [], [p.args for p in shared]
    else:
        assert [p.args["channel"] for p in shared] == ["CACMEEXT"], [p.args for p in shared]
        assert "Acme" in shared[0].args["text"] and "Globex" not in str(shared[0].args)
    # The summary is recorded as failed, with the reason (csm-bot outbox --status shows it).
    [summary] = [r for r in _rows(small_container) if r.kind == "risk_summary"]
    assert summary.status == "failed" and "shared with another organisation" in str(summary.error)
