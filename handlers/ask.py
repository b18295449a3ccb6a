"""The conversational handler: one message in (command or plain words), the right use case, a Reply out."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlmodel import Session, col, select

from domain.health_model import HealthModels
from domain.nlu import ParseResult, parse
from domain.nlu.followup import apply_followup
from handlers import access, health
from handlers.accounts import unresolved_reply
from handlers.context import ChatContext
from handlers.errors import HandlerError
from handlers.help import help_reply
from handlers.reply import Reply
from storage.models import CSM, ConversationState, utcnow

logger = logging.getLogger(__name__)

# A thread's memory lasts this long after its last turn: long enough for a follow-up, short
# enough that tomorrow's "and its renewal?" is not about today's account.
STATE_TTL = timedelta(hours=2)
# A chat message is cut to this before it is parsed: Slack allows 40,000 characters, and nothing a
# question needs (an account, a window, an escalation title) comes near it.
MAX_MESSAGE_CHARS = 2000
_HELP = re.compile(r"^\W*(help|\?)\W*$", re.IGNORECASE)
ACCOUNT_INTENTS = ("account_health", "success_plan", "account_changes", "qbr_prep", "escalate")
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
    if not key or (parsed.intent in (None, "help") and reply.template != "account_choices"):
        return
    now = utcnow()
    state = session.get(ConversationState, key) or ConversationState(key=key, expires_at=now)
    state.intent = parsed.intent
    state.account_id = account_id
    entities = dict(parsed.entities())
    entities["account_name"] = account_name
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
    resolution = parsed.account
    account_id: int | None = None
    account_name: str | None = None
    if resolution is not None:
        if resolution.account_id is not None and resolution.status in ("exact", "alias", "fuzzy"):
            account_id, account_name = resolution.account_id, resolution.name
        elif intent in ACCOUNT_INTENTS or intent == "milestones_overdue":
            return unresolved_reply(ctx, resolution, intent or "account_health"), None, None
    if intent in (None, "help") and _SETTINGS.search(parsed.text):
        from handlers.settings import user_settings

        return user_settings(session, ctx=ctx), None, None
    if intent == "escalate" and (
        _ESCALATION_QUESTION.search(parsed.text) or parsed.account_text is None
    ):
        # Opening an escalation is a write: it needs the account named in this very message.
        from handlers import escalations

        return escalations.list_open(session, ctx=ctx, account_id=account_id), account_id, None
    if intent is None:
        return help_reply(parsed.text, unknown=bool(parsed.text.strip())), None, None
    if intent == "help":
        return help_reply(parsed.text), None, None
    if intent in ACCOUNT_INTENTS and account_id is None:
        example = {
            "account_health": "health acme",
            "success_plan": "plan acme",
            "account_changes": "what changed at acme",
            "qbr_prep": "qbr acme",
            "escalate": "escalate acme sev2 SSO broken",
        }[intent]
        return (
            Reply(
                template="account_not_found",
                context={"query": "", "suggestions": []},
                text=f"Which account? Try “{example}”.",
            ),
            None,
            None,
        )
    # The use cases other than the health card are imported when first asked for: a one-shot
    # `csm-bot ask "/health acme"` then loads only what it runs.
    if intent == "account_health":
        reply = health.account_health(session, ctx=ctx, models=models, account_id=account_id)
    elif intent == "success_plan":
        from handlers import plan

        reply = plan.success_plan(session, ctx=ctx, account_id=account_id)
    elif intent == "account_changes":
        days = (parsed.window.end - parsed.window.start).days if parsed.window else 7
        reply = health.account_changes(
            session, ctx=ctx, models=models, account_id=account_id, days=max(1, min(days, 90))
        )
    elif intent == "qbr_prep":
        from handlers.qbr import qbr_prep
        from handlers.qbr_pack import variant_of, with_pack

        reply = qbr_prep(session, ctx=ctx, models=models, account_id=account_id)
        # The draft pack follows the prep card as a file ("qbr acme operational" for that variant).
        reply = with_pack(reply, variant=variant_of(parsed.text), today=ctx.today)
    elif intent == "escalate":
        from handlers import escalations

        reply = escalations.open_escalation(
            session,
            ctx=ctx,
            account_id=account_id,
            severity=parsed.severity,
            title=parsed.title,
        )
    elif intent == "milestones_overdue":
        from handlers import portfolio

        reply = portfolio.overdue_milestones(
            session, ctx=ctx, account_id=account_id, owner=parsed.owner
        )
    elif intent == "renewals_upcoming":
        from handlers import portfolio

        if account_id is not None:
            reply = portfolio.account_renewal(session, ctx=ctx, account_id=account_id)
        elif parsed.window is not None:
            reply = portfolio.upcoming_renewals(
                session,
                ctx=ctx,
                start=parsed.window.start,
                end=parsed.window.end,
                label=parsed.window.label,
                owner=parsed.owner,
            )
        else:
            reply = portfolio.upcoming_renewals(session, ctx=ctx, owner=parsed.owner)
    elif intent == "portfolio_at_risk":
        from handlers import portfolio

        reply = portfolio.at_risk(session, ctx=ctx, owner=parsed.owner, band=parsed.band)
    elif intent in ("my_accounts", "portfolio_at_risk") and parsed.chart == "map":
        from handlers.charts import health_map

        # "health map", "show my portfolio map", "team map": the book drawn as health vs ARR.
        reply = health_map(
            session, ctx=ctx, models=models, owner=parsed.owner if parsed.owner != "me" else None
        )
    elif intent == "my_accounts" and parsed.band:
        from handlers import portfolio

        # "my green accounts": the band filter lives in the at-risk view.
        reply = portfolio.at_risk(session, ctx=ctx, owner=parsed.owner, band=parsed.band)
    elif intent == "my_accounts":
        from handlers import portfolio

        reply = portfolio.my_accounts(
            session, ctx=ctx, owner=parsed.owner if parsed.owner != "me" else None
        )
    else:  # an intent the parser knows and we do not route yet
        reply = help_reply(parsed.text, unknown=True)
    if parsed.chart and not reply.attachments:
        from handlers.charts import with_charts

        # "/health acme chart", "show me acme's trend": the answer first, its charts follow.
        reply = with_charts(session, reply, ctx=ctx, models=models, owner=parsed.owner)
    return reply, account_id, account_name


def answer(session: Session, text: str, ctx: ChatContext, *, models: HealthModels) -> Reply:
    """Answer one chat message. Never raises for bad input: the user gets help or a clear message."""
    text = (text or "").strip()[:MAX_MESSAGE_CHARS]
    if not text:
        return replace(help_reply(""), intent="help")
    if _SMALL_TALK.match(text):
        return _notice("Any time. Ask me about an account, renewals or risks whenever you need.")
    if access.barred_reason(ctx.actor) is not None:
        # Before any parsing: nothing about accounts, not even "which one did you mean".
        if _HELP.match(text):
            return replace(help_reply(""), intent="help")
        return replace(_notice(access.no_access_line(session, ctx.actor)), intent=None)
    previous = load_state(session, ctx.thread_key)
    index = access.visible_index(session, ctx)
    picked = _picked_choice(text, previous)
    if picked is not None and previous is not None:
        # "2" answers the question that offered the choices, about the account picked.
        parsed = parse(picked["name"], index=index, today=ctx.today)
        parsed = replace(parsed, text=text, intent=previous.get("intent"), followup=False)
    else:
        parsed = parse(text, index=index, today=ctx.today, people=_people(session))
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
    return replace(reply, intent=parsed.intent, entities=parsed.entities())
