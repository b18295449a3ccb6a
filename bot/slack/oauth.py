"""Optional multi-workspace install: bolt's OAuth flow with its SQLAlchemy stores on our own database."""

from __future__ import annotations

import logging

from slack_bolt import BoltResponse
from slack_bolt.error import BoltError
from slack_bolt.oauth.callback_options import CallbackOptions, FailureArgs, SuccessArgs
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import desc, or_, select

from bot.container import Container
from bot.slack.config import SlackOAuthConfig

logger = logging.getLogger(__name__)

# The bot scopes of manifest.yml (tests/slack/test_oauth.py keeps the two in step).
BOT_SCOPES = (
    "app_mentions:read",
    "channels:read",
    "groups:read",
    "im:read",
    "mpim:read",
    "chat:write",
    "commands",
    "files:write",
    "im:history",
    "channels:history",
    "groups:history",
    "im:write",
    "users:read",
    "users:read.email",
)
STATE_EXPIRATION_SECONDS = 600


class InstallRefused(BoltError):
    """A workspace that may not install the app tried to (SLACK_ALLOWED_TEAMS)."""


REFUSED_PAGE = (
    "<html><body><h1>Not installed</h1><p>This CSM Assistant serves another organisation's "
    "Slack. Ask its admin to add your workspace to SLACK_ALLOWED_TEAMS.</p></body></html>"
)


class OurWorkspacesInstallationStore(SQLAlchemyInstallationStore):
    """bolt's store, saving installs only of the workspaces allowed to install the app.

    SLACK_ALLOWED_TEAMS lists them (team or Enterprise Grid ids); unset, the first workspace to
    install the app is the only one. With public distribution on anyone on Slack can open
    /slack/install: without this, a stranger's workspace would install the app, and its token
    (the latest install) would take over the scheduled posts.
    """

    def __init__(self, *, allowed: frozenset[str], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.allowed = allowed

    def may_install(self, team_id: str | None, enterprise_id: str | None) -> bool:
        ids = {i for i in (team_id, enterprise_id) if i}
        if self.allowed:
            return bool(ids & self.allowed)
        column = self.installations.c
        with self.engine.connect() as conn:
            first = conn.execute(
                select(column.id).where(column.client_id == self.client_id).limit(1)
            ).first()
            if first is None:
                return True  # the first workspace claims the deployment
            ours = conn.execute(
                select(column.id)
                .where(column.client_id == self.client_id)
                .where(or_(column.team_id.in_(ids), column.enterprise_id.in_(ids)))
                .limit(1)
            ).first()
        return ours is not None

    def save(self, installation: Installation) -> None:
        if not self.may_install(installation.team_id, installation.enterprise_id):
            logger.warning(
                "Slack install by workspace %s (enterprise %s) refused: not in SLACK_ALLOWED_TEAMS",
                installation.team_id,
                installation.enterprise_id,
            )
            raise InstallRefused("this workspace may not install the app")
        super().save(installation)


def installation_store(
    container: Container, client_id: str, allowed: frozenset[str] = frozenset()
) -> OurWorkspacesInstallationStore:
    """bolt's installation store (tables slack_bots, slack_installations) on our database.

    Its tables live in slack_sdk's own metadata, outside our Alembic history (they are only
    needed when multi-workspace install is on), so they are created here when missing.
    """
    store = OurWorkspacesInstallationStore(
        allowed=allowed, client_id=client_id, engine=container.engine
    )
    store.create_tables()
    return store


def _success(args: SuccessArgs) -> BoltResponse:
    return args.default.success(args)


def _failure(args: FailureArgs) -> BoltResponse:
    if isinstance(args.error, InstallRefused):
        return BoltResponse(
            status=403, body=REFUSED_PAGE, headers={"Content-Type": "text/html; charset=utf-8"}
        )
    return args.default.failure(args)


def oauth_settings(container: Container, config: SlackOAuthConfig) -> OAuthSettings:
    """OAuth for `/slack/install` → Slack → `/slack/oauth_redirect`, stored in our database."""
    assert config.client_id and config.client_secret
    state_store = SQLAlchemyOAuthStateStore(
        expiration_seconds=STATE_EXPIRATION_SECONDS, engine=container.engine
    )
    state_store.create_tables()
    return OAuthSettings(
        client_id=config.client_id,
        client_secret=config.client_secret,
        scopes=list(BOT_SCOPES),
        redirect_uri=config.redirect_uri,
        installation_store=installation_store(container, config.client_id, config.allowed_team_ids),
        state_store=state_store,
        callback_options=CallbackOptions(success=_success, failure=_failure),
    )


def latest_bot_token(container: Container, config: SlackOAuthConfig) -> str | None:
    """The most recently installed workspace's bot token (scheduled posts without SLACK_BOT_TOKEN)."""
    if not config.client_id:
        return None
    store = installation_store(container, config.client_id)
    bots = store.bots
    with container.engine.connect() as conn:
        row = conn.execute(
            select(bots.c.bot_token)
            .where(bots.c.client_id == config.client_id)
            .order_by(desc(bots.c.installed_at))
            .limit(1)
        ).first()
    return row[0] if row else None
