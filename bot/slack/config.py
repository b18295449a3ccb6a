"""Slack-only settings: the OAuth app credentials that turn on multi-workspace install."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SlackOAuthConfig(BaseSettings):
    """SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (environment or .env); both set = multi-workspace."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    client_id: str | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_CLIENT_ID", "CSM_SLACK_CLIENT_ID")
    )
    client_secret: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SLACK_CLIENT_SECRET", "CSM_SLACK_CLIENT_SECRET"),
    )
    # Where Slack sends the installer back; unset = the redirect URL configured on the app.
    redirect_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SLACK_REDIRECT_URI", "CSM_SLACK_REDIRECT_URI"),
    )
    # The workspaces (T…) or Enterprise Grids (E…) that may install the app, comma-separated.
    # Unset: the first workspace to install it, and no other (closed by default: with public
    # distribution on, anyone on Slack can reach /slack/install).
    allowed_teams: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SLACK_ALLOWED_TEAMS", "CSM_SLACK_ALLOWED_TEAMS"),
    )

    @property
    def allowed_team_ids(self) -> frozenset[str]:
        return frozenset(t.strip() for t in (self.allowed_teams or "").split(",") if t.strip())

    @property
    def enabled(self) -> bool:
        return bool(self.client_id and self.client_secret)
