"""CS metrics (NRR, GRR, logo churn, NPS, CSAT, CES, LTV, ARPPU, MRR, ARR) for an account, a book, a team or
the company over a period: the figure, the formula's inputs, the window and the sample size."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import func
from sqlmodel import Session, col, select

from domain import metrics as formulas
from domain.nlu.entities import METRIC_LABELS
from domain.nlu.timewindow import TimeWindow
from handlers.accounts import not_here_reply, resolve_account
from handlers.context import ChatContext
from handlers.name_index import pending_flushed
from handlers.portfolio import book_name, scope_for
from handlers.reply import Reply
from handlers.retention import arr_metric_inputs
from handlers.understanding import (
    Constraints,
    plural,
    understanding,
    understood,
    window_phrase,
    with_notes,
)
from storage.models import Account, SurveyResponse

logger = logging.getLogger(__name__)

_ACC = Account.__table__

RETENTION = ("nrr", "grr", "logo_churn")
SURVEYS = ("nps", "csat", "ces")
# Survey metrics without a window look at the last 90 days, and say so (design.md).
SURVEY_DEFAULT_DAYS = 90
# LTV needs a gross margin the data does not hold; the answer states this assumption.
ASSUMED_GROSS_MARGIN = 0.8
# What "metrics" alone shows.
DASHBOARD = ("nrr", "grr", "logo_churn", "nps", "csat", "arr", "mrr")
FORMULAS = {
    "nrr": "(ARR at start + expansion − contraction − churned ARR) ÷ ARR at start",
    "grr": "(ARR at start − contraction − churned ARR) ÷ ARR at start",
    "logo_churn": "customers lost ÷ customers at the start",
    "nps": "% promoters (9–10) − % detractors (0–6)",
    "csat": "% of answers 4 or 5 (of 1–5)",
    "ces": "mean answer on the 1–7 scale",
    "ltv": "monthly revenue per account × gross margin ÷ monthly logo churn",
    "arppu": "MRR ÷ paying accounts",
    "mrr": "ARR ÷ 12",
    "arr": "sum of ARR",
}


@dataclass(frozen=True)
class Book:
    """The accounts a metric covers, and how the answer names them.

    ``ids`` is a list of account ids, a SELECT of them (a scope's owners, a segment), or None
    for every account.
    """

    ids: Any
    name: str
    single: bool = False


@dataclass(frozen=True)
class RetentionInputs:
    """What NRR, GRR, logo churn, ARR, MRR and ARPPU need for a period, per the standard formulas."""

    start: date
    end: date
    starting_arr: float
    expansion: float
    contraction: float
    churned_arr: float
    customers_at_start: int
    customers_lost: int
    ending_arr: float = 0.0  # the ARR in effect when ``end`` ends, new business included
    paying_at_end: int = 0  # accounts with ARR when ``end`` ends
    lost: list[str] = field(default_factory=list)


def retention_inputs(
    session: Session, *, account_ids: Any, start: date, end: date
) -> RetentionInputs:
    """ARR at the period's start, expansion, contraction and churn over it; customers at the start,
    lost; ARR and paying accounts at its end.

    The one place the metrics read revenue: ARR history (handlers.retention), where the ARR an
    account had when ``start`` began is the change in effect then, and every change dated in
    [start, end] is movement. New customers (no ARR when the period began) count in the ending
    ARR but never in NRR/GRR. ``account_ids``: a list, a SELECT of ids, or None for every account.
    """
    found = arr_metric_inputs(session, account_ids, start, end)
    churned = [m.account_id for m in found.accounts if m.movement == "churn"]
    names: list[str] = []
    if churned:
        names = sorted(
            session.exec(select(Account.name).where(col(Account.id).in_(churned[:200]))).all()
        )
    return RetentionInputs(
        start=start,
        end=end,
        starting_arr=found.starting_arr,
        expansion=found.expansion,
        contraction=found.contraction,
        churned_arr=found.churned,
        customers_at_start=found.customers_at_start,
        customers_lost=found.customers_lost,
        ending_arr=found.ending_arr,
        paying_at_end=sum(1 for m in found.accounts if m.arr_end > 0),
        lost=names,
    )


def _cached(
    session: Session,
    ids: Any,
    start: date,
    end: date,
    cache: dict[tuple[date, date], RetentionInputs],
) -> RetentionInputs:
    """The period's inputs for the answer's accounts, read once per answer and period."""
    if (start, end) not in cache:
        cache[(start, end)] = retention_inputs(session, account_ids=ids, start=start, end=end)
    return cache[(start, end)]


def _ids_or_none(account_ids: Any) -> Any:
    """An IN operand: a SELECT as it is, a list (an empty one matching nothing)."""
    if isinstance(account_ids, list):
        return account_ids or [-1]
    return account_ids


def _money(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 1_000_000:
        return f"${value / 1_000_000:.2f}M"
    if abs(value) >= 10_000:
        return f"${value / 1_000:.0f}k"
    return f"${value:,.0f}"


def _pct(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    if 0 < abs(value) < 0.01:
        digits = max(digits, 2)  # 1 of 9,802 customers is not "0.0%"
    return f"{100 * value:.{digits}f}%"


def _book(
    session: Session, ctx: ChatContext, c: Constraints, account_id: int | None
) -> Book | Reply:
    """The accounts asked about: one named account, else the scope's (churned ones included)."""
    if account_id is not None:
        found = resolve_account(session, ctx=ctx, intent="metrics", account_id=account_id)
        if isinstance(found, Reply):
            return found
        return Book([found.id or 0], found.name, single=True)
    if ctx.external:
        return not_here_reply()
    scope = scope_for(session, ctx, c.owner)
    if scope.owner_ids is None and c.segment is None and c.amount is None:
        return Book(None, book_name(scope))
    ids = select(Account.id)
    if scope.owner_ids is not None:
        ids = ids.where(col(Account.owner_id).in_(sorted(scope.owner_ids) or [-1]))
    if c.segment is not None:
        ids = ids.where(func.lower(Account.segment) == c.segment)
    if c.amount is not None:
        ids = ids.where(_amount_clause(c))
    return Book(ids, book_name(scope))


def _amount_clause(c: Constraints) -> Any:
    amount = c.amount
    assert amount is not None
    column = col(Account.arr)
    return {
        ">": column > amount.value,
        ">=": column >= amount.value,
        "<": column < amount.value,
        "<=": column <= amount.value,
    }[amount.op]


def _window(c: Constraints, today: date, metric: str) -> tuple[TimeWindow, bool, bool]:
    """(window, default?, cut at today?) for a metric: surveys 90 days, the rest 12 months."""
    if c.window is not None:
        end = min(c.window.end, today)
        return TimeWindow(c.window.start, end, c.window.label), False, end < c.window.end
    if metric in SURVEYS:
        start = today - timedelta(days=SURVEY_DEFAULT_DAYS)
        return TimeWindow(start, today, f"last {SURVEY_DEFAULT_DAYS} days"), True, False
    return TimeWindow(today - relativedelta(years=1), today, "last 12 months"), True, False


def _surveys(session: Session, ids: Any, kind: str, window: TimeWindow) -> list[int]:
    """Every answer of the window, as scores (counted per score in SQL: a company has tens of
    thousands of answers a quarter, and at most 11 distinct scores)."""
    survey = SurveyResponse.__table__
    query = (
        select(survey.c.score, func.count())
        .where(
            survey.c.kind == kind,
            survey.c.responded_on >= window.start,
            survey.c.responded_on <= window.end,
        )
        .group_by(survey.c.score)
    )
    if ids is not None:
        query = query.where(survey.c.account_id.in_(_ids_or_none(ids)))
    pending_flushed(session)
    scores: list[int] = []
    for score, count in session.connection().execute(query).all():
        scores.extend([int(score)] * count)
    return scores


def _result(metric: str, **values: Any) -> dict[str, Any]:
    return {
        "metric": metric,
        "label": METRIC_LABELS[metric],
        "formula": FORMULAS[metric],
        "inputs": [],
        "value": None,
        "display": "—",
        "sample": None,
        "note": None,
        **values,
    }


def _retention(metric: str, inputs: RetentionInputs, single: bool) -> dict[str, Any]:
    base = [
        {"label": "ARR at start", "value": _money(inputs.starting_arr)},
        {"label": "expansion", "value": _money(inputs.expansion)},
        {"label": "contraction", "value": _money(inputs.contraction)},
        {"label": "churned ARR", "value": _money(inputs.churned_arr)},
    ]
    sample = plural(inputs.customers_at_start, "customer") + " at the start"
    if metric == "logo_churn":
        if single:
            return _result(
                metric,
                note="logo churn needs a group of customers; for one account it is 0 or 100%",
                sample=sample,
            )
        rate = formulas.logo_churn_rate(inputs.customers_at_start, inputs.customers_lost)
        lost = f"{inputs.customers_lost} of {inputs.customers_at_start} customers lost"
        if inputs.lost:
            lost += " (" + ", ".join(inputs.lost[:5]) + ("…" if len(inputs.lost) > 5 else "") + ")"
        return _result(
            metric,
            value=rate,
            display=_pct(rate),
            inputs=[
                {"label": "customers at start", "value": str(inputs.customers_at_start)},
                {"label": "customers lost", "value": str(inputs.customers_lost)},
            ],
            sample=sample,
            note=None if rate is not None else "no customers at the start of the window",
            detail=lost,
        )
    if metric == "nrr":
        value = formulas.nrr(
            inputs.starting_arr, inputs.expansion, inputs.contraction, inputs.churned_arr
        )
    else:
        value = formulas.grr(inputs.starting_arr, inputs.contraction, inputs.churned_arr)
        base = [b for b in base if b["label"] != "expansion"]
    return _result(
        metric,
        value=value,
        display=_pct(value),
        inputs=base,
        sample=sample,
        note=None if value is not None else "no ARR at the start of the window",
    )


def _survey(metric: str, scores: list[int]) -> dict[str, Any]:
    sample = plural(len(scores), "response")
    if not scores:
        return _result(metric, sample=sample, note="no survey responses in this window")
    if metric == "nps":
        value = formulas.nps(scores)
        promoters = sum(1 for s in scores if s >= 9)
        detractors = sum(1 for s in scores if s <= 6)
        return _result(
            metric,
            value=value,
            display=f"{value:+.0f}" if value is not None else "—",
            inputs=[
                {"label": "promoters", "value": str(promoters)},
                {"label": "passives", "value": str(len(scores) - promoters - detractors)},
                {"label": "detractors", "value": str(detractors)},
            ],
            sample=sample,
        )
    if metric == "csat":
        value = formulas.csat(scores)
        happy = sum(1 for s in scores if s >= 4)
        return _result(
            metric,
            value=value,
            display=f"{value:.0f}%" if value is not None else "—",
            inputs=[{"label": "answers 4–5", "value": f"{happy} of {len(scores)}"}],
            sample=sample,
        )
    value = formulas.ces(scores)
    return _result(
        metric,
        value=value,
        display=f"{value:.1f} / 7" if value is not None else "—",
        inputs=[{"label": "answers", "value": str(len(scores))}],
        sample=sample,
    )


def metrics_answer(
    session: Session,
    *,
    ctx: ChatContext,
    account_id: int | None = None,
    constraints: Constraints | None = None,
) -> Reply:
    """The metrics asked for (all of a small dashboard when none is named), with inputs and sample."""
    c = constraints or Constraints()
    if account_id is None and c.accounts:
        account_id = c.accounts[0]
    book = _book(session, ctx, c, account_id)
    if isinstance(book, Reply):
        return book
    asked = list(c.metrics) or list(DASHBOARD)
    results: list[dict[str, Any]] = []
    windows: dict[str, tuple[TimeWindow, bool, bool]] = {}
    retention_cache: dict[tuple[date, date], RetentionInputs] = {}
    for metric in asked:
        window, default, cut = _window(c, ctx.today, metric)
        windows[metric] = (window, default, cut)
        if window.start > ctx.today:
            results.append(
                _result(metric, note="this period has not started yet: nothing to measure")
            )
            continue
        if metric in RETENTION:
            inputs = _cached(session, book.ids, window.start, window.end, retention_cache)
            results.append(_retention(metric, inputs, book.single))
        elif metric in SURVEYS:
            results.append(_survey(metric, _surveys(session, book.ids, metric, window)))
        else:
            results.append(_book_figure(session, metric, book, window, ctx.today, retention_cache))
        results[-1]["window"] = {
            "start": window.start.isoformat(),
            "end": window.end.isoformat(),
            "label": window_phrase(window, default=default) + (" so far" if cut else ""),
            "default": default,
        }
    applied = {"window", "scope", "metric", "segment", "amount", "accounts"}
    not_applied = c.not_applied(applied, "metrics are computed over accounts, not filtered by this")
    if len(c.accounts) > 1:
        not_applied.append(
            f"“{', '.join(c.account_names[1:])}” not applied: one account at a time for metrics "
            f"(shown: {book.name})"
        )
    filters = [p for k, p in c.phrases().items() if k in ("segment", "amount")]
    line = _line(results, windows, book, filters)
    return Reply(
        template="metrics",
        context={
            "subject": book.name,
            "single": book.single,
            "results": results,
            **understanding(line, not_applied),
        },
        text=with_notes(line, not_applied),
    )


def _book_figure(
    session: Session,
    metric: str,
    book: Book,
    window: TimeWindow,
    today: date,
    retention_cache: dict[tuple[date, date], RetentionInputs],
) -> dict[str, Any]:
    day = min(window.end, today)
    at_end = _cached(session, book.ids, window.start, day, retention_cache)
    total, paying = at_end.ending_arr, at_end.paying_at_end
    sample = plural(paying, "paying account")
    if metric == "arr":
        return _result(metric, value=total, display=_money(total), sample=sample)
    mrr = formulas.mrr(total)
    if metric == "mrr":
        return _result(
            metric,
            value=mrr,
            display=_money(mrr),
            inputs=[{"label": "ARR", "value": _money(total)}],
            sample=sample,
        )
    if metric == "arppu":
        value = formulas.arppu(mrr, paying)
        return _result(
            metric,
            value=value,
            display=(_money(value) + " a month") if value is not None else "—",
            inputs=[
                {"label": "MRR", "value": _money(mrr)},
                {"label": "paying accounts", "value": str(paying)},
            ],
            sample=sample,
            note=None if value is not None else "no paying accounts",
        )
    # LTV: a book's average account, or the account itself, against the churn of the company
    # (one account's own churn is 0 or 1) or of the book over the last 12 months.
    year_ago = today - relativedelta(years=1)
    if book.single:
        churn = retention_inputs(session, account_ids=None, start=year_ago, end=today)
    else:
        churn = _cached(session, book.ids, year_ago, today, retention_cache)
    yearly = formulas.logo_churn_rate(churn.customers_at_start, churn.customers_lost)
    monthly = None if yearly is None else yearly / 12
    arpa = formulas.arppu(mrr, paying)
    value = (
        None
        if arpa is None or monthly is None
        else formulas.ltv(arpa, ASSUMED_GROSS_MARGIN, monthly)
    )
    whose = "company" if book.single else "book"
    note = None
    if monthly == 0:
        note = (
            f"no customers lost in the last 12 months ({whose}): the simple formula gives no "
            "finite lifetime"
        )
    elif arpa is None:
        note = "no paying accounts"
    return _result(
        metric,
        value=value,
        display=_money(value),
        inputs=[
            {"label": "monthly revenue per account", "value": _money(arpa)},
            {"label": "gross margin (assumed)", "value": f"{ASSUMED_GROSS_MARGIN:.0%}"},
            {
                "label": f"monthly logo churn ({whose}, last 12 months)",
                "value": _pct(monthly, 2),
            },
        ],
        sample=f"{sample}; churn from {plural(churn.customers_at_start, 'customer')}",
        note=note,
    )


def _line(
    results: list[dict[str, Any]],
    windows: dict[str, tuple[TimeWindow, bool, bool]],
    book: Book,
    filters: list[str],
) -> str:
    """ "NPS for your book, last 90 days (25 Aug – 23 Nov 2026, default): +33 from 12 responses"."""
    labels = {r["window"]["label"] for r in results if "window" in r}
    same_window = len(labels) == 1
    subject = results[0]["label"] if len(results) == 1 else "Metrics"
    subject += f" for {book.name}"
    window = next(iter(labels)) if same_window else None
    bits = []
    for r in results:
        if r["value"] is None:
            body = r["note"] or "no figure"
        else:
            body = r["display"]
            if r["metric"] in SURVEYS:
                body += f" from {r['sample']}"
            elif r["metric"] == "logo_churn" and r.get("detail"):
                body += f" ({r['detail']})"
        if not same_window and "window" in r:
            body += f" [{r['window']['label']}]"
        bits.append(body if len(results) == 1 else f"{r['label']} {body}")
    return understood(subject, window, filters, "; ".join(bits))
