"""Escalations: open one from chat, acknowledge, assign, note and resolve it, with SLA timers per severity."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from domain.nlu import parse
from handlers import access
from handlers.accounts import account_summary, resolve_account, unresolved_reply
from handlers.audit import record
from handlers.context import ChatContext
from handlers.errors import NotFound, PermissionDenied, ValidationFailed
from handlers.permissions import can_change, require_change, who_may_change
from handlers.reply import Reply
from storage.models import CSM, ESCALATION_SEVERITIES, Account, Escalation, EscalationEvent, utcnow

# Time to acknowledge and to resolve, per severity (a common support-style SLA ladder).
SLA = {
    "sev1": (timedelta(hours=1), timedelta(hours=24)),
    "sev2": (timedelta(hours=4), timedelta(days=3)),
    "sev3": (timedelta(days=1), timedelta(days=7)),
}
TITLE_MAX = 150
DESCRIPTION_MAX = 2000
NOTE_MAX = 2000
# An escalation is internal: its severity, owner and notes must not reach the customer's eyes.
EXTERNAL_REFUSAL = (
    "Escalations are internal, and this channel is shared with another organisation, so I "
    "don't open one here. Open it from an internal channel or a direct message with me."
)
UNKNOWN_VIEWER = (
    "I don't know you yet, so I can't show you escalations. Ask an admin to add your email."
)
EXTERNAL_VIEW_REFUSAL = (
    "Escalations are internal, and this channel is shared with another organisation, so I "
    "don't show them here."
)


def escalation_context(
    session: Session, escalation: Escalation, ctx: ChatContext
) -> dict[str, Any]:
    account = session.get(Account, escalation.account_id)
    owner = session.get(CSM, escalation.owner_id) if escalation.owner_id else None
    now = utcnow()
    due = escalation.ack_due_at if escalation.status == "open" else escalation.resolve_due_at
    return {
        "id": escalation.id,
        "title": escalation.title,
        "description": escalation.description,
        "severity": escalation.severity,
        "status": escalation.status,
        "owner": owner.name if owner else None,
        "opened_at": escalation.opened_at.strftime("%Y-%m-%d %H:%M"),
        "due_at": due.strftime("%Y-%m-%d %H:%M")
        if due and escalation.status != "resolved"
        else None,
        "breached": bool(due and escalation.status != "resolved" and due < now),
        "account": account_summary(session, account, ctx.today) if account else None,
        # Where its Slack thread lives (None until posted); each platform reads only its own.
        "slack_channel_id": escalation.slack_channel_id,
        "slack_thread_ts": escalation.slack_thread_ts,
        "teams_conversation_id": escalation.teams_conversation_id,
        "teams_activity_id": escalation.teams_activity_id,
    }


def viewer_of(session: Session, escalation: Escalation, ctx: ChatContext) -> dict[str, Any]:
    """The person a card is drawn for: a platform with per-person views (Teams) shows the
    buttons only to those who may use them, and tells everyone else who may."""
    account = session.get(Account, escalation.account_id)
    return {
        "name": ctx.actor.name,
        "can_change": account is not None and can_change(session, ctx.actor, account),
        "who": who_may_change(session, account) if account else "an admin",
    }


def update_text(kind: str, *, actor: str, owner: str | None = None, note: str | None = None) -> str:
    """The one line a thread reply says about an update: "Assigned to Marco Rossi by Dana Whitfield"."""
    if kind == "assigned":
        line = f"Assigned to {owner or 'nobody'} by {actor}"
    elif kind == "note":
        line = f"Note from {actor}"
    else:
        line = f"{kind.capitalize()} by {actor}"
    return f"{line}: {note}" if note else line


def _reply(
    session: Session,
    escalation: Escalation,
    ctx: ChatContext,
    verb: str,
    *,
    note: str | None = None,
) -> Reply:
    context = escalation_context(session, escalation, ctx)
    name = context["account"]["name"] if context["account"] else "?"
    text = f"Escalation #{escalation.id} {verb}: [{escalation.severity}] {name} — {escalation.title} ({escalation.status})"
    update = {
        "kind": verb,
        "actor": ctx.actor.name,
        "owner": context["owner"],
        "note": note,
        "line": update_text(verb, actor=ctx.actor.name, owner=context["owner"]),
        "text": update_text(verb, actor=ctx.actor.name, owner=context["owner"], note=note),
    }
    return Reply(
        template="escalation",
        context={
            "escalation": context,
            "update": update,
            "viewer": viewer_of(session, escalation, ctx),
        },
        text=text,
    )


def _opened_by(session: Session, request_key: str | None) -> Escalation | None:
    """The escalation a request with this platform id already opened, if any."""
    if not request_key:
        return None
    return session.exec(select(Escalation).where(Escalation.origin_key == request_key)).first()


def update_reply(reply: Reply) -> Reply:
    """The thread reply for a change a handler here made (acknowledged, assigned, note, resolved)."""
    escalation = reply.context["escalation"]
    update = reply.context["update"]
    return Reply(
        template="escalation_update",
        context=reply.context,
        text=f"Escalation #{escalation['id']}: {update['text']}",
        visibility="channel",
    )


def open_escalation(
    session: Session,
    *,
    ctx: ChatContext,
    query: str | None = None,
    account_id: int | None = None,
    severity: str | None = None,
    title: str | None = None,
    description: str | None = None,
) -> Reply:
    """Open an escalation; any known CSM may open one, the account owner owns it.

    Never from a channel shared with another organisation, whichever account it names.
    """
    access.require(session, ctx, access.Action.OPEN_ESCALATION)
    if not access.escalations_shown_here(ctx):
        raise PermissionDenied(EXTERNAL_REFUSAL)
    found = resolve_account(session, ctx=ctx, intent="escalate", query=query, account_id=account_id)
    if isinstance(found, Reply):
        return found
    existing = _opened_by(session, ctx.request_key)
    if existing is not None:
        # The same request again (a retry, a second submit of the same modal): nothing new.
        reply = _reply(session, existing, ctx, "opened")
        context = {**reply.context, "existing": True}
        return Reply(
            template=reply.template, context=context, text=reply.text, visibility="channel"
        )
    severity = (severity or "sev2").lower()
    errors: dict[str, str] = {}
    if severity not in ESCALATION_SEVERITIES:
        errors["severity"] = "must be sev1, sev2 or sev3"
    title = (title or "").strip() or f"Escalation for {found.name}"
    if len(title) > TITLE_MAX:
        errors["title"] = f"Keep the title under {TITLE_MAX} characters"
    description = (description or "").strip() or None
    if description and len(description) > DESCRIPTION_MAX:
        errors["description"] = f"Keep the description under {DESCRIPTION_MAX} characters"
    if errors:
        raise ValidationFailed(errors)
    now = utcnow()
    ack, resolve = SLA[severity]
    escalation = Escalation(
        account_id=found.id or 0,
        title=title,
        description=description,
        severity=severity,
        status="open",
        owner_id=found.owner_id,
        opened_by_id=ctx.actor.csm_id,
        opened_at=now,
        ack_due_at=now + ack,
        resolve_due_at=now + resolve,
        origin_key=ctx.request_key,
    )
    session.add(escalation)
    session.flush()
    session.add(
        EscalationEvent(
            escalation_id=escalation.id or 0,
            actor_id=ctx.actor.csm_id,
            actor_label=ctx.actor.email or ctx.actor.name,
            kind="opened",
            to_value="open",
        )
    )
    record(
        session,
        ctx=ctx,
        action="escalation.open",
        entity="escalation",
        entity_id=escalation.id or 0,
        after={"severity": severity, "title": title, "account_id": found.id},
    )
    reply = _reply(session, escalation, ctx, "opened")
    return Reply(
        template=reply.template, context=reply.context, text=reply.text, visibility="channel"
    )


def _transition(
    session: Session,
    *,
    ctx: ChatContext,
    escalation_id: int,
    to: str,
    note: str | None = None,
    owner_email: str | None = None,
) -> Reply:
    escalation = session.get(Escalation, escalation_id)
    if escalation is None:
        raise NotFound(f"Escalation {escalation_id} no longer exists.")
    account = session.get(Account, escalation.account_id)
    if account is None:
        raise NotFound("The escalation's account no longer exists.")
    require_change(session, ctx.actor, account, f"escalation #{escalation_id}")
    if not access.escalations_shown_here(ctx):
        raise PermissionDenied(EXTERNAL_VIEW_REFUSAL)
    before = {"status": escalation.status, "owner_id": escalation.owner_id}
    if to == "assigned":
        owner = session.exec(
            select(CSM).where(func.lower(CSM.email) == (owner_email or "").strip().lower())
        ).first()
        if owner is None:
            raise ValidationFailed(
                {"owner": f"Nobody with the email {owner_email} uses CSM Assistant"}
            )
        escalation.owner_id = owner.id
        kind, from_value, to_value = "assigned", str(before["owner_id"]), str(owner.id)
    else:
        order = ("open", "acknowledged", "resolved")
        if order.index(to) <= order.index(escalation.status):
            raise ValidationFailed(
                {"status": f"Escalation #{escalation_id} is already {escalation.status}"}
            )
        escalation.status = to
        if to == "acknowledged":
            escalation.acknowledged_at = utcnow()
        else:
            escalation.resolved_at = utcnow()
        kind, from_value, to_value = to, str(before["status"]), to
    session.add(escalation)
    session.add(
        EscalationEvent(
            escalation_id=escalation_id,
            actor_id=ctx.actor.csm_id,
            actor_label=ctx.actor.email or ctx.actor.name,
            kind=kind,
            from_value=from_value,
            to_value=to_value,
            note=note,
        )
    )
    record(
        session,
        ctx=ctx,
        action=f"escalation.{kind}",
        entity="escalation",
        entity_id=escalation_id,
        before=before,
        after={"status": escalation.status, "owner_id": escalation.owner_id},
    )
    session.flush()
    return _reply(session, escalation, ctx, kind, note=note)


def acknowledge(session: Session, *, ctx: ChatContext, escalation_id: int) -> Reply:
    return _transition(session, ctx=ctx, escalation_id=escalation_id, to="acknowledged")


def resolve(
    session: Session, *, ctx: ChatContext, escalation_id: int, note: str | None = None
) -> Reply:
    note = (note or "").strip() or None
    if note and len(note) > NOTE_MAX:
        raise ValidationFailed({"note": f"Keep the note under {NOTE_MAX} characters"})
    return _transition(session, ctx=ctx, escalation_id=escalation_id, to="resolved", note=note)


def assign(session: Session, *, ctx: ChatContext, escalation_id: int, owner_email: str) -> Reply:
    return _transition(
        session, ctx=ctx, escalation_id=escalation_id, to="assigned", owner_email=owner_email
    )


def escalation_view(session: Session, *, ctx: ChatContext, escalation_id: int) -> Reply:
    """The escalation card as it is now, for this viewer (a refresh, a Cancel, a stale click)."""
    if not access.escalations_shown_here(ctx):
        raise PermissionDenied(EXTERNAL_VIEW_REFUSAL)
    if ctx.actor.csm_id is None:
        # A refresh can be asked for any id: only people we know see an escalation's details.
        raise PermissionDenied(UNKNOWN_VIEWER)
    escalation, _ = _escalation_and_account(session, escalation_id)
    context = escalation_context(session, escalation, ctx)
    name = context["account"]["name"] if context["account"] else "?"
    return Reply(
        template="escalation",
        context={
            "escalation": context,
            "update": None,
            "viewer": viewer_of(session, escalation, ctx),
        },
        text=f"Escalation #{escalation.id}: [{escalation.severity}] {name} — {escalation.title} ({escalation.status})",
    )


def open_escalations(session: Session, *, account_id: int | None = None) -> list[Escalation]:
    query = (
        select(Escalation)
        .where(Escalation.status != "resolved")
        .order_by(col(Escalation.opened_at))
    )
    if account_id is not None:
        query = query.where(Escalation.account_id == account_id)
    return list(session.exec(query).all())


def list_open(session: Session, *, ctx: ChatContext, account_id: int | None = None) -> Reply:
    """Open and acknowledged escalations (of one account, or of the asker's scope), oldest first."""
    from handlers.portfolio import scope_for

    if account_id is not None:
        access.require(session, ctx, access.Action.READ_ACCOUNT)
    if not access.escalations_shown_here(ctx):
        raise PermissionDenied(EXTERNAL_VIEW_REFUSAL)
    rows = open_escalations(session, account_id=account_id)
    scope = "this account"
    if account_id is None:
        owners = scope_for(session, ctx, None)
        scope = owners.label
        if owners.owner_ids is not None:
            owned = {
                a.id
                for a in session.exec(
                    select(Account).where(col(Account.owner_id).in_(owners.owner_ids or {-1}))
                ).all()
            }
            rows = [e for e in rows if e.account_id in owned]
    items = [escalation_context(session, e, ctx) for e in rows]
    if items:
        text = (
            f"{len(items)} open escalation{'s' if len(items) != 1 else ''} ({scope}): "
            + "; ".join(
                f"#{i['id']} [{i['severity']}] {i['account']['name'] if i['account'] else '?'} — {i['title']}"
                for i in items[:5]
            )
        )
    else:
        text = f"No open escalations ({scope})."
    text += " To open one: “escalate <account> sev1|sev2|sev3 <what is wrong>”."
    return Reply(
        template="escalations",
        context={"scope": scope, "escalations": items, "total": len(items)},
        text=text,
    )


def _escalation_and_account(session: Session, escalation_id: int) -> tuple[Escalation, Account]:
    escalation = session.get(Escalation, escalation_id)
    if escalation is None:
        raise NotFound(f"Escalation {escalation_id} no longer exists.")
    account = session.get(Account, escalation.account_id)
    if account is None:
        raise NotFound("The escalation's account no longer exists.")
    return escalation, account


def add_note(session: Session, *, ctx: ChatContext, escalation_id: int, note: str) -> Reply:
    """A note on the escalation's timeline; the same people who may change it may add one."""
    escalation, account = _escalation_and_account(session, escalation_id)
    require_change(session, ctx.actor, account, f"escalation #{escalation_id}")
    if not access.escalations_shown_here(ctx):
        raise PermissionDenied(EXTERNAL_VIEW_REFUSAL)
    note = (note or "").strip()
    if not note:
        raise ValidationFailed({"note": "Write the note first"})
    if len(note) > NOTE_MAX:
        raise ValidationFailed({"note": f"Keep the note under {NOTE_MAX} characters"})
    if (
        ctx.request_key
        and session.exec(
            select(EscalationEvent.id).where(EscalationEvent.origin_key == ctx.request_key)
        ).first()
    ):
        # The same modal submitted again: the note is on the timeline already.
        reply = _reply(session, escalation, ctx, "note", note=note)
        return Reply(
            template=reply.template, context={**reply.context, "existing": True}, text=reply.text
        )
    session.add(
        EscalationEvent(
            escalation_id=escalation_id,
            actor_id=ctx.actor.csm_id,
            actor_label=ctx.actor.email or ctx.actor.name,
            kind="note",
            note=note,
            origin_key=ctx.request_key,
        )
    )
    record(
        session,
        ctx=ctx,
        action="escalation.note",
        entity="escalation",
        entity_id=escalation_id,
        after={"note": note},
    )
    session.flush()
    return _reply(session, escalation, ctx, "note", note=note)


FORMS = ("assign", "resolve", "note")


def escalation_form(session: Session, *, ctx: ChatContext, escalation_id: int, form: str) -> Reply:
    """The data for an assign / resolve / note modal, refused before it opens for anyone who may not change it."""
    if form not in FORMS:
        raise ValidationFailed({"form": f"unknown form {form}"})
    escalation, account = _escalation_and_account(session, escalation_id)
    require_change(session, ctx.actor, account, f"escalation #{escalation_id}")
    if not access.escalations_shown_here(ctx):
        raise PermissionDenied(EXTERNAL_VIEW_REFUSAL)
    if escalation.status == "resolved" and form != "note":
        raise ValidationFailed({"status": f"Escalation #{escalation_id} is already resolved"})
    owner = session.get(CSM, escalation.owner_id) if escalation.owner_id else None
    context: dict[str, Any] = {
        "escalation": {
            "id": escalation.id,
            "title": escalation.title,
            "severity": escalation.severity,
            "status": escalation.status,
            "account": account.name,
            "owner_email": owner.email if owner else None,
        },
        "owners": [],
    }
    if form == "assign":
        owners = session.exec(select(CSM).order_by(col(CSM.name))).all()
        context["owners"] = [{"email": c.email, "name": c.name} for c in owners]
    return Reply(
        template=f"escalation_{form}_modal",
        context=context,
        text=f"Escalation #{escalation.id} ({account.name}): {form}",
    )


def new_escalation_form(
    session: Session,
    *,
    ctx: ChatContext,
    account: str = "",
    severity: str | None = "sev2",
    title: str | None = None,
) -> Reply:
    """The data for the "open an escalation" modal; refused where it could not be opened anyway.

    ``severity`` None leaves the choice to the person (it was not said); ``title`` prefills.
    """
    access.require(session, ctx, access.Action.OPEN_ESCALATION)
    if not access.escalations_shown_here(ctx):
        raise PermissionDenied(EXTERNAL_REFUSAL)
    return Reply(
        template="escalation_open_modal",
        context={
            "account": account,
            "severities": list(ESCALATION_SEVERITIES),
            "severity": severity,
            "title": title or "",
            "title_max": TITLE_MAX,
            "description_max": DESCRIPTION_MAX,
        },
        text="Open an escalation",
    )


def submit_escalation(
    session: Session,
    *,
    ctx: ChatContext,
    account: str | None,
    severity: str | None,
    title: str | None,
    description: str | None = None,
) -> Reply:
    """The modal's submit: every field is checked first, so all errors come back at once."""
    access.require(session, ctx, access.Action.OPEN_ESCALATION)
    if not access.escalations_shown_here(ctx):
        raise PermissionDenied(EXTERNAL_REFUSAL)
    errors: dict[str, str] = {}
    found = resolve_account(session, ctx=ctx, intent="escalate", query=account or "")
    if isinstance(found, Reply):
        errors["account"] = found.text if (account or "").strip() else "Which account?"
    if (severity or "").lower() not in ESCALATION_SEVERITIES:
        errors["severity"] = "Choose sev1, sev2 or sev3"
    if not (title or "").strip():
        errors["title"] = "Say in a few words what is wrong"
    elif len((title or "").strip()) > TITLE_MAX:
        errors["title"] = f"Keep the title under {TITLE_MAX} characters"
    if description and len(description.strip()) > DESCRIPTION_MAX:
        errors["description"] = f"Keep the description under {DESCRIPTION_MAX} characters"
    if errors or isinstance(found, Reply):
        raise ValidationFailed(errors)
    return open_escalation(
        session,
        ctx=ctx,
        account_id=found.id,
        severity=severity,
        title=title,
        description=description,
    )


def open_from_text(session: Session, *, ctx: ChatContext, text: str) -> Reply:
    """`/escalate acme sev1 SSO is down`: the account, the severity, then the title.

    With all three it opens at once (a deliberate command); with the account alone, or no
    severity, it returns the form, prefilled, to ask what happened and how bad.
    """
    access.require(session, ctx, access.Action.OPEN_ESCALATION)
    if not access.escalations_shown_here(ctx):
        raise PermissionDenied(EXTERNAL_REFUSAL)
    # The chat parser already reads "acme sev1 SSO is down" after an escalate cue.
    parsed = parse(
        f"escalate {text[:2000]}", index=access.visible_index(session, ctx), today=ctx.today
    )
    resolution = parsed.account
    if resolution is None:
        return Reply(
            template="account_not_found",
            context={"query": "", "suggestions": []},
            text="Which account? Try “/escalate acme sev1 SSO is down”, or /escalate alone for a form.",
        )
    if resolution.account_id is None or resolution.status in ("ambiguous", "none"):
        return unresolved_reply(ctx, resolution, "escalate")
    if parsed.severity is None or parsed.title is None:
        # "/escalate acme": what happened and how bad are not said; the form asks for them, and
        # its submit is the confirmation.
        return new_escalation_form(
            session,
            ctx=ctx,
            account=resolution.name or "",
            severity=parsed.severity,
            title=parsed.title,
        )
    return open_escalation(
        session,
        ctx=ctx,
        account_id=resolution.account_id,
        severity=parsed.severity,
        title=parsed.title,
    )


def attach_thread(
    session: Session, *, escalation_id: int, slack_channel_id: str, slack_thread_ts: str
) -> None:
    """Remember where an escalation's Slack thread is; the first thread wins (updates land there)."""
    escalation = session.get(Escalation, escalation_id)
    if escalation is None or escalation.slack_thread_ts:
        return
    escalation.slack_channel_id = slack_channel_id
    escalation.slack_thread_ts = slack_thread_ts
    session.add(escalation)


def attach_teams_card(
    session: Session, *, escalation_id: int, conversation_id: str, activity_id: str
) -> None:
    """Remember the Teams message that is an escalation's card; the first one wins (it gets every update)."""
    escalation = session.get(Escalation, escalation_id)
    if escalation is None or escalation.teams_activity_id:
        return
    escalation.teams_conversation_id = conversation_id
    escalation.teams_activity_id = activity_id
    session.add(escalation)
