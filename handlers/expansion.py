"""Expansion signals across a book (or for one account), naming the health model's rule that fired."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from domain.health_model import HealthModels
from handlers.accounts import latest_snapshots, resolve_account
from handlers.context import ChatContext
from handlers.portfolio import (
    _accounts,
    _filter_parts,
    _filtered,
    _ordered,
    _refuse_in_external,
    _rows,
    scope_for,
)
from handlers.reply import Reply
from handlers.understanding import Constraints, plural, understanding, understood, with_notes


def _signals(
    models: HealthModels, accounts: list[Any], snapshots: dict[int, Any]
) -> dict[int, list[dict[str, Any]]]:
    """Per account: each rule of its model that fires on the latest snapshot, with the value."""
    fired: dict[int, list[dict[str, Any]]] = {}
    for account in accounts:
        snap = snapshots.get(account.id or 0)
        if snap is None:
            continue
        model = models.for_segment(account.segment)
        for rule in model.expansion:
            value = (snap.indicator_scores.get(rule.indicator) or {}).get("value")
            if rule.fires(value):
                fired.setdefault(account.id or 0, []).append(
                    {
                        "key": rule.key,
                        "rule": rule.label,
                        "indicator": rule.indicator,
                        "value": value,
                    }
                )
    return fired


def _rules(models: HealthModels) -> list[str]:
    labels: list[str] = []
    for model in (models.default, *models.by_segment.values()):
        for rule in model.expansion:
            if rule.label not in labels:
                labels.append(rule.label)
    return labels


def expansion_signals(
    session: Session,
    *,
    ctx: ChatContext,
    models: HealthModels,
    account_id: int | None = None,
    constraints: Constraints | None = None,
) -> Reply:
    """Accounts where an expansion rule fires (default rule: active seats ≥ 90% of licensed seats)."""
    c = constraints or Constraints()
    if account_id is None and c.accounts:
        account_id = c.accounts[0]
    if account_id is not None:
        found = resolve_account(session, ctx=ctx, intent="expansion_signals", account_id=account_id)
        if isinstance(found, Reply):
            return found
        accounts = [found]
        where = found.name
    else:
        refused = _refuse_in_external(ctx)
        if refused:
            return refused
        scope = scope_for(session, ctx, c.owner)
        accounts = _accounts(session, scope)
        where = scope.book
    snapshots = latest_snapshots(session, [a.id or 0 for a in accounts], ctx.today)
    fired = _signals(models, accounts, snapshots)
    rows = [r for r in _rows(session, [a for a in accounts if a.id in fired], ctx.today)]
    seats = {a.id: a.licensed_seats for a in accounts}
    for row in rows:
        row["signals"] = fired[row["id"]]
        row["licensed_seats"] = seats.get(row["id"])
        row["usage"] = next(
            (s["value"] for s in row["signals"] if s["indicator"] == "product_usage"), None
        )
    rows = _ordered(
        _filtered(rows, c), c, lambda r: (-(r["usage"] or 0), -(r["arr"] or 0), r["name"])
    )
    rules = _rules(models)
    applied = {"scope", "band", "amount", "segment", "order", "accounts"}
    not_applied = c.not_applied(applied, "signals are read from today's health")
    if account_id is not None:
        snap = snapshots.get(account_id)
        usage = None
        if snap is not None:
            usage = (snap.indicator_scores.get("product_usage") or {}).get("value")
        if rows:
            result = "yes — " + "; ".join(s["rule"] for s in rows[0]["signals"])
            if usage is not None:
                result += f" (active seats {usage:.0f}%)"
        else:
            result = "no signal — " + " / ".join(rules) + " does not hold"
            if usage is not None:
                result += f" (active seats {usage:.0f}%)"
        line = understood(f"Expansion signals for {where}", None, [], result)
    else:
        result = (
            f"{plural(len(rows), 'account')}: "
            + ", ".join(r["name"] for r in rows[:5])
            + ("…" if len(rows) > 5 else "")
            if rows
            else "none"
        )
        line = understood(
            "Expansion signals",
            None,
            [where, *_filter_parts(c, applied), "rule: " + "; ".join(rules)],
            result,
        )
    return Reply(
        template="expansion_signals",
        context={
            "scope": where,
            "rules": rules,
            "accounts": rows,
            "total": len(rows),
            "single": account_id is not None,
            **understanding(line, not_applied),
        },
        text=with_notes(line, not_applied),
    )
