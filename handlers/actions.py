"""Changes asked for in words ask first: what will change and a confirm button; the existing handler then does it.

"escalate acme" without a reason asks what happened and how bad (severity buttons) and confirms;
"mark the acme kickoff done", "ack escalation 8", "resolve escalation 8" show the change and a
confirm. A pending change is a ConversationState row keyed ``action:<id>`` whose ``intent`` is
its status; confirming moves it from "pending" to "done" in one conditional UPDATE, so a second
click (or a second replica) never does it twice.
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import timedelta
from typing import Any

from rapidfuzz import fuzz
from sqlalchemy import update
from sqlmodel import Session, col, select

from handlers import access
from handlers.accounts import account_summary, resolve_account
from handlers.context import ChatContext
from handlers.errors import NotFound, PermissionDenied, ValidationFailed
from handlers.escalations import EXTERNAL_REFUSAL, SLA, TITLE_MAX
from handlers.permissions import require_change
from handlers.plan import STATUS_LABELS
from handlers.reply import Reply
from storage.models import (
    CSM,
    ESCALATION_SEVERITIES,
    MILESTONE_STATUSES,
    Account,
    ConversationState,
    Escalation,
    Milestone,
    utcnow,
)

logger = logging.getLogger(__name__)

PENDING_TTL = timedelta(hours=24)
_PREFIX = "action:"
YES = re.compile(
    r"^\W*(?:y|yes|yep|yeah|yup|sure|ok|okay|confirm|confirmed|do it|go ahead|go|please do)\W*$",
    re.IGNORECASE,
)
NO = re.compile(
    r"^\W*(?:n|no|nope|cancel|stop|abort|never ?mind|don'?t|forget it)\W*$", re.IGNORECASE
)
SEVERITY_LABELS = {
    "sev1": "SEV1 — critical: customer down or data at risk",
    "sev2": "SEV2 — major: a key workflow broken",
    "sev3": "SEV3 — minor: degraded or annoying",
}


# ------------------------------------------------------------------------------------ storage


def _new(session: Session, ctx: ChatContext, kind: str, payload: dict[str, Any]) -> str:
    key = _PREFIX + uuid.uuid4().hex[:16]
    now = utcnow()
    session.add(
        ConversationState(
            key=key,
            intent="pending",
            account_id=payload.get("account_id"),
            entities={
                "kind": kind,
                "payload": payload,
                "asked_by": ctx.actor.csm_id,
                "thread": ctx.thread_key,
            },
            updated_at=now,
            expires_at=now + PENDING_TTL,
        )
    )
    session.flush()
    return key


def _load(session: Session, key: str) -> ConversationState | None:
    if not key.startswith(_PREFIX):
        return None
    state = session.get(ConversationState, key)
    if state is None or state.expires_at < utcnow():
        return None
    return state


def _claim(session: Session, key: str, status: str) -> bool:
    """pending -> status, atomically; False when someone (or something) got there first."""
    session.flush()
    result = session.exec(  # type: ignore[call-overload]
        update(ConversationState)
        .where(col(ConversationState.key) == key, col(ConversationState.intent) == "pending")
        .values(intent=status, updated_at=utcnow())
    )
    cached = session.get(ConversationState, key)
    if cached is not None:
        session.refresh(cached)
    return bool(result.rowcount)


def pending_in_thread(session: Session, thread_key: str | None) -> ConversationState | None:
    """The change this thread is waiting on (a draft or a confirmation), if any."""
    if not thread_key:
        return None
    state = session.get(ConversationState, thread_key)
    key = (state.entities or {}).get("pending") if state is not None else None
    if not isinstance(key, str):
        return None
    found = _load(session, key)
    return found if found is not None and found.intent == "pending" else None


def _remember(session: Session, ctx: ChatContext, key: str | None) -> None:
    """Point this thread at the change it is waiting on (or at nothing)."""
    if not ctx.thread_key:
        return
    now = utcnow()
    state = session.get(ConversationState, ctx.thread_key) or ConversationState(
        key=ctx.thread_key, expires_at=now
    )
    entities = dict(state.entities or {})
    if key is None:
        entities.pop("pending", None)
    else:
        entities["pending"] = key
    state.entities = entities
    state.updated_at = now
    state.expires_at = max(state.expires_at, now + timedelta(hours=2))
    session.add(state)


# ------------------------------------------------------------------------------------ replies


def _confirm_reply(
    session: Session,
    ctx: ChatContext,
    *,
    kind: str,
    payload: dict[str, Any],
    question: str,
    changes: list[dict[str, str]],
    confirm_label: str,
) -> Reply:
    key = _new(session, ctx, kind, payload)
    _remember(session, ctx, key)
    return Reply(
        template="action_confirm",
        context={
            "key": key,
            "kind": kind,
            "question": question,
            "changes": changes,
            "confirm_label": confirm_label,
            "understood": question,
            "not_applied": [],
        },
        text=f"{question} Reply “yes” to confirm or “cancel”.",
    )


def _notice(text: str) -> Reply:
    return Reply(template="notice", context={"text": text, "message": text}, text=text)


# ------------------------------------------------------------------------------------ escalations


def _refuse_escalation(session: Session, ctx: ChatContext) -> None:
    """The rules of the escalation form (handlers.access): nobody barred, no viewer, no shared
    channel."""
    access.require(session, ctx, access.Action.OPEN_ESCALATION)
    if ctx.external:
        raise PermissionDenied(EXTERNAL_REFUSAL)


def draft_escalation(
    session: Session,
    *,
    ctx: ChatContext,
    account_id: int,
    severity: str | None = None,
    title: str | None = None,
    key: str | None = None,
) -> Reply:
    """The next step of an escalation asked for in words: ask what happened / how bad, or confirm."""
    _refuse_escalation(session, ctx)
    found = resolve_account(session, ctx=ctx, intent="escalate", account_id=account_id)
    if isinstance(found, Reply):
        return found
    title = (title or "").strip() or None
    if title and len(title) > TITLE_MAX:
        raise ValidationFailed({"title": f"Keep the title under {TITLE_MAX} characters"})
    severity = (severity or "").lower() or None
    if severity is not None and severity not in ESCALATION_SEVERITIES:
        raise ValidationFailed({"severity": "must be sev1, sev2 or sev3"})
    payload = {"account_id": found.id, "severity": severity, "title": title}
    if title and severity:
        if key:
            _claim(session, key, "replaced")
        owner = session.get(CSM, found.owner_id) if found.owner_id else None
        ack, resolve = SLA[severity]
        return _confirm_reply(
            session,
            ctx,
            kind="escalation_open",
            payload=payload,
            question=f"Open a {severity.upper()} escalation for {found.name}: “{title}”?",
            changes=[
                {"label": "Account", "value": found.name},
                {"label": "Severity", "value": SEVERITY_LABELS[severity]},
                {"label": "What happened", "value": title},
                {"label": "Owner", "value": owner.name if owner else "nobody yet"},
                {
                    "label": "SLA",
                    "value": f"acknowledge within {_hours(ack)}, resolve within {_hours(resolve)}",
                },
            ],
            confirm_label="Open escalation",
        )
    # Something is missing: keep (or update) the draft and ask for it.
    if key and (state := _load(session, key)) is not None and state.intent == "pending":
        state.entities = {**state.entities, "payload": payload}
        session.add(state)
    else:
        key = _new(session, ctx, "escalation_draft", payload)
    _remember(session, ctx, key)
    if title is None and severity is None:
        question = f"What happened at {found.name}, and how bad is it?"
        hint = "Reply with a line on what's wrong, and pick a severity."
    elif title is None:
        question = f"What happened at {found.name}? ({severity.upper() if severity else ''})"
        hint = "Reply with a line on what's wrong."
    else:
        question = f"How bad is it at {found.name}: “{title}”?"
        hint = "Pick a severity."
    return Reply(
        template="escalation_draft",
        context={
            "key": key,
            "account": account_summary(session, found, ctx.today),
            "title": title,
            "severity": severity,
            "severities": [
                {"value": s, "label": SEVERITY_LABELS[s]} for s in ESCALATION_SEVERITIES
            ],
            "question": question,
            "hint": hint,
            "understood": question,
            "not_applied": [],
        },
        text=f"{question} {hint}",
    )


def _hours(delta: timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    return f"{hours} h" if hours < 48 else f"{hours // 24} days"


def draft_answer(
    session: Session, *, ctx: ChatContext, state: ConversationState, text: str, severity: str | None
) -> Reply:
    """A reply in a thread whose escalation draft waits for what happened and/or how bad."""
    payload = dict((state.entities or {}).get("payload") or {})
    title = payload.get("title")
    if not title:
        cleaned = re.sub(
            r"\b(?:sev|severity|p)\s*[-:#]?\s*[1-3]\b|\b(?:critical|major|minor)\b",
            " ",
            text,
            flags=re.IGNORECASE,
        )
        cleaned = " ".join(cleaned.split()).strip(" ,.;:-–—")
        title = cleaned or None
    return draft_escalation(
        session,
        ctx=ctx,
        account_id=int(payload["account_id"]),
        severity=severity or payload.get("severity"),
        title=title,
        key=state.key,
    )


def set_draft_severity(session: Session, *, ctx: ChatContext, key: str, severity: str) -> Reply:
    """A severity button on a draft: the next step (confirm, or ask what happened)."""
    state = _load(session, key)
    if state is None or state.intent != "pending":
        return _notice("This draft has expired or was already used. Ask again: “escalate acme”.")
    payload = dict((state.entities or {}).get("payload") or {})
    return draft_escalation(
        session,
        ctx=ctx,
        account_id=int(payload["account_id"]),
        severity=severity,
        title=payload.get("title"),
        key=key,
    )


def escalation_change(session: Session, *, ctx: ChatContext, escalation_id: int, to: str) -> Reply:
    """ "ack escalation 8" / "resolve escalation 8": what will change, and a confirm."""
    escalation = session.get(Escalation, escalation_id)
    if escalation is None:
        raise NotFound(f"There is no escalation #{escalation_id}.")
    account = session.get(Account, escalation.account_id)
    if account is None:
        raise NotFound("The escalation's account no longer exists.")
    if ctx.external and escalation.account_id not in ctx.allowed_account_ids:
        raise PermissionDenied(EXTERNAL_REFUSAL)
    require_change(session, ctx.actor, account, f"escalation #{escalation_id}")
    order = ("open", "acknowledged", "resolved")
    if order.index(escalation.status) >= order.index(to):
        return _notice(
            f"Escalation #{escalation_id} ({account.name}) is already {escalation.status}; "
            "nothing to change."
        )
    verb = "Acknowledge" if to == "acknowledged" else "Resolve"
    return _confirm_reply(
        session,
        ctx,
        kind="escalation_" + ("ack" if to == "acknowledged" else "resolve"),
        payload={"escalation_id": escalation_id, "account_id": account.id},
        question=f"{verb} escalation #{escalation_id} [{escalation.severity.upper()}] "
        f"{account.name} — “{escalation.title}”?",
        changes=[
            {"label": "Status", "value": f"{escalation.status} → {to}"},
            {"label": "Account", "value": account.name},
        ],
        confirm_label=verb,
    )


# ------------------------------------------------------------------------------------ milestones


def milestone_change(
    session: Session, *, ctx: ChatContext, account_id: int, words: str | None, status: str
) -> Reply:
    """ "mark the acme kickoff done": find the milestone, show the change, and a confirm."""
    if status not in MILESTONE_STATUSES:
        raise ValidationFailed({"status": f"must be one of {', '.join(MILESTONE_STATUSES)}"})
    found = resolve_account(session, ctx=ctx, intent="success_plan", account_id=account_id)
    if isinstance(found, Reply):
        return found
    # Who may change it first: someone who may not is told so, not asked which milestone.
    require_change(session, ctx.actor, found, "milestones")
    milestones = list(
        session.exec(
            select(Milestone)
            .where(Milestone.account_id == found.id)
            .order_by(col(Milestone.due_date), col(Milestone.id))
        ).all()
    )
    if not milestones:
        return _notice(f"{found.name} has no milestones to change.")
    picked = _match(milestones, words or "")
    label = STATUS_LABELS.get(status, status).lower()
    if len(picked) != 1:
        choices = picked or [m for m in milestones if m.status != status]
        names = "; ".join(f"“{m.title}”" for m in choices[:8])
        what = f"“{words}”" if words else "that"
        return _notice(
            f"Which milestone of {found.name} do you mean by {what}? {names}. "
            f"Say e.g. “mark the {found.name.lower()} {choices[0].title.lower()} {label}”."
            if choices
            else f"Every milestone of {found.name} is already {label}."
        )
    milestone = picked[0]
    if milestone.status == status:
        return _notice(f"“{milestone.title}” ({found.name}) is already {label}; nothing to change.")
    return _confirm_reply(
        session,
        ctx,
        kind="milestone_status",
        payload={"milestone_id": milestone.id, "status": status, "account_id": found.id},
        question=f"Mark “{milestone.title}” ({found.name}) {label}?",
        changes=[
            {
                "label": "Status",
                "value": f"{STATUS_LABELS.get(milestone.status, milestone.status)} → "
                f"{STATUS_LABELS.get(status, status)}",
            },
            {
                "label": "Due",
                "value": milestone.due_date.isoformat() if milestone.due_date else "no date",
            },
        ],
        confirm_label=f"Mark {label}",
    )


def _match(milestones: list[Milestone], words: str) -> list[Milestone]:
    """The milestones whose title the words name: the clear best match, or the close ones."""
    words = " ".join(w for w in words.lower().split() if len(w) > 1)
    if not words:
        return []
    scored = sorted(
        ((fuzz.token_set_ratio(words, m.title.lower()), m) for m in milestones),
        key=lambda p: -p[0],
    )
    best = scored[0][0]
    if best < 60:
        return []
    close = [m for score, m in scored if score >= best - 8]
    return close


# ------------------------------------------------------------------------------------ confirm


def confirm(session: Session, *, ctx: ChatContext, key: str) -> Reply:
    """Do the pending change (once: a second confirm says it was done) with the existing handler."""
    state = _load(session, key)
    if state is None:
        return _notice("This confirmation has expired. Ask again and I'll check what would change.")
    entities = dict(state.entities or {})
    kind, payload = entities.get("kind"), dict(entities.get("payload") or {})
    if state.intent != "pending" or kind == "escalation_draft":
        if state.intent == "cancelled":
            return _notice("That was cancelled; nothing changed.")
        if kind == "escalation_draft":
            return _notice("This escalation still needs what happened and how bad it is.")
        return _already(session, entities)
    if not _claim(session, key, "done"):
        return _already(session, dict((_load(session, key) or state).entities or {}))
    reply = _perform(session, ctx, kind, payload)
    result_id = (reply.context.get("escalation") or {}).get("id")
    done = session.get(ConversationState, key)
    if done is not None:
        done.entities = {**entities, "result_id": result_id, "done_by": ctx.actor.csm_id}
        session.add(done)
    _remember(session, ctx, None)
    return reply


def _perform(
    session: Session, ctx: ChatContext, kind: str | None, payload: dict[str, Any]
) -> Reply:
    if kind == "escalation_open":
        from handlers.escalations import open_escalation

        return open_escalation(
            session,
            ctx=ctx,
            account_id=int(payload["account_id"]),
            severity=payload.get("severity"),
            title=payload.get("title"),
        )
    if kind == "escalation_ack":
        from handlers.escalations import acknowledge

        return acknowledge(session, ctx=ctx, escalation_id=int(payload["escalation_id"]))
    if kind == "escalation_resolve":
        from handlers.escalations import resolve

        return resolve(session, ctx=ctx, escalation_id=int(payload["escalation_id"]))
    if kind == "milestone_status":
        from handlers.plan import set_milestone_status

        return set_milestone_status(
            session,
            ctx=ctx,
            milestone_id=int(payload["milestone_id"]),
            status=str(payload["status"]),
        )
    raise ValidationFailed({"action": f"unknown change {kind!r}"})


def _already(session: Session, entities: dict[str, Any]) -> Reply:
    kind = entities.get("kind")
    result_id = entities.get("result_id")
    if kind == "escalation_open" and result_id:
        return _notice(f"Already done: escalation #{result_id} is open. Nothing new was created.")
    return _notice("Already done; nothing changed this time.")


def cancel(session: Session, *, ctx: ChatContext, key: str) -> Reply:
    """Drop a pending change or draft."""
    state = _load(session, key)
    if state is None:
        return _notice("Nothing to cancel: this has expired.")
    if not _claim(session, key, "cancelled"):
        return _notice(
            "Too late to cancel: it was already done." if state.intent == "done" else "Cancelled."
        )
    _remember(session, ctx, None)
    return _notice("Cancelled; nothing changed.")
