"""What a question asked, as the first line of every answer says it, and the constraints it could not use."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from domain.nlu import ParseResult
from domain.nlu.entities import METRIC_LABELS, Amount, Order
from domain.nlu.timewindow import TimeWindow, describe

BAND_PHRASES = {
    "red": "red only",
    "amber": "amber only",
    "green": "green only",
    "at_risk": "red and amber",
}
SEGMENT_NAMES = {"enterprise": "enterprise", "mid-market": "mid-market", "smb": "SMB"}


@dataclass(frozen=True)
class Constraints:
    """The constraints of a question a handler can apply (or must name as not applied)."""

    window: TimeWindow | None = None
    owner: str | None = None
    band: str | None = None
    amount: Amount | None = None
    segment: str | None = None
    order: Order | None = None
    metrics: tuple[str, ...] = ()
    accounts: tuple[int, ...] = ()
    account_names: tuple[str, ...] = ()
    chart: str | None = None

    @classmethod
    def of(cls, parsed: ParseResult | None) -> Constraints:
        if parsed is None:
            return cls()
        resolved = parsed.resolved_accounts
        return cls(
            window=parsed.window,
            owner=parsed.owner,
            band=parsed.band,
            amount=parsed.amount,
            segment=parsed.segment,
            order=parsed.order,
            metrics=parsed.metrics,
            accounts=tuple(r.account_id for r in resolved if r.account_id is not None),
            account_names=tuple(r.name or "" for r in resolved),
            chart=parsed.chart,
        )

    def phrases(self) -> dict[str, str]:
        """Each stated constraint as an answer names it ("red only", "over $100k")."""
        out: dict[str, str] = {}
        if self.window is not None:
            out["window"] = window_phrase(self.window)
        if self.owner is not None:
            out["scope"] = {
                "me": "your book",
                "team": "your team's book",
                "all": "all accounts",
            }.get(self.owner, f"{self.owner}'s book")
        if self.band is not None:
            out["band"] = BAND_PHRASES.get(self.band, self.band)
        if self.amount is not None:
            out["amount"] = self.amount.phrase
        if self.segment is not None:
            out["segment"] = f"{SEGMENT_NAMES.get(self.segment, self.segment)} only"
        if self.order is not None and self.order.phrase:
            out["order"] = self.order.phrase
        if self.metrics:
            out["metric"] = " and ".join(METRIC_LABELS.get(m, m) for m in self.metrics)
        if len(self.accounts) > 1:
            out["accounts"] = ", ".join(self.account_names)
        # A chart asked for is drawn by handlers.charts.with_charts, which says when there is none.
        return out

    def not_applied(self, applied: AbstractSet[str], why: str) -> list[str]:
        """The stated constraints this answer does not use, each named with the reason."""
        return [
            f"“{phrase}” not applied: {why}"
            for kind, phrase in self.phrases().items()
            if kind not in applied
        ]


# Window labels that read on their own after a noun: "this month", "until end of March".
_STANDALONE = ("this", "until", "by", "before", "since", "through", "till", "up", "prior", "ahead")


def window_phrase(window: TimeWindow, *, default: bool = False) -> str:
    """How a window reads after a noun, with its dates: "in the next 90 days (23 Nov 2026 – 21 Feb
    2027, default)", "this month (1 – 30 Nov 2026)", "1 Jan – 15 Feb 2027"."""
    dates = describe(window)
    if window.label == dates:
        return f"{dates} (default)" if default else dates
    words = window.label.lower().split()
    first = words[0] if words else ""
    relative = first in ("next", "last", "past", "previous", "coming")
    if relative and len(words) > 2:
        label = f"in the {window.label}"  # "in the next 90 days"; "next quarter" reads alone
    elif relative or first in _STANDALONE or first == "year":
        label = window.label
    else:
        label = f"in {window.label}"
    return f"{label} ({dates}" + (", default)" if default else ")")


def understood(subject: str, window: str | None, parts: list[str | None], result: str) -> str:
    """The first line of an answer: "Renewals 1 Jan – 15 Feb 2027, your book, red only: 1 renewal"."""
    head = subject + (f" {window}" if window else "")
    head += "".join(f", {p}" for p in parts if p)
    return f"{head}: {result}"


def plural(n: int, noun: str, plural_form: str | None = None) -> str:
    return f"{n} {noun if n == 1 else (plural_form or noun + 's')}"


def understanding(line: str, not_applied: list[str]) -> dict[str, Any]:
    """The context keys every answer carries: the understood line and what was not applied."""
    return {"understood": line, "not_applied": not_applied}


def with_notes(text: str, not_applied: list[str]) -> str:
    """A plain-text fallback with the not-applied notes after it."""
    if not not_applied:
        return text
    return text + " (" + "; ".join(not_applied) + ")"
