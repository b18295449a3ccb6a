"""Configuration and connection problems as one line that says what is wrong and how to fix it."""

from __future__ import annotations

import logging
import re

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, ProgrammingError

logger = logging.getLogger(__name__)

URL_FORMS = "sqlite:////path/to/csm.db or postgresql://USER:PASSWORD@HOST:5432/DATABASE"
UPGRADE = "run `csm-bot db upgrade` (it creates or migrates the schema)"


class OperatorProblem(Exception):
    """A problem the person running the assistant can fix; the message says how."""


def safe_url(url: str) -> str:
    """The database URL with its password hidden, fit to print."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<not a URL>"


def explain(exc: BaseException, database_url: str | None = None) -> str | None:
    """One line for a known configuration or connection problem, else None (a real bug).

    The line names what is wrong and the fix; `csm-bot doctor` checks everything at once.
    """
    from domain.health_model import HealthModelError

    where = safe_url(database_url) if database_url else "the database"
    if isinstance(exc, OperatorProblem):
        return str(exc)
    if isinstance(exc, NoSuchModuleError):
        kind = str(exc).rsplit(":", 1)[-1].strip()
        return (
            f"CSM_DATABASE_URL names a database kind this assistant cannot use ({kind}); "
            f"use {URL_FORMS}."
        )
    if isinstance(exc, ArgumentError) and "URL" in str(exc):
        return f"CSM_DATABASE_URL is not a database URL; use {URL_FORMS}."
    if isinstance(exc, OperationalError | ProgrammingError):
        return _database_problem(exc, where)
    if isinstance(exc, HealthModelError):
        return (
            f"The health model is not usable: {_model_problem(exc)} (fix the file, or unset "
            "CSM_HEALTH_MODEL to use the packaged model)."
        )
    return None


def _model_problem(exc: Exception) -> str:
    """YAML errors span several lines (the source and a caret): say where, in one."""
    cause = exc.__cause__
    mark = getattr(cause, "problem_mark", None)
    if mark is not None:
        label = str(exc).split(": invalid YAML", 1)[0]
        return f"{label}: invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {getattr(cause, 'problem', '')}"
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def _database_problem(exc: OperationalError | ProgrammingError, where: str) -> str:
    detail = _first_line(str(exc.orig) if exc.orig is not None else str(exc))
    lowered = detail.lower()
    if "no such table" in lowered or re.search(r"relation .* does not exist", lowered):
        return f"The database at {where} has no tables for this version yet: {UPGRADE}."
    if "unable to open database file" in lowered:
        return (
            f"Cannot open the SQLite database at {where}: make sure its folder exists and is "
            "writable, or point CSM_DATABASE_URL elsewhere."
        )
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return f"PostgreSQL at {where} refused the login ({detail}): check the user and password in CSM_DATABASE_URL."
    if re.search(r'database ".*" does not exist', lowered):
        return f"PostgreSQL answers but {detail}: create it (createdb NAME) or fix the name in CSM_DATABASE_URL."
    if any(
        s in lowered
        for s in (
            "connection refused",
            "could not connect",
            "timeout",
            "timed out",
            "translate host name",
            "name or service not known",
            "connection failed",
        )
    ):
        return (
            f"Cannot reach the database at {where} ({detail}): start PostgreSQL or fix the host "
            "and port in CSM_DATABASE_URL (`csm-bot doctor` checks the whole configuration)."
        )
    return f"The database at {where} failed: {detail} (`csm-bot doctor` checks the configuration)."


def _first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip().rstrip(".")
    return text.strip()
