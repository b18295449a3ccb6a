"""Two or more accounts side by side: health, trend, money, renewal, plan and escalations."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from domain.accounts_index import Resolution
from domain.metrics import nps
from domain.numbers import round_half_away
from handlers.accounts import account_row, not_here_reply, resolution_reply, scores_on
from handlers.context import ChatContext
from handlers.portfolio import _overdue_rows, _rows
from handlers.reply import Reply
from handlers.understanding import Constraints, understanding, understood, with_notes
from storage.models import Account, Escalation, SurveyResponse

MAX_ACCOUNTS = 6
NPS_DAYS = 90


def compare_accounts(
    session: Session,
    *,
    ctx: ChatContext,
    resolutions: list[Resolution],
    constraints: Constraints | None = None,
) -> Reply:
    """The named accounts in one table; a name that fits several (or none) is asked about first."""
    c = constraints or Constraints()
    for res in resolutions:
        if res.account_id is None or res.status in ("ambiguous", "none"):
            return resolution_reply(res, "compare_accounts")
    ids: list[int] = []
    for res in resolutions:
        if res.account_id is not None and res.account_id not in ids:
            ids.append(res.account_id)
    if ctx.external and any(i not in ctx.allowed_account_ids for i in ids):
        return not_here_reply()
    if len(ids) < 2:
        text = "Name two or more accounts to compare, e.g. “acme vs globex”."
        return Reply(template="notice", context={"text": text, "message": text}, text=text)
    shown, dropped = ids[:MAX_ACCOUNTS], ids[MAX_ACCOUNTS:]
    accounts = [session.get(Account, i) for i in shown]
    live = [a for a in accounts if a is not None]
    rows = {r["id"]: r for r in _rows(session, live, ctx.today)}
    today_scores = scores_on(session, shown, ctx.today)
    month_ago = scores_on(session, shown, ctx.today - timedelta(days=30))
    overdue: dict[int, int] = {}
    for m in _overdue_rows(session, ctx, shown):
        overdue[m["account_id"]] = overdue.get(m["account_id"], 0) + 1
    escalations = dict(
        session.exec(
            select(Escalation.account_id, func.count(Escalation.id))
            .where(col(Escalation.account_id).in_(shown), Escalation.status != "resolved")
            .group_by(Escalation.account_id)
        ).all()
    )
    nps_scores: dict[int, list[int]] = {}
    for account_id, score in session.exec(
        select(SurveyResponse.account_id, SurveyResponse.score).where(
            col(SurveyResponse.account_id).in_(shown),
            SurveyResponse.kind == "nps",
            SurveyResponse.responded_on >= ctx.today - timedelta(days=NPS_DAYS),
            SurveyResponse.responded_on <= ctx.today,
        )
    ).all():
        nps_scores.setdefault(account_id, []).append(score)
    table: list[dict[str, Any]] = []
    for account in live:
        row = rows[account.id or 0]
        past = month_ago.get(account.id or 0)
        current = today_scores.get(account.id or 0)
        scores = nps_scores.get(account.id or 0, [])
        value = nps(scores)
        owner_row = account_row(session, account.id or 0)
        table.append(
            {
                **row,
                "delta_30d": None
                if current is None or past is None
                else round_half_away(current - past),
                "overdue_milestones": overdue.get(account.id or 0, 0),
                "open_escalations": int(escalations.get(account.id or 0, 0)),
                "nps": None if value is None else round(value),
                "nps_responses": len(scores),
                "segment": account.segment,
                "owner": owner_row.owner_name if owner_row is not None else None,
            }
        )
    not_applied = c.not_applied({"accounts"}, "a comparison shows each account as it is today")
    if dropped:
        not_applied.append(
            f"{len(dropped)} more account(s) not shown: at most {MAX_ACCOUNTS} side by side"
        )
    best = max((r for r in table if r["score"] is not None), key=lambda r: r["score"], default=None)
    result = "; ".join(
        f"{r['name']} {r['score'] if r['score'] is not None else '—'} {r['band']}" for r in table
    )
    if best is not None and len(table) > 1:
        result += f" — healthiest: {best['name']}"
    line = understood("Comparing", None, [", ".join(r["name"] for r in table)], result)
    line = line.replace("Comparing, ", "Comparing ", 1)
    return Reply(
        template="compare_accounts",
        context={"accounts": table, "total": len(table), **understanding(line, not_applied)},
        text=with_notes(line, not_applied),
    )
