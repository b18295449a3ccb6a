"""One HTTP process: Slack on /slack/events (+ OAuth), Teams on /api/messages, the data API, /healthz, /metrics."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from slack_bolt import App, BoltRequest, BoltResponse
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot.config import ConfigurationError, Settings
from bot.container import Container
from bot.http_body import SLACK_MAX_BODY, read_capped
from bot.slack.payloads import malformed_payload
from bot.slack.signing import signed_by_slack

logger = logging.getLogger(__name__)

HTTP_REQUESTS = Counter(
    "csm_http_requests_total", "HTTP requests served, by route and status", ["route", "status"]
)
HTTP_LATENCY = Histogram(
    "csm_http_request_duration_seconds",
    "Time to answer an HTTP request, by route",
    ["route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

Endpoint = Callable[[Request], Awaitable[Response]]


def measured(route: str, endpoint: Endpoint) -> Endpoint:
    """Count and time an endpoint (a wrapper, not middleware: it costs microseconds per request)."""

    async def wrapper(request: Request) -> Response:
        started = time.perf_counter()
        response = await endpoint(request)
        HTTP_LATENCY.labels(route).observe(time.perf_counter() - started)
        HTTP_REQUESTS.labels(route, str(response.status_code)).inc()
        return response

    return wrapper


def slack_endpoint(app: App, signing_secret: str) -> Endpoint:
    """Checks a request's size and signature, then hands it to bolt and returns bolt's response.

    The body is read with a cap (bot.http_body.SLACK_MAX_BODY) and its signature checked on the
    raw bytes before anything parses it: an unsigned body, however malformed, is a 401 and costs
    nothing. A signed body that is not a Slack payload is a 400. bolt's dispatch is synchronous
    and runs in the thread pool; listeners acknowledge within the worker's budget.
    """

    async def slack_events(request: Request) -> Response:
        raw = await read_capped(request, SLACK_MAX_BODY)
        if raw is None:
            return PlainTextResponse("request too large", 413)
        headers = {k.lower(): v for k, v in request.headers.items()}
        if not signed_by_slack(raw, headers, signing_secret):
            return PlainTextResponse("invalid signature", 401)
        try:
            bolt_request = BoltRequest(
                body=raw.decode("utf-8"), query=request.url.query, headers=headers
            )
        except (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError):
            # Not UTF-8, not JSON or a form, or a payload whose envelope bolt cannot read.
            return PlainTextResponse("malformed request", 400)
        problem = malformed_payload(bolt_request.body)
        if problem:
            logger.info("signed Slack request refused: %s", problem)
            return PlainTextResponse(f"malformed request: {problem}", 400)
        bolt_response: BoltResponse = await run_in_threadpool(app.dispatch, bolt_request)
        return Response(
            status_code=bolt_response.status,
            content=bolt_response.body,
            headers=bolt_response.first_headers_without_set_cookie(),
        )

    return slack_events


def oauth_endpoint(app: App) -> Endpoint:
    """GET /slack/install and /slack/oauth_redirect when multi-workspace install is on."""

    async def slack_oauth(request: Request) -> Response:
        flow = app.oauth_flow
        assert flow is not None
        bolt_request = BoltRequest(
            body="", query=request.url.query, headers={k: v for k, v in request.headers.items()}
        )
        handle = (
            flow.handle_installation
            if request.url.path == flow.install_path
            else flow.handle_callback
        )
        bolt_response: BoltResponse = await run_in_threadpool(handle, bolt_request)
        response = Response(
            status_code=bolt_response.status,
            content=bolt_response.body,
            headers=bolt_response.first_headers_without_set_cookie(),
        )
        for cookie in bolt_response.cookies():
            for name, morsel in cookie.items():
                response.set_cookie(
                    key=name,
                    value=morsel.value,
                    max_age=int(morsel.get("max-age") or 0) or None,
                    path=morsel.get("path") or "/",
                    secure=True,
                    httponly=True,
                )
        return response

    return slack_oauth


def health_endpoint(container: Container) -> Endpoint:
    def check() -> None:
        with container.engine.connect() as conn:
            conn.execute(text("select 1"))

    async def healthz(_: Request) -> Response:
        try:
            await run_in_threadpool(check)
        except Exception as exc:  # any database failure means: not healthy, say why
            logger.warning("health check failed: %s", exc)
            return JSONResponse({"status": "error", "database": type(exc).__name__}, 503)
        return JSONResponse({"status": "ok"})

    return healthz


async def metrics(_: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def teams_routes(container: Container, teams_app: Any = None) -> list[BaseRoute]:
    """Teams' POST /api/messages when bot/teams is present (it is optional for Slack-only teams).

    teams_app: an already built bot.teams.app.TeamsApp (tests give one with their own keys).
    """
    try:
        from bot.teams.http import routes
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("bot.teams"):
            return []
        raise
    # Counted and timed like /slack/events (csm_http_requests_total, csm_http_request_duration_seconds).
    return [
        Route(r.path, measured(r.path, r.endpoint), methods=sorted(r.methods or ()))
        for r in routes(container, teams_app=teams_app)
    ]


def create_app(
    container: Container,
    *,
    slack_app: App | None = None,
    with_slack: bool = True,
    with_teams: bool = True,
    teams_app: Any = None,
    on_shutdown: Callable[[], None] | None = None,
) -> Starlette:
    """The ASGI app. Slack is served when a signing secret is configured (or slack_app is given).

    ``on_shutdown`` runs during the server's graceful shutdown (SIGTERM, Ctrl-C): uvicorn
    re-raises the signal once it has stopped, so code after ``uvicorn.run`` never runs then.
    """
    routes: list[BaseRoute] = [
        Route("/healthz", measured("/healthz", health_endpoint(container)), methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    if with_slack:
        if slack_app is None and container.settings.slack_signing_secret:
            from bot.slack.app import build_slack

            slack_app = build_slack(container).app
        if slack_app is not None:
            secret = container.settings.slack_signing_secret
            if not secret:
                raise ConfigurationError(
                    "SLACK_SIGNING_SECRET is not set: Slack cannot be verified"
                )
            endpoint = measured("/slack/events", slack_endpoint(slack_app, secret))
            routes.append(Route("/slack/events", endpoint, methods=["POST"]))
            if slack_app.oauth_flow is not None:
                flow = slack_app.oauth_flow
                install = oauth_endpoint(slack_app)
                routes.append(Route(flow.install_path, install, methods=["GET"]))
                routes.append(Route(flow.redirect_uri_path, install, methods=["GET"]))
        else:
            logger.warning("SLACK_SIGNING_SECRET is not set: POST /slack/events is off")
    if with_teams:
        routes.extend(teams_routes(container, teams_app))
    from bot.api import routes as api_routes

    routes.extend(api_routes(container))

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        if on_shutdown is not None:
            await run_in_threadpool(on_shutdown)

    return Starlette(routes=routes, lifespan=lifespan)


LOOPBACK = "127.0.0.1"


def bind_host(settings: Settings, host: str) -> str:
    """Where the server may listen: anywhere, except in Teams' local development mode.

    CSM_TEAMS_DEV_NO_AUTH answers Teams without checking who sent the request, so the server
    then listens on loopback only, whatever --host says, and says so loudly.
    """
    if not settings.teams_dev_no_auth or settings.microsoft_app_id:
        return host
    banner = (
        "CSM_TEAMS_DEV_NO_AUTH is on: /api/messages answers Teams requests WITHOUT checking who "
        f"sent them. Local development only: listening on {LOOPBACK}"
        + (f" instead of {host}." if host != LOOPBACK else ".")
    )
    logger.warning(banner)
    sys.stderr.write(f"WARNING: {banner}\n")
    return LOOPBACK


def serve(
    container: Container,
    host: str = "0.0.0.0",
    port: int = 3000,
    with_scheduler: bool = True,
    socket_mode: bool = False,
) -> None:
    """Run the assistant until interrupted: HTTP (uvicorn, one worker), or Slack over Socket Mode.

    In Socket Mode Slack is reached through SLACK_APP_TOKEN (no public URL); the HTTP server still
    runs for /healthz, /metrics and Teams.
    """
    import uvicorn

    host = bind_host(container.settings, host)
    socket_handler: Any = None
    scheduler: Any = None
    slack_app: App | None = None
    settings = container.settings
    if socket_mode:
        if not settings.slack_app_token:
            raise ValueError("--socket-mode needs SLACK_APP_TOKEN (an xapp- token)")
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        from bot.slack.app import build_slack

        socket_handler = SocketModeHandler(build_slack(container).app, settings.slack_app_token)
    elif settings.slack_signing_secret:
        from bot.slack.app import build_slack

        slack_app = build_slack(container).app

    def stop_scheduler() -> None:
        # Inside uvicorn's graceful shutdown: claims go back to the queue, posts in flight
        # finish. (uvicorn re-raises SIGTERM once it has stopped: the finally below never runs.)
        if scheduler is not None:
            scheduler.shutdown()

    # Built first: a configuration error (a Teams app id without its tenant) stops here.
    app = create_app(
        container, slack_app=slack_app, with_slack=not socket_mode, on_shutdown=stop_scheduler
    )
    container.warm_up()  # the name index, in the background: the first message finds it built
    try:
        if with_scheduler:
            from bot.scheduling import start_scheduler

            scheduler = start_scheduler(container)
        if socket_handler is not None:
            socket_handler.connect()
            logger.info("connected to Slack over Socket Mode")
        uvicorn.run(app, host=host, port=port, workers=1, access_log=False, log_level="info")
    finally:
        if socket_handler is not None:
            socket_handler.close()
        if scheduler is not None:
            scheduler.shutdown()
