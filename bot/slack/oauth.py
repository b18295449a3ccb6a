"""Optional multi-workspace install: bolt's OAuth flow with its SQLAlchemy stores on our own database."""

from __future__ import annotations

import logging

from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import desc, select

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


def installation_store(container: Container, client_id: str) -> SQLAlchemyInstallationStore:
    """bolt's installation store (tables slack_bots, slack_installations) on our database.

    Its tables live in slack_sdk's own metadata, outside our Alembic history (they are only
    needed when multi-workspace install is on), so they are created here when missing.
    """
    store = SQLAlchemyInstallationStore(client_id=client_id, engine=container.engine)
    store.create_tables()
    return store


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
        installation_store=installation_store(container, config.client_id),
        state_store=state_store,
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
