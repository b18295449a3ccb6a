"""help_examples(): what the assistant can do, fitted to the words the user typed."""

from __future__ import annotations

from datetime import date

from domain.nlu import help_examples, parse
from domain.nlu.suggest import EXAMPLES


def test_renewal_words_bring_renewal_examples_first() -> None:
    examples = help_examples("something about renew stuff?")
    assert "renew" in examples[0]
    assert "renew" in help_examples("renewing contracts blah")[0]


def test_other_topics() -> None:
    assert "QBR" in help_examples("qbr thing")[0]
    assert "escalate" in help_examples("escalating")[0].lower()
    assert "worry" in help_examples("im worried")[0] or "red" in help_examples("im worried")[0]
    assert "plan" in help_examples("the plan?")[0]


def test_no_hint_gives_the_default_order_and_the_limit_holds() -> None:
    default = [example for intent, example in EXAMPLES if intent != "help"]
    assert help_examples("") == default[:4]
    assert help_examples("asdf qwerty") == default[:4]
    assert len(help_examples("renewals", limit=2)) == 2
    assert help_examples("x", limit=0) == []


def test_examples_are_understood_by_the_parser(demo_index) -> None:
    for intent, example in EXAMPLES:
        result = parse(example, index=demo_index, today=date(2026, 11, 23), people=["Dana"])
        assert result.intent == intent, example
