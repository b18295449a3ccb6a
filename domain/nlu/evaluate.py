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

# TSV format (header required):
#   utterance <TAB> intent <TAB> account <TAB> window_days <TAB> owner <TAB> band
# - An empty cell expects nothing: intent None, no account, no window, no owner, no band.
# - "*" means don't care.
# - account: the expected account's name, or "ambiguous" / "none" for that resolution status.
# - window_days: days from today to the window's end (negative: from today back to its start, for
#   windows in the past), see domain.nlu.timewindow.window_days.
# - Lines starting with "#" are comments; "#people: Dana,Marco" declares the people names the
#   parser should know as owners; "#today: 2026-11-23" pins the date the expectations were written
#   against (it wins over the ``today`` argument, so the file checks the same on any day); a line
#   starting with "# HELD-OUT" starts the held-out part.
# Accuracy counts: intent over every row; account and each entity over the rows where something
# was expected or found (agreeing on "nothing" is not counted as a success).


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
        """A human report: the three accuracies, then every miss."""
        lines = [
            f"utterances: {self.total}",
            f"intent accuracy:  {self.intent_accuracy:6.1%}  ({self.intent_correct}/{self.total})",
            f"account accuracy: {self.account_accuracy:6.1%}  "
            f"({self.account_correct}/{self.account_total})",
            f"entity accuracy:  {self.entity_accuracy:6.1%}  "
            f"({self.entity_correct}/{self.entity_total})",
        ]
        if self.misses:
            lines.append(f"misses ({len(self.misses)}):")
            lines.extend(f"  {miss}" for miss in self.misses)
        else:
            lines.append("misses: none")
        return "\n".join(lines)


@dataclass(frozen=True)
class Case:
    """One row of the evaluation file."""

    utterance: str
    intent: str
    account: str
    window_days: str
    owner: str
    band: str
    held_out: bool = False


@dataclass(frozen=True)
class EvalFile:
    """An evaluation TSV read: its cases and its directives."""

    cases: list[Case]
    people: list[str]
    today: date | None


def read_eval_file(path: Path) -> EvalFile:
    """The rows of an evaluation TSV and its #people / #today directives."""
    cases: list[Case] = []
    people: list[str] = []
    today: date | None = None
    held_out = False
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
                    continue
            cells = [*row, "", "", "", "", ""][:6]
            cases.append(Case(*(c.strip() for c in cells), held_out=held_out))
    return EvalFile(cases, people, today)


def read_cases(path: Path) -> tuple[list[Case], list[str]]:
    """The rows of an evaluation TSV and the people names it declares."""
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
    cases, names = data.cases, [*data.people, *people]
    today = data.today or today
    if part == "tuning":
        cases = [c for c in cases if not c.held_out]
    elif part in ("held-out", "held_out", "heldout"):
        cases = [c for c in cases if c.held_out]
    return evaluate_cases(cases, index=index, today=today, people=names)


def evaluate_cases(
    cases: Iterable[Case], *, index: AccountIndex, today: date, people: Iterable[str] = ()
) -> EvalReport:
    """Score parse() against a list of cases."""
    people = list(people)
    total = intent_ok = acc_total = acc_ok = ent_total = ent_ok = 0
    misses: list[str] = []
    for case in cases:
        result = parse(case.utterance, index=index, today=today, people=people)
        total += 1
        wrong: list[str] = []
        if case.intent != "*":
            if (result.intent or "") == case.intent:
                intent_ok += 1
            else:
                wrong.append(f"intent {result.intent!r} != {case.intent or None!r}")
        else:
            intent_ok += 1
        got_account = _account_label(result)
        if case.account != "*" and (case.account or got_account):
            acc_total += 1
            if got_account.lower() == case.account.lower():
                acc_ok += 1
            else:
                wrong.append(f"account {got_account or None!r} != {case.account or None!r}")
        got_days = "" if result.window is None else str(window_days(result.window, today))
        for label, expected, got in (
            ("window_days", case.window_days, got_days),
            ("owner", case.owner, result.owner or ""),
            ("band", case.band, result.band or ""),
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


def _account_label(result: ParseResult) -> str:
    if result.account is None:
        return ""
    if result.account.status in ("ambiguous", "none"):
        return result.account.status
    return result.account.name or ""
