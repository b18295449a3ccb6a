"""Data API routes for the team: GET/POST /api/v1/people and PATCH /api/v1/people/{email}."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.api.auth import Endpoint, api_error, require_token
from bot.http_body import read_capped
from handlers import access
from storage.csv_import import MAX_ERRORS_SHOWN, ImportFailed, ImportReport
from storage.models import ROLES
from storage.people import PersonExists, PersonUnknown, add_person, list_people, set_person

if TYPE_CHECKING:
    from bot.container import Container

logger = logging.getLogger(__name__)

ACTOR = "api"
# A person is a handful of short fields; anything bigger is not a person.
MAX_PERSON_BYTES = 16 * 1024


def people_routes(container: Container) -> list[Route]:
    return [
        Route(
            "/api/v1/people",
            require_token(container, _collection(container)),
            methods=["GET", "POST"],
        ),
        Route(
            "/api/v1/people/{email}",
            require_token(container, _one(container)),
            methods=["GET", "PATCH"],
        ),
    ]


def _collection(container: Container) -> Endpoint:
    async def people(request: Request) -> Response:
        if request.method == "GET":
            role = request.query_params.get("role")
            if role is not None and role not in ROLES:
                return api_error(
                    400, "invalid_role", f"Unknown role {role!r}; use one of: {', '.join(ROLES)}."
                )
            found = await run_in_threadpool(list_people, container.engine, role=role)
            return JSONResponse({"people": [p.as_dict() for p in found]})
        body = await _json_object(request)
        if isinstance(body, Response):
            return body
        try:
            report = await run_in_threadpool(
                add_person,
                container.engine,
                body,
                actor_label=ACTOR,
                source=ACTOR,
                check=access.service_person_refusals,
            )
        except PersonExists as exc:
            return api_error(409, "person_exists", str(exc))
        except ImportFailed as exc:
            return _invalid(exc)
        return await _person_answer(container, body.get("email"), report, created=201)

    return people


def _one(container: Container) -> Endpoint:
    async def person(request: Request) -> Response:
        email = request.path_params["email"]
        if request.method == "GET":
            found = await run_in_threadpool(list_people, container.engine, email=email)
            if not found:
                return api_error(404, "unknown_person", f"No person with email {email!r}.")
            return JSONResponse({"person": found[0].as_dict()})
        body = await _json_object(request)
        if isinstance(body, Response):
            return body
        if "email" in body:
            return api_error(
                400, "email_in_body", "The email is the person's key: it goes in the URL only."
            )
        try:
            report = await run_in_threadpool(
                set_person,
                container.engine,
                email,
                body,
                actor_label=ACTOR,
                source=ACTOR,
                check=access.service_person_refusals,
            )
        except PersonUnknown as exc:
            return api_error(404, "unknown_person", str(exc))
        except ImportFailed as exc:
            return _invalid(exc)
        return await _person_answer(container, email, report)

    return person


async def _person_answer(
    container: Container, email: Any, report: ImportReport, *, created: int = 200
) -> Response:
    found = await run_in_threadpool(list_people, container.engine, email=str(email))
    result = "added" if report.inserted else "updated" if report.updated else "unchanged"
    status = created if report.inserted else 200
    return JSONResponse({"result": result, "person": found[0].as_dict()}, status)


async def _json_object(request: Request) -> dict[str, Any] | Response:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        return api_error(
            415, "unsupported_media_type", 'Send the person as application/json: {"email": ...}.'
        )
    body = await read_capped(request, MAX_PERSON_BYTES)
    if body is None:  # refused as soon as it is known to be too big, never buffered whole
        return api_error(413, "body_too_large", f"A person is at most {MAX_PERSON_BYTES} bytes.")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        return api_error(400, "invalid_json", f"The body is not valid JSON: {exc}")
    if not isinstance(data, dict):
        return api_error(400, "invalid_body", 'Expected a JSON object {"email": ..., "name": ...}.')
    return data


def _invalid(exc: ImportFailed) -> Response:
    return JSONResponse(
        {
            "error": "invalid_person",
            "message": "; ".join(f"{e.column or 'person'}: {e.reason}" for e in exc.errors[:3]),
            "errors": [
                {"column": e.column, "reason": e.reason} for e in exc.errors[:MAX_ERRORS_SHOWN]
            ],
        },
        422,
    )
