"""Accuracy of the parser on a TSV of real-world utterances with expected intent and entities."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from domain.accounts_index import AccountIndex
from domain.nlu.parser import ParseResult, parse
from domain.nlu.timewindow import window_days

# Two TSV formats (header required; lines starting with "#" are comments):
#
# 1. The question format (8 columns):
#      utterance  intent  accounts  window  scope  band  amount  metric
#    - intent: one of the 17 intent names (unknown included).
#    - accounts: canonical names in the order mentioned, "|"-separated; "ambiguous" = the name
#      fits several accounts, "none" = it names an account that does not exist; empty = none named.
#    - window: inclusive "YYYY-MM-DD..YYYY-MM-DD", only when the question states one.
#    - scope: mine | team | all | person:<FirstName>, only when stated.
#    - band: red | amber | green | at_risk.  amount: ">100000", ">=50000", "<20000", "<=20000".
#    - metric: nrr | grr | logo_churn | nps | csat | ces | ltv | arppu | mrr | arr.
#
# 2. The first format (6 columns):
#      utterance  intent  account  window_days  owner  band
#    - window_days: days from today to the window's end (negative: from today back to its start,
#      for windows in the past), see domain.nlu.timewindow.window_days; renewal questions without a
#      window expect the default (90).
#
# In both: an empty cell expects nothing; "*" means don't care. "#people: Dana,Marco" declares the
# people names the parser should know as owners; "#today: 2026-11-23" pins the date the
# expectations were written against (it wins over the ``today`` argument); a line starting with
# "# HELD-OUT" starts the held-out part.
# Accuracy counts: intent over every row; accounts and each entity over the rows where something
# was expected or found (agreeing on "nothing" is not counted as a success).

QUESTION_COLUMNS = (
    "utterance",
    "intent",
    "accounts",
    "window",
    "scope",
    "band",
    "amount",
    "metric",
)
FIRST_COLUMNS = ("utterance", "intent", "account", "window_days", "owner", "band")
ENTITY_COLUMNS = ("window", "scope", "band", "amount", "metric")


@dataclass
class Tally:
    """Right answers out of the rows that count."""

    correct: int = 0
    total: int = 0

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 1.0

    def add(self, ok: bool) -> None:
        self.total += 1
        self.correct += ok


@dataclass(frozen=True)
class EvalReport:
    """Counts and misses of one evaluation run."""

    total: int
    intent_correct: int
    account_total: int
    account_correct: int
    entity_total: int
    entity_correct: int
    misses: list[str] = field(default_factory=list)
    per_intent: dict[str, Tally] = field(default_factory=dict)
    per_entity: dict[str, Tally] = field(default_factory=dict)
    confusions: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def intent_accuracy(self) -> float:
        return self.intent_correct / self.total if self.total else 1.0

    @property
    def account_accuracy(self) -> float:
        return self.account_correct / self.account_total if self.account_total else 1.0

    @property
    def entity_accuracy(self) -> float:
        return self.entity_correct / self.entity_total if self.entity_total else 1.0

    def format(self) -> str:
        """A human report: the accuracies, per intent and per entity, then every miss."""
        lines = [
            f"utterances: {self.total}",
            f"intent accuracy:  {self.intent_accuracy:6.1%}  ({self.intent_correct}/{self.total})",
            f"account accuracy: {self.account_accuracy:6.1%}  "
            f"({self.account_correct}/{self.account_total})",
            f"entity accuracy:  {self.entity_accuracy:6.1%}  "
            f"({self.entity_correct}/{self.entity_total})",
        ]
        if self.per_entity:
            lines.append("per entity:")
            for name, tally in self.per_entity.items():
                lines.append(f"  {name:<10} {tally.accuracy:6.1%}  ({tally.correct}/{tally.total})")
        if self.per_intent:
            lines.append("per intent (expected):")
            for name, tally in sorted(self.per_intent.items()):
                lines.append(f"  {name:<19} {tally.accuracy:6.1%}  ({tally.correct}/{tally.total})")
        if self.confusions:
            lines.append("confusions (expected -> got):")
            for (want, got), n in sorted(self.confusions.items(), key=lambda kv: -kv[1]):
                lines.append(f"  {want} -> {got}: {n}")
        if self.misses:
            lines.append(f"misses ({len(self.misses)}):")
            lines.extend(f"  {miss}" for miss in self.misses)
        else:
            lines.append("misses: none")
        return "\n".join(lines)


@dataclass(frozen=True)
class Case:
    """One row of an evaluation file (first format: account/window_days/owner/band)."""

    utterance: str
    intent: str
    account: str
    window_days: str
    owner: str
    band: str
    held_out: bool = False


@dataclass(frozen=True)
class QuestionCase:
    """One row of a question-format evaluation file."""

    utterance: str
    intent: str
    accounts: str
    window: str
    scope: str
    band: str
    amount: str
    metric: str
    held_out: bool = False


@dataclass(frozen=True)
class EvalFile:
    """An evaluation TSV read: its cases and its directives."""

    cases: list[Case]
    people: list[str]
    today: date | None
    questions: list[QuestionCase] = field(default_factory=list)

    @property
    def question_format(self) -> bool:
        return bool(self.questions)


def read_eval_file(path: Path) -> EvalFile:
    """The rows of an evaluation TSV (either format) and its #people / #today directives."""
    cases: list[Case] = []
    questions: list[QuestionCase] = []
    people: list[str] = []
    today: date | None = None
    held_out = False
    columns: tuple[str, ...] = FIRST_COLUMNS
    with Path(path).open(encoding="utf-8", newline="") as handle:
        header_seen = False
        for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            if not row or not any(cell.strip() for cell in row):
                continue
            first = row[0]
            if first.startswith("#"):
                directive = first.lower()
                if directive.startswith("#people:"):
                    people.extend(p.strip() for p in first.split(":", 1)[1].split(",") if p.strip())
                elif directive.startswith("#today:"):
                    today = date.fromisoformat(first.split(":", 1)[1].strip())
                elif first.upper().startswith("# HELD-OUT"):
                    held_out = True
                continue
            if not header_seen:
                header_seen = True
                if first.strip().lower() == "utterance":
                    names = tuple(c.strip().lower() for c in row)
                    if names[: len(QUESTION_COLUMNS)] == QUESTION_COLUMNS:
                        columns = QUESTION_COLUMNS
                    continue
            width = len(columns)
            cells = [c.strip() for c in [*row, *[""] * width][:width]]
            if columns == QUESTION_COLUMNS:
                questions.append(QuestionCase(*cells, held_out=held_out))
            else:
                cases.append(Case(*cells, held_out=held_out))
    return EvalFile(cases, people, today, questions)


def read_cases(path: Path) -> tuple[list[Case], list[str]]:
    """The rows of a first-format evaluation TSV and the people names it declares."""
    data = read_eval_file(path)
    return data.cases, data.people


def evaluate_file(
    path: Path,
    *,
    index: AccountIndex,
    today: date,
    people: Iterable[str] = (),
    part: str = "all",
) -> EvalReport:
    """Parse every utterance in ``path`` and compare with the expectations (``part``: all,
    tuning or held-out)."""
    data = read_eval_file(Path(path))
    names = [*data.people, *people]
    today = data.today or today
    if data.question_format:
        questions = data.questions
        if part == "tuning":
            questions = [c for c in questions if not c.held_out]
        elif part in ("held-out", "held_out", "heldout"):
            questions = [c for c in questions if c.held_out]
        return evaluate_questions(questions, index=index, today=today, people=names)
    cases = data.cases
    if part == "tuning":
        cases = [c for c in cases if not c.held_out]
    elif part in ("held-out", "held_out", "heldout"):
        cases = [c for c in cases if c.held_out]
    return evaluate_cases(cases, index=index, today=today, people=names)


def evaluate_cases(
    cases: Iterable[Case], *, index: AccountIndex, today: date, people: Iterable[str] = ()
) -> EvalReport:
    """Score parse() against first-format cases."""
    people = list(people)
    total = intent_ok = acc_total = acc_ok = ent_total = ent_ok = 0
    misses: list[str] = []
    for case in cases:
        result = parse(case.utterance, index=index, today=today, people=people)
        total += 1
        wrong: list[str] = []
        got_intent = "" if result.intent in (None, "unknown") else result.intent
        if case.intent != "*":
            if got_intent == case.intent:
                intent_ok += 1
            else:
                wrong.append(f"intent {got_intent or None!r} != {case.intent or None!r}")
        else:
            intent_ok += 1
        got_account = _account_label(result)
        if case.account != "*" and (case.account or got_account):
            acc_total += 1
            if got_account.lower() == case.account.lower():
                acc_ok += 1
            else:
                wrong.append(f"account {got_account or None!r} != {case.account or None!r}")
        window = result.window
        if window is None and result.intent == "renewals_upcoming":
            from domain.nlu.timewindow import default_renewal_window

            window = default_renewal_window(today)
        got_days = "" if window is None else str(window_days(window, today))
        owner = "team" if result.owner == "all" else result.owner
        band = None if result.band == "at_risk" else result.band
        for label, expected, got in (
            ("window_days", case.window_days, got_days),
            ("owner", case.owner, owner or ""),
            ("band", case.band, band or ""),
        ):
            if expected == "*" or not (expected or got):
                continue
            ent_total += 1
            if got.lower() == expected.lower():
                ent_ok += 1
            else:
                wrong.append(f"{label} {got or None!r} != {expected or None!r}")
        if wrong:
            misses.append(f"{case.utterance!r}: " + "; ".join(wrong))
    return EvalReport(total, intent_ok, acc_total, acc_ok, ent_total, ent_ok, misses)


def evaluate_questions(
    cases: Iterable[QuestionCase],
    *,
    index: AccountIndex,
    today: date,
    people: Iterable[str] = (),
) -> EvalReport:
    """Score parse() against question-format cases: intent, accounts, and each entity."""
    people = list(people)
    total = intent_ok = 0
    accounts = Tally()
    per_entity = {name: Tally() for name in ENTITY_COLUMNS}
    per_intent: dict[str, Tally] = {}
    confusions: dict[tuple[str, str], int] = {}
    misses: list[str] = []
    for case in cases:
        result = parse(case.utterance, index=index, today=today, people=people)
        got = question_labels(result)
        total += 1
        wrong: list[str] = []
        if case.intent != "*":
            ok = got["intent"] == case.intent
            intent_ok += ok
            per_intent.setdefault(case.intent, Tally()).add(ok)
            if not ok:
                wrong.append(f"intent {got['intent']!r} != {case.intent!r}")
                key = (case.intent, got["intent"])
                confusions[key] = confusions.get(key, 0) + 1
        else:
            intent_ok += 1
        if case.accounts != "*" and (case.accounts or got["accounts"]):
            ok = _norm_accounts(got["accounts"]) == _norm_accounts(case.accounts)
            accounts.add(ok)
            if not ok:
                wrong.append(f"accounts {got['accounts'] or None!r} != {case.accounts or None!r}")
        for name in ENTITY_COLUMNS:
            expected = getattr(case, name)
            if expected == "*" or not (expected or got[name]):
                continue
            ok = got[name].lower() == expected.lower()
            per_entity[name].add(ok)
            if not ok:
                wrong.append(f"{name} {got[name] or None!r} != {expected or None!r}")
        if wrong:
            misses.append(f"{case.utterance!r}: " + "; ".join(wrong))
    entity_total = sum(t.total for t in per_entity.values())
    entity_ok = sum(t.correct for t in per_entity.values())
    return EvalReport(
        total,
        intent_ok,
        accounts.total,
        accounts.correct,
        entity_total,
        entity_ok,
        misses,
        per_intent=per_intent,
        per_entity=per_entity,
        confusions=confusions,
    )


def question_labels(result: ParseResult) -> dict[str, str]:
    """A parse as the question format writes it (the same strings as an evaluation file)."""
    window = result.window
    return {
        "intent": result.intent or "unknown",
        "accounts": "|".join(_mention_label(m.resolution) for m in result.accounts),
        "window": "" if window is None else f"{window.start.isoformat()}..{window.end.isoformat()}",
        "scope": result.scope or "",
        "band": result.band or "",
        "amount": result.amount.label if result.amount else "",
        "metric": result.metric or "",
    }


def _mention_label(resolution) -> str:  # type: ignore[no-untyped-def]
    if resolution.status in ("ambiguous", "none") or resolution.name is None:
        return resolution.status
    return resolution.name


def _norm_accounts(text: str) -> list[str]:
    return [part.strip().lower() for part in text.split("|") if part.strip()]


def _account_label(result: ParseResult) -> str:
    if result.account is None:
        return ""
    if result.account.status in ("ambiguous", "none"):
        return result.account.status
    return result.account.name or ""
