"""Expansion signals across a book (or for one account), naming the health model's rule that fired."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_
from sqlmodel import Session

from domain.health_model import HealthModels
from handlers.accounts import resolve_account
from handlers.context import ChatContext
from handlers.portfolio import (
    LIST_LIMIT,
    NOW,
    Scope,
    _filter_parts,
    _filtered,
    _ordered,
    _refuse_in_external,
    account_facts,
    book_name,
    scope_for,
    with_details,
)
from handlers.reply import Reply
from handlers.understanding import Constraints, plural, understanding, understood, with_notes


def _signals(models: HealthModels, rows: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """Per account: each rule of its model that fires on its latest indicator values."""
    fired: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        model = models.for_segment(row.get("segment"))
        for rule in model.expansion:
            value = row["values"].get(rule.indicator)
            if rule.fires(value):
                fired.setdefault(row["id"], []).append(
                    {
                        "key": rule.key,
                        "rule": rule.label,
                        "indicator": rule.indicator,
                        "value": value,
                    }
                )
    return fired


def _rule_condition(models: HealthModels) -> Any:
    """SQL that keeps the accounts where some model's rule may fire (each row is checked after)."""
    conditions = []
    for model in (models.default, *models.by_segment.values()):
        for rule in model.expansion:
            value = NOW.c.indicator_scores[rule.indicator]["value"].as_float()
            bounds = []
            if rule.at_least is not None:
                bounds.append(value >= rule.at_least)
            if rule.at_most is not None:
                bounds.append(value <= rule.at_most)
            conditions.append(and_(*bounds))
    return or_(*conditions) if conditions else None


def _rule_indicators(models: HealthModels) -> tuple[str, ...]:
    keys: list[str] = []
    for model in (models.default, *models.by_segment.values()):
        for rule in model.expansion:
            if rule.indicator not in keys:
                keys.append(rule.indicator)
    return tuple(keys)


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
    indicators = _rule_indicators(models)
    if account_id is not None:
        found = resolve_account(session, ctx=ctx, intent="expansion_signals", account_id=account_id)
        if isinstance(found, Reply):
            return found
        rows = account_facts(
            session,
            Scope(None, found.name),
            ctx.today,
            account_ids=[found.id or 0],
            indicators=indicators,
        )
        where = found.name
    else:
        refused = _refuse_in_external(ctx)
        if refused:
            return refused
        scope = scope_for(session, ctx, c.owner)
        rows = account_facts(
            session, scope, ctx.today, indicators=indicators, where=_rule_condition(models)
        )
        where = book_name(scope)
    everyone = rows
    fired = _signals(models, rows)
    rows = [r for r in rows if r["id"] in fired]
    for row in rows:
        row["signals"] = fired[row["id"]]
        row["usage"] = row["values"].get("product_usage")
    rows = _ordered(
        _filtered(rows, c), c, lambda r: (-(r["usage"] or 0), -(r["arr"] or 0), r["name"])
    )
    with_details(session, rows[:LIST_LIMIT], ctx.today)
    rules = _rules(models)
    applied = {"scope", "band", "amount", "segment", "order", "accounts"}
    not_applied = c.not_applied(applied, "signals are read from today's health")
    if account_id is not None:
        usage = everyone[0]["values"].get("product_usage") if everyone else None
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
            "accounts": rows[:LIST_LIMIT],
            "total": len(rows),
            "single": account_id is not None,
            **understanding(line, not_applied),
        },
        text=with_notes(line, not_applied),
    )
