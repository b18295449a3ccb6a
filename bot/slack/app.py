"""Builds the bolt App: fast-path acks, signature checks, the ChatContext middleware and every listener."""

from __future__ import annotations

import logging
from concurrent.futures import Executor
from dataclasses import dataclass

from slack_bolt import App
from slack_sdk import WebClient

from bot.container import Container
from bot.slack.config import SlackOAuthConfig
from bot.slack.listeners import actions, commands, events, views
from bot.slack.middleware import chat_context_middleware
from bot.slack.services import SlackServices, web_client
from bot.slack.worker import SlackWorker

logger = logging.getLogger(__name__)


@dataclass
class SlackEdge:
    """The bolt app and the services its listeners share (tests reach the caches through it)."""

    app: App
    services: SlackServices


def build_slack(
    container: Container,
    *,
    client: WebClient | None = None,
    listener_executor: Executor | None = None,
    oauth: SlackOAuthConfig | None = None,
    worker: SlackWorker | None = None,
) -> SlackEdge:
    """The Slack app: one workspace (SLACK_BOT_TOKEN), or any that installs it when
    SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are set (bolt's OAuth flow, tokens in our database).

    process_before_response=True: bolt's default polls for ack() and adds ~10 ms to every request
    (platform-facts.md). Listeners hand their work to the worker (bot.slack.worker) and ack with
    the answer when it is ready within the worker's budget, else ack at once and answer later;
    events hand their work to lazy listeners. token_verification is off so the server starts even
    while Slack is unreachable; bolt calls auth.test on the first request instead.

    listener_executor runs lazy listeners and, unless ``worker`` is given, the work after acks.
    """
    settings = container.settings
    if not settings.slack_signing_secret:
        raise ValueError("SLACK_SIGNING_SECRET is not set: Slack requests cannot be verified")
    oauth = oauth if oauth is not None else SlackOAuthConfig()
    install = None
    if oauth.enabled:
        # Imported only when used: slack_sdk's SQLAlchemy stores need greenlet.
        from bot.slack.oauth import oauth_settings

        install = oauth_settings(container, oauth)
    client = client or web_client(settings)
    if worker is None:
        worker = SlackWorker(executor=listener_executor) if listener_executor else SlackWorker()
    services = SlackServices(container=container, client=client, worker=worker)
    app = App(
        name="csm-assistant",
        signing_secret=settings.slack_signing_secret,
        client=client,
        process_before_response=True,
        token_verification_enabled=False,
        request_verification_enabled=True,
        listener_executor=listener_executor,
        oauth_settings=install,
    )
    app.use(chat_context_middleware(services))
    commands.register(app, services)
    actions.register(app, services)
    views.register(app, services)
    events.register(app, services)
    return SlackEdge(app=app, services=services)
