"""The Bot Framework adapter for one process: JWT check of every request, then the bot's turn."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import TYPE_CHECKING, Any

from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import (
    Activity,
    ActivityTypes,
    AdaptiveCardInvokeResponse,
    CallerIdConstants,
)
from botframework.connector.auth import (
    AuthenticationConfiguration,
    AuthenticationConstants,
    BotFrameworkAuthentication,
    BotFrameworkAuthenticationFactory,
    PasswordServiceClientCredentialFactory,
    ServiceClientCredentialsFactory,
)
from msrest.serialization import Model
from sqlalchemy.exc import IntegrityError

from bot.config import ConfigurationError
from bot.teams import metrics
from bot.teams.bot import CsmTeamsBot
from bot.teams.identity import RosterCache
from bot.teams.references import tenant_of
from storage.platform_models import TeamsActivityReceipt

if TYPE_CHECKING:
    from bot.container import Container

logger = logging.getLogger(__name__)


def build_authentication(
    app_id: str | None,
    app_password: str | None,
    tenant_id: str | None,
    *,
    openid_metadata_url: str | None = None,
    credential_factory: ServiceClientCredentialsFactory | None = None,
) -> BotFrameworkAuthentication:
    """Public-cloud Bot Framework authentication, spelled out so the OpenID metadata URL can be moved.

    The values are botbuilder's public-cloud constants; only ``openid_metadata_url`` differs when a
    test points the signing-key download at a local server, and ``credential_factory`` when a
    test signs outgoing calls without Microsoft's token service. With no app id every check is off.
    """
    login_tenant = tenant_id or AuthenticationConstants.DEFAULT_CHANNEL_AUTH_TENANT
    return BotFrameworkAuthenticationFactory.create(
        validate_authority=True,
        to_channel_from_bot_login_url=AuthenticationConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL_PREFIX
        + login_tenant,
        to_channel_from_bot_oauth_scope=AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE,
        to_bot_from_channel_token_issuer=AuthenticationConstants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER,
        oauth_url=AuthenticationConstants.OAUTH_URL,
        to_bot_from_channel_open_id_metadata_url=(
            openid_metadata_url or AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL
        ),
        to_bot_from_emulator_open_id_metadata_url=(
            AuthenticationConstants.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL
        ),
        caller_id=CallerIdConstants.public_azure_channel,
        credential_factory=credential_factory
        or PasswordServiceClientCredentialFactory(app_id or "", app_password or "", tenant_id),
        auth_configuration=AuthenticationConfiguration(),
    )


TENANT_REQUIRED = (
    "MICROSOFT_APP_TENANT_ID is not set: with MICROSOFT_APP_ID the bot is single-tenant, so set "
    "it to your Microsoft 365 tenant id (Azure portal > Microsoft Entra ID > Overview > Tenant ID)."
)


class TeamsApp:
    """Adapter, authentication and bot, built once per process and shared by every request.

    Closed by default: without MICROSOFT_APP_ID every request is refused (401), unless the local
    development switch CSM_TEAMS_DEV_NO_AUTH is on. With an app id the tenant id is required, and
    activities from any other tenant are refused before anything runs.
    """

    def __init__(
        self,
        container: Container,
        *,
        openid_metadata_url: str | None = None,
        roster: RosterCache | None = None,
        credential_factory: ServiceClientCredentialsFactory | None = None,
    ) -> None:
        settings = container.settings
        self.container = container
        self.app_id = settings.microsoft_app_id or ""
        self.tenant_id = settings.microsoft_app_tenant_id or None
        if self.app_id and not self.tenant_id:
            raise ConfigurationError(TENANT_REQUIRED)
        # The switch only matters without an app id: with one, every request is checked.
        self.dev_no_auth = bool(settings.teams_dev_no_auth) and not self.app_id
        self.authentication = build_authentication(
            settings.microsoft_app_id,
            settings.microsoft_app_password,
            settings.microsoft_app_tenant_id,
            openid_metadata_url=openid_metadata_url,
            credential_factory=credential_factory,
        )
        self.adapter = CloudAdapter(self.authentication)
        self.adapter.on_turn_error = self._on_turn_error
        # Only a verified activity may link a person to a Teams identity.
        self.bot = CsmTeamsBot(container, roster, verified=self.auth_enabled)

    @property
    def auth_enabled(self) -> bool:
        return bool(self.app_id)

    @property
    def open(self) -> bool:
        """Whether /api/messages answers at all (an app id, or the development switch)."""
        return self.auth_enabled or self.dev_no_auth

    async def process(self, body: Any, auth_header: str | None) -> tuple[int, Any]:
        """Authenticate and run one incoming activity; returns (HTTP status, JSON body or None)."""
        if not self.open:
            metrics.REFUSED.labels("unauthorized").inc()
            return 401, None
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            metrics.REFUSED.labels("malformed").inc()
            return 400, {"error": "expected a Bot Framework activity"}
        try:
            activity = Activity().deserialize(body)
        except Exception:  # msrest raises several types for malformed input; all mean the same
            metrics.REFUSED.labels("malformed").inc()
            return 400, {"error": "malformed activity"}
        if not _well_formed(activity):
            return 400, {"error": "malformed activity"}
        try:
            # With auth off a stray header is ignored rather than validated against Microsoft's keys.
            result = await self.authentication.authenticate_request(
                activity, (auth_header or None) if self.auth_enabled else None
            )
        except Exception as exc:
            # PermissionError, jwt errors, unknown key id: all are "not authorised".
            logger.warning("Teams request refused (%s): %s", type(exc).__name__, exc)
            metrics.REFUSED.labels("unauthorized").inc()
            return 401, None
        if self.tenant_id and (tenant_of(activity) or "").lower() != self.tenant_id.lower():
            logger.warning("Teams activity from tenant %r refused", tenant_of(activity))
            metrics.REFUSED.labels("tenant").inc()
            return 403, {"error": "this bot serves one Microsoft 365 tenant"}
        card_action = activity.type == ActivityTypes.invoke and activity.name == CARD_ACTION
        if card_action:
            problem = card_action_problem(activity.value)
            if problem is not None:
                # Universal Actions: HTTP 200, and the error in the invoke response.
                metrics.REFUSED.labels("malformed").inc()
                return 200, invoke_error(400, "BadRequest", problem)
        if not await self._first_delivery(activity):
            logger.info("Teams activity %s delivered again: skipped", activity.id)
            metrics.REFUSED.labels("duplicate").inc()
            return 200, None
        metrics.ACTIVITIES.labels(_kind(activity)).inc()
        invoke = await self.adapter.process_activity(result, activity, self.bot.on_turn)
        if card_action:
            if invoke is None or invoke.body is None:
                return 200, invoke_error(500, "InternalError", "Something went wrong on my side.")
            # Universal Actions: the HTTP status is 200; the outcome (an error too) is in the body.
            return 200, invoke_body(invoke.body)
        if invoke is None:
            return 200, None
        if invoke.status == 501:
            # An invoke this bot does not handle (botbuilder's 501): the request's fault, not ours.
            return 400, {"error": f"unsupported invoke {str(activity.name)[:60]!r}"}
        return invoke.status, invoke_body(invoke.body)

    async def _first_delivery(self, activity: Activity) -> bool:
        """True the first time an activity (conversation id + activity id) arrives.

        Invokes are answered every time (the client waits for the answer; what they change is
        idempotent by itself); messages and updates delivered twice run once.
        """
        if activity.type == ActivityTypes.invoke or not activity.id:
            return True
        key = hashlib.sha256(f"{activity.conversation.id}|{activity.id}".encode()).hexdigest()

        def insert() -> bool:
            try:
                with self.container.session() as session:
                    session.add(TeamsActivityReceipt(activity_key=key))
            except IntegrityError:
                return False
            return True

        return await asyncio.to_thread(insert)

    async def _on_turn_error(self, turn_context: TurnContext, error: Exception) -> None:
        logger.error("Teams turn failed", exc_info=error)
        if turn_context.activity.type == ActivityTypes.message:
            try:
                await turn_context.send_activity(
                    "Sorry, something went wrong on my side. Try again in a moment."
                )
            except Exception:
                # The connector itself may be what failed; the log above has the cause.
                logger.warning("could not tell the user about the failure", exc_info=True)


CARD_ACTION = "adaptiveCard/action"


def card_action_problem(value: Any) -> str | None:
    """Why an adaptiveCard/action invoke's value is not an Action.Execute we can run, or None."""
    if not isinstance(value, dict):
        return (
            "Missing value property" if value is None else "Value property is not properly formed"
        )
    action = value.get("action")
    if not isinstance(action, dict):
        return "Missing action property"
    if action.get("type") != "Action.Execute":
        return f"The action {str(action.get('type'))[:40]!r} is not supported."
    if not isinstance(action.get("verb"), str | None) or not isinstance(
        action.get("data"), dict | None
    ):
        return "The action's verb or data is not properly formed"
    return None


def invoke_error(status: int, code: str, message: str) -> dict[str, Any]:
    """An error invoke response body, as Universal Actions define it."""
    return {
        "statusCode": status,
        "type": "application/vnd.microsoft.error",
        "value": {"code": code, "message": message},
    }


def invoke_body(body: Any) -> Any:
    """An invoke response body as JSON (botbuilder hands back models, and errors as Exceptions)."""
    if isinstance(body, AdaptiveCardInvokeResponse) and isinstance(body.value, Exception):
        code, message = [*body.value.args, "Error", "Something went wrong."][:2]
        return invoke_error(int(body.status_code or 500), str(code), str(message))
    return body.serialize() if isinstance(body, Model) else body


def _well_formed(activity: Activity) -> bool:
    """What every turn relies on: a conversation with an id, and a sender and recipient."""
    conversation = activity.conversation
    if conversation is None or not isinstance(conversation.id, str) or not conversation.id:
        return False
    if activity.id is not None and not isinstance(activity.id, str):
        return False
    return isinstance(activity.service_url, str) and bool(activity.service_url)


# Label values stay a short known list, whatever a (possibly unauthenticated) sender writes.
_KINDS = frozenset(t.value for t in ActivityTypes)
_INVOKES = frozenset({"adaptiveCard/action", "task/fetch", "task/submit", "composeExtension/query"})


def _kind(activity: Activity) -> str:
    """The activity type, and the name of an invoke: message, invoke:adaptiveCard/action..."""
    kind = str(activity.type or "")
    if kind == ActivityTypes.invoke:
        return f"invoke:{activity.name if activity.name in _INVOKES else 'other'}"
    return kind if kind in _KINDS else "other"
