"""The alert rules fire on transitions only, and cooldown, snooze and acknowledgement keep them quiet."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from domain import alert_rules as r

DAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 9, tzinfo=UTC)
T = r.AlertThresholds()


def facts(snaps: dict[int, tuple[float | None, str, int | None]], **kw: object) -> r.AccountFacts:
    """Snapshots given as {days_ago: (score, band, forecast_red_in_days)}."""
    return r.AccountFacts(
        7,
        {
            DAY - timedelta(days=ago): r.Snapshot(DAY - timedelta(days=ago), s, b, f)
            for ago, (s, b, f) in snaps.items()
        },
        **kw,  # type: ignore[arg-type]
    )


def kinds(f: r.AccountFacts, thresholds: r.AlertThresholds = T) -> list[str]:
    return [e.kind for e in r.evaluate(f, day=DAY, now=NOW, thresholds=thresholds)]


def test_band_alert_fires_when_the_band_worsens_not_while_it_stays() -> None:
    assert kinds(facts({0: (70, "amber", None), 1: (80, "green", None)})) == [r.BAND_CHANGE]
    assert kinds(facts({0: (45, "red", None), 1: (60, "amber", None)})) == [r.BAND_CHANGE]
    assert kinds(facts({0: (70, "amber", None), 1: (71, "amber", None)})) == []
    assert kinds(facts({0: (70, "amber", None), 1: (45, "red", None)})) == []  # got better
    # With no snapshot the day before there is no transition to speak of.
    assert kinds(facts({0: (45, "red", None)})) == []


def test_red_is_more_severe_than_amber() -> None:
    (event,) = r.evaluate(
        facts({0: (45, "red", None), 1: (80, "green", None)}), day=DAY, now=NOW, thresholds=T
    )
    assert event.severity == 3 and event.details["to_band"] == "red"


def test_a_drop_of_ten_points_in_seven_days_fires_once() -> None:
    dropping = {
        0: (79, "green", None),
        1: (85, "green", None),
        7: (90, "green", None),
        8: (90, "green", None),
    }
    assert kinds(facts(dropping)) == [r.SCORE_DROP]
    # Already down by 10 yesterday: not news today.
    still = {
        0: (78, "green", None),
        1: (79, "green", None),
        7: (90, "green", None),
        8: (90, "green", None),
    }
    assert kinds(facts(still)) == []
    nine = {
        0: (81, "green", None),
        1: (85, "green", None),
        7: (90, "green", None),
        8: (90, "green", None),
    }
    assert kinds(facts(nine)) == []
    assert kinds(facts(nine), r.AlertThresholds(drop_points=9)) == [r.SCORE_DROP]


def test_forecast_red_within_fourteen_days_fires_on_the_day_it_appears() -> None:
    assert kinds(facts({0: (60, "amber", 12), 1: (61, "amber", 20)})) == [r.FORECAST_RED]
    assert kinds(facts({0: (60, "amber", 12), 1: (61, "amber", 13)})) == []
    assert kinds(facts({0: (60, "amber", 15), 1: (61, "amber", None)})) == []
    assert kinds(
        facts({0: (60, "amber", 15), 1: (61, "amber", None)}), r.AlertThresholds(forecast_days=15)
    ) == [r.FORECAST_RED]


def test_alert_titles_print_numbers_as_the_card_does() -> None:
    # A 16.5-point fall read "fell 16 points"; a forecast range read as one day.
    snaps = {
        DAY: r.Snapshot(DAY, 54.2, "amber", 12, 9, 17, "red"),
        DAY - timedelta(days=1): r.Snapshot(DAY - timedelta(days=1), 60.0, "amber", None),
        DAY - timedelta(days=7): r.Snapshot(DAY - timedelta(days=7), 70.7, "amber", None),
        DAY - timedelta(days=8): r.Snapshot(DAY - timedelta(days=8), 60.0, "amber", None),
    }
    events = r.evaluate(r.AccountFacts(7, snaps), day=DAY, now=NOW, thresholds=T)
    titles = {e.kind: e.title for e in events}
    assert titles[r.SCORE_DROP] == "Health fell 16.5 points in 7 days"
    assert titles[r.FORECAST_RED] == "Likely to turn red in 9–17 days"


def test_item_rules_fire_for_recent_items_only() -> None:
    f = facts(
        {},
        surveys=[
            r.SurveyFact(1, "nps", 3, DAY - timedelta(days=1)),
            r.SurveyFact(2, "nps", 9, DAY),
            r.SurveyFact(3, "nps", 2, DAY - timedelta(days=30)),  # history, not news
        ],
        milestones=[
            r.MilestoneFact(1, "due yesterday", DAY - timedelta(days=1), "in_progress"),
            r.MilestoneFact(2, "due today", DAY, "in_progress"),
            r.MilestoneFact(3, "done late", DAY - timedelta(days=1), "done"),
            r.MilestoneFact(4, "long overdue", DAY - timedelta(days=60), "blocked"),
        ],
        escalations=[
            r.EscalationFact(
                1, "Outage", "sev1", "open", NOW - timedelta(hours=2), NOW + timedelta(days=1)
            ),
            r.EscalationFact(
                2,
                "Acked",
                "sev2",
                "acknowledged",
                NOW - timedelta(hours=2),
                NOW - timedelta(hours=1),
            ),
            r.EscalationFact(3, "Fresh", "sev2", "open", NOW + timedelta(hours=1), None),
        ],
    )
    keys = sorted(e.event_key for e in r.evaluate(f, day=DAY, now=NOW, thresholds=T))
    assert keys == [
        "escalation_sla:1:ack",
        "escalation_sla:2:resolve",
        "milestone_overdue:1:2026-11-22",
        "nps_detractor:1",
    ]


def test_cooldown_snooze_and_acknowledgement_keep_alerts_quiet() -> None:
    event = r.AlertEvent(7, r.SCORE_DROP, "k", 2, "Drop", {})
    recent = r.PriorAlert(severity=2, fired_at=NOW - timedelta(days=2))
    old = r.PriorAlert(severity=2, fired_at=NOW - timedelta(days=8))
    assert r.quiet_reason(event, [recent], now=NOW, thresholds=T) == "cooldown"
    assert r.quiet_reason(event, [old], now=NOW, thresholds=T) is None
    snoozed = r.PriorAlert(2, NOW - timedelta(days=20), snoozed_until=NOW + timedelta(days=1))
    assert r.quiet_reason(event, [snoozed], now=NOW, thresholds=T) == "snoozed"
    acked = r.PriorAlert(2, NOW - timedelta(days=20), acknowledged_at=NOW - timedelta(days=3))
    assert r.quiet_reason(event, [acked], now=NOW, thresholds=T) == "acknowledged"
    # Something worse than what was acknowledged or cooled down still gets through.
    worse = r.AlertEvent(7, r.SCORE_DROP, "k2", 3, "Drop", {})
    assert r.quiet_reason(worse, [recent, acked], now=NOW, thresholds=T) is None
    # Snooze silences even the worse one: the CSM asked for quiet.
    assert r.quiet_reason(worse, [snoozed], now=NOW, thresholds=T) == "snoozed"


def test_a_sev1_escalation_is_news_when_it_is_opened_not_only_when_its_sla_lapses() -> None:
    def escalation(n: int, severity: str, opened_days_ago: float) -> r.EscalationFact:
        return r.EscalationFact(
            n,
            f"Outage {n}",
            severity,
            "open",
            None,
            None,
            opened_at=NOW - timedelta(days=opened_days_ago),
        )

    found = r.evaluate(
        r.AccountFacts(
            7,
            escalations=[
                escalation(1, "sev1", 0.1),
                escalation(2, "sev2", 0.1),  # sev2/sev3: the escalation thread is enough
                escalation(3, "sev1", 5),  # opened before the lookback: history
            ],
        ),
        day=DAY,
        now=NOW,
        thresholds=T,
    )
    assert [(e.kind, e.event_key, e.severity) for e in found] == [
        (r.ESCALATION_OPENED, "escalation_opened:1", 3)
    ]
    assert found[0].details["severity"] == "sev1"
