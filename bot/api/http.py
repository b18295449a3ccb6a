"""Data API routes: POST /api/v1/import/{kind} (CSV or JSON rows), GET /api/v1/accounts/{id}/health, /api/v1/people."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlmodel import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot import http_body
from bot.api.auth import Endpoint, api_error, configured_token, require_token
from bot.api.people import people_routes
from bot.http_body import API_MAX_BODY, read_capped
from handlers import access
from storage.csv_import import (
    KINDS,
    MAX_ERRORS_SHOWN,
    ImportFailed,
    ImportReport,
    import_csv_text,
    import_records,
)

if TYPE_CHECKING:
    from bot.container import Container

logger = logging.getLogger(__name__)

# 10 MiB is ~100,000 JSON (~250,000 CSV) reading rows: a sync fits, a runaway client does not.
MAX_BODY_BYTES = API_MAX_BODY
CSV_TYPES = ("text/csv", "application/csv")
JSON_TYPE = "application/json"
# These kinds feed the health score; milestones and renewals do not.
RECOMPUTE_KINDS = ("accounts", "readings", "surveys")
ACTOR = "api"


def routes(container: Container, *, max_body_bytes: int = MAX_BODY_BYTES) -> list[Route]:
    """The data API; every route needs `Authorization: Bearer <CSM_API_TOKEN>`."""
    if configured_token(container) is None:
        logger.info("CSM_API_TOKEN is not set: the data API (/api/v1/...) answers 503")
    return [
        Route(
            "/api/v1/import/{kind}",
            require_token(container, import_endpoint(container, max_body_bytes)),
            methods=["POST"],
        ),
        Route(
            # :path so an external id containing "/" (some CRMs have them) still matches.
            "/api/v1/accounts/{external_id:path}/health",
            require_token(container, health_endpoint(container)),
            methods=["GET"],
        ),
        *people_routes(container),
    ]


def import_endpoint(container: Container, max_body_bytes: int) -> Endpoint:
    """POST /api/v1/import/{kind}: the CSV import's validation and upsert, over HTTP."""

    async def import_data(request: Request) -> Response:
        kind = request.path_params["kind"]
        # The token holder is the data API's service actor (handlers.access: it may import).
        if not access.may(access.service_actor(), access.Action.IMPORT_DATA):
            return api_error(403, "forbidden", "Imports are not allowed for this token.")
        if kind not in KINDS:
            return api_error(
                404,
                "unknown_kind",
                f"Unknown import kind {kind!r}; use one of: {', '.join(KINDS)}.",
                kinds=list(KINDS),
            )
        media, charset = _content_type(request)
        if media not in (*CSV_TYPES, JSON_TYPE):
            return api_error(
                415,
                "unsupported_media_type",
                f'Send the rows as {JSON_TYPE} ({{"rows": [...]}}) or text/csv, not {media or "nothing"}.',
            )
        if charset not in (None, "utf-8", "utf8"):
            return api_error(415, "unsupported_charset", f"Send UTF-8, not {charset}.")
        body = await read_capped(request, max_body_bytes, seconds=http_body.API_BODY_SECONDS)
        if body is None:
            return api_error(
                413,
                "body_too_large",
                f"The body is over {max_body_bytes} bytes; split the rows into several requests.",
                limit_bytes=max_body_bytes,
            )
        job: Callable[[], ImportReport]
        if media == JSON_TYPE:
            rows = _json_rows(body)
            if isinstance(rows, Response):
                return rows
            job = partial(
                import_records,
                container.engine,
                kind,
                None,
                rows,
                actor_label=ACTOR,
                source=ACTOR,
                name="api:json",
                person_check=access.service_person_refusals,
                today=container.today(),
            )
        else:
            job = partial(
                import_csv_text,
                container.engine,
                kind,
                body,
                actor_label=ACTOR,
                source=ACTOR,
                name="api:csv",
                person_check=access.service_person_refusals,
                today=container.today(),
            )
        try:
            report = await run_in_threadpool(job)
        except ImportFailed as exc:
            noun = "error" if len(exc.errors) == 1 else "errors"
            shown = exc.errors[:MAX_ERRORS_SHOWN]
            more = f" The first {len(shown)} are listed." if len(exc.errors) > len(shown) else ""
            return JSONResponse(
                {
                    "error": "invalid_rows",
                    "message": f"{len(exc.errors):,} {noun}, nothing imported.{more}",
                    "kind": kind,
                    "error_count": len(exc.errors),
                    "errors_truncated": len(exc.errors) > len(shown),
                    "errors": [
                        {"row": e.row, "column": e.column, "reason": e.reason} for e in shown
                    ],
                    "imported": 0,
                },
                422,
            )
        except Exception:  # a database failure: the transaction rolled back; answer in JSON
            logger.exception("data API import of %s failed", kind)
            return api_error(500, "internal_error", "The import failed; nothing was written.")
        return JSONResponse(await _answer(container, report))

    return import_data


async def _answer(container: Container, report: ImportReport) -> dict[str, Any]:
    """The success body; recomputes today's health of the accounts whose inputs changed."""
    body: dict[str, Any] = {
        "kind": report.kind,
        "rows": report.rows,
        "inserted": report.inserted,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "imported": report.inserted + report.updated,
        "accounts_changed": len(report.account_ids),
        "health_recomputed": 0,
    }
    if report.kind == "accounts":
        # Renewal dates and ARR of the accounts keep their open renewals (docs/import.md).
        body["renewals_created"] = report.renewals_created
        body["renewals_updated"] = report.renewals_updated
    if report.account_ids and report.kind in RECOMPUTE_KINDS:
        from handlers.recompute import recompute_health

        try:
            summary = await run_in_threadpool(
                recompute_health,
                container.engine,
                as_of=container.today(),
                models=container.health_models,
                account_ids=report.account_ids,
            )
        except Exception:
            # The rows are committed; saying 500 would make a client retry a finished import.
            # The scheduler's daily recompute catches up.
            logger.exception("health recompute after a data API import failed")
            body["health_recomputed"] = None
            body["warning"] = "imported, but recomputing health failed; it runs again daily"
        else:
            body["health_recomputed"] = summary.accounts
    return body


def health_endpoint(container: Container) -> Endpoint:
    """GET /api/v1/accounts/{external_id}/health: what the health card shows, as JSON."""

    async def account_health(request: Request) -> Response:
        external_id = request.path_params["external_id"]
        found = await run_in_threadpool(_health_of, container, external_id)
        if found is None:
            return api_error(
                404, "unknown_account", f"No account with external_id {external_id!r}."
            )
        return JSONResponse(found)

    return account_health


def _health_of(container: Container, external_id: str) -> dict[str, Any] | None:
    from handlers import access
    from handlers.accounts import account_summary
    from handlers.context import ChatContext
    from handlers.health import health_context, sentiment_context
    from storage.models import Account

    today = container.today()
    ctx = ChatContext(platform="api", actor=access.service_actor(), today=today)
    with container.session() as session:
        access.require(session, ctx, access.Action.READ_ACCOUNT)
        account = session.exec(select(Account).where(Account.external_id == external_id)).first()
        if account is None:
            return None
        return {
            "as_of": today.isoformat(),
            "account": account_summary(session, account, today),
            "health": health_context(session, account, models=container.health_models, today=today),
            "sentiment": sentiment_context(session, account.id or 0, today),
        }


def _content_type(request: Request) -> tuple[str, str | None]:
    """The media type and charset (both lower case) of the request body."""
    media, *params = request.headers.get("content-type", "").split(";")
    charset = None
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return media.strip().lower(), charset


def _json_rows(body: bytes) -> list[Any] | Response:
    """The ``rows`` array of a JSON body, or the 400 that says what is wrong with the body."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, absurd nesting
        return api_error(400, "invalid_json", f"The body is not valid JSON: {exc}")
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        return api_error(
            400,
            "invalid_body",
            'Expected a JSON object {"rows": [{"column": value, ...}, ...]}.',
        )
    return data["rows"]
