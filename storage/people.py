"""The team: add, change, import and list people (CSMs, managers, admins, viewers), keyed by email."""

from __future__ import annotations

import logging
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from storage.bulk import table
from storage.csv_import import ImportReport, import_records
from storage.people_rows import PersonCheck, add_command

logger = logging.getLogger(__name__)


class PersonExists(ValueError):
    """`people add` for an email that is already on the team with other values."""


class PersonUnknown(LookupError):
    """`people set` for an email nobody has."""


# ---------------------------------------------------------------------------------------------
# one person at a time: the CLI's `people add|set` and the API's POST/PATCH /api/v1/people


def add_person(
    engine: Engine,
    record: Mapping[str, Any],
    *,
    actor_label: str,
    source: str,
    check: PersonCheck | None = None,
) -> ImportReport:
    """Add one person; the same values again change nothing, other values for an existing email
    raise PersonExists (changing someone is `set`, so a typo cannot silently demote an admin)."""
    email = str(record.get("email") or "").strip().lower()
    existing = find_person(engine, email) if email else None
    if existing is not None:
        differing = _differing(existing, record)
        if differing:
            raise PersonExists(
                f"{email} is already on the team ({existing['name']}, {existing['role']}); "
                f"change them with: csm-bot people set {email} "
                + " ".join(f"--{_option(k)} {shlex.quote(str(record[k]))}" for k in differing)
            )
    return import_records(
        engine,
        "people",
        None,
        [dict(record)],
        actor_label=actor_label,
        source=source,
        name=email,
        person_check=check,
    )


def set_person(
    engine: Engine,
    email: str,
    changes: Mapping[str, Any],
    *,
    actor_label: str,
    source: str,
    check: PersonCheck | None = None,
) -> ImportReport:
    """Change some of one person's values; PersonUnknown when nobody has that email."""
    key = email.strip().lower()
    if find_person(engine, key) is None:
        raise PersonUnknown(f"no person with email {email!r}; add them with: {add_command(key)}")
    return import_records(
        engine,
        "people",
        None,
        [{"email": key, **changes}],
        actor_label=actor_label,
        source=source,
        person_check=check,
        name=key,
    )


def _differing(existing: Mapping[str, Any], record: Mapping[str, Any]) -> list[str]:
    """Columns of ``record`` whose value differs from the stored person (roughly compared)."""
    out = []
    for key, value in record.items():
        if key in ("email", "manager_email") or value in (None, ""):
            continue
        stored = existing.get(key)
        if str(stored).lower() != str(value).strip().lower():
            out.append(key)
    if (
        record.get("manager_email")
        and (existing.get("manager_email") or "") != str(record["manager_email"]).strip().lower()
    ):
        out.append("manager_email")
    return out


def _option(column: str) -> str:
    return {
        "manager_email": "manager",
        "timezone": "tz",
        "slack_user_id": "slack-id",
        "teams_user_id": "teams-id",
        "teams_aad_object_id": "teams-aad-id",
    }.get(column, column.replace("_", "-"))


@dataclass(frozen=True)
class Person:
    """One person as `people list` and GET /api/v1/people show them."""

    email: str
    name: str
    role: str
    manager_email: str | None
    timezone: str
    digest_time: str
    digest_weekends: bool
    slack_user_id: str | None
    teams_user_id: str | None
    teams_aad_object_id: str | None
    accounts: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def find_person(engine: Engine, email: str) -> dict[str, Any] | None:
    found = list_people(engine, email=email)
    return found[0].as_dict() if found else None


def list_people(
    engine: Engine, *, role: str | None = None, email: str | None = None
) -> list[Person]:
    """Everyone on the team (or one role, or one email), by name, with how many accounts they own."""
    csm, account = table("csm"), table("account")
    boss = csm.alias("boss")
    owned = (
        select(account.c.owner_id, func.count().label("n"))
        .where(account.c.owner_id.is_not(None))
        .group_by(account.c.owner_id)
        .subquery()
    )
    stmt = (
        select(
            csm,
            func.lower(boss.c.email).label("manager_email"),
            func.coalesce(owned.c.n, 0).label("accounts"),
        )
        .outerjoin(boss, boss.c.id == csm.c.manager_id)
        .outerjoin(owned, owned.c.owner_id == csm.c.id)
        .order_by(csm.c.name, csm.c.email)
    )
    if role is not None:
        stmt = stmt.where(csm.c.role == role)
    if email is not None:
        stmt = stmt.where(func.lower(csm.c.email) == email.strip().lower())
    with engine.connect() as conn:
        rows = conn.execute(stmt).mappings().all()
    return [
        Person(
            email=r["email"].lower(),
            name=r["name"],
            role=r["role"],
            manager_email=r["manager_email"],
            timezone=r["timezone"],
            digest_time=r["digest_time"],
            digest_weekends=bool(r["digest_weekends"]),
            slack_user_id=r["slack_user_id"],
            teams_user_id=r["teams_user_id"],
            teams_aad_object_id=r["teams_aad_object_id"],
            accounts=int(r["accounts"]),
        )
        for r in rows
    ]
