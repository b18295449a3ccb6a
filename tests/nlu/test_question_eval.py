"""The structured-question evaluation: tuning and dev sets, the 8-column format, the shipped model."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from domain.nlu import parse
from domain.nlu.evaluate import evaluate_file, question_labels, read_eval_file
from domain.nlu.intent_model import default_model, fingerprint
from domain.nlu.parser import INTENTS
from tests.nlu.train_intents import training_utterances

HERE = Path(__file__).resolve().parent
TUNING = HERE / "tuning.tsv"
DEV = HERE / "dev.tsv"
TODAY = date(2026, 11, 23)
PEOPLE = ("Dana", "Marco", "Priya", "Sam", "Lena", "Jordan", "Alex")


def test_the_tuning_set_is_varied_and_never_trained_on() -> None:
    data = read_eval_file(TUNING)
    assert data.question_format and len(data.questions) >= 300
    assert {q.intent for q in data.questions} == set(INTENTS)
    assert sum(q.intent == "unknown" for q in data.questions) >= 25
    assert sum("<@" in q.utterance or "<#" in q.utterance for q in data.questions) >= 5
    trained = {text.lower() for text, _ in training_utterances()}
    for path in (TUNING, DEV):
        overlap = [
            q.utterance for q in read_eval_file(path).questions if q.utterance.lower() in trained
        ]
        assert not overlap, overlap


def test_tuning_set_accuracy(demo_index) -> None:
    report = evaluate_file(TUNING, index=demo_index, today=TODAY)
    assert report.intent_accuracy >= 0.97, report.format()
    assert report.account_accuracy >= 0.98, report.format()
    assert report.entity_accuracy >= 0.95, report.format()
    for name, tally in report.per_entity.items():
        assert tally.accuracy >= 0.9, (name, report.format())


def test_dev_set_accuracy(demo_index) -> None:
    report = evaluate_file(DEV, index=demo_index, today=TODAY)
    assert report.intent_accuracy >= 0.93, report.format()
    assert report.account_accuracy >= 0.98, report.format()


def test_the_shipped_model_was_trained_on_todays_paraphrases() -> None:
    model = default_model()
    assert model is not None and model.classes == INTENTS
    # Retrain with `python -m tests.nlu.train_intents` after changing the paraphrases.
    assert model.fingerprint == fingerprint(training_utterances())


def test_the_labels_are_the_file_format(demo_index) -> None:
    result = parse(
        "<@U1> top 5 renewals > $100k for Marco between jan 1 and feb 15, red only",
        index=demo_index,
        today=TODAY,
        people=PEOPLE,
    )
    labels = question_labels(result)
    assert labels == {
        "intent": "renewals_upcoming",
        "accounts": "",
        "window": "2027-01-01..2027-02-15",
        "scope": "person:Marco",
        "band": "red",
        "amount": ">100000",
        "metric": "",
    }
    assert result.order is not None and (result.order.key, result.order.limit) == ("arr", 5)
    assert question_labels(parse("acme vs globex", index=demo_index, today=TODAY))["accounts"] == (
        "Acme Corp|Globex"
    )
    assert question_labels(parse("how's umbrella", index=demo_index, today=TODAY))["accounts"] == (
        "ambiguous"
    )
    assert (
        question_labels(parse("health of zorblax", index=demo_index, today=TODAY))["accounts"]
        == "none"
    )


def test_a_question_format_file_reports_per_intent_and_per_entity(demo_index, tmp_path) -> None:
    tsv = tmp_path / "blind.tsv"
    tsv.write_text(
        "utterance\tintent\taccounts\twindow\tscope\tband\tamount\tmetric\n"
        "#people: Dana,Marco\n#today: 2026-11-23\n"
        "how's acme doing\taccount_health\tAcme Corp\t\t\t\t\t\n"
        "nrr for marco last quarter\tmetrics\t\t2026-07-01..2026-09-30\tperson:Marco\t\t\tnrr\n"
        "order pizza\tunknown\t\t\t\t\t\t\n"
        "renewals > 100k\trenewals_upcoming\t\t\t\t\t>=100000\t\n"  # wrong on purpose
        "acme vs globex\taccount_health\t*\t*\t*\t*\t*\t*\n",  # wrong on purpose
        encoding="utf-8",
    )
    report = evaluate_file(tsv, index=demo_index, today=date(2030, 1, 1))
    assert (report.total, report.intent_correct) == (5, 4)
    assert (report.account_total, report.account_correct) == (1, 1)
    assert report.per_entity["amount"].correct == 0 and report.per_entity["window"].correct == 1
    text = report.format()
    assert "per entity:" in text and "per intent (expected):" in text
    assert "account_health -> compare_accounts: 1" in text
    assert "amount '>100000' != '>=100000'" in text


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("renewals over $100k", ">100000"),
        ("renewals > 100k", ">100000"),
        ("renewals of at least 50k", ">=50000"),
        ("$50k+ renewals", ">=50000"),
        ("accounts under $20k", "<20000"),
        ("renewals up to 20k", "<=20000"),
        ("renewals 20k or less", "<=20000"),
        ("accounts over 1.5M", ">1500000"),
        ("more than 3 accounts", ""),
        ("over the next 30 days", ""),
    ],
)
def test_amounts(demo_index, text: str, amount: str) -> None:
    assert question_labels(parse(text, index=demo_index, today=TODAY))["amount"] == amount
