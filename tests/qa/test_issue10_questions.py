"""Issue 10's table, row by row: each question's answer against the database read independently.

The expected rows and figures come from plain SQL here, never from the handlers. The demo is seeded
for 2026-11-23 (a Monday); the asker is Dana Whitfield (a CSM) unless a test says otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from bot.console import ConsoleChat
from bot.render import render_json, render_text
from bot.slack.messages import message
from bot.teams.cards import render_card
from domain.numbers import round_half_away
from handlers.reply import Reply

TODAY = date(2026, 11, 23)
DANA = "dana@example.com"
ALEX = "alex@example.com"  # the manager: every CSM reports to him


@pytest.fixture
def db(demo_container) -> Iterator[Connection]:  # type: ignore[no-untyped-def]
    with demo_container.engine.connect() as conn:
        yield conn


def ask(container, question: str, who: str = DANA) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return ConsoleChat(container, who).ask_json(question)


def reply_of(out: dict[str, Any]) -> Reply:
    r = out["reply"]
    return Reply(template=r["template"], context=r["context"], text=r["text"])


def first_lines(out: dict[str, Any]) -> dict[str, str]:
    """The first thing each surface shows (text line, Slack block after the header, Teams block)."""
    reply = reply_of(out)
    blocks = message(reply)["blocks"]
    slack = next(b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b)
    card = render_card(reply)
    assert card is not None
    teams = card["body"][0]["inlines"][0]["text"]
    return {"text": render_text(reply).splitlines()[0], "slack": slack, "teams": teams}


def dana_id(db: Connection) -> int:
    return db.execute(text("SELECT id FROM csm WHERE email = :e"), {"e": DANA}).scalar_one()


def latest_bands(db: Connection) -> dict[int, str]:
    rows = db.execute(
        text(
            "SELECT s.account_id, s.band FROM health_snapshot s JOIN (SELECT account_id, max(day) d "
            "FROM health_snapshot WHERE day <= :t GROUP BY account_id) m "
            "ON m.account_id = s.account_id AND m.d = s.day"
        ),
        {"t": TODAY},
    ).all()
    return dict(rows)


def open_renewals(
    db: Connection, owner: int, start: date, end: date
) -> list[tuple[str, float, int]]:
    return [
        (r[0], r[1], r[2])
        for r in db.execute(
            text(
                "SELECT a.name, r.arr, a.id FROM renewal r JOIN account a ON a.id = r.account_id "
                "WHERE a.owner_id = :o AND r.renewal_date BETWEEN :s AND :e AND r.status = 'open' "
                "ORDER BY r.renewal_date, a.name"
            ),
            {"o": owner, "s": start, "e": end},
        ).all()
    ]


def test_renewals_between_two_dates(demo_container, db) -> None:
    expected = open_renewals(db, dana_id(db), date(2027, 1, 1), date(2027, 2, 15))
    out = ask(demo_container, "renewals between jan 1 and feb 15")
    ctx = out["reply"]["context"]
    assert [r["account_name"] for r in ctx["renewals"]] == [n for n, _, _ in expected]
    assert ctx["total_arr"] == sum(a for _, a, _ in expected)
    assert ctx["window"]["start"] == "2027-01-01" and ctx["window"]["end"] == "2027-02-15"
    lines = first_lines(out)
    for line in lines.values():
        assert line.startswith("Renewals 1 Jan – 15 Feb 2027, your book:"), lines
    assert f"{len(expected)} renewals" in lines["text"]
    assert out["question"]["window"]["start"] == "2027-01-01"


def test_red_accounts_renewing_in_the_next_90_days(demo_container, db) -> None:
    bands = latest_bands(db)
    rows = open_renewals(db, dana_id(db), TODAY, TODAY + timedelta(days=90))
    expected = [name for name, _, acc in rows if bands.get(acc) == "red"]
    assert expected  # the demo has one: Onyx Insurance
    out = ask(demo_container, "any red accounts renewing in the next 90 days?")
    assert out["intent"] == "renewals_upcoming"
    assert [r["account_name"] for r in out["reply"]["context"]["renewals"]] == expected
    assert ", red only:" in first_lines(out)["text"]


def test_renewals_over_100k_next_quarter(demo_container, db) -> None:
    rows = open_renewals(db, dana_id(db), date(2027, 1, 1), date(2027, 3, 31))
    expected = [name for name, arr, _ in rows if arr > 100_000]  # "over" is strictly greater
    assert len(expected) < len(rows)  # the small ones are really there, and left out
    out = ask(demo_container, "renewals > $100k next quarter")
    assert [r["account_name"] for r in out["reply"]["context"]["renewals"]] == expected
    assert "over $100k" in first_lines(out)["slack"]


def test_arr_at_risk_this_quarter(demo_container, db) -> None:
    bands = latest_bands(db)
    accounts = db.execute(
        text(
            "SELECT id, name, arr, renewal_date FROM account WHERE owner_id = :o AND churned_on IS NULL"
        ),
        {"o": dana_id(db)},
    ).all()
    at_risk = [a for a in accounts if bands.get(a[0]) in ("red", "amber")]
    in_quarter = [
        a for a in at_risk if a[3] is not None and "2026-10-01" <= str(a[3]) <= "2026-12-31"
    ]
    out = ask(demo_container, "how much ARR is at risk this quarter")
    ctx = out["reply"]["context"]
    assert out["intent"] == "portfolio_at_risk"
    assert [a["name"] for a in ctx["accounts"]] == [a[1] for a in in_quarter]
    assert ctx["arr_at_risk"] == sum(a[2] for a in in_quarter)
    if not in_quarter:
        assert at_risk  # there are at-risk accounts: none renews this quarter, and it says so
        assert "none renewing in this window" in first_lines(out)["text"]


@pytest.mark.parametrize("question", ["acme vs globex", "health acme and globex"])
def test_two_accounts_side_by_side(demo_container, db, question: str) -> None:
    scores = dict(
        db.execute(
            text(
                "SELECT a.name, s.score FROM health_snapshot s JOIN account a ON a.id = s.account_id "
                "WHERE a.name IN ('Acme Corp', 'Globex') AND s.day = :t"
            ),
            {"t": TODAY},
        ).all()
    )
    out = ask(demo_container, question)
    assert out["intent"] == "compare_accounts"
    rows = out["reply"]["context"]["accounts"]
    assert [r["name"] for r in rows] == ["Acme Corp", "Globex"]
    # Scores are shown with one decimal, halves away from zero, on every surface.
    assert [r["score"] for r in rows] == [
        round_half_away(scores["Acme Corp"]),
        round_half_away(scores["Globex"]),
    ]
    assert [a["name"] for a in out["question"]["accounts"]] == ["Acme Corp", "Globex"]
    for line in first_lines(out).values():
        assert line.startswith("Comparing Acme Corp, Globex:")


def arr_then_and_now(
    db: Connection, owners: list[int], start: date, end: date
) -> list[tuple[float, float]]:
    """Each owned account's ARR when ``start`` began and when ``end`` ended, from ARR history."""
    return [
        (float(a0), float(a1))
        for a0, a1 in db.execute(
            text(
                "SELECT coalesce((SELECT c.arr FROM arr_change c WHERE c.account_id = a.id "
                "AND c.day < :s ORDER BY c.day DESC LIMIT 1), 0), "
                "coalesce((SELECT c.arr FROM arr_change c WHERE c.account_id = a.id "
                "AND c.day <= :e ORDER BY c.day DESC LIMIT 1), 0) FROM account a "
                "WHERE a.owner_id IN (" + ",".join(str(o) for o in owners) + ")"
            ),
            {"s": start, "e": end},
        ).all()
    ]


def test_grr_for_my_book_this_year(demo_container, db) -> None:
    start = date(2026, 1, 1)
    book = [(a0, a1) for a0, a1 in arr_then_and_now(db, [dana_id(db)], start, TODAY) if a0 > 0]
    starting = sum(a0 for a0, _ in book)
    churned = sum(a0 for a0, a1 in book if a1 <= 0)
    contraction = sum(a0 - a1 for a0, a1 in book if 0 < a1 < a0)
    expected = (starting - contraction - churned) / starting
    out = ask(demo_container, "GRR for my book this year")
    assert out["intent"] == "metrics" and out["question"]["metric"] == "grr"
    [result] = out["reply"]["context"]["results"]
    assert result["value"] == pytest.approx(expected)
    assert result["sample"] == f"{len(book)} customers at the start"
    line = first_lines(out)["text"]
    assert line.startswith("GRR for your book this year (1 Jan – 23 Nov 2026) so far:")
    assert f"{100 * expected:.1f}%" in line


@pytest.mark.parametrize(("who", "scope"), [(DANA, "your book"), (ALEX, "your team's book")])
def test_churn_rate_last_quarter(demo_container, db, who: str, scope: str) -> None:
    start, end = date(2026, 7, 1), date(2026, 9, 30)
    owners = (
        [dana_id(db)]
        if who == DANA
        else [r[0] for r in db.execute(text("SELECT id FROM csm WHERE role = 'csm'")).all()]
    )
    book = [(a0, a1) for a0, a1 in arr_then_and_now(db, owners, start, end) if a0 > 0]
    lost = sum(1 for _, a1 in book if a1 <= 0)
    out = ask(demo_container, "churn rate last quarter", who)
    [result] = out["reply"]["context"]["results"]
    assert result["metric"] == "logo_churn"
    assert result["value"] == pytest.approx(lost / len(book))
    assert f"{lost} of {len(book)} customers lost" in result["detail"]
    assert first_lines(out)["text"].startswith(
        f"Logo churn for {scope} last quarter (1 Jul – 30 Sep 2026):"
    )


def test_csat_for_acme_says_when_there_are_no_responses(demo_container, db) -> None:
    scores = [
        r[0]
        for r in db.execute(
            text(
                "SELECT s.score FROM survey_response s JOIN account a ON a.id = s.account_id "
                "WHERE a.name = 'Acme Corp' AND s.kind = 'csat' AND s.responded_on BETWEEN :s AND :t"
            ),
            {"s": TODAY - timedelta(days=90), "t": TODAY},
        ).all()
    ]
    out = ask(demo_container, "CSAT for acme")
    [result] = out["reply"]["context"]["results"]
    assert result["metric"] == "csat"
    assert result["window"]["default"] is True
    line = first_lines(out)["text"]
    assert line.startswith(
        "CSAT for Acme Corp in the last 90 days (25 Aug – 23 Nov 2026, default):"
    )
    if scores:
        assert result["value"] == pytest.approx(100 * sum(s >= 4 for s in scores) / len(scores))
        assert f"from {len(scores)} response" in line
    else:  # said so, and not quietly widened to a longer window
        assert result["value"] is None and "no survey responses in this window" in line


def test_nps_from_its_responses(demo_container, db) -> None:
    scores = [
        r[0]
        for r in db.execute(
            text(
                "SELECT s.score FROM survey_response s JOIN account a ON a.id = s.account_id "
                "WHERE a.owner_id = :o AND s.kind = 'nps' AND s.responded_on BETWEEN :s AND :t"
            ),
            {"o": dana_id(db), "s": TODAY - timedelta(days=90), "t": TODAY},
        ).all()
    ]
    expected = 100 * (sum(s >= 9 for s in scores) - sum(s <= 6 for s in scores)) / len(scores)
    out = ask(demo_container, "nps for my book")
    [result] = out["reply"]["context"]["results"]
    assert result["value"] == pytest.approx(expected)
    assert f"{expected:+.0f} from {len(scores)} responses" in first_lines(out)["text"]


def test_ltv_of_initech(demo_container, db) -> None:
    arr = db.execute(text("SELECT arr FROM account WHERE name = 'Initech'")).scalar_one()
    year_ago = date(2025, 11, 23)
    rows = db.execute(
        text(
            "SELECT churned_on FROM account WHERE (start_date IS NULL OR start_date <= :s) "
            "AND (churned_on IS NULL OR churned_on > :s)"
        ),
        {"s": year_ago},
    ).all()
    lost = sum(1 for (c,) in rows if c is not None and date.fromisoformat(str(c)) <= TODAY)
    monthly_churn = lost / len(rows) / 12
    expected = (arr / 12) * 0.8 / monthly_churn
    out = ask(demo_container, "what's the LTV of initech")
    [result] = out["reply"]["context"]["results"]
    assert result["metric"] == "ltv" and result["value"] == pytest.approx(expected)
    labels = [i["label"] for i in result["inputs"]]
    assert "gross margin (assumed)" in labels
    assert first_lines(out)["text"].startswith("LTV for Initech")


def test_milestones_due_this_week(demo_container, db) -> None:
    sunday = TODAY + timedelta(days=6 - TODAY.weekday())
    expected = db.execute(
        text(
            "SELECT a.name, m.title FROM milestone m JOIN account a ON a.id = m.account_id "
            "WHERE a.owner_id = :o AND m.status != 'done' AND m.due_date BETWEEN :s AND :e "
            "ORDER BY m.due_date, m.id"
        ),
        {"o": dana_id(db), "s": TODAY, "e": sunday},
    ).all()
    assert expected
    out = ask(demo_container, "any milestones due this week?")
    assert out["intent"] == "milestones_due"
    rows = out["reply"]["context"]["milestones"]
    assert [(m["account_name"], m["title"]) for m in rows] == [tuple(e) for e in expected]
    assert first_lines(out)["teams"].startswith(
        "Milestones due this week (23 – 29 Nov 2026), your book:"
    )


def test_why_did_acme_drop_ranks_what_fell(demo_container, db) -> None:
    def snapshot(day: date) -> dict[str, Any]:
        raw = db.execute(
            text(
                "SELECT s.indicator_scores FROM health_snapshot s JOIN account a ON a.id = s.account_id "
                "WHERE a.name = 'Acme Corp' AND s.day <= :d ORDER BY s.day DESC LIMIT 1"
            ),
            {"d": day},
        ).scalar_one()
        return json.loads(raw) if isinstance(raw, str) else raw

    now, then = snapshot(TODAY), snapshot(TODAY - timedelta(days=30))
    total = sum(v["effective_weight"] for v in now.values())
    parts = {
        v["label"]: v["effective_weight"] / total * (v["score"] - then[k]["score"])
        for k, v in now.items()
        if v["score"] is not None and then[k]["score"] is not None
    }
    expected = sorted(parts, key=lambda label: parts[label])[:3]
    out = ask(demo_container, "why did acme's score drop?")
    assert out["intent"] == "explain_health"
    rows = out["reply"]["context"]["indicators"]
    assert [r["label"] for r in rows[:3]] == expected
    assert [r["contribution"] for r in rows[:3]] == pytest.approx([parts[k] for k in expected])
    line = first_lines(out)["text"]
    assert line.startswith("Why Acme Corp's score moved in the last 30 days")
    assert "biggest falls: " + expected[0] in line


def test_coffee_is_not_an_account_question(demo_container, db) -> None:
    names = [r[0] for r in db.execute(text("SELECT name FROM account")).all()]
    out = ask(demo_container, "order more coffee for the office")
    assert out["intent"] == "unknown" and out["reply"]["template"] == "unknown"
    assert out["question"]["accounts"] == []
    everything = json.dumps(out, ensure_ascii=False)
    assert not [n for n in names if n in everything]  # no account data anywhere in the answer
    assert first_lines(out)["text"].startswith("I can't help with that.")


def test_escalate_acme_asks_what_and_how_bad_then_confirms(demo_container, db) -> None:
    def count() -> int:
        return db.execute(text("SELECT count(*) FROM escalation")).scalar_one()

    before = count()
    chat = ConsoleChat(demo_container, DANA)
    asked = chat.ask_json("escalate acme")
    assert asked["reply"]["template"] == "escalation_draft"
    assert asked["rendered"].startswith("What happened at Acme Corp, and how bad is it?")
    slack = message(reply_of(asked))["blocks"]
    severities = [e["action_id"] for b in slack if b["type"] == "actions" for e in b["elements"]]
    assert severities.count("escalation_draft_severity") == 3
    assert count() == before
    described = chat.ask_json("SSO is down for every user since 9am")
    assert described["reply"]["template"] == "escalation_draft"  # still: how bad?
    confirm = chat.ask_json("sev1")
    assert confirm["reply"]["template"] == "action_confirm"
    assert confirm["rendered"].startswith(
        "Open a SEV1 escalation for Acme Corp: “SSO is down for every user since 9am”?"
    )
    assert count() == before
    done = chat.ask_json("yes")
    assert done["reply"]["template"] == "escalation"
    assert count() == before + 1
    again = chat.ask_json("yes")
    assert again["reply"]["template"] != "escalation" and count() == before + 1
    stored = db.execute(
        text("SELECT severity, title FROM escalation ORDER BY id DESC LIMIT 1")
    ).one()
    assert tuple(stored) == ("sev1", "SSO is down for every user since 9am")


def test_every_new_answer_renders_on_every_surface(demo_container) -> None:
    for question in (
        "renewals between jan 1 and feb 15",
        "acme vs globex",
        "GRR for my book this year",
        "why did acme's score drop?",
        "any milestones due this week?",
        "expansion signals",
        "what should I focus on today?",
        "upcoming qbrs",
        "order more coffee for the office",
        "escalate acme",
        "ack escalation 1",
    ):
        out = ask(demo_container, question)
        reply = reply_of(out)
        assert render_text(reply).strip()
        assert render_json("slack", reply.template, reply.context) is not None
        assert message(reply)["blocks"], question
        assert render_card(reply) is not None, question


@pytest.mark.parametrize(
    "question",
    [
        "metrics",
        "NPS for acme",
        "why did acme drop",
        "acme vs globex",
        "what should I focus on today?",
        "expansion signals",
        "milestones due this month",
        "escalate acme",
        "mark the acme kickoff done",
    ],
)
def test_someone_unknown_gets_no_account_data_from_the_new_answers(
    demo_container, db, question: str
) -> None:
    """The access model (docs/access.md) holds for every answer issue 10 added."""
    names = [r[0] for r in db.execute(text("SELECT name FROM account")).all()]
    out = ask(demo_container, question, "nobody@example.com")
    rendered = out["rendered"]
    assert "I don't know you yet" in rendered, rendered
    assert not [n for n in names if n in rendered], rendered


def test_a_viewer_reads_but_text_actions_are_refused(demo_container, db) -> None:
    from storage.models import CSM, ConversationState

    with Session(demo_container.engine) as session:
        session.add(CSM(name="Vic Viewer", email="vic@example.com", role="viewer"))
        session.commit()
    assert "GRR" in ask(demo_container, "GRR this year", "vic@example.com")["rendered"]
    for question in ("escalate acme sev2 SSO down", "mark the acme kickoff done"):
        out = ask(demo_container, question, "vic@example.com")
        assert "Viewers can read accounts but not" in out["rendered"], out["rendered"]
    with Session(demo_container.engine) as session:
        drafts = session.exec(
            select(ConversationState).where(col(ConversationState.key).startswith("action:"))
        ).all()
    assert drafts == []
