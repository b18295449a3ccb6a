"""The questions a slash command, a "Share" or a "which account?" button can ask, each mapped to its handler."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from domain.health_model import HealthModels
from handlers.context import ChatContext
from handlers.reply import Reply


@dataclass(frozen=True)
class Ask:
    """A re-askable request: which kind, the user's text, and the account once it is known.

    It rides in button values (Share in channel, account choices), so a click can re-run the
    handler for the clicker in the clicker's channel, and channel restrictions apply again.
    """

    kind: str
    text: str = ""
    account_id: int | None = None

    def encoded(self) -> dict[str, Any]:
        data: dict[str, Any] = {"k": self.kind}
        if self.account_id is not None:
            data["a"] = self.account_id
        elif self.text:
            data["t"] = self.text[:500]
        return data

    @classmethod
    def decoded(cls, data: dict[str, Any]) -> Ask | None:
        kind = data.get("k")
        if not isinstance(kind, str) or kind not in KINDS:
            return None
        account_id = data.get("a")
        if not isinstance(account_id, int) or isinstance(account_id, bool):
            account_id = None
        elif not 0 < account_id < 2**53:
            return None  # no account has such an id: a tampered button
        text = data.get("t")
        return cls(
            kind=str(kind), text=text[:500] if isinstance(text, str) else "", account_id=account_id
        )


Run = Callable[[Session, ChatContext, HealthModels, Ask], Reply]
_DAYS = re.compile(r"(\d{1,4})")


def _days(text: str, default: int = 90) -> int:
    found = _DAYS.search(text)
    return max(1, min(int(found.group(1)), 730)) if found else default


def _health(session: Session, ctx: ChatContext, models: HealthModels, ask: Ask) -> Reply:
    from handlers.charts import asks_for_chart
    from handlers.health import account_health

    if asks_for_chart(ask.text):
        # "/health acme chart": the conversational parser reads the account and the chart flag.
        return _ask(session, ctx, models, Ask(kind="ask", text=f"health {ask.text}"))
    return account_health(
        session, ctx=ctx, models=models, query=ask.text or None, account_id=ask.account_id
    )


def _changes(session: Session, ctx: ChatContext, models: HealthModels, ask: Ask) -> Reply:
    from handlers.health import account_changes

    return account_changes(
        session, ctx=ctx, models=models, query=ask.text or None, account_id=ask.account_id
    )


def _plan(session: Session, ctx: ChatContext, models: HealthModels, ask: Ask) -> Reply:
    from handlers.charts import asks_for_chart
    from handlers.plan import success_plan

    if asks_for_chart(ask.text):
        return _ask(session, ctx, models, Ask(kind="ask", text=f"plan {ask.text}"))
    return success_plan(session, ctx=ctx, query=ask.text or None, account_id=ask.account_id)


def _overdue(session: Session, ctx: ChatContext, models: HealthModels, ask: Ask) -> Reply:
    from handlers.portfolio import overdue_milestones

    return overdue_milestones(session, ctx=ctx, query=ask.text or None, account_id=ask.account_id)


def _renewals(session: Session, ctx: ChatContext, models: HealthModels, ask: Ask) -> Reply:
    from handlers.portfolio import upcoming_renewals

    if ask.text and not ask.text.isdigit():
        # "/renewals next quarter", "/renewals for marco": the conversational parser reads windows.
        return _ask(session, ctx, models, Ask(kind="ask", text=f"renewals {ask.text}"))
    return upcoming_renewals(session, ctx=ctx, days=_days(ask.text))


def _renewal(session: Session, ctx: ChatContext, models: HealthModels, ask: Ask) -> Reply:
    from handlers.portfolio import account_renewal

    return account_renewal(session, ctx=ctx, query=ask.text or None, account_id=ask.account_id)


def _risks(session: Session, ctx: ChatContext, models: HealthModels, ask: Ask) -> Reply:
    from handlers.portfolio import at_risk

    if ask.text:
        # "/risks red", "/risks team": band and owner come from the conversational parser.
        return _ask(session, ctx, models, Ask(kind="ask", text=f"accounts at risk {ask.text}"))
    return at_risk(session, ctx=ctx)


def _qbr(session: Session, ctx: ChatContext, models: HealthModels, ask: Ask) -> Reply:
    if ask.account_id is not None:
        # A digest's Prep button: that account's prep card, the draft pack following as a file.
        from handlers.qbr import qbr_prep
        from handlers.qbr_pack import with_pack

        reply = qbr_prep(session, ctx=ctx, models=models, account_id=ask.account_id)
        return with_pack(reply, variant="executive", today=ctx.today)
    # "/qbr acme [operational]": the prep card, with the draft pack following as a file.
    if ask.account_id is None:
        return _ask(session, ctx, models, Ask(kind="ask", text=f"qbr {ask.text}"))
    from handlers.qbr import qbr_prep
    from handlers.qbr_pack import with_pack

    # A "Prep" button names the account by id.
    reply = qbr_prep(session, ctx=ctx, models=models, account_id=ask.account_id)
    return with_pack(reply, variant="executive", today=ctx.today)


def _mine(session: Session, ctx: ChatContext, models: HealthModels, ask: Ask) -> Reply:
    from handlers.portfolio import my_accounts

    return my_accounts(session, ctx=ctx)


def _why(session: Session, ctx: ChatContext, models: HealthModels, ask: Ask) -> Reply:
    from handlers.explain import explain_health

    return explain_health(
        session, ctx=ctx, models=models, query=ask.text or None, account_id=ask.account_id
    )


def _ask(session: Session, ctx: ChatContext, models: HealthModels, ask: Ask) -> Reply:
    from handlers.ask import answer

    return answer(session, ask.text, ctx, models=models)


KINDS: dict[str, Run] = {
    "health": _health,
    "changes": _changes,
    "plan": _plan,
    "overdue": _overdue,
    "renewals": _renewals,
    "renewal": _renewal,
    "risks": _risks,
    "mine": _mine,
    "qbr": _qbr,
    "why": _why,
    "ask": _ask,
}

# A "which account?" choice carries the intent that asked; these intents can be re-run for an id.
INTENT_KINDS = {
    "account_health": "health",
    "account_changes": "changes",
    "success_plan": "plan",
    "milestones_overdue": "overdue",
    "qbr_prep": "qbr",
    "explain_health": "why",
}


def run(session: Session, ctx: ChatContext, models: HealthModels, ask: Ask) -> Reply:
    return KINDS[ask.kind](session, ctx, models, ask)


def share_of(ask: Ask, reply: Reply) -> Ask:
    """What a Share button re-asks: pinned to the account the reply settled on, when it did."""
    account = reply.context.get("account") if isinstance(reply.context, dict) else None
    has_id = isinstance(account, dict) and bool(account.get("id"))
    if ask.kind in INTENT_KINDS.values() and has_id:
        return Ask(kind=ask.kind, account_id=int(account["id"]))  # type: ignore[index]
    if ask.kind == "ask" and reply.intent in INTENT_KINDS and has_id:
        return Ask(kind=INTENT_KINDS[reply.intent], account_id=int(account["id"]))  # type: ignore[index]
    return ask
