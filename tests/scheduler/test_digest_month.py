"""A month of scheduler runs on a 300-account book: a handful of interruptions a day, the digest,
and nothing at night in the CSM's timezone."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import select

from scheduler.config import SchedulerConfig
from scheduler.models import Alert
from scheduler.notifier import RecordingNotifier
from scheduler.runner import make_dispatcher
from scheduler.work import fill_outbox
from storage.models import CSM

TODAY = date(2026, 11, 23)
CONFIG = SchedulerConfig(platforms=("console",))
# The most interrupting messages (anything but the digest) a CSM may get in a day.
MAX_INTERRUPTIONS = 5


def test_a_month_for_a_csm_with_300_accounts(book_300) -> None:  # type: ignore[no-untyped-def]
    with book_300.session() as s:
        marco = s.exec(select(CSM).where(CSM.email == "marco@example.com")).one()
        marco_id, zone = marco.id, ZoneInfo(marco.timezone)
    rec = RecordingNotifier()
    posted: list[tuple[datetime, str, str]] = []
    # The thirty days up to the portfolio's today, every hour, as the background jobs run them:
    # the leader's tick fills the outbox, the dispatcher sends what is due.
    when = datetime(2026, 10, 25, 0, tzinfo=UTC)
    dispatcher = make_dispatcher(
        book_300, CONFIG, {"console": rec}, clock=lambda: when, sleep=lambda _s: None
    )
    while when < datetime(2026, 11, 24, 0, tzinfo=UTC):
        n = len(rec.sent)
        fill_outbox(
            book_300.engine,
            at=when,
            config=CONFIG,
            models=book_300.health_models,
            recompute=False,
        )
        dispatcher.dispatch_due()
        posted += [(when, s.target, s.reply.template) for s in rec.sent[n:]]
        when += timedelta(hours=1)

    mine = [(w.astimezone(zone), t) for w, target, t in posted if target == f"csm:{marco_id}"]
    per_day: dict[date, Counter[str]] = defaultdict(Counter)
    for local, template in mine:
        per_day[local.date()][template] += 1
        assert 8 <= local.hour < 21, f"{template} at {local:%a %H:%M} in Rome"
    assert max(sum(n for t, n in c.items() if t != "daily_digest") for c in per_day.values()) <= (
        MAX_INTERRUPTIONS
    )
    # One digest every weekday of the month, none at weekends.
    digest_days = sorted(d for d, c in per_day.items() if c["daily_digest"])
    assert all(c["daily_digest"] <= 1 for c in per_day.values())
    assert digest_days == [
        date(2026, 10, 26) + timedelta(days=n)
        for n in range(29)
        if (date(2026, 10, 26) + timedelta(days=n)).weekday() < 5
    ]
    # Every alert of the month reached Marco exactly once (or waits for tomorrow's digest).
    with book_300.session() as s:
        fired = s.exec(select(Alert).where(Alert.status != "suppressed")).all()
    assert len(fired) > 100
    waiting = [a for a in fired if a.delivered_in is None]
    assert all(a.fired_at.date() >= date(2026, 11, 23) for a in waiting)
    # The risk channel: one summary per run that raised alerts, never one post per alert.
    summaries = [s.reply for s in rec.sent if s.target == "risk"]
    assert {r.template for r in summaries} == {"risk_summary"}
    assert sum(r.context["total"] for r in summaries) == len(fired)
    per_day = Counter(w.date() for w, target, _t in posted if target == "risk")
    assert max(per_day.values()) <= 3
