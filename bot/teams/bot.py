"""The Teams ActivityHandler: messages → handlers.ask, card actions → handlers, every turn's reference stored."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from botbuilder.core import TurnContext
from botbuilder.core.teams import TeamsActivityHandler
from botbuilder.schema import (
    Activity,
    AdaptiveCardInvokeResponse,
    AdaptiveCardInvokeValue,
    ChannelAccount,
)
from sqlmodel import Session

from bot.teams.cards import ADAPTIVE_CARD, message_for, notice_card, render_card
from bot.teams.identity import (
    RosterCache,
    RosterEntry,
    actor_for_teams_user,
    csm_by_teams_ids,
    foreign_tenant,
)
from bot.teams.references import mark_inactive, save_reference, tenant_of
from handlers.context import ChatContext
from handlers.errors import HandlerError
from handlers.reply import Reply

if TYPE_CHECKING:
    from bot.container import Container

logger = logging.getLogger(__name__)

T = TypeVar("T")

MILESTONE_STATUS_VERB = "milestone.status"
MILESTONE_EDIT_FORM_VERB = "milestone.edit_form"
MILESTONE_EDIT_VERB = "milestone.edit"
SENTIMENT_VERB = "sentiment.set"
ACCOUNT_OPEN_VERB = "account.open"
ESCALATION_ACK_VERB = "escalation.acknowledge"
ESCALATION_RESOLVE_VERB = "escalation.resolve"
ALERT_ACK_VERB = "alert.acknowledge"
ALERT_SNOOZE_VERB = "alert.snooze"
ACTION_CONFIRM_VERB = "action.confirm"
ACTION_CANCEL_VERB = "action.cancel"
ESCALATION_DRAFT_VERB = "escalation.draft"


@dataclass(frozen=True)
class Speaker:
    """What we know about the sender before touching the handlers."""

    user_id: str
    name: str | None
    aad_object_id: str | None
    tenant_id: str | None
    csm_id: int | None
    external: bool


class CsmTeamsBot(TeamsActivityHandler):
    """One bot for personal chats, group chats and channels; listeners stay thin, handlers do the work."""

    def __init__(self, container: Container, roster: RosterCache | None = None) -> None:
        self.container = container
        self.roster = roster or RosterCache()

    # --- plumbing -----------------------------------------------------------------------------

    async def _db(self, work: Callable[[Session], T]) -> T:
        """Run database work (sync SQLModel) in a worker thread, in one unit of work."""

        def run() -> T:
            with self.container.session() as session:
                return work(session)

        return await asyncio.to_thread(run)

    async def _speaker(self, turn_context: TurnContext) -> Speaker:
        """Store the conversation reference, and find out who is talking and whether they are external."""
        activity = turn_context.activity
        user = activity.from_property or ChannelAccount(id="")
        tenant = tenant_of(activity)
        external = foreign_tenant(tenant, self.container.settings.microsoft_app_tenant_id)

        def remember(session: Session) -> int | None:
            csm = None if external else csm_by_teams_ids(session, user.id, user.aad_object_id)
            save_reference(session, activity=activity, csm_id=csm.id if csm else None)
            return csm.id if csm else None

        csm_id = await self._db(remember)
        return Speaker(
            user_id=user.id or "",
            name=user.name,
            aad_object_id=user.aad_object_id,
            tenant_id=tenant,
            csm_id=csm_id,
            external=external,
        )

    async def _context(
        self, turn_context: TurnContext, speaker: Speaker
    ) -> tuple[RosterEntry | None, bool]:
        """The roster entry (only needed for people we have not matched yet) and the external flag."""
        if speaker.external or speaker.csm_id is not None:
            return None, speaker.external
        entry = await self.roster.member(turn_context, speaker.user_id, speaker.tenant_id)
        return entry, bool(entry and entry.guest)

    def _chat_context(
        self,
        session: Session,
        turn_context: TurnContext,
        speaker: Speaker,
        entry: RosterEntry | None,
        external: bool,
    ) -> ChatContext:
        from handlers.identity import unknown_actor

        activity = turn_context.activity
        if external:
            # Guests never become a CSM, whatever email they have: they see no account data.
            actor = unknown_actor(speaker.user_id, speaker.name)
        else:
            actor = actor_for_teams_user(
                session,
                user_id=speaker.user_id,
                name=speaker.name,
                aad_object_id=speaker.aad_object_id,
                roster=entry,
            )
            if actor.csm_id is not None and activity.conversation.conversation_type == "personal":
                save_reference(session, activity=activity, csm_id=actor.csm_id)
        return ChatContext(
            platform="teams",
            actor=actor,
            today=self.container.today(),
            thread_key=f"teams:{activity.conversation.id}",
            external=external,
            allowed_account_ids=frozenset(),
        )

    async def _handle(
        self, turn_context: TurnContext, work: Callable[[Session, ChatContext], Reply]
    ) -> Reply:
        speaker = await self._speaker(turn_context)
        entry, external = await self._context(turn_context, speaker)

        def run(session: Session) -> Reply:
            ctx = self._chat_context(session, turn_context, speaker, entry, external)
            return work(session, ctx)

        return await self._db(run)

    # --- messages -----------------------------------------------------------------------------

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        if activity.conversation.conversation_type in (
            "channel",
            "groupChat",
        ) and not _mentions_bot(activity):
            # With resource-specific consent Teams can deliver every channel message; answer only when asked.
            await self._speaker(turn_context)
            return
        text = (
            TurnContext.remove_recipient_mention(activity) if activity.entities else activity.text
        )
        text = (text or "").replace("\xa0", " ").strip()

        def answer(session: Session, ctx: ChatContext) -> Reply:
            from handlers import ask

            return ask.answer(session, text, ctx, models=self.container.health_models)

        reply = await self._handle(turn_context, answer)
        await turn_context.send_activity(message_for(reply))

    # --- installs and membership --------------------------------------------------------------

    async def on_conversation_update_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        bot_id = activity.recipient.id if activity.recipient else None
        removed = any(m.id == bot_id for m in activity.members_removed or [])
        if removed:
            await self._db(lambda s: mark_inactive(s, conversation_id=activity.conversation.id))
            return
        await self._speaker(turn_context)
        added = any(m.id == bot_id for m in activity.members_added or [])
        if added and activity.conversation.conversation_type == "personal":
            await self._welcome(turn_context)

    async def on_installation_update_add(self, turn_context: TurnContext) -> None:
        await self._speaker(turn_context)

    async def on_installation_update_remove(self, turn_context: TurnContext) -> None:
        conversation_id = turn_context.activity.conversation.id
        await self._db(lambda s: mark_inactive(s, conversation_id=conversation_id))

    async def _welcome(self, turn_context: TurnContext) -> None:
        from handlers.help import help_reply

        await turn_context.send_activity(message_for(help_reply()))

    # --- Adaptive Card actions (Action.Execute) -----------------------------------------------

    async def on_adaptive_card_invoke(
        self, turn_context: TurnContext, invoke_value: AdaptiveCardInvokeValue
    ) -> AdaptiveCardInvokeResponse:
        action = invoke_value.action or {}
        verb = action.get("verb")
        data = action.get("data") or {}
        handler = self._actions().get(verb or "")
        if handler is None:
            return _error(400, "BadRequest", f"Unknown action {verb!r}.")
        try:
            reply = await self._handle(turn_context, lambda s, ctx: handler(s, ctx, data))
        except HandlerError as error:
            # Nothing changed (the unit of work rolled back): show why above the card as it is now.
            return await self._with_notice(turn_context, verb or "", data, error.message)
        except BadAction as error:
            logger.info("bad card action data for %s: %r (%s)", verb, data, error)
            return _error(
                400,
                "BadRequest",
                "This button is missing what it needs. Ask again for a fresh card.",
            )
        except Exception:  # answer the invoke (Teams shows an error) and keep the trace in the log
            logger.exception("card action %s failed", verb)
            return _error(500, "InternalError", "Something went wrong on my side. Try again.")
        card = render_card(reply)
        return _card(card if card is not None else notice_card(reply.text))

    def _actions(self) -> dict[str, Callable[[Session, ChatContext, dict[str, Any]], Reply]]:
        return {
            MILESTONE_STATUS_VERB: self._set_milestone_status,
            MILESTONE_EDIT_FORM_VERB: self._milestone_edit_form,
            MILESTONE_EDIT_VERB: self._edit_milestone,
            SENTIMENT_VERB: self._set_sentiment,
            ACCOUNT_OPEN_VERB: self._open_account,
            ESCALATION_ACK_VERB: self._acknowledge_escalation,
            ESCALATION_RESOLVE_VERB: self._resolve_escalation,
            ALERT_ACK_VERB: self._acknowledge_alert,
            ALERT_SNOOZE_VERB: self._snooze_alert,
            ACTION_CONFIRM_VERB: self._confirm_action,
            ACTION_CANCEL_VERB: self._cancel_action,
            ESCALATION_DRAFT_VERB: self._draft_severity,
        }

    def _confirm_action(self, session: Session, ctx: ChatContext, data: dict[str, Any]) -> Reply:
        from handlers import actions

        return actions.confirm(session, ctx=ctx, key=_str(data, "key"))

    def _cancel_action(self, session: Session, ctx: ChatContext, data: dict[str, Any]) -> Reply:
        from handlers import actions

        return actions.cancel(session, ctx=ctx, key=_str(data, "key"))

    def _draft_severity(self, session: Session, ctx: ChatContext, data: dict[str, Any]) -> Reply:
        from handlers import actions

        return actions.set_draft_severity(
            session, ctx=ctx, key=_str(data, "key"), severity=_str(data, "severity")
        )

    def _set_milestone_status(
        self, session: Session, ctx: ChatContext, data: dict[str, Any]
    ) -> Reply:
        from handlers import plan

        note = _text(data, "note")
        return plan.set_milestone_status(
            session,
            ctx=ctx,
            milestone_id=_int(data, "milestone_id"),
            status=_str(data, "status"),
            note=note,
        )

    def _milestone_edit_form(
        self, session: Session, ctx: ChatContext, data: dict[str, Any]
    ) -> Reply:
        from handlers import plan

        return plan.milestone_edit_form(session, ctx=ctx, milestone_id=_int(data, "milestone_id"))

    def _edit_milestone(self, session: Session, ctx: ChatContext, data: dict[str, Any]) -> Reply:
        from handlers import plan

        return plan.edit_milestone(
            session,
            ctx=ctx,
            milestone_id=_int(data, "milestone_id"),
            due_date=_text(data, "due_date"),
            owner_email=_text(data, "owner_email"),
            # The form always sends the note field: "" clears it, absent leaves it alone.
            note=None if data.get("note") is None else str(data["note"]),
        )

    def _acknowledge_escalation(
        self, session: Session, ctx: ChatContext, data: dict[str, Any]
    ) -> Reply:
        from handlers import escalations

        return escalations.acknowledge(session, ctx=ctx, escalation_id=_int(data, "escalation_id"))

    def _resolve_escalation(
        self, session: Session, ctx: ChatContext, data: dict[str, Any]
    ) -> Reply:
        from handlers import escalations

        return escalations.resolve(
            session,
            ctx=ctx,
            escalation_id=_int(data, "escalation_id"),
            note=_text(data, "note"),
        )

    def _acknowledge_alert(self, session: Session, ctx: ChatContext, data: dict[str, Any]) -> Reply:
        from handlers.alerts import acknowledge_alert

        return acknowledge_alert(session, ctx=ctx, alert_id=_int(data, "alert_id"))

    def _snooze_alert(self, session: Session, ctx: ChatContext, data: dict[str, Any]) -> Reply:
        from handlers.alerts import snooze_alert

        days = _int(data, "days") if data.get("days") is not None else 7
        return snooze_alert(session, ctx=ctx, alert_id=_int(data, "alert_id"), days=days)

    def _set_sentiment(self, session: Session, ctx: ChatContext, data: dict[str, Any]) -> Reply:
        from handlers import sentiment

        return sentiment.set_sentiment(
            session,
            ctx=ctx,
            models=self.container.health_models,
            account_id=_int(data, "account_id"),
            value=_str(data, "value"),
            reason=_text(data, "reason"),
        )

    def _open_account(self, session: Session, ctx: ChatContext, data: dict[str, Any]) -> Reply:
        return open_account(
            session,
            ctx,
            account_id=_int(data, "account_id"),
            intent=_text(data, "intent"),
            models=self.container.health_models,
        )

    async def _with_notice(
        self, turn_context: TurnContext, verb: str, data: dict[str, Any], message: str
    ) -> AdaptiveCardInvokeResponse:
        """The card the user acted on, rebuilt unchanged, with ``message`` on top (else just the message)."""

        def rebuild(session: Session, ctx: ChatContext) -> Reply | None:
            from handlers import plan

            if verb == MILESTONE_EDIT_VERB and "milestone_id" in data:
                return plan.milestone_edit_form(
                    session, ctx=ctx, milestone_id=_int(data, "milestone_id")
                )
            if "account_id" not in data or verb not in (
                MILESTONE_STATUS_VERB,
                MILESTONE_EDIT_FORM_VERB,
                SENTIMENT_VERB,
            ):
                return None
            intent = "account_health" if verb == SENTIMENT_VERB else "success_plan"
            return open_account(
                session,
                ctx,
                account_id=_int(data, "account_id"),
                intent=intent,
                models=self.container.health_models,
            )

        try:
            reply = await self._handle(turn_context, rebuild)
        except (HandlerError, BadAction):
            reply = None
        card = render_card(reply, notice=message) if reply is not None else None
        return _card(card if card is not None else notice_card(message))


def open_account(
    session: Session, ctx: ChatContext, *, account_id: int, intent: str | None, models: Any
) -> Reply:
    """A button that names an account by id (a choice, a suggestion): run the intent it was for."""
    if intent == "success_plan":
        from handlers import plan

        return plan.success_plan(session, ctx=ctx, account_id=account_id)
    if intent == "account_changes":
        from handlers import health

        return health.account_changes(session, ctx=ctx, models=models, account_id=account_id)
    if intent == "milestones_overdue":
        from handlers import portfolio

        return portfolio.overdue_milestones(session, ctx=ctx, account_id=account_id)
    if intent == "qbr_prep":
        from handlers.qbr import qbr_prep

        return qbr_prep(session, ctx=ctx, models=models, account_id=account_id)
    if intent == "explain_health":
        from handlers.explain import explain_health

        return explain_health(session, ctx=ctx, models=models, account_id=account_id)
    from handlers import health

    return health.account_health(session, ctx=ctx, models=models, account_id=account_id)


class BadAction(ValueError):
    """The card's data lacks a field or carries a wrong type (an old or tampered card)."""


def _int(data: dict[str, Any], key: str) -> int:
    try:
        return int(data[key])
    except (KeyError, TypeError, ValueError) as exc:
        raise BadAction(f"{key} must be an integer") from exc


def _text(data: dict[str, Any], key: str) -> str | None:
    """An optional free-text input (empty means not given)."""
    value = data.get(key)
    if value is None:
        return None
    return str(value).strip() or None


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise BadAction(f"{key} must be a non-empty string")
    return value


def _mentions_bot(activity: Activity) -> bool:
    bot_id = activity.recipient.id if activity.recipient else None
    for mention in TurnContext.get_mentions(activity):
        # Off the wire a mention is an Entity with the fields in additional_properties.
        mentioned = (getattr(mention, "additional_properties", None) or {}).get("mentioned")
        mentioned = mentioned or getattr(mention, "mentioned", None)
        mentioned_id = (
            mentioned.get("id") if isinstance(mentioned, dict) else getattr(mentioned, "id", None)
        )
        if mentioned_id == bot_id:
            return True
    return False


def _card(card: dict[str, Any]) -> AdaptiveCardInvokeResponse:
    return AdaptiveCardInvokeResponse(status_code=200, type=ADAPTIVE_CARD, value=card)


def _error(status: int, code: str, message: str) -> AdaptiveCardInvokeResponse:
    return AdaptiveCardInvokeResponse(
        status_code=status,
        type="application/vnd.microsoft.error",
        value={"code": code, "message": message},
    )
