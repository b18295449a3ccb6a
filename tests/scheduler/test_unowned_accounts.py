"""Accounts nobody owns still get their reminders, alerts and QBR prep: to a team channel or the admins."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sched_factories import account, csm, qbr, renewal
from sqlmodel import select

from scheduler.config import SchedulerConfig, load_config
from scheduler.models import Delivery
from scheduler.notifier import RecordingNotifier
from scheduler.runner import run_once

TODAY = date(2026, 11, 23)
NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def run(container, config: SchedulerConfig) -> RecordingNotifier:  # type: ignore[no-untyped-def]
    notifier = RecordingNotifier()
    run_once(
        container,
        NOON,
        config=config,
        notifiers={"console": notifier},
        recompute=False,
        sleep=lambda _s: None,
    )
    return notifier


def targets(container, kind: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Who was told, beside the account's own channel (on the console every account has one)."""
    with container.session() as s:
        return sorted(
            d.target
            for d in s.exec(select(Delivery).where(Delivery.kind == kind)).all()
            if not d.target.startswith("account:")
        )


def test_without_an_owner_reminders_and_qbr_prep_go_to_the_admins(small_container, config) -> None:  # type: ignore[no-untyped-def]
    with small_container.session() as s:
        admin_one = csm(s, role="admin")
        admin_two = csm(s, role="admin")
        csm(s, role="csm")  # an owner of nothing hears nothing about it
        orphan = account(s, None, name="Nobody's Co")
        renewal(s, orphan, TODAY + timedelta(days=30))
        qbr(s, orphan, datetime(2026, 12, 7, 15, 0, tzinfo=UTC))  # 14 days ahead
        admins = sorted([f"csm:{admin_one.id}", f"csm:{admin_two.id}"])
    sent = run(small_container, config)
    assert targets(small_container, "renewal_reminder") == admins
    assert targets(small_container, "qbr_prep") == admins
    assert len(sent.to(admins[0])) == 2
    assert any("Nobody's Co" in str(reply.text) for reply in sent.to(admins[0]))


def test_a_team_channel_for_unowned_accounts_takes_them(small_container, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CSM_SCHEDULER_PLATFORMS", "console")
    monkeypatch.setenv("CSM_SCHEDULER_UNOWNED_CHANNEL_SLACK", "C0UNOWNED")
    config = load_config()
    assert config.unowned_channel == {"slack": "C0UNOWNED"}
    config = SchedulerConfig(platforms=("console",), unowned_channel={"console": "unowned-team"})
    with small_container.session() as s:
        csm(s, role="admin")
        owner = csm(s, role="csm")
        orphan = account(s, None, name="Nobody's Co")
        owned = account(s, owner, name="Owned Co")
        renewal(s, orphan, TODAY + timedelta(days=30))
        renewal(s, owned, TODAY + timedelta(days=30))
        owner_target = f"csm:{owner.id}"
    sent = run(small_container, config)
    # The owner reads theirs in the daily digest; nobody's digest carries the unowned one.
    assert targets(small_container, "renewal_reminder") == ["unowned-team"]
    (digest,) = sent.to(owner_target)
    (renewals,) = [g for g in digest.context["groups"] if g["key"] == "renewals"]
    assert [x["account"] for x in renewals["lines"]] == ["Owned Co"]


def test_alerts_on_an_account_nobody_owns_reach_the_admins_in_one_summary(
    small_container, config
) -> None:  # type: ignore[no-untyped-def]
    from sched_factories import snapshot

    with small_container.session() as s:
        admin = csm(s, role="admin")
        for n in range(3):
            orphan = account(s, None, name=f"Nobody's {n}")
            snapshot(s, orphan, TODAY - timedelta(days=1), 80, "green")
            snapshot(s, orphan, TODAY, 40, "red")
        admin_target = f"csm:{admin.id}"
    sent = run(small_container, config)
    # The team's risk channel and the admin: one summary each, nobody's DM per alert.
    (team,) = sent.to("risk")
    (unowned,) = sent.to(admin_target)
    assert team.template == unowned.template == "risk_summary"
    assert unowned.context["unowned"] is True and unowned.context["total"] == 3
    assert unowned.text.startswith("Accounts without an owner: 3 new alerts")
    assert {x["owner"] for x in unowned.context["alerts"]} == {None}
