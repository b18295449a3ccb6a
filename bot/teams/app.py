"""The Bot Framework adapter for one process: JWT check of every request, then the bot's turn."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity, ActivityTypes, CallerIdConstants
from botframework.connector.auth import (
    AuthenticationConfiguration,
    AuthenticationConstants,
    BotFrameworkAuthentication,
    BotFrameworkAuthenticationFactory,
    PasswordServiceClientCredentialFactory,
)

from bot.teams import metrics
from bot.teams.bot import CsmTeamsBot
from bot.teams.identity import RosterCache

if TYPE_CHECKING:
    from bot.container import Container

logger = logging.getLogger(__name__)


def build_authentication(
    app_id: str | None,
    app_password: str | None,
    tenant_id: str | None,
    *,
    openid_metadata_url: str | None = None,
) -> BotFrameworkAuthentication:
    """Public-cloud Bot Framework authentication, spelled out so the OpenID metadata URL can be moved.

    The values are botbuilder's public-cloud constants; only ``openid_metadata_url`` differs when a
    test points the signing-key download at a local server. With no app id every check is off.
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
        credential_factory=PasswordServiceClientCredentialFactory(
            app_id or "", app_password or "", tenant_id
        ),
        auth_configuration=AuthenticationConfiguration(),
    )


class TeamsApp:
    """Adapter, authentication and bot, built once per process and shared by every request."""

    def __init__(
        self,
        container: Container,
        *,
        openid_metadata_url: str | None = None,
        roster: RosterCache | None = None,
    ) -> None:
        settings = container.settings
        self.container = container
        self.app_id = settings.microsoft_app_id or ""
        self.authentication = build_authentication(
            settings.microsoft_app_id,
            settings.microsoft_app_password,
            settings.microsoft_app_tenant_id,
            openid_metadata_url=openid_metadata_url,
        )
        self.adapter = CloudAdapter(self.authentication)
        self.adapter.on_turn_error = self._on_turn_error
        self.bot = CsmTeamsBot(container, roster)

    @property
    def auth_enabled(self) -> bool:
        return bool(self.app_id)

    async def process(self, body: Any, auth_header: str | None) -> tuple[int, Any]:
        """Authenticate and run one incoming activity; returns (HTTP status, JSON body or None)."""
        if not isinstance(body, dict) or not body.get("type"):
            metrics.REFUSED.labels("malformed").inc()
            return 400, {"error": "expected a Bot Framework activity"}
        try:
            activity = Activity().deserialize(body)
        except Exception:  # msrest raises several types for malformed input; all mean the same
            metrics.REFUSED.labels("malformed").inc()
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
        metrics.ACTIVITIES.labels(_kind(activity)).inc()
        invoke = await self.adapter.process_activity(result, activity, self.bot.on_turn)
        if invoke is not None:
            return invoke.status, invoke.body
        return 200, None

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


# Label values stay a short known list, whatever a (possibly unauthenticated) sender writes.
_KINDS = frozenset(t.value for t in ActivityTypes)
_INVOKES = frozenset({"adaptiveCard/action", "task/fetch", "task/submit", "composeExtension/query"})


def _kind(activity: Activity) -> str:
    """The activity type, and the name of an invoke: message, invoke:adaptiveCard/action..."""
    kind = str(activity.type or "")
    if kind == ActivityTypes.invoke:
        return f"invoke:{activity.name if activity.name in _INVOKES else 'other'}"
    return kind if kind in _KINDS else "other"
