"""The Teams ActivityHandler: messages → handlers.ask, card actions → handlers, every turn's reference stored."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from botbuilder.core import TurnContext
from botbuilder.core.teams import TeamsActivityHandler
from botbuilder.schema import (
    Activity,
    AdaptiveCardInvokeResponse,
    AdaptiveCardInvokeValue,
    ChannelAccount,
)
from botbuilder.schema.teams import FileConsentCardResponse
from sqlmodel import Session, select

from bot.teams import metrics
from bot.teams.actions import ACTIONS, BadAction, CardAction
from bot.teams.cards import (
    ADAPTIVE_CARD,
    Refresh,
    message_for,
    notice_card,
    plain_message,
    render_card,
)
from bot.teams.escalation_threads import (
    EscalationThreads,
    Target,
    confirmation,
    escalation_target,
)
from bot.teams.identity import (
    ConversationCache,
    RosterCache,
    RosterEntry,
    actor_for_teams_user,
    csm_by_teams_ids,
    foreign_tenant,
)
from bot.teams.installs import remember_team
from bot.teams.outbound import Outbound
from bot.teams.references import (
    channel_root,
    mark_inactive,
    save_channels,
    save_reference,
    shared_channel,
    team_of,
    tenant_of,
)
from bot.teams.shared_cards import (
    Clicked,
    is_shared,
    reference_to,
    refresh_for,
    update_alert_cards,
    update_for_everyone,
)
from handlers.context import ChatContext
from handlers.errors import HandlerError, ValidationFailed
from handlers.reply import Attachment, Reply
from storage.models import Account

if TYPE_CHECKING:
    from bot.container import Container

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Words that are commands on Teams (Slack has /escalate and its Home tab for these).
_OPEN_FORM = re.compile(r"^(escalate|new escalation|open (an )?escalation)[.!]?$", re.IGNORECASE)
_HOME = re.compile(r"^(home|dashboard|my day)[.!]?$", re.IGNORECASE)
_ESCALATE = re.compile(r"^escalate\b", re.IGNORECASE)


@dataclass(frozen=True)
class Speaker:
    """What we know about the sender before touching the handlers."""

    user_id: str
    name: str | None
    aad_object_id: str | None
    tenant_id: str | None
    csm_id: int | None
    foreign: bool  # from another tenant than the configured one


class CsmTeamsBot(TeamsActivityHandler):
    """One bot for personal chats, group chats and channels; listeners stay thin, handlers do the work.

    verified: the activities it is given were authenticated (JWT); only then may they link a
    person to a Teams identity (Teams' local development mode answers but remembers no link).
    """

    def __init__(
        self,
        container: Container,
        roster: RosterCache | None = None,
        *,
        verified: bool = True,
        conversations: ConversationCache | None = None,
    ) -> None:
        self.container = container
        self.roster = roster or RosterCache()
        self.conversations = conversations or ConversationCache()
        self.verified = verified

    # --- plumbing -----------------------------------------------------------------------------

    async def _db(self, work: Callable[[Session], T]) -> T:
        """Run database work (sync SQLModel) in a worker thread, in one unit of work."""

        def run() -> T:
            with self.container.session() as session:
                return work(session)

        return await asyncio.to_thread(run)

    def _outbound(self, turn_context: TurnContext) -> Outbound:
        return Outbound(turn_context.adapter, self.container.settings.microsoft_app_id)  # type: ignore[arg-type]

    def _threads(self, turn_context: TurnContext) -> EscalationThreads:
        return EscalationThreads(self.container, self._outbound(turn_context))

    async def _speaker(self, turn_context: TurnContext) -> Speaker:
        """Store the conversation reference, and find out who is talking."""
        activity = turn_context.activity
        user = activity.from_property or ChannelAccount(id="")
        tenant = tenant_of(activity)
        foreign = foreign_tenant(tenant, self.container.settings.microsoft_app_tenant_id)

        def remember(session: Session) -> int | None:
            csm = None if foreign else csm_by_teams_ids(session, user.id, user.aad_object_id)
            save_reference(session, activity=activity, csm_id=csm.id if csm else None)
            return csm.id if csm else None

        csm_id = await self._db(remember)
        return Speaker(
            user_id=user.id or "",
            name=user.name,
            aad_object_id=user.aad_object_id,
            tenant_id=tenant,
            csm_id=csm_id,
            foreign=foreign,
        )

    async def _context(
        self, turn_context: TurnContext, speaker: Speaker
    ) -> tuple[RosterEntry | None, bool]:
        """The roster entry (for people not matched yet, and to spot guests) and whether the
        conversation is shared with another organisation."""
        entry = None
        if not speaker.foreign and speaker.csm_id is None:
            entry = await self.roster.member(turn_context, speaker.user_id, speaker.tenant_id)
        return entry, await self._shared(turn_context)

    async def _shared(self, turn_context: TurnContext) -> bool:
        """A shared channel, or a chat or team with guests or people of another tenant."""
        activity = turn_context.activity
        kind = activity.conversation.conversation_type or "personal"
        if kind == "personal":
            return False
        if shared_channel(activity):
            return True
        key = team_of(activity) or channel_root(activity.conversation.id)
        tenant = self.container.settings.microsoft_app_tenant_id
        return (await self.conversations.sharing(turn_context, key, tenant)).external

    def _chat_context(
        self,
        session: Session,
        turn_context: TurnContext,
        speaker: Speaker,
        entry: RosterEntry | None,
        external: bool,
    ) -> ChatContext:
        from handlers import access
        from handlers.identity import unknown_actor

        activity = turn_context.activity
        if speaker.foreign:
            # Another tenant's user never becomes a person here, whatever email they have.
            actor = unknown_actor(speaker.user_id, speaker.name, barred=access.OTHER_TENANT)
        else:
            actor = actor_for_teams_user(
                session,
                user_id=speaker.user_id,
                name=speaker.name,
                aad_object_id=speaker.aad_object_id,
                roster=entry,
                tenant_id=self.container.settings.microsoft_app_tenant_id,
                link=self.verified,
            )
            if actor.csm_id is not None and activity.conversation.conversation_type == "personal":
                save_reference(session, activity=activity, csm_id=actor.csm_id)
        conversation = channel_root(activity.conversation.id)
        return ChatContext(
            platform="teams",
            actor=actor,
            today=self.container.today(),
            thread_key=f"teams:{activity.conversation.id}",
            external=external,
            allowed_account_ids=access.shared_channel_accounts(
                mapped_accounts(session, conversation) if external else (),
                enabled=self.container.settings.shared_channel_answers,
            ),
            request_key=request_key(activity),
        )

    async def _handle(
        self, turn_context: TurnContext, work: Callable[[Session, ChatContext], T]
    ) -> T:
        speaker = await self._speaker(turn_context)
        entry, external = await self._context(turn_context, speaker)

        def run(session: Session) -> T:
            ctx = self._chat_context(session, turn_context, speaker, entry, external)
            return work(session, ctx)

        return await self._db(run)

    async def _refresh(self, reply: Reply) -> Refresh | None:
        if not is_shared(reply):
            return None
        return await self._db(lambda s: refresh_for(s, reply))

    async def _message(self, reply: Reply, notice: str | None = None) -> Activity:
        """The message for a Reply; a shared card (escalation, alert) carries its per-person views."""
        return message_for(reply, notice, refresh=await self._refresh(reply))

    async def _card(self, reply: Reply, notice: str | None = None) -> AdaptiveCardInvokeResponse:
        refresh = await self._refresh(reply)
        card = render_card(reply, notice, refresh=refresh)
        return _card(card if card is not None else notice_card(notice or reply.text))

    async def _target(self, turn_context: TurnContext) -> Target | HandlerError:
        origin = (
            turn_context.activity.conversation.id if turn_context.activity.conversation else None
        )
        return await self._db(lambda s: escalation_target(s, self.container, origin))

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
        if _OPEN_FORM.match(text) or _ESCALATE.match(text):
            target = await self._target(turn_context)
            if isinstance(target, HandlerError):
                # Refused before anything is opened, like Slack's /escalate.
                await turn_context.send_activity(message_for(_notice(target.message)))
                return
        else:
            target = None
        asked: list[ChatContext] = []

        def answer(session: Session, ctx: ChatContext) -> Reply:
            asked.append(ctx)
            return _answer(session, ctx, text, self)

        try:
            reply = await self._handle(turn_context, answer)
        except HandlerError as error:
            metrics.HANDLER_ERRORS.labels(type(error).__name__).inc()
            reply = _notice(error.message)
        if isinstance(target, Target) and _opened(reply):
            await self._post_escalation(turn_context, reply, target)
            return
        await turn_context.send_activity(await self._message(reply))
        if reply.attachments and asked:
            # The answer is out; its charts (and a deck) follow.
            await self._send_attachments(turn_context, reply.attachments, asked[0])

    async def _post_escalation(
        self, turn_context: TurnContext, reply: Reply, target: Target
    ) -> None:
        """A new escalation: its card starts a thread (in the escalation channel, or right here)."""
        posted = await self._threads(turn_context).post_card(reply, target)
        if target.elsewhere or not posted.activity_id:
            await turn_context.send_activity(message_for(confirmation(reply, posted)))

    # --- charts and decks ---------------------------------------------------------------------

    async def _send_attachments(
        self, turn_context: TurnContext, attachments: tuple[Attachment, ...], ctx: ChatContext
    ) -> None:
        """Charts as Image cards; a deck as a file-consent card, in the personal chat only (Teams
        bots can send files there alone, and a draft deck is not for a shared channel)."""
        from bot.teams.files import chart_message, consent_message
        from handlers.attachments import safe_files

        personal = turn_context.activity.conversation.conversation_type == "personal"
        problems: list[str] = []
        for item in attachments:
            if item.kind == "qbr_pack" and not personal:
                problems.append(f"{item.title}: decks come in our 1:1 chat; send me “qbr …” there")
                continue
            files, failed = await asyncio.to_thread(
                safe_files,
                self.container.session,
                (item,),
                ctx=ctx,
                models=self.container.health_models,
            )
            problems += failed
            for out in files:
                if out.is_image:
                    await turn_context.send_activity(chart_message(out))
                else:
                    context = {"kind": "qbr_pack", **item.data}
                    await turn_context.send_activity(consent_message(out, context))
        if problems:
            await turn_context.send_activity(plain_message("Not attached: " + "; ".join(problems)))

    async def on_teams_file_consent_accept(
        self, turn_context: TurnContext, file_consent_card_response: FileConsentCardResponse
    ) -> None:
        """The user took the deck: build it for them (their rights apply), upload, show it."""
        from bot.teams.files import file_info_message, upload
        from handlers.attachments import pack_file

        info = file_consent_card_response.upload_info
        item = _deck_request(file_consent_card_response.context)
        if item is None or info is None or not info.upload_url:
            # An old card, or one whose context was tampered with: nothing is built.
            await turn_context.send_activity("This file card has expired. Ask me again.")
            return
        models = self.container.health_models
        try:
            out = await self._handle(
                turn_context, lambda s, ctx: pack_file(s, item, ctx=ctx, models=models)
            )
        except HandlerError as error:
            await turn_context.send_activity(plain_message(f"Not sent: {error.message}"))
            return
        try:
            await upload(info.upload_url, out.content)
        except httpx.HTTPError as exc:
            logger.error("deck upload to OneDrive failed: %s", exc)
            await turn_context.send_activity("The upload to OneDrive failed. Try again.")
            return
        await turn_context.send_activity(
            file_info_message(info.name, info.content_url, info.unique_id, info.file_type)
        )

    async def on_teams_file_consent_decline(
        self, turn_context: TurnContext, file_consent_card_response: FileConsentCardResponse
    ) -> None:
        await turn_context.send_activity("OK, I did not send the deck.")

    # --- installs and membership --------------------------------------------------------------

    async def on_conversation_update_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        bot_id = activity.recipient.id if activity.recipient else None
        removed = any(m.id == bot_id for m in activity.members_removed or [])
        if removed:
            await self._db(lambda s: mark_inactive(s, conversation_id=activity.conversation.id))
            return
        await self._speaker(turn_context)
        data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
        channel = data.get("channel") or {}
        if data.get("eventType") in ("channelCreated", "channelRenamed") and channel.get("id"):
            # A new channel of a team the bot is in: accounts can be mapped to it right away.
            found = [(str(channel["id"]), channel.get("name"))]
            await self._db(lambda s: save_channels(s, activity=activity, channels=found))
            return
        if data.get("eventType") == "channelDeleted" and channel.get("id"):
            await self._db(lambda s: mark_inactive(s, conversation_id=str(channel["id"])))
            return
        added = any(m.id == bot_id for m in activity.members_added or [])
        if not added:
            return
        if activity.conversation.conversation_type == "personal":
            await self._welcome(turn_context)
        elif activity.conversation.conversation_type == "channel":
            await remember_team(turn_context, self.container, link=self.verified)

    async def on_installation_update_add(self, turn_context: TurnContext) -> None:
        await self._speaker(turn_context)

    async def on_installation_update_remove(self, turn_context: TurnContext) -> None:
        conversation_id = turn_context.activity.conversation.id
        await self._db(lambda s: mark_inactive(s, conversation_id=conversation_id))

    async def _welcome(self, turn_context: TurnContext) -> None:
        from handlers.help import welcome_reply

        reply = await self._handle(turn_context, lambda s, ctx: welcome_reply(ctx))
        await turn_context.send_activity(message_for(reply))

    # --- Adaptive Card actions (Action.Execute) -----------------------------------------------

    async def on_adaptive_card_invoke(
        self, turn_context: TurnContext, invoke_value: AdaptiveCardInvokeValue
    ) -> AdaptiveCardInvokeResponse:
        action = invoke_value.action or {}
        verb = str(action.get("verb") or "")
        data = action.get("data") or {}
        spec = ACTIONS.get(verb)
        if spec is None or not isinstance(data, dict):
            metrics.HANDLER_ERRORS.labels("UnknownAction").inc()
            return _error(400, "BadRequest", f"Unknown action {verb!r}.")
        metrics.CARD_ACTIONS.labels(verb).inc()
        activity = turn_context.activity
        clicked = Clicked(
            conversation_id=activity.conversation.id if activity.conversation else None,
            activity_id=activity.reply_to_id,
        )
        target: Target | None = None
        if spec.after == "opened":
            found = await self._target(turn_context)
            if isinstance(found, HandlerError):
                return await self._form_again(turn_context, spec, data, {}, found.message)
            target = found
        elif spec.after == "auto":
            # A confirm: what follows depends on what it did (opened or moved an escalation).
            found = await self._target(turn_context)
            target = None if isinstance(found, HandlerError) else found
        container = self.container
        try:
            reply = await self._handle(
                turn_context, lambda s, ctx: spec.run(s, ctx, data, container)
            )
        except ValidationFailed as error:
            metrics.HANDLER_ERRORS.labels("ValidationFailed").inc()
            if spec.form is not None and set(error.errors) <= spec.fields:
                return await self._form_again(turn_context, spec, data, error.errors)
            return await self._with_notice(turn_context, spec, data, error.message)
        except HandlerError as error:
            metrics.HANDLER_ERRORS.labels(type(error).__name__).inc()
            if data.get("keep_card"):
                return _message_response(error.message)
            # Nothing changed (the unit of work rolled back): show why above the card as it is now.
            return await self._with_notice(turn_context, spec, data, error.message)
        except BadAction as error:
            metrics.HANDLER_ERRORS.labels("BadAction").inc()
            # The fields' names, not their values: notes and reasons are what people typed.
            logger.info("bad card action data for %s: fields %s (%s)", verb, sorted(data), error)
            return _error(
                400,
                "BadRequest",
                "This button is missing what it needs. Ask again for a fresh card.",
            )
        except Exception:  # answer the invoke (Teams shows an error) and keep the trace in the log
            metrics.HANDLER_ERRORS.labels("InternalError").inc()
            logger.exception("card action %s failed", verb)
            return _error(500, "InternalError", "Something went wrong on my side. Try again.")
        if data.get("keep_card"):
            # A line of a list (digest, urgent alerts): the list stays as it was and the outcome
            # is told in a message of its own; the alert's own cards, where any were posted, are
            # updated as always (not the list that was clicked).
            if spec.after == "alert":
                await update_alert_cards(
                    self.container, self._outbound(turn_context), reply, Clicked()
                )
            return _message_response(_line_outcome(reply))
        return await self._after(turn_context, spec, reply, clicked, target)

    async def _after(
        self,
        turn_context: TurnContext,
        spec: CardAction,
        reply: Reply,
        clicked: Clicked,
        target: Target | None,
    ) -> AdaptiveCardInvokeResponse:
        """What a change needs besides the clicker's answer: shared cards edited for everyone."""
        after = spec.after
        if after == "auto":
            after = (
                "opened"
                if _opened(reply)
                else "escalation"
                if reply.template == "escalation"
                else None
            )
        if after == "escalation":
            await self._threads(turn_context).publish_update(reply, clicked)
        elif after == "alert":
            await update_alert_cards(self.container, self._outbound(turn_context), reply, clicked)
        elif after == "opened" and target is not None:
            if reply.context.get("existing"):
                # The same submit again (same activity id): the first one posted the card.
                number = reply.context["escalation"]["id"]
                return await self._card(
                    reply,
                    f"Escalation #{number} is already open (this request reached me twice); "
                    "nothing new was opened.",
                )
            return await self._opened(turn_context, reply, clicked, target)
        return await self._card(reply, spec.done)

    async def _opened(
        self, turn_context: TurnContext, reply: Reply, clicked: Clicked, target: Target
    ) -> AdaptiveCardInvokeResponse:
        """The open form was submitted: the card goes to the escalation channel (the form then
        says where), or the form itself becomes the escalation's card, for everyone."""
        threads = self._threads(turn_context)
        if not target.elsewhere and await threads.become_card(reply, clicked):
            return await self._card(reply)
        posted = await threads.post_card(reply, target)
        outcome = confirmation(reply, posted)
        if clicked.conversation_id and clicked.activity_id:
            conversation, activity_id = clicked.conversation_id, clicked.activity_id
            reference = await self._db(lambda s: reference_to(s, conversation))
            if reference is not None:
                # Others in the conversation must not be left looking at a form someone submitted.
                await update_for_everyone(
                    self.container,
                    self._outbound(turn_context),
                    outcome,
                    [(reference, activity_id)],
                )
        return await self._card(outcome)

    async def _form_again(
        self,
        turn_context: TurnContext,
        spec: CardAction,
        data: dict[str, Any],
        errors: dict[str, str],
        notice: str | None = None,
    ) -> AdaptiveCardInvokeResponse:
        """The form as submitted, with each error under its field; nothing was changed."""
        assert spec.form is not None
        form = spec.form
        container = self.container
        try:
            reply = await self._handle(turn_context, lambda s, ctx: form(s, ctx, data, container))
        except HandlerError as error:
            return _card(notice_card(error.message))
        values = {k: v for k, v in data.items() if k in spec.fields}
        reply = replace(reply, context={**reply.context, "errors": errors, "values": values})
        return await self._card(reply, notice)

    async def _with_notice(
        self, turn_context: TurnContext, spec: CardAction, data: dict[str, Any], message: str
    ) -> AdaptiveCardInvokeResponse:
        """The card the user acted on, drawn as it is now, with ``message`` on top (else just the message)."""
        redraw = spec.card
        reply: Reply | None = None
        if redraw is not None:
            container = self.container
            try:
                reply = await self._handle(
                    turn_context, lambda s, ctx: redraw(s, ctx, data, container)
                )
            except (HandlerError, BadAction):
                reply = None
        if reply is None:
            return _card(notice_card(message))
        return await self._card(reply, message)


def _deck_request(context: Any) -> Attachment | None:
    """The deck a file consent card's context asks for, or None when it is not one we wrote."""
    if not isinstance(context, dict) or context.get("kind") != "qbr_pack":
        return None
    account_id, variant, day = (
        context.get("account_id"),
        context.get("variant"),
        context.get("today"),
    )
    if not isinstance(account_id, int) or isinstance(account_id, bool):
        return None
    if not 0 < account_id < 2**53 or not isinstance(variant, str | None):
        return None
    try:
        if day is not None:
            date.fromisoformat(str(day))
    except ValueError:
        return None
    return Attachment(
        kind="qbr_pack",
        title="QBR pack",
        data={"account_id": account_id, "variant": variant or "executive", "today": day},
    )


def mapped_accounts(session: Session, conversation_id: str) -> frozenset[int]:
    """The accounts mapped to a Teams channel or chat: all a shared one may show."""
    ids = session.exec(
        select(Account.id).where(Account.teams_conversation_id == conversation_id)
    ).all()
    return frozenset(i for i in ids if i is not None)


def request_key(activity: Activity) -> str | None:
    """The platform's own id of an activity (ChatContext.request_key): conversation + activity id."""
    if not activity.id:
        return None
    digest = hashlib.sha256(f"{activity.conversation.id}|{activity.id}".encode()).hexdigest()
    return f"teams:{digest[:40]}"


def _answer(session: Session, ctx: ChatContext, text: str, bot: CsmTeamsBot) -> Reply:
    """A message: the few Teams commands (the open form, home), else the conversational handler."""
    if _OPEN_FORM.match(text):
        from handlers.escalations import new_escalation_form

        return new_escalation_form(session, ctx=ctx)
    if _HOME.match(text):
        from handlers.portfolio import home

        return home(session, ctx=ctx)
    from handlers import ask

    return ask.answer(session, text, ctx, models=bot.container.health_models)


def _opened(reply: Reply) -> bool:
    """A just-opened escalation (the handler marks it for the channel)."""
    return reply.template == "escalation" and reply.visibility == "channel"


def _notice(message: str) -> Reply:
    return Reply(template="notice", context={"message": message}, text=message)


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


def _line_outcome(reply: Reply) -> str:
    """ "Acknowledged by Dana: Acme Corp: Health turned red." from an alert's card reply."""
    context = reply.context if isinstance(reply.context, dict) else {}
    note, alert, account = context.get("note"), context.get("alert"), context.get("account")
    if note and isinstance(alert, dict) and isinstance(account, dict):
        return f"{note}: {account.get('name')}: {alert.get('title')}."
    return reply.text


class _MessageInvokeResponse(AdaptiveCardInvokeResponse):
    """botbuilder types an invoke response's value as an object; a message response's is text."""

    _attribute_map = {
        **AdaptiveCardInvokeResponse._attribute_map,
        "value": {"key": "value", "type": "str"},
    }


def _message_response(text: str) -> AdaptiveCardInvokeResponse:
    """Universal Actions' "message" response: Teams shows the text and leaves the card as it is."""
    return _MessageInvokeResponse(
        status_code=200, type="application/vnd.microsoft.activity.message", value=text
    )


def _error(status: int, code: str, message: str) -> AdaptiveCardInvokeResponse:
    return AdaptiveCardInvokeResponse(
        status_code=status,
        type="application/vnd.microsoft.error",
        value={"code": code, "message": message},
    )
