"""Settings read from the environment (prefix CSM_ for our own, the platforms' usual names for theirs) or .env."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DB_PATH = Path.home() / ".local" / "share" / "csm-assistant" / "csm.db"
DEFAULT_FILES_DIR = Path.home() / ".local" / "share" / "csm-assistant" / "files"


class Settings(BaseSettings):
    """Everything the assistant can be configured with; see README for the full table."""

    model_config = SettingsConfigDict(
        env_prefix="CSM_", env_file=".env", extra="ignore", populate_by_name=True
    )

    database_url: str = Field(default=f"sqlite:///{DEFAULT_DB_PATH}")
    health_model: Path | None = None
    # The local chat answers as this CSM when --as is not given.
    console_user: str | None = None
    log_level: str = "WARNING"
    # Bearer token for the HTTP data API (/api/v1/...); unset keeps that API switched off.
    api_token: str | None = None
    # Day the assistant treats as "today"; unset means the real date. Tests and demos pin it.
    today: str | None = None
    # Slack channel id where escalations are posted as threads; unset: the channel they were opened in.
    escalation_channel: str | None = None
    # Sync from Salesforce, HubSpot or a SQL source (docs/sync.md); unset: no sync.
    sync_config: Path | None = None
    # How often the scheduler runs the sync (the leader only).
    sync_interval_minutes: int = Field(default=60, ge=5)
    # Where the local chat writes the charts and QBR packs it makes (one file per content).
    files_dir: Path = DEFAULT_FILES_DIR
    # Teams channel (conversation id, 19:…@thread.tacv2) where escalations are posted as threads;
    # unset: the conversation they were opened in.
    teams_escalation_channel: str | None = None
    # In a channel shared with another organisation (Slack Connect, Teams guests or other
    # tenants), answer about the account mapped to it; off: nothing about any account there.
    shared_channel_answers: bool = False
    # Local development only: answer Teams without an app id (no JWT check). The server then
    # listens on 127.0.0.1 whatever --host says, and says so at start-up.
    teams_dev_no_auth: bool = False

    slack_bot_token: str | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_BOT_TOKEN", "CSM_SLACK_BOT_TOKEN")
    )
    slack_signing_secret: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SLACK_SIGNING_SECRET", "CSM_SLACK_SIGNING_SECRET"),
    )
    slack_app_token: str | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_APP_TOKEN", "CSM_SLACK_APP_TOKEN")
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/",
        validation_alias=AliasChoices("SLACK_API_URL", "CSM_SLACK_API_URL"),
    )
    microsoft_app_id: str | None = Field(
        default=None, validation_alias=AliasChoices("MICROSOFT_APP_ID", "CSM_MICROSOFT_APP_ID")
    )
    microsoft_app_password: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MICROSOFT_APP_PASSWORD", "CSM_MICROSOFT_APP_PASSWORD"),
    )
    microsoft_app_tenant_id: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MICROSOFT_APP_TENANT_ID", "CSM_MICROSOFT_APP_TENANT_ID"),
    )


class ConfigurationError(ValueError):
    """A setting is missing or contradicts another; the message is one line saying how to fix it."""


def get_settings() -> Settings:
    """Read settings afresh (cheap; callers that need them often keep the instance)."""
    return Settings()
