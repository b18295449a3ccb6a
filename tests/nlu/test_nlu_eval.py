"""The evaluation set: accuracy targets, held-out part, and the report format."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from domain.nlu.evaluate import evaluate_file, read_cases

UTTERANCES = Path(__file__).with_name("utterances.tsv")
TUNE3 = Path(__file__).with_name("tune3.tsv")
TODAY = date(2026, 11, 23)


def test_the_set_is_large_and_covers_every_intent() -> None:
    cases, people = read_cases(UTTERANCES)
    assert len(cases) >= 180
    assert sum(c.held_out for c in cases) >= 40
    intents = {c.intent for c in cases}
    assert intents >= {
        "account_health",
        "success_plan",
        "milestones_overdue",
        "renewals_upcoming",
        "portfolio_at_risk",
        "my_accounts",
        "account_changes",
        "qbr_prep",
        "escalate",
        "help",
    }
    assert "Dana" in people


def test_accuracy_targets(demo_index) -> None:
    report = evaluate_file(UTTERANCES, index=demo_index, today=TODAY)
    assert report.total >= 180
    assert report.intent_accuracy >= 0.95, report.format()
    assert report.account_accuracy >= 0.95, report.format()
    assert report.entity_accuracy >= 0.9, report.format()


def test_held_out_accuracy(demo_index) -> None:
    report = evaluate_file(UTTERANCES, index=demo_index, today=TODAY, part="held-out")
    assert report.total >= 40
    assert report.intent_accuracy >= 0.9, report.format()
    assert report.account_accuracy >= 0.9, report.format()


def test_report_lists_misses(demo_index, tmp_path: Path) -> None:
    tsv = tmp_path / "mini.tsv"
    tsv.write_text(
        "utterance\tintent\taccount\twindow_days\towner\tband\n"
        "# a comment\n"
        "how's acme doing\taccount_health\tAcme Corp\t\t\t\n"
        "renewals next 60 days\trenewals_upcoming\t\t30\t\t\n"  # wrong window on purpose
        "show me red accounts\tmy_accounts\t*\t*\t*\tred\n"  # wrong intent on purpose
        "lol\t\t\t\t\t\n",
        encoding="utf-8",
    )
    report = evaluate_file(tsv, index=demo_index, today=TODAY)
    assert (report.total, report.intent_correct) == (4, 3)
    assert (report.account_total, report.account_correct) == (1, 1)
    assert (report.entity_total, report.entity_correct) == (2, 1)
    assert abs(report.intent_accuracy - 0.75) < 1e-9
    assert report.entity_accuracy == 0.5
    text = report.format()
    assert "intent accuracy" in text and "75.0%" in text
    assert "'renewals next 60 days': window_days '60' != '30'" in text
    assert "'show me red accounts': intent 'portfolio_at_risk' != 'my_accounts'" in text
    assert len(report.misses) == 2


def test_the_file_pins_its_own_date(demo_index) -> None:
    # "csm-bot eval-nlu" passes the real date; the file's #today directive keeps windows checkable.
    report = evaluate_file(UTTERANCES, index=demo_index, today=date(2031, 5, 6))
    assert report.entity_accuracy >= 0.9, report.format()


def test_people_argument_adds_owners(demo_index, tmp_path: Path) -> None:
    tsv = tmp_path / "owners.tsv"
    tsv.write_text(
        "utterance\tintent\taccount\twindow_days\towner\tband\n"
        "#today: 2026-11-23\n"
        "renewals for robin\trenewals_upcoming\t\t90\tRobin\t\n",
        encoding="utf-8",
    )
    assert evaluate_file(tsv, index=demo_index, today=TODAY).entity_accuracy == 0.5
    report = evaluate_file(tsv, index=demo_index, today=TODAY, people=["Robin"])
    assert report.entity_accuracy == 1.0


def test_tune3_floors(demo_index) -> None:
    # 300 questions in Teams voice, written by someone who never saw the parser.
    report = evaluate_file(TUNE3, index=demo_index, today=TODAY)
    assert report.total == 300
    assert report.intent_accuracy >= 0.97, report.format()
    assert report.account_accuracy >= 0.97, report.format()
    assert report.entity_accuracy >= 0.95, report.format()
    for name, tally in report.per_entity.items():
        assert tally.accuracy >= 0.9, (name, report.format())
