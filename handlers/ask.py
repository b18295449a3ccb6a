"""The conversational handler: one message in (command or plain words), the right use case, a Reply out."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlmodel import Session, col, select

from domain.accounts_index import Preference, Resolution
from domain.health_model import HealthModels
from domain.nlu import ParseResult, parse
from domain.nlu.followup import apply_followup
from domain.nlu.timewindow import TimeWindow
from handlers import access, health
from handlers.accounts import unresolved_reply
from handlers.context import ChatContext
from handlers.errors import HandlerError
from handlers.help import help_reply, unknown_reply
from handlers.reply import Reply
from handlers.understanding import Constraints
from storage.models import CSM, ConversationState, utcnow

logger = logging.getLogger(__name__)

# A thread's memory lasts this long after its last turn: long enough for a follow-up, short
# enough that tomorrow's "and its renewal?" is not about today's account.
STATE_TTL = timedelta(hours=2)
# A chat message is cut to this before it is parsed: Slack allows 40,000 characters, and nothing a
# question needs (an account, a window, an escalation title) comes near it.
MAX_MESSAGE_CHARS = 2000
_HELP = re.compile(r"^\W*(help|\?)\W*$", re.IGNORECASE)
# Accounts a person discussed lately rank first when a name fits several (a week, ten at most).
RECENT_TTL = timedelta(days=7)
RECENT_MAX = 10
ACCOUNT_INTENTS = (
    "account_health",
    "success_plan",
    "account_changes",
    "qbr_prep",
    "escalate",
    "explain_health",
)
_SMALL_TALK = re.compile(
    r"^\W*(thanks?( you)?|thx|ty|cheers|great|cool|ok(ay)?|nice|bye|goodbye|see you)\W*$",
    re.IGNORECASE,
)
_SETTINGS = re.compile(
    r"\b(settings?|preferences|digest time|time ?zone|quiet hours|working hours)\b", re.IGNORECASE
)
_CHOICE = re.compile(r"^\s*#?(\d{1,2})\W*$")
# Asking about escalations is not opening one: "open escalations?", "any escalations", "list escalations".
_ESCALATION_QUESTION = re.compile(
    r"\bescalations\b|\b(any|list|show|which|what)\b[^.?!]*\bescalat", re.IGNORECASE
)
# Questions about a named account or, without one, about a book: a name that does not resolve is
# asked about rather than quietly widened to the book.
_NAMED_OR_BOOK = (
    "milestones_overdue",
    "milestones_due",
    "metrics",
    "expansion_signals",
    "renewals_upcoming",
)
_EXAMPLES = {
    "account_health": "health acme",
    "success_plan": "plan acme",
    "account_changes": "what changed at acme",
    "qbr_prep": "qbr acme",
    "escalate": "escalate acme",
    "explain_health": "why did acme drop",
}


def _people(session: Session) -> list[str]:
    return [name.split()[0] for name in session.exec(select(CSM.name)).all() if name]


def load_state(session: Session, key: str | None) -> dict[str, Any] | None:
    if not key:
        return None
    state = session.get(ConversationState, key)
    if state is None or state.expires_at < utcnow():
        return None
    return {
        "intent": state.intent,
        "account_id": state.account_id,
        "account_name": state.entities.get("account_name"),
        "entities": state.entities,
    }


def save_state(
    session: Session,
    key: str | None,
    parsed: ParseResult,
    reply: Reply,
    account_id: int | None,
    account_name: str | None,
) -> None:
    """Remember what this turn was about; a portfolio question forgets the last account."""
    if not key or (
        parsed.intent in (None, "help", "unknown") and reply.template != "account_choices"
    ):
        return
    now = utcnow()
    state = session.get(ConversationState, key) or ConversationState(key=key, expires_at=now)
    pending = (state.entities or {}).get("pending")
    state.intent = parsed.intent
    state.account_id = account_id
    entities = dict(parsed.entities())
    entities["account_name"] = account_name
    if pending and reply.template in ("escalation_draft", "action_confirm"):
        entities["pending"] = pending
    if reply.template == "account_choices":
        # "2" or "#2" in the next turn picks one of these.
        entities["choices"] = reply.context["choices"]
        state.intent = reply.context.get("intent") or parsed.intent
    state.entities = entities
    state.updated_at = now
    state.expires_at = now + STATE_TTL
    session.add(state)
    # Drop expired threads now and then so the table does not grow without bound.
    session.exec(  # type: ignore[call-overload]
        ConversationState.__table__.delete().where(
            col(ConversationState.expires_at) < now - STATE_TTL
        )
    )


def _recent_key(ctx: ChatContext) -> str | None:
    who = ctx.actor.csm_id or ctx.actor.platform_user_id
    return f"recent:{ctx.platform}:{who}" if who else None


def recent_accounts(session: Session, ctx: ChatContext) -> list[int]:
    """The accounts this person discussed lately, most recent first."""
    key = _recent_key(ctx)
    state = session.get(ConversationState, key) if key else None
    if state is None or state.expires_at < utcnow():
        return []
    return [int(i) for i in (state.entities or {}).get("ids", []) if isinstance(i, int)]


def _remember_accounts(session: Session, ctx: ChatContext, ids: list[int]) -> None:
    key = _recent_key(ctx)
    if not key or not ids:
        return
    now = utcnow()
    state = session.get(ConversationState, key) or ConversationState(key=key, expires_at=now)
    old = [i for i in (state.entities or {}).get("ids", []) if i not in ids]
    state.entities = {"ids": [*ids, *old][:RECENT_MAX]}
    state.updated_at = now
    state.expires_at = now + RECENT_TTL
    session.add(state)


def _notice(text: str) -> Reply:
    return Reply(template="notice", context={"text": text, "message": text}, text=text)


def _picked_choice(text: str, previous: dict[str, Any] | None) -> dict[str, Any] | None:
    """The account a bare number picks from the choices offered in the last turn."""
    match = _CHOICE.match(text)
    choices = (previous or {}).get("entities", {}).get("choices") or []
    if not match or not choices:
        return None
    number = int(match.group(1))
    return choices[number - 1] if 1 <= number <= len(choices) else None


def _first_account(parsed: ParseResult) -> tuple[int | None, str | None, Resolution | None]:
    """The first mention: (id, name) when it names one account, else the resolution to ask about."""
    resolution = parsed.account
    if resolution is None:
        return None, None, None
    if resolution.account_id is not None and resolution.status in ("exact", "alias", "fuzzy"):
        return resolution.account_id, resolution.name, None
    return None, None, resolution


def route(
    session: Session,
    parsed: ParseResult,
    ctx: ChatContext,
    *,
    models: HealthModels,
    previous: dict[str, Any] | None = None,
) -> tuple[Reply, int | None, str | None]:
    """Run the use case for a parsed message; returns the Reply and the account it was about."""
    intent = parsed.intent
    account_id, account_name, unresolved = _first_account(parsed)
    c = Constraints.of(parsed)
    if (
        unresolved is not None
        and intent in (*ACCOUNT_INTENTS, *_NAMED_OR_BOOK)
        and (intent != "escalate" or parsed.account_text is not None)
    ):
        return unresolved_reply(ctx, unresolved, intent or "account_health"), None, None
    if intent in (None, "help", "unknown") and _SETTINGS.search(parsed.text):
        from handlers.settings import user_settings

        return user_settings(session, ctx=ctx), None, None
    if intent is None:
        return help_reply(parsed.text, unknown=bool(parsed.text.strip())), None, None
    if intent == "help":
        return help_reply(parsed.text), None, None
    if intent == "unknown":
        return unknown_reply(parsed.text), None, None
    if intent == "escalate":
        return _escalate(session, parsed, ctx, account_id), account_id, account_name
    if intent == "compare_accounts":
        from handlers.compare import compare_accounts

        resolutions = [m.resolution for m in parsed.accounts]
        if len(resolutions) < 2 and previous and previous.get("account_id") and resolutions:
            # "compare it with globex": the account of the last turn and the one named now.
            prev = Resolution(
                "exact",
                str(previous.get("account_name") or ""),
                int(previous["account_id"]),
                previous.get("account_name"),
                (),
            )
            resolutions = [prev, *resolutions]
        return (
            compare_accounts(session, ctx=ctx, resolutions=resolutions, constraints=c),
            None,
            None,
        )
    if (
        intent in ACCOUNT_INTENTS
        and account_id is None
        and not (intent == "qbr_prep" and not parsed.followup)
    ):
        return (
            Reply(
                template="account_not_found",
                context={"query": "", "suggestions": []},
                text=f"Which account? Try “{_EXAMPLES[intent]}”.",
            ),
            None,
            None,
        )
    # The use cases other than the health card are imported when first asked for: a one-shot
    # `csm-bot ask "/health acme"` then loads only what it runs.
    reply = _dispatch(session, parsed, ctx, models, intent, account_id, c)
    if parsed.chart and not reply.attachments:
        from handlers.charts import with_charts

        # "/health acme chart", "show me acme's trend": the answer first, its charts follow.
        reply = with_charts(session, reply, ctx=ctx, models=models, owner=parsed.owner)
    return reply, account_id, account_name


def _dispatch(
    session: Session,
    parsed: ParseResult,
    ctx: ChatContext,
    models: HealthModels,
    intent: str,
    account_id: int | None,
    c: Constraints,
) -> Reply:
    if intent == "account_health":
        reply = health.account_health(session, ctx=ctx, models=models, account_id=account_id)
        return _with_account_notes(
            reply, c, "the health card shows today with its 7- and 30-day trend"
        )
    if intent == "success_plan":
        if parsed.action is not None and parsed.action.kind == "milestone_status":
            from handlers.actions import milestone_change

            return milestone_change(
                session,
                ctx=ctx,
                account_id=account_id or 0,
                words=parsed.action.target_words,
                status=parsed.action.status or "done",
            )
        from handlers import plan

        reply = plan.success_plan(session, ctx=ctx, account_id=account_id)
        return _with_account_notes(reply, c, "a success plan shows all its milestones")
    if intent == "account_changes":
        days = (ctx.today - parsed.window.start).days if parsed.window else 7
        reply = health.account_changes(
            session, ctx=ctx, models=models, account_id=account_id, days=max(1, min(days, 90))
        )
        # The window is applied: it is the "since" of the changes.
        return _with_account_notes(reply, replace(c, window=None), "changes are for one account")
    if intent == "qbr_prep":
        from handlers import qbr

        if account_id is None:
            return qbr.upcoming_qbrs(session, ctx=ctx, constraints=c)
        from handlers.qbr_pack import variant_of, with_pack

        reply = qbr.qbr_prep(session, ctx=ctx, models=models, account_id=account_id)
        # The draft pack follows the prep card as a file ("qbr acme operational" for that variant).
        reply = with_pack(reply, variant=variant_of(parsed.text), today=ctx.today)
        return _with_account_notes(reply, c, "the prep is for one review")
    if intent == "explain_health":
        from handlers.explain import explain_health

        return explain_health(session, ctx=ctx, models=models, account_id=account_id, constraints=c)
    from handlers import portfolio

    if intent == "milestones_overdue":
        return portfolio.overdue_milestones(session, ctx=ctx, account_id=account_id, constraints=c)
    if intent == "milestones_due":
        return portfolio.milestones_due(session, ctx=ctx, account_id=account_id, constraints=c)
    if intent == "renewals_upcoming":
        if account_id is not None and len(c.accounts) <= 1:
            reply = portfolio.account_renewal(session, ctx=ctx, account_id=account_id)
            return _with_account_notes(reply, c, "this is one account's renewal")
        if c.accounts and c.window is None:
            # "renewal dates for acme and globex": their next renewals, however far out.
            year = TimeWindow(ctx.today, ctx.today + timedelta(days=365), "next 12 months")
            c = replace(c, window=year)
        return portfolio.upcoming_renewals(session, ctx=ctx, constraints=c)
    if intent in ("my_accounts", "portfolio_at_risk") and parsed.chart == "map":
        from handlers.charts import health_map

        # "health map", "show my portfolio map", "team map": the book drawn as health vs ARR.
        owner = parsed.owner if parsed.owner != "me" else None
        return health_map(session, ctx=ctx, models=models, owner=owner)
    if intent == "portfolio_at_risk":
        return portfolio.at_risk(session, ctx=ctx, constraints=c)
    if intent == "my_accounts":
        return portfolio.my_accounts(session, ctx=ctx, constraints=c)
    if intent == "metrics":
        from handlers.metrics import metrics_answer

        return metrics_answer(session, ctx=ctx, account_id=account_id, constraints=c)
    if intent == "expansion_signals":
        from handlers.expansion import expansion_signals

        return expansion_signals(
            session, ctx=ctx, models=models, account_id=account_id, constraints=c
        )
    if intent == "focus_today":
        from handlers.focus import focus_today

        return focus_today(session, ctx=ctx, constraints=c)
    return unknown_reply(parsed.text)  # an intent the parser knows and we do not route


def _with_account_notes(reply: Reply, c: Constraints, why: str) -> Reply:
    """An answer about one account names the constraints it did not apply (window, band, ...)."""
    if not isinstance(reply.context, dict) or "account" not in reply.context:
        return reply
    notes = c.not_applied({"accounts"}, why)
    if len(c.accounts) > 1:
        name = (reply.context.get("account") or {}).get("name", "the first account")
        notes.append(
            f"“{', '.join(c.account_names[1:])}” not applied: one account at a time (shown: {name})"
        )
    if not notes:
        return reply
    context = {**reply.context, "not_applied": notes}
    return replace(reply, context=context, text=reply.text + " (" + "; ".join(notes) + ")")


def _escalate(
    session: Session, parsed: ParseResult, ctx: ChatContext, account_id: int | None
) -> Reply:
    from handlers import actions, escalations

    action = parsed.action
    if action is not None and action.target_id is not None:
        to = "acknowledged" if action.kind == "escalation_ack" else "resolved"
        return actions.escalation_change(session, ctx=ctx, escalation_id=action.target_id, to=to)
    if _ESCALATION_QUESTION.search(parsed.text) or parsed.account_text is None:
        # Opening an escalation is a write: it needs the account named in this very message.
        return escalations.list_open(session, ctx=ctx, account_id=account_id)
    return actions.draft_escalation(
        session,
        ctx=ctx,
        account_id=account_id or 0,
        severity=parsed.severity,
        title=parsed.title,
    )


def _pending_turn(
    session: Session, text: str, ctx: ChatContext, previous: dict[str, Any] | None
) -> tuple[Reply, str] | None:
    """A reply to a change this thread is waiting on: yes / cancel, or what happened."""
    key = ((previous or {}).get("entities") or {}).get("pending")
    if not key:
        return None
    from handlers import actions

    state = actions.pending_in_thread(session, ctx.thread_key)
    if state is None:
        return None
    kind = str((state.entities or {}).get("kind") or "")
    intent = "success_plan" if kind.startswith("milestone") else "escalate"
    if actions.NO.match(text):
        return actions.cancel(session, ctx=ctx, key=state.key), intent
    if kind != "escalation_draft":
        if actions.YES.match(text):
            return actions.confirm(session, ctx=ctx, key=state.key), intent
        return None
    if actions.YES.match(text):
        return None
    parsed = parse(
        text, index=access.visible_index(session, ctx), today=ctx.today, people=_people(session)
    )
    if parsed.intent not in ("unknown", "escalate", None, "help") and parsed.confidence >= 0.8:
        return None  # a new question: the draft waits
    reply = actions.draft_answer(session, ctx=ctx, state=state, text=text, severity=parsed.severity)
    return reply, intent


def answer(session: Session, text: str, ctx: ChatContext, *, models: HealthModels) -> Reply:
    """Answer one chat message. Never raises for bad input: the user gets help or a clear message."""
    text = (text or "").strip()[:MAX_MESSAGE_CHARS]
    if not text:
        return replace(help_reply(""), intent="help")
    if _SMALL_TALK.match(text):
        return replace(
            _notice("Any time. Ask me about an account, renewals or risks whenever you need."),
            intent="unknown",
        )
    if access.barred_reason(ctx.actor) is not None:
        # Before any parsing: nothing about accounts, not even "which one did you mean".
        if _HELP.match(text):
            return replace(help_reply(""), intent="help")
        return replace(_notice(access.no_access_line(session, ctx.actor)), intent=None)
    previous = load_state(session, ctx.thread_key)
    try:
        pending = _pending_turn(session, text, ctx, previous)
    except HandlerError as exc:
        return Reply(template="error", context={"message": exc.message}, text=exc.message)
    if pending is not None:
        return replace(pending[0], intent=pending[1])
    index = access.visible_index(session, ctx)
    prefer = Preference(
        recent_accounts(session, ctx),
        index.owned_by(ctx.actor.csm_id) if ctx.actor.csm_id else frozenset(),
    )
    picked = _picked_choice(text, previous)
    if picked is not None and previous is not None:
        # "2" answers the question that offered the choices, about the account picked.
        parsed = parse(picked["name"], index=index, today=ctx.today, prefer=prefer)
        parsed = replace(parsed, text=text, intent=previous.get("intent"), followup=False)
    else:
        parsed = parse(text, index=index, today=ctx.today, people=_people(session), prefer=prefer)
        parsed = apply_followup(parsed, previous)
    try:
        reply, account_id, account_name = route(
            session, parsed, ctx, models=models, previous=previous
        )
    except HandlerError as exc:
        reply, account_id, account_name = (
            Reply(template="error", context={"message": exc.message}, text=exc.message),
            None,
            None,
        )
    save_state(session, ctx.thread_key, parsed, reply, account_id, account_name)
    _remember_accounts(
        session, ctx, [r.account_id for r in parsed.resolved_accounts if r.account_id]
    )
    entities = {**parsed.entities(), "question": parsed.question()}
    return replace(reply, intent=parsed.intent or "unknown", entities=entities)
